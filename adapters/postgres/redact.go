package postgres

import (
	"fmt"
	"net/url"
	"regexp"
	"strings"
)

// mask stands in for a secret in what is logged or returned.
const mask = "xxxxx"

// Redact returns a connection string without its secrets, for logs and
// messages: the password of a URL's user, the value of every query or
// key=value setting whose name contains "password" (password,
// sslpassword), in both forms libpq and pgx accept
// (postgres://user:pw@host/db?sslpassword=... and host=... password=...).
// A string it cannot take apart with certainty is not shown at all.
func Redact(connString string) string {
	if isURL(connString) {
		u, err := url.Parse(connString)
		if err != nil {
			return "(unparseable connection string)"
		}
		if _, has := u.User.Password(); has {
			u.User = url.UserPassword(u.User.Username(), mask)
		}
		q := u.Query()
		for k := range q {
			if secretKey(k) {
				q.Set(k, mask)
			}
		}
		u.RawQuery = q.Encode()
		return u.String()
	}
	settings, ok := parseKeyValues(connString)
	if !ok {
		return "(unparseable connection string)"
	}
	var b strings.Builder
	for i, s := range settings {
		if i > 0 {
			b.WriteByte(' ')
		}
		v := s.raw
		if secretKey(s.key) {
			v = mask
		}
		b.WriteString(s.key + "=" + v)
	}
	return b.String()
}

// scrub returns err with every secret of connString removed from its
// text, whatever the library that made it chose to quote (a URL parser
// quotes the whole URL). It still unwraps to err.
func scrub(err error, connString string) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	for _, s := range secrets(connString) {
		for _, form := range []string{s, url.QueryEscape(s), url.PathEscape(s), url.UserPassword("", s).String()[1:]} {
			if form != "" {
				msg = strings.ReplaceAll(msg, form, mask)
			}
		}
	}
	return &scrubbed{msg: msg, err: err}
}

type scrubbed struct {
	msg string
	err error
}

func (e *scrubbed) Error() string { return e.msg }
func (e *scrubbed) Unwrap() error { return e.err }

// errorf is fmt.Errorf("postgres: <what>: %w") for an error that may
// quote connString.
func errorf(what string, err error, connString string) error {
	return scrub(fmt.Errorf("postgres: %s: %w", what, err), connString)
}

func isURL(s string) bool {
	return strings.HasPrefix(s, "postgres://") || strings.HasPrefix(s, "postgresql://")
}

func secretKey(k string) bool { return strings.Contains(strings.ToLower(k), "password") }

// loosePassword finds password settings in a string too broken to parse:
// the values of password=... whether quoted or not, and a URL's userinfo
// after the user's colon.
var (
	loosePassword = regexp.MustCompile(`(?i)password\s*=\s*('(?:[^'\\]|\\.)*'?|[^&\s]*)`)
	looseUserinfo = regexp.MustCompile(`^postgres(?:ql)?://[^:/@]*:(.*)@`)
)

// secrets returns every secret connString holds, as written and decoded,
// so that scrub can find them in any message, even when the string is
// too broken to parse.
func secrets(connString string) []string {
	var out []string
	add := func(s string) {
		if s = strings.Trim(s, "'"); s != "" {
			out = append(out, s)
			if d, err := url.PathUnescape(s); err == nil && d != s {
				out = append(out, d)
			}
		}
	}
	if u, err := url.Parse(connString); err == nil && isURL(connString) {
		if pw, has := u.User.Password(); has {
			add(pw)
		}
		for k, vs := range u.Query() {
			if secretKey(k) {
				for _, v := range vs {
					add(v)
				}
			}
		}
	}
	if settings, ok := parseKeyValues(connString); ok && !isURL(connString) {
		for _, s := range settings {
			if secretKey(s.key) {
				add(s.value)
			}
		}
	}
	// Whatever parsed, the loose patterns too: they over-match rather
	// than miss a secret in a broken string.
	if m := looseUserinfo.FindStringSubmatch(connString); m != nil {
		add(m[1])
	}
	for _, m := range loosePassword.FindAllStringSubmatch(connString, -1) {
		add(m[1])
	}
	return out
}

// setting is one key=value of a libpq connection string.
type setting struct {
	key   string
	value string // unquoted
	raw   string // as written
}

// parseKeyValues reads a key=value connection string as libpq does:
// settings separated by spaces, values bare or in single quotes with
// backslash escapes. ok is false for anything else.
func parseKeyValues(s string) (settings []setting, ok bool) {
	i := 0
	skip := func() {
		for i < len(s) && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r') {
			i++
		}
	}
	for {
		skip()
		if i == len(s) {
			return settings, len(settings) > 0
		}
		start := i
		for i < len(s) && s[i] != '=' && s[i] != ' ' {
			i++
		}
		key := s[start:i]
		skip()
		if key == "" || i == len(s) || s[i] != '=' {
			return nil, false
		}
		i++
		skip()
		vstart := i
		var value strings.Builder
		if i < len(s) && s[i] == '\'' {
			i++
			closed := false
			for i < len(s) {
				c := s[i]
				i++
				if c == '\\' && i < len(s) {
					value.WriteByte(s[i])
					i++
					continue
				}
				if c == '\'' {
					closed = true
					break
				}
				value.WriteByte(c)
			}
			if !closed {
				return nil, false
			}
		} else {
			for i < len(s) && s[i] != ' ' && s[i] != '\t' && s[i] != '\n' && s[i] != '\r' {
				if s[i] == '\\' && i+1 < len(s) {
					i++
				}
				value.WriteByte(s[i])
				i++
			}
		}
		settings = append(settings, setting{key: key, value: value.String(), raw: s[vstart:i]})
	}
}
