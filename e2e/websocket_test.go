package e2e

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/tmsfleet/tms/internal/tmsproc"
)

// TestHostileWebSocketLimitsOfTheService checks the WebSocket's per-token
// connection limit and origin check through `tms serve`, as configured by
// TMS_WS_* and keyed by the token the API authenticated: a token is one
// caller whether it comes in the header or the query, another token is
// another caller, and a page of a foreign origin is refused.
func TestHostileWebSocketLimitsOfTheService(t *testing.T) {
	t.Parallel()
	d := newDeployment(t, "TMS_WS_MAX_CONNECTIONS_PER_TOKEN=2", "TMS_WS_ALLOWED_ORIGINS=https://dash.example.com")
	d.Start()
	url := "ws://" + d.HTTPAddr + "/api/v1/ws"
	bearer := func(token string) http.Header { return http.Header{"Authorization": {"Bearer " + token}} }
	dial := func(target string, header http.Header) (int, string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
		defer cancel()
		conn, resp, err := websocket.Dial(ctx, target, &websocket.DialOptions{HTTPHeader: header})
		if conn != nil {
			t.Cleanup(func() { conn.CloseNow() })
			return http.StatusSwitchingProtocols, ""
		}
		if resp == nil {
			t.Fatalf("dial %s: %v", target, err)
		}
		var p struct {
			Detail string `json:"detail"`
		}
		_ = json.NewDecoder(resp.Body).Decode(&p)
		return resp.StatusCode, p.Detail
	}

	for range 2 {
		if status, detail := dial(url, bearer(tmsproc.ViewerToken)); status != http.StatusSwitchingProtocols {
			t.Fatalf("viewer connection: %d %s", status, detail)
		}
	}
	status, detail := dial(url+"?access_token="+tmsproc.ViewerToken, nil)
	if status != http.StatusTooManyRequests || !strings.Contains(detail, "2") {
		t.Errorf("the viewer's third connection (token in the query): %d %q, want 429 naming the limit", status, detail)
	}
	if strings.Contains(detail, tmsproc.ViewerToken) {
		t.Errorf("the refusal repeats the token: %q", detail)
	}
	if status, detail := dial(url, bearer(tmsproc.OperatorToken)); status != http.StatusSwitchingProtocols {
		t.Errorf("another token's connection: %d %q, want 101", status, detail)
	}

	withOrigin := func(origin string) http.Header {
		h := bearer(tmsproc.OperatorToken)
		h.Set("Origin", origin)
		return h
	}
	if status, _ := dial(url, withOrigin("https://evil.example")); status != http.StatusForbidden {
		t.Errorf("a page of a foreign origin: %d, want 403", status)
	}
	if status, detail := dial(url, withOrigin("https://dash.example.com")); status != http.StatusSwitchingProtocols {
		t.Errorf("a page of an allowed origin: %d %q, want 101", status, detail)
	}
}
