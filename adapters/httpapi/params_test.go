package httpapi

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// TestBadRequests checks that each kind of bad parameter is a 400 that
// names it, and that several bad parameters are named together.
func TestBadRequests(t *testing.T) {
	t.Parallel()
	a := newDBAPI(t, newDB(t, fleet()))
	from := func(d time.Duration) string { return url.QueryEscape(rfc(base.Add(d))) }
	const list, track = "/api/v1/vehicles", trackPath
	tests := []struct {
		name, path, query string
		fields            []string
	}{
		{"limit not a number", list, "limit=abc", []string{"limit"}},
		{"limit zero", list, "limit=0", []string{"limit"}},
		{"limit negative", list, "limit=-5", []string{"limit"}},
		{"limit over the maximum", list, "limit=100000", []string{"limit"}},
		{"limit just over the maximum", list, "limit=1001", []string{"limit"}},
		{"limit twice", list, "limit=1&limit=2", []string{"limit"}},
		{"bbox of three numbers", list, "bbox=1,2,3", []string{"bbox"}},
		{"bbox of five numbers", list, "bbox=1,2,3,4,5", []string{"bbox"}},
		{"bbox latitude over 90", list, "bbox=0,80,10,91", []string{"bbox"}},
		{"bbox longitude under -180", list, "bbox=-181,0,10,10", []string{"bbox"}},
		{"bbox NaN", list, "bbox=NaN,0,10,10", []string{"bbox"}},
		{"bbox infinity", list, "bbox=0,0,Inf,10", []string{"bbox"}},
		{"bbox not a number", list, "bbox=0,0,ten,10", []string{"bbox"}},
		{"bbox empty", list, "bbox=", []string{"bbox"}},
		{"bbox minLat over maxLat", list, "bbox=0,20,10,10", []string{"bbox"}},
		{"cursor not a plate", list, "cursor=***", []string{"cursor"}},
		{"cursor with a space", list, "cursor=a%20b", []string{"cursor"}},
		{"cursor empty", list, "cursor=", []string{"cursor"}},
		{"cursor of a track", list, "cursor=" + url.QueryEscape(rfc(base)), []string{"cursor"}},
		{"plate filter invalid", list, "plate=" + url.QueryEscape("a/b"), []string{"plate"}},
		{"plate filter empty", list, "plate=", []string{"plate"}},
		{"query string malformed", list, "limit=%zz", []string{"query"}},
		{"every bad field at once", list, "limit=0&bbox=1,2&cursor=***", []string{"limit", "bbox", "cursor"}},

		{"from after to", track, "from=" + from(2*time.Hour) + "&to=" + from(time.Hour), []string{"from"}},
		{"from equal to to", track, "from=" + from(time.Hour) + "&to=" + from(time.Hour), []string{"from"}},
		{"from unparseable", track, "from=yesterday", []string{"from"}},
		{"from without a zone", track, "from=2025-03-10T08:00:00", []string{"from"}},
		{"from a date only", track, "from=2025-03-10", []string{"from"}},
		{"to unparseable", track, "to=1741593600", []string{"to"}},
		{"max_points 1", track, "max_points=1", []string{"max_points"}},
		{"max_points over TMS_TRACK_MAX_POINTS", track, "max_points=10001", []string{"max_points"}},
		{"max_points not a number", track, "max_points=many", []string{"max_points"}},
		{"max_points with a page size", track, "max_points=100&limit=10", []string{"max_points"}},
		{"max_points with a cursor", track, "max_points=100&cursor=" + url.QueryEscape(rfc(base)), []string{"max_points"}},
		{"format xml", track, "format=xml", []string{"format"}},
		{"format empty", track, "format=", []string{"format"}},
		{"track limit over the maximum", track, "limit=10001", []string{"limit"}},
		{"track limit zero", track, "limit=0", []string{"limit"}},
		{"track cursor not a time", track, "cursor=%21%21", []string{"cursor"}},
		{"track cursor a plate", track, "cursor=" + url.QueryEscape("沪A12345"), []string{"cursor"}},
		{"bad plate and bad format", "/api/v1/vehicles/a%2Fb/track", "format=xml&limit=x", []string{"plate", "format", "limit"}},
		{"bad plate in get", "/api/v1/vehicles/%20", "", []string{"plate"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			w := a.get(t, tt.path+"?"+tt.query)
			p := wantProblem(t, w, tt.path, http.StatusBadRequest, tt.fields...)
			if p.Type != problemBase+"invalid-parameter" {
				t.Errorf("type %s", p.Type)
			}
			for _, f := range tt.fields {
				if !strings.Contains(p.Detail, f) {
					t.Errorf("detail %q does not name %s", p.Detail, f)
				}
			}
		})
	}

	// The 31-day cap is gone: a page reads at most limit fixes whatever
	// the window, and a simplified track streams its window.
	t.Run("a year's window is a question like any other", func(t *testing.T) {
		t.Parallel()
		w := a.get(t, track+"?from="+from(-366*24*time.Hour)+"&to="+from(time.Hour))
		if got := decode[trackJSON](t, w, "application/json"); len(got.Points) != 10 {
			t.Errorf("%d points, want the track's 10", len(got.Points))
		}
		w = a.get(t, track+"?max_points=4&from="+from(-366*24*time.Hour)+"&to="+from(time.Hour))
		if got := decode[trackJSON](t, w, "application/json"); len(got.Points) != 4 || got.Simplification == nil ||
			got.Simplification.Fixes != 10 {
			t.Errorf("simplified: %d points, %+v; want 4 points standing for 10 fixes", len(got.Points), got.Simplification)
		}
	})
}
