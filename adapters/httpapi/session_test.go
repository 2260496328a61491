package httpapi

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestSession(t *testing.T) {
	t.Parallel()
	settings := SessionSettings{
		TileURL:         "https://tiles.example.cn/{z}/{x}/{y}.png",
		TileAttribution: "© Example Maps, © OpenStreetMap contributors",
		OfflineAfter:    90 * time.Second,
	}
	a := newAPI(t, noStore(), func(c *Config) { c.Session = settings })

	for token, role := range map[string]Role{viewerToken: RoleViewer, operatorToken: RoleOperator} {
		w := a.do(t, http.MethodGet, "/api/v1/session", token)
		got := decode[sessionJSON](t, w, "application/json")
		want := sessionJSON{Role: role, Dashboard: dashboardSessionJSON{
			TileURL: settings.TileURL, TileAttribution: settings.TileAttribution, OfflineAfterS: 90,
		}}
		if got != want {
			t.Errorf("%s: %+v, want %+v", role, got, want)
		}
		wantSchema(t, w.Body, "Session")
	}

	t.Run("defaults: no tiles, offline after 10 minutes", func(t *testing.T) {
		t.Parallel()
		w := newAPI(t, noStore()).do(t, http.MethodGet, "/api/v1/session", viewerToken)
		got := decode[map[string]any](t, w, "application/json")
		wantKeys(t, got, "role", "dashboard")
		d := got["dashboard"].(map[string]any)
		wantKeys(t, d, "tile_url", "tile_attribution", "offline_after_s")
		if d["tile_url"] != "" || d["tile_attribution"] != "" || d["offline_after_s"] != 600.0 {
			t.Errorf("dashboard %v, want no tiles, no attribution, 600 s", d)
		}
		wantSchema(t, w.Body, "Session")
	})

	t.Run("a refused token is a 401", func(t *testing.T) {
		t.Parallel()
		wantProblem(t, a.do(t, http.MethodGet, "/api/v1/session", ""), "/api/v1/session", http.StatusUnauthorized)
		wantProblem(t, a.do(t, http.MethodGet, "/api/v1/session", "not-a-token"), "/api/v1/session", http.StatusUnauthorized)
	})
}

func TestSessionSettingsValidate(t *testing.T) {
	t.Parallel()
	bad := map[string]struct {
		s    SessionSettings
		want string
	}{
		"tile URL without {y}":   {SessionSettings{TileURL: "https://t.example/{z}/{x}.png"}, "{y}"},
		"tile URL not http":      {SessionSettings{TileURL: "file:///{z}/{x}/{y}"}, "http"},
		"HTML in attribution":    {SessionSettings{TileAttribution: `<a href="https://osm.org">OSM</a>`}, "plain text"},
		"newline in attribution": {SessionSettings{TileAttribution: "OSM\ncontributors"}, "control"},
		"attribution too long":   {SessionSettings{TileAttribution: strings.Repeat("é", 201)}, "at most 200"},
		"offline under a second": {SessionSettings{OfflineAfter: time.Millisecond}, "at least 1s"},
		"offline negative":       {SessionSettings{OfflineAfter: -time.Minute}, "at least 1s"},
	}
	for name, c := range bad {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			cfg := Config{Session: c.s}
			cfg.setDefaults()
			err := cfg.Validate()
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("Validate: %v, want an error saying %q", err, c.want)
			}
		})
	}
	ok := Config{Session: SessionSettings{TileAttribution: strings.Repeat("é", 200) + "" /* at the limit */}}
	ok.setDefaults()
	if err := ok.Validate(); err != nil && strings.Contains(err.Error(), "session") {
		t.Errorf("200 characters of attribution: %v", err)
	}
}
