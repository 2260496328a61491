package httpapi

import (
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"testing"
	"time"
)

// track of 沪A12345 in the seeded fleet: ten fixes a minute apart from base.
const trackPath = "/api/v1/vehicles/%E6%B2%AAA12345/track"

func rfc(t time.Time) string { return t.Format(time.RFC3339Nano) }

func minutes(ts []time.Time) []int {
	out := make([]int, len(ts))
	for i, t := range ts {
		out[i] = int(t.Sub(base) / time.Minute)
	}
	return out
}

func fixTimes(ps []trackPointJSON) []time.Time {
	out := make([]time.Time, len(ps))
	for i, p := range ps {
		out[i] = p.FixTime
	}
	return out
}

func TestTrack(t *testing.T) {
	t.Parallel()
	a := newDBAPI(t, newDB(t, fleet()))
	all := []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}

	ranges := []struct {
		name  string
		query url.Values
		want  []int // minutes after base
	}{
		{"default window: the last 24 hours", nil, all},
		{"from included, to excluded", url.Values{"from": {rfc(base.Add(2 * time.Minute))}, "to": {rfc(base.Add(5 * time.Minute))}}, []int{2, 3, 4}},
		{"only from: to is now", url.Values{"from": {rfc(base.Add(8 * time.Minute))}}, []int{8, 9}},
		{"only to: from is a day before", url.Values{"to": {rfc(base.Add(time.Minute))}}, []int{0}},
		{"offsets other than Z", url.Values{"from": {"2025-03-10T16:03:00+08:00"}, "to": {"2025-03-10T16:04:30+08:00"}}, []int{3, 4}},
		{"fractional seconds", url.Values{"from": {"2025-03-10T08:06:59.999999Z"}}, []int{7, 8, 9}},
		{"a window before the first fix", url.Values{"to": {rfc(base)}}, nil},
	}
	for _, tt := range ranges {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := decode[trackJSON](t, a.get(t, trackPath+"?"+tt.query.Encode()), "application/json")
			if m := minutes(fixTimes(got.Points)); !slices.Equal(m, tt.want) {
				t.Errorf("fixes at minutes %v, want %v", m, tt.want)
			}
			if got.Plate != "沪A12345" || got.NextCursor != nil || got.Points == nil {
				t.Errorf("plate %q, next_cursor %v, points %v", got.Plate, got.NextCursor, got.Points)
			}
		})
	}

	t.Run("an unencoded + offset is read as +", func(t *testing.T) {
		t.Parallel()
		got := decode[trackJSON](t, a.get(t, trackPath+"?from=2025-03-10T16:08:00+08:00"), "application/json")
		if m := minutes(fixTimes(got.Points)); !slices.Equal(m, []int{8, 9}) {
			t.Errorf("fixes at minutes %v", m)
		}
	})

	t.Run("points carry every field", func(t *testing.T) {
		t.Parallel()
		got := decode[trackJSON](t, a.get(t, trackPath), "application/json")
		if !got.From.Equal(base.Add(time.Hour-24*time.Hour)) || !got.To.Equal(base.Add(time.Hour)) {
			t.Errorf("window %s..%s, want the 24 hours before the pinned clock", got.From, got.To)
		}
		for i, p := range got.Points {
			f := fleet()[i]
			if p.Lat != f.lat || p.Lng != f.lng || p.SpeedKmh != f.speed || !equalPtr(p.CourseDeg, f.course) ||
				!p.ReceivedAt.Equal(f.at.Add(2*time.Second)) || len(p.Flags) != len(f.flags) {
				t.Errorf("point %d = %+v, want %+v", i, p, f)
			}
		}
		raw := decode[map[string]any](t, a.get(t, trackPath), "application/json")
		wantKeys(t, raw, "plate", "from", "to", "points", "next_cursor")
		pts := raw["points"].([]any)
		wantKeys(t, pts[0].(map[string]any), "fix_time", "received_at", "lat", "lng", "speed_kmh", "course_deg", "flags")
		if c := pts[3].(map[string]any)["course_deg"]; c != nil {
			t.Errorf("course_deg of a fix without course = %v, want null", c)
		}
	})

	t.Run("cursor pages walk the track in order", func(t *testing.T) {
		t.Parallel()
		for _, limit := range []int{1, 3, 5, 9, 10, 11} {
			var got []time.Time
			q := url.Values{"limit": {itoa(limit)}}
			pages := 0
			for {
				page := decode[trackJSON](t, a.get(t, trackPath+"?"+q.Encode()), "application/json")
				pages++
				if len(page.Points) > limit || pages > 20 {
					t.Fatalf("limit %d: page %d has %d points", limit, pages, len(page.Points))
				}
				got = append(got, fixTimes(page.Points)...)
				if page.NextCursor == nil {
					break
				}
				q.Set("cursor", *page.NextCursor)
			}
			if m := minutes(got); !slices.Equal(m, all) {
				t.Errorf("limit %d: minutes %v", limit, m)
			}
			if want := (10 + limit - 1) / limit; pages != want {
				t.Errorf("limit %d: %d pages, want %d", limit, pages, want)
			}
		}
	})

	t.Run("geojson LineString", func(t *testing.T) {
		t.Parallel()
		fc := decode[geoJSONFC](t, a.get(t, trackPath+"?format=geojson&limit=4"), "application/geo+json")
		if fc.Type != "FeatureCollection" || len(fc.Features) != 1 {
			t.Fatalf("%+v: want a FeatureCollection of one feature", fc)
		}
		f := fc.Features[0]
		if f.Type != "Feature" || f.Geometry.Type != "LineString" {
			t.Fatalf("feature %s of %s, want a LineString Feature", f.Type, f.Geometry.Type)
		}
		var coords [][2]float64
		mustUnmarshal(t, f.Geometry.Coordinates, &coords)
		if len(coords) != 4 || len(f.Properties.FixTimes) != 4 || len(f.Properties.SpeedsKmh) != 4 {
			t.Fatalf("%d coordinates, %d fix_times, %d speeds_kmh: want 4 of each", len(coords), len(f.Properties.FixTimes), len(f.Properties.SpeedsKmh))
		}
		for i, c := range coords {
			fx := fleet()[i]
			if c != [2]float64{fx.lng, fx.lat} || !f.Properties.FixTimes[i].Equal(fx.at) || f.Properties.SpeedsKmh[i] != fx.speed {
				t.Errorf("position %d: %v at %s, %v km/h; want [lng, lat] %v at %s, %v km/h",
					i, c, f.Properties.FixTimes[i], f.Properties.SpeedsKmh[i], [2]float64{fx.lng, fx.lat}, fx.at, fx.speed)
			}
		}
		if f.Properties.Plate != "沪A12345" || f.Properties.NextCursor == nil {
			t.Errorf("properties %+v: want the plate and a next_cursor", f.Properties)
		}
		// The cursor of a GeoJSON page continues the track.
		next := decode[geoJSONFC](t, a.get(t, trackPath+"?format=geojson&limit=4&cursor="+*f.Properties.NextCursor), "application/geo+json")
		if ts := next.Features[0].Properties.FixTimes; !ts[0].Equal(base.Add(4 * time.Minute)) {
			t.Errorf("next page starts at %s", ts[0])
		}
	})

	t.Run("geojson of one fix is a Point", func(t *testing.T) {
		t.Parallel()
		fc := decode[geoJSONFC](t, a.get(t, "/api/v1/vehicles/"+url.PathEscape("京B00001")+"/track?format=geojson"), "application/geo+json")
		if len(fc.Features) != 1 || fc.Features[0].Geometry.Type != "Point" {
			t.Fatalf("%+v: want one Point feature", fc)
		}
		var c [2]float64
		mustUnmarshal(t, fc.Features[0].Geometry.Coordinates, &c)
		if c != [2]float64{116.40, 39.90} || fc.Features[0].Properties.NextCursor != nil {
			t.Errorf("Point %v, properties %+v", c, fc.Features[0].Properties)
		}
	})

	t.Run("geojson of no fix is an empty collection", func(t *testing.T) {
		t.Parallel()
		w := a.get(t, trackPath+"?format=geojson&to="+rfc(base))
		fc := decode[geoJSONFC](t, w, "application/geo+json")
		if fc.Type != "FeatureCollection" || fc.Features == nil || len(fc.Features) != 0 {
			t.Errorf("%s: want an empty FeatureCollection", w.Body)
		}
	})

	t.Run("unknown plate is 404, in either format", func(t *testing.T) {
		t.Parallel()
		for _, format := range []string{"json", "geojson"} {
			path := "/api/v1/vehicles/" + url.PathEscape("沪Z99999") + "/track"
			wantProblem(t, a.get(t, path+"?format="+format), path, http.StatusNotFound)
		}
	})
}

// geoJSONFC reads a GeoJSON track with the test's own types, so that a
// change to the server's would not go unnoticed.
type geoJSONFC struct {
	Type     string `json:"type"`
	Features []struct {
		Type     string `json:"type"`
		Geometry struct {
			Type        string          `json:"type"`
			Coordinates json.RawMessage `json:"coordinates"`
		} `json:"geometry"`
		Properties struct {
			Plate      string      `json:"plate"`
			FixTimes   []time.Time `json:"fix_times"`
			SpeedsKmh  []float64   `json:"speeds_kmh"`
			NextCursor *string     `json:"next_cursor"`
		} `json:"properties"`
	} `json:"features"`
}

func mustUnmarshal(t *testing.T, b []byte, v any) {
	t.Helper()
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", b, err)
	}
}
