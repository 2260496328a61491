package ws

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
)

// originAllowed reports whether a page from r's origin may connect, and
// the origin it judged. A request without an Origin header is not from a
// browser page (browsers always send one on a WebSocket upgrade) and is
// allowed: the token is what protects the socket from other programs. A
// page of the server's own origin (its host is the request's Host, as
// gorilla's default check has it) is allowed; so are the configured ones.
func (h *Hub) originAllowed(r *http.Request) (string, bool) {
	values := r.Header.Values("Origin")
	if len(values) == 0 || (len(values) == 1 && values[0] == "") {
		return "", true
	}
	origin := values[0]
	if len(values) > 1 {
		return origin, false // no browser sends two
	}
	if h.anyOrigin {
		return origin, true
	}
	if u, err := url.Parse(origin); err == nil && u.Host != "" && strings.EqualFold(u.Host, r.Host) {
		return origin, true
	}
	n, err := normaliseOrigin(origin)
	return origin, err == nil && h.origins[n]
}

// normaliseOrigin reads an origin, scheme://host[:port] with nothing
// after it, or "*": lower-cased, without the scheme's default port, as
// browsers send it.
func normaliseOrigin(o string) (string, error) {
	o = strings.TrimSpace(o)
	if o == "*" {
		return o, nil
	}
	u, err := url.Parse(o)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil ||
		(u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" || u.Opaque != "" {
		return "", fmt.Errorf("%s is not an origin such as https://dashboard.example.com", excerpt(o))
	}
	scheme, host := strings.ToLower(u.Scheme), strings.ToLower(u.Host)
	switch {
	case scheme == "https":
		host = strings.TrimSuffix(host, ":443")
	case scheme == "http":
		host = strings.TrimSuffix(host, ":80")
	}
	return scheme + "://" + host, nil
}
