package httpapi

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"testing"
	"time"
)

func TestListVehicles(t *testing.T) {
	t.Parallel()
	a := newDBAPI(t, newDB(t, fleet()))

	t.Run("one page of everything, with the latest position", func(t *testing.T) {
		t.Parallel()
		got := decode[vehicleListJSON](t, a.get(t, "/api/v1/vehicles"), "application/json")
		if got.NextCursor != nil {
			t.Errorf("next_cursor = %q on the only page", *got.NextCursor)
		}
		if ps := platesOf(got.Vehicles); !sameSet(ps, fleetPlates()) {
			t.Fatalf("plates %v, want %v", ps, fleetPlates())
		}
		i := slices.IndexFunc(got.Vehicles, func(v vehicleJSON) bool { return v.Plate == "沪A12345" })
		v := got.Vehicles[i]
		last := fleet()[9] // 沪A12345's latest fix
		want := vehicleJSON{
			Plate: "沪A12345",
			Position: positionJSON{Lat: last.lat, Lng: last.lng, SpeedKmh: last.speed, CourseDeg: last.course,
				FixTime: last.at, ReceivedAt: last.at.Add(2 * time.Second), Flags: []string{}},
			FirstSeen: base.Add(2 * time.Second), LastSeen: last.at.Add(2 * time.Second), PositionsCount: 10,
		}
		if !equalVehicle(v, want) {
			t.Errorf("got %+v\nwant %+v", v, want)
		}
	})

	t.Run("JSON field names", func(t *testing.T) {
		t.Parallel()
		got := decode[map[string]any](t, a.get(t, "/api/v1/vehicles?limit=1"), "application/json")
		wantKeys(t, got, "vehicles", "next_cursor")
		v := got["vehicles"].([]any)[0].(map[string]any)
		wantKeys(t, v, "plate", "position", "first_seen", "last_seen", "positions_count", "stations")
		pos := v["position"].(map[string]any)
		wantKeys(t, pos, "lat", "lng", "speed_kmh", "course_deg", "fix_time", "received_at", "flags")
		if _, ok := pos["flags"].([]any); !ok {
			t.Errorf("flags = %#v, want an array", pos["flags"])
		}
	})

	t.Run("pages walk every vehicle exactly once", func(t *testing.T) {
		t.Parallel()
		n := len(fleetPlates())
		for _, limit := range []int{1, 2, 4, n - 1, n, n + 1} {
			seen, pages := walkVehicles(t, a, "", limit)
			if !sameSet(seen, fleetPlates()) || len(seen) != n {
				t.Errorf("limit %d: saw %v, want each of %v once", limit, seen, fleetPlates())
			}
			if want := (n + limit - 1) / limit; pages != want {
				t.Errorf("limit %d: %d pages, want %d", limit, pages, want)
			}
		}
	})

	t.Run("plate filter, repeatable and normalised", func(t *testing.T) {
		t.Parallel()
		q := url.Values{"plate": {"沪a12345", " fiji-1 ", "沪Z00000"}}
		got := decode[vehicleListJSON](t, a.get(t, "/api/v1/vehicles?"+q.Encode()), "application/json")
		if ps := platesOf(got.Vehicles); !sameSet(ps, []string{"沪A12345", "FIJI-1"}) {
			t.Errorf("plates %v", ps)
		}
	})

	bboxes := []struct {
		name, bbox string
		want       []string
	}{
		{"Shanghai", "121.3,31.1,121.5,31.3", []string{"沪A12345"}},
		{"China", "73,18,135,54", []string{"沪A12345", "京B00001", "粤C77777"}},
		{"edges included", "116.4,39.9,116.4,39.9", []string{"京B00001"}},
		{"across the antimeridian", "170,-20,-170,-10", []string{"FIJI-1", "SAMOA-1"}},
		{"the same longitudes the other way round", "-170,-20,170,-10", nil},
		{"east of the antimeridian only", "170,-90,180,90", []string{"FIJI-1"}},
		{"empty ocean", "-40,-40,-30,-30", nil},
	}
	for _, tt := range bboxes {
		t.Run("bbox "+tt.name, func(t *testing.T) {
			t.Parallel()
			got := decode[vehicleListJSON](t, a.get(t, "/api/v1/vehicles?bbox="+tt.bbox), "application/json")
			if ps := platesOf(got.Vehicles); !sameSet(ps, tt.want) {
				t.Errorf("plates %v, want %v", ps, tt.want)
			}
		})
	}

	t.Run("bbox with pages", func(t *testing.T) {
		t.Parallel()
		seen, pages := walkVehicles(t, a, "bbox=73,18,135,54", 2)
		if !sameSet(seen, []string{"沪A12345", "京B00001", "粤C77777"}) || pages != 2 {
			t.Errorf("saw %v in %d pages", seen, pages)
		}
	})
}

// walkVehicles follows next_cursor from the first page to the last.
func walkVehicles(t *testing.T, a *testAPI, query string, limit int) (plates []string, pages int) {
	t.Helper()
	q, err := url.ParseQuery(query)
	if err != nil {
		t.Fatal(err)
	}
	q.Set("limit", itoa(limit))
	for {
		got := decode[vehicleListJSON](t, a.get(t, "/api/v1/vehicles?"+q.Encode()), "application/json")
		pages++
		if len(got.Vehicles) > limit {
			t.Fatalf("page of %d vehicles, limit %d", len(got.Vehicles), limit)
		}
		plates = append(plates, platesOf(got.Vehicles)...)
		if got.NextCursor == nil {
			return plates, pages
		}
		if pages > 100 {
			t.Fatal("pagination does not end")
		}
		q.Set("cursor", *got.NextCursor)
	}
}

func TestGetVehicle(t *testing.T) {
	t.Parallel()
	a := newDBAPI(t, newDB(t, fleet()))
	tests := []struct {
		name, plate string
		want        int
	}{
		{"Chinese plate", "沪A12345", 200},
		{"lower-case Latin letter", "沪a12345", 200},
		{"surrounding spaces", " 沪A12345 ", 200},
		{"Latin plate", "fiji-1", 200},
		{"unknown", "沪Z99999", 404},
		{"a slash is no plate character", "沪A/12345", 400},
		{"too long", "沪A1234567890123456", 400},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			path := "/api/v1/vehicles/" + url.PathEscape(tt.plate)
			w := a.get(t, path)
			switch tt.want {
			case 200:
				v := decode[vehicleJSON](t, w, "application/json")
				if want := normalized(t, tt.plate); v.Plate != want {
					t.Errorf("plate %q, want %q", v.Plate, want)
				}
			case 404:
				wantProblem(t, w, path, http.StatusNotFound)
			default:
				wantProblem(t, w, path, tt.want, "plate")
			}
		})
	}

	t.Run("over HTTP, as a client encodes it", func(t *testing.T) {
		t.Parallel()
		srv := httptest.NewServer(a.handler)
		t.Cleanup(srv.Close)
		// url.URL escapes the path the way HTTP clients do.
		u, err := url.Parse(srv.URL)
		if err != nil {
			t.Fatal(err)
		}
		u.Path = "/api/v1/vehicles/沪A12345"
		req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, u.String(), nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+viewerToken)
		res, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		if res.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %s", u, res.Status)
		}
	})
}
