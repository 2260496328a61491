package httpapi

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/gin-gonic/gin"
)

// Role is what a token may do.
type Role string

// The roles of TMS_API_TOKENS.
const (
	// RoleViewer reads.
	RoleViewer Role = "viewer"
	// RoleOperator reads and writes (stations, jobs).
	RoleOperator Role = "operator"
)

// rank orders roles by what they may do; 0 is no role.
func (r Role) rank() int {
	switch r {
	case RoleViewer:
		return 1
	case RoleOperator:
		return 2
	}
	return 0
}

// Allows reports whether a caller with role r may do what needs role
// need: an operator may do whatever a viewer may.
func (r Role) Allows(need Role) bool {
	return r.rank() > 0 && r.rank() >= need.rank()
}

// ParseRole reads a role name.
func ParseRole(s string) (Role, error) {
	r := Role(s)
	if r.rank() == 0 {
		return "", fmt.Errorf("unknown role %q (want %s or %s)", s, RoleViewer, RoleOperator)
	}
	return r, nil
}

// ParseTokens reads the TMS_API_TOKENS format, "token:role,token:role",
// into a Config's Tokens. Blank entries are skipped (a trailing comma is
// harmless); an entry without a role, with an empty token or an unknown
// role, or a token given twice is an error. A token may itself contain
// ':' (the role is after the last one). Errors name the entry by its
// position, never by the token, so they are safe to log.
func ParseTokens(s string) (map[string]Role, error) {
	out := make(map[string]Role)
	for i, entry := range strings.Split(s, ",") {
		entry = strings.TrimSpace(entry)
		if entry == "" {
			continue
		}
		n := i + 1
		colon := strings.LastIndexByte(entry, ':')
		if colon < 0 {
			return nil, fmt.Errorf("TMS_API_TOKENS entry %d: want token:role", n)
		}
		token, name := strings.TrimSpace(entry[:colon]), strings.TrimSpace(entry[colon+1:])
		if token == "" {
			return nil, fmt.Errorf("TMS_API_TOKENS entry %d: empty token", n)
		}
		role, err := ParseRole(name)
		if err != nil {
			return nil, fmt.Errorf("TMS_API_TOKENS entry %d: %w", n, err)
		}
		if _, dup := out[token]; dup {
			return nil, fmt.Errorf("TMS_API_TOKENS entry %d: token given twice", n)
		}
		out[token] = role
	}
	return out, nil
}

// tokenEntry is a configured token by its SHA-256 digest: comparing
// digests of equal length keeps subtle.ConstantTimeCompare from leaking a
// token's length through its early return on a length mismatch.
type tokenEntry struct {
	digest [sha256.Size]byte
	role   Role
}

func hashTokens(tokens map[string]Role) []tokenEntry {
	out := make([]tokenEntry, 0, len(tokens))
	for t, r := range tokens {
		out = append(out, tokenEntry{digest: sha256.Sum256([]byte(t)), role: r})
	}
	return out
}

// lookup finds token's role, comparing it with every configured token in
// constant time: how long it takes does not depend on which token (if
// any) matched, nor on how much of one did.
func (s *server) lookup(token string) (Role, bool) {
	return s.lookupDigest(sha256.Sum256([]byte(token)))
}

// lookupDigest is lookup by the token's SHA-256 digest.
func (s *server) lookupDigest(d [sha256.Size]byte) (Role, bool) {
	var role Role
	found := 0
	for _, e := range s.tokens {
		eq := subtle.ConstantTimeCompare(d[:], e.digest[:])
		if eq == 1 {
			role = e.role
		}
		found |= eq
	}
	return role, found == 1
}

// Authentication errors; their text is the problem's detail.
var (
	errNoToken        = fmt.Errorf("%w: send Authorization: Bearer <token>", errUnauthenticated)
	errNotBearer      = fmt.Errorf("%w: the Authorization header must be Bearer <token>", errUnauthenticated)
	errBadToken       = fmt.Errorf("%w: the token is not valid", errUnauthenticated)
	errQueryTokenHere = fmt.Errorf("%w: the access_token query parameter is accepted on %s only; send Authorization: Bearer <token>", errUnauthenticated, wsPath)
)

// authenticate admits requests that carry a configured token and puts its
// role in the request context. The token comes from the Authorization
// header, or on the WebSocket route only, from the access_token query
// parameter: browsers cannot set headers on a WebSocket, and elsewhere a
// token in a URL would only end up in proxies' and browsers' histories.
func (s *server) authenticate(c *gin.Context) {
	token, fromQuery, err := bearerToken(c.Request, c.FullPath() == wsPath)
	if err != nil {
		fail(c, err)
		return
	}
	role, ok := s.lookup(token)
	if !ok {
		fail(c, errBadToken)
		return
	}
	ctx := context.WithValue(c.Request.Context(), roleKey{}, role)
	ctx = context.WithValue(ctx, callerKey{}, callerID(token))
	r := c.Request.WithContext(ctx)
	if fromQuery {
		// The token has done its job; take it out of the URL so that
		// nothing downstream (the WebSocket hub, its logs) can leak it.
		u := *r.URL
		q := u.Query()
		q.Del("access_token")
		u.RawQuery = q.Encode()
		r.URL = &u
	}
	c.Request = r
	c.Next()
}

// bearerToken extracts the caller's token: from the Authorization header,
// or when queryAllowed and there is no header, from access_token.
func bearerToken(r *http.Request, queryAllowed bool) (token string, fromQuery bool, err error) {
	if h := r.Header.Get("Authorization"); h != "" {
		scheme, token, ok := strings.Cut(strings.TrimSpace(h), " ")
		token = strings.TrimSpace(token)
		if !ok || !strings.EqualFold(scheme, "Bearer") || token == "" {
			return "", false, errNotBearer
		}
		return token, false, nil
	}
	// Parse the query leniently here: a malformed query is reported by the
	// handler, naming the field, once the caller is known.
	q, _ := url.ParseQuery(r.URL.RawQuery)
	if !q.Has("access_token") {
		return "", false, errNoToken
	}
	if !queryAllowed {
		return "", false, errQueryTokenHere
	}
	if token = q.Get("access_token"); token == "" {
		return "", false, errNoToken
	}
	return token, true, nil
}

// roleKey keys the authenticated role in a request context.
type roleKey struct{}

// RoleFrom returns the role the request carrying ctx was authenticated
// with; false when it was not authenticated (an open route).
func RoleFrom(ctx context.Context) (Role, bool) {
	r, ok := ctx.Value(roleKey{}).(Role)
	return r, ok
}

// callerKey keys the authenticated caller's identity in a request context.
type callerKey struct{}

// callerID is the identity of the caller holding token: the hex SHA-256
// digest of the token, stable for as long as the token is, and not the
// token itself.
func callerID(token string) string {
	d := sha256.Sum256([]byte(token))
	return hex.EncodeToString(d[:])
}

// CallerFrom returns who the request carrying ctx was authenticated as: a
// digest of its bearer token (never the token), for limits per token such
// as the WebSocket hub's; false when it was not authenticated. It is not
// a secret but is no one's business either: keep it out of logs.
func CallerFrom(ctx context.Context) (string, bool) {
	id, ok := ctx.Value(callerKey{}).(string)
	return id, ok
}

// RequireRole admits only callers whose role allows need; mount it after
// authentication, on write routes, with RoleOperator. Others get 403 (or
// 401 on a route that authenticates nobody).
func RequireRole(need Role) gin.HandlerFunc {
	return func(c *gin.Context) {
		role, ok := RoleFrom(c.Request.Context())
		switch {
		case !ok:
			fail(c, errNoToken)
		case !role.Allows(need):
			fail(c, fmt.Errorf("%w: this needs the %s role; the token has %s", errForbidden, need, role))
		default:
			c.Next()
		}
	}
}

// errUnauthenticated and errForbidden are the two auth outcomes the
// problem mapping knows.
var (
	errUnauthenticated = errors.New("authentication required")
	errForbidden       = errors.New("forbidden")
)
