package httpapi

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestCallerIdentity checks what the WebSocket hub learns of its caller:
// an identity per token, the same whichever way the token came, and never
// the token itself.
func TestCallerIdentity(t *testing.T) {
	t.Parallel()
	a := newAPI(t, noStore(), func(c *Config) {
		c.WebSocket = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			id, ok := CallerFrom(r.Context())
			fmt.Fprintf(w, "%s %v", id, ok)
		})
	})
	get := func(target, header string) string {
		t.Helper()
		r := httptest.NewRequestWithContext(t.Context(), http.MethodGet, target, nil)
		if header != "" {
			r.Header.Set("Authorization", header)
		}
		w := httptest.NewRecorder()
		a.handler.ServeHTTP(w, r)
		if w.Code != http.StatusOK {
			t.Fatalf("%s: status %d: %s", target, w.Code, w.Body)
		}
		id, ok := strings.CutSuffix(w.Body.String(), " true")
		if !ok || len(id) != 64 {
			t.Fatalf("%s: caller %q, want a 64-digit digest", target, w.Body)
		}
		return id
	}
	viewerHeader := get("/api/v1/ws", "Bearer "+viewerToken)
	viewerQuery := get("/api/v1/ws?access_token="+viewerToken, "")
	operator := get("/api/v1/ws", "Bearer "+operatorToken)
	if viewerHeader != viewerQuery {
		t.Errorf("the viewer is %s by header and %s by query, want one identity", viewerHeader, viewerQuery)
	}
	if viewerHeader == operator {
		t.Errorf("two tokens have the same identity %s", operator)
	}
	for _, id := range []string{viewerHeader, operator} {
		if strings.Contains(id, viewerToken) || strings.Contains(id, operatorToken) {
			t.Errorf("identity %s holds a token", id)
		}
	}
	if _, ok := CallerFrom(t.Context()); ok {
		t.Error("an unauthenticated context has a caller")
	}
}
