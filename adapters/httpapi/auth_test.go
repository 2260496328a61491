package httpapi

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/tmsfleet/tms/projections/g7events"
	"github.com/tmsfleet/tms/projections/jobs"
	"github.com/tmsfleet/tms/projections/rebuild"
	"github.com/tmsfleet/tms/projections/replays"
	"github.com/tmsfleet/tms/projections/stations"
	"github.com/tmsfleet/tms/projections/trips"
	"github.com/tmsfleet/tms/projections/visits"
)

func TestParseTokens(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		in      string
		want    map[string]Role
		wantErr string
	}{
		{name: "empty", in: "", want: map[string]Role{}},
		{name: "one", in: "abc:viewer", want: map[string]Role{"abc": RoleViewer}},
		{name: "two with spaces and a trailing comma", in: " abc : viewer , def:operator, ",
			want: map[string]Role{"abc": RoleViewer, "def": RoleOperator}},
		{name: "token with a colon", in: "a:b:operator", want: map[string]Role{"a:b": RoleOperator}},
		{name: "no role", in: "abc", wantErr: "entry 1: want token:role"},
		{name: "empty token", in: "abc:viewer,:operator", wantErr: "entry 2: empty token"},
		{name: "unknown role", in: "abc:admin", wantErr: `entry 1: unknown role "admin"`},
		{name: "empty role", in: "abc:", wantErr: `unknown role ""`},
		{name: "role case matters", in: "abc:Viewer", wantErr: `unknown role "Viewer"`},
		{name: "token twice", in: "abc:viewer,abc:operator", wantErr: "entry 2: token given twice"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := ParseTokens(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
				}
				if strings.Contains(err.Error(), "abc") {
					t.Errorf("error %q reveals the token", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestRoleAllows(t *testing.T) {
	t.Parallel()
	tests := []struct {
		role, need Role
		want       bool
	}{
		{RoleViewer, RoleViewer, true},
		{RoleViewer, RoleOperator, false},
		{RoleOperator, RoleViewer, true},
		{RoleOperator, RoleOperator, true},
		{"", RoleViewer, false},
		{"admin", RoleViewer, false},
	}
	for _, tt := range tests {
		if got := tt.role.Allows(tt.need); got != tt.want {
			t.Errorf("%q.Allows(%q) = %v, want %v", tt.role, tt.need, got, tt.want)
		}
	}
}

// wsEcho stands in for the WebSocket hub: it shows the role it was given
// and the query it saw.
func wsEcho() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		role, ok := RoleFrom(r.Context())
		fmt.Fprintf(w, "role=%s ok=%v query=%s", role, ok, r.URL.RawQuery)
	})
}

func TestAuthentication(t *testing.T) {
	t.Parallel()
	pool := newDB(t, fleet())
	a := newDBAPI(t, pool, func(c *Config) { c.WebSocket = wsEcho() })
	// Parent cleanups run after the parallel subtests have finished.
	t.Cleanup(func() {
		for _, tok := range []string{viewerToken, operatorToken} {
			if strings.Contains(a.logs.String(), tok) {
				t.Errorf("the log holds a token:\n%s", a.logs)
			}
		}
	})
	tests := []struct {
		name   string
		target string
		header string // the Authorization header, when set
		want   int
		body   string // a substring of a 200 body
	}{
		{name: "no token", target: "/api/v1/vehicles", want: 401},
		{name: "unknown token", target: "/api/v1/vehicles", header: "Bearer nope", want: 401},
		{name: "token prefix", target: "/api/v1/vehicles", header: "Bearer " + viewerToken[:3], want: 401},
		{name: "token plus a suffix", target: "/api/v1/vehicles", header: "Bearer " + viewerToken + "x", want: 401},
		{name: "empty bearer", target: "/api/v1/vehicles", header: "Bearer ", want: 401},
		{name: "basic scheme", target: "/api/v1/vehicles", header: "Basic dmlld2VyOnB3", want: 401},
		{name: "bare token", target: "/api/v1/vehicles", header: viewerToken, want: 401},
		{name: "viewer", target: "/api/v1/vehicles", header: "Bearer " + viewerToken, want: 200, body: "沪A12345"},
		{name: "operator reads too", target: "/api/v1/vehicles", header: "Bearer " + operatorToken, want: 200},
		{name: "scheme is case-insensitive", target: "/api/v1/vehicles", header: "bearer " + viewerToken, want: 200},
		{name: "access_token refused off the WebSocket", target: "/api/v1/vehicles?access_token=" + viewerToken, want: 401},
		{name: "access_token refused on a vehicle", target: "/api/v1/vehicles/%E6%B2%AAA12345?access_token=" + viewerToken, want: 401},
		{name: "spec needs a token", target: "/api/v1/openapi.json", want: 401},
		{name: "spec with a viewer", target: "/api/v1/openapi.json", header: "Bearer " + viewerToken, want: 200, body: `"openapi"`},
		{name: "health is open", target: "/healthz", want: 200, body: `"ok"`},
		{name: "readiness is open", target: "/readyz", want: 200},
		{name: "metrics are open", target: "/metrics", want: 200},
		{name: "ws without token", target: "/api/v1/ws", want: 401},
		{name: "ws with a bad access_token", target: "/api/v1/ws?access_token=nope", want: 401},
		{name: "ws with an empty access_token", target: "/api/v1/ws?access_token=", want: 401},
		{name: "ws with access_token", target: "/api/v1/ws?access_token=" + viewerToken + "&x=1", want: 200,
			body: "role=viewer ok=true query=x=1"}, // the token is gone from what the hub sees
		{name: "ws with the header", target: "/api/v1/ws", header: "Bearer " + operatorToken, want: 200, body: "role=operator ok=true"},
		{name: "ws header wins over the query", target: "/api/v1/ws?access_token=" + viewerToken, header: "Bearer " + operatorToken, want: 200,
			body: "role=operator"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := httptest.NewRequestWithContext(t.Context(), http.MethodGet, tt.target, nil)
			if tt.header != "" {
				r.Header.Set("Authorization", tt.header)
			}
			w := httptest.NewRecorder()
			a.handler.ServeHTTP(w, r)
			if tt.want == http.StatusUnauthorized {
				wantProblem(t, w, r.URL.EscapedPath(), http.StatusUnauthorized)
				if got := w.Header().Get("WWW-Authenticate"); got != `Bearer realm="tms"` {
					t.Errorf("WWW-Authenticate = %q", got)
				}
				return
			}
			if w.Code != tt.want {
				t.Fatalf("status %d, want %d; body: %s", w.Code, tt.want, w.Body)
			}
			if !strings.Contains(w.Body.String(), tt.body) {
				t.Errorf("body %s does not contain %q", w.Body, tt.body)
			}
		})
	}
}

func TestAccessTokenHint(t *testing.T) {
	t.Parallel()
	a := newAPI(t, noStore())
	w := a.do(t, http.MethodGet, "/api/v1/openapi.json?access_token="+viewerToken, "")
	p := wantProblem(t, w, "/api/v1/openapi.json", http.StatusUnauthorized)
	if !strings.Contains(p.Detail, "/api/v1/ws only") {
		t.Errorf("detail %q does not say where access_token is accepted", p.Detail)
	}
}

func TestRequireRole(t *testing.T) {
	t.Parallel()
	a := newAPI(t, noStore())
	// A write route as they will be mounted: in the authenticated group,
	// behind RequireRole(RoleOperator).
	e := a.srv.engine()
	e.Group(apiPrefix, a.srv.authenticate).POST("/things", RequireRole(RoleOperator), func(c *gin.Context) {
		role, _ := RoleFrom(c.Request.Context())
		c.String(http.StatusCreated, string(role))
	})
	// And on an open route, where nobody is authenticated.
	e.POST("/open-write", RequireRole(RoleOperator), func(c *gin.Context) { c.Status(http.StatusNoContent) })
	a.handler = e

	tests := []struct {
		name, target, token string
		want                int
	}{
		{"viewer may not write", "/api/v1/things", viewerToken, http.StatusForbidden},
		{"operator may", "/api/v1/things", operatorToken, http.StatusCreated},
		{"no token", "/api/v1/things", "", http.StatusUnauthorized},
		{"unauthenticated route", "/open-write", operatorToken, http.StatusUnauthorized},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			w := a.do(t, http.MethodPost, tt.target, tt.token)
			if tt.want >= 400 {
				wantProblem(t, w, tt.target, tt.want)
				return
			}
			if w.Code != tt.want || w.Body.String() != string(RoleOperator) {
				t.Errorf("got %d %q, want %d %q", w.Code, w.Body, tt.want, RoleOperator)
			}
		})
	}
}

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	ok := func(*Config) {}
	check := func(name string) Check { return Check{Name: name, Check: func(context.Context) error { return nil }} }
	tests := []struct {
		name    string
		tweak   func(*Config)
		wantErr string
	}{
		{"valid", ok, ""},
		{"no store", func(c *Config) { c.Vehicles = nil }, "no Vehicles store"},
		{"no stations store", func(c *Config) { c.Stations = nil }, "no Stations or Visits store"},
		{"no visits store", func(c *Config) { c.Visits = nil }, "no Stations or Visits store"},
		{"no replays store", func(c *Config) { c.Replays = nil }, "no Replays store"},
		{"no rebuilds store", func(c *Config) { c.Rebuilds = nil }, "no Rebuilds store"},
		{"no station commands", func(c *Config) { c.StationCommands = nil }, "no StationCommands"},
		{"no jobs store", func(c *Config) { c.Jobs = nil }, "no Jobs store or JobCommands"},
		{"no job commands", func(c *Config) { c.JobCommands = nil }, "no Jobs store or JobCommands"},
		{"negative playback bound", func(c *Config) { c.PlaybackMaxFixes = -1 }, "PlaybackMaxFixes must be positive"},
		{"no tokens", func(c *Config) { c.Tokens = nil }, "no API tokens"},
		{"empty token", func(c *Config) { c.Tokens[""] = RoleViewer }, "an API token is empty"},
		{"unknown role", func(c *Config) { c.Tokens["x"] = "root" }, `unknown role "root"`},
		{"unnamed check", func(c *Config) { c.Checks = []Check{check("")} }, "has no name"},
		{"check twice", func(c *Config) { c.Checks = []Check{check("pg"), check("pg")} }, `"pg" is configured twice`},
		{"check without function", func(c *Config) { c.Checks = []Check{{Name: "pg"}} }, `"pg" has no function`},
		{"negative timeout", func(c *Config) { c.CheckTimeout = -1 }, "must not be negative"},
		{"registerer that cannot gather", func(c *Config) {
			c.Registerer = prometheus.WrapRegistererWith(prometheus.Labels{"a": "b"}, prometheus.NewRegistry())
		}, "no Gatherer"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg := Config{
				Vehicles: noStore(), Stations: stations.NewStore(nil), Visits: visits.NewStore(nil), Replays: replays.NewStore(nil),
				Rebuilds: rebuild.NewStore(nil), StationCommands: noCommands{}, Jobs: jobs.NewStore(nil), JobCommands: noJobCommands{},
				Trips: trips.NewStore(nil), G7Events: g7events.NewStore(nil),
				Tokens: map[string]Role{viewerToken: RoleViewer},
			}
			tt.tweak(&cfg)
			_, err := New(cfg)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
			}
			if strings.Contains(err.Error(), viewerToken) {
				t.Errorf("error %q reveals a token", err)
			}
		})
	}
}
