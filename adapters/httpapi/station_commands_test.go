package httpapi

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/tmsfleet/tms/domain/event"
	"github.com/tmsfleet/tms/domain/geo"
	"github.com/tmsfleet/tms/domain/station"
	"github.com/tmsfleet/tms/pipeline/stationcmd"
)

const (
	circleBody  = `{"id": "S001", "name": "Gate 3", "type": "loading", "geometry": {"type": "Point", "coordinates": [121.4737, 31.2304]}, "radius_m": 300, "detection": {"exit_margin_m": 50}}`
	polygonBody = `{"name": "Yard", "type": "parking", "geometry": {"type": "Polygon", "coordinates": [
		[[121.5, 31.2], [121.52, 31.2], [121.52, 31.22], [121.5, 31.22], [121.5, 31.2]],
		[[121.505, 31.205], [121.51, 31.205], [121.51, 31.21], [121.505, 31.205]]]}}`
	gcjBody = `{"id": "G1", "name": "火星门", "type": "unloading", "coord_system": "gcj02", "geometry": {"type": "Point", "coordinates": [121.4737, 31.2304]}, "radius_m": 100}`
)

// circle is a station body with the given id and name.
func circle(id, name string) string {
	return fmt.Sprintf(`{"id": %q, "name": %q, "type": "oil", "geometry": {"type": "Point", "coordinates": [121, 31]}, "radius_m": 50}`, id, name)
}

// sameJSON reports whether two JSON texts hold the same value.
func sameJSON(t *testing.T, a, b []byte) bool {
	t.Helper()
	var x, y any
	if err := json.Unmarshal(a, &x); err != nil {
		t.Fatalf("%s: %v", a, err)
	}
	if err := json.Unmarshal(b, &y); err != nil {
		t.Fatalf("%s: %v", b, err)
	}
	ja, _ := json.Marshal(x)
	jb, _ := json.Marshal(y)
	return string(ja) == string(jb)
}

func wantHeader(t *testing.T, w *httptest.ResponseRecorder, name, want string) {
	t.Helper()
	if got := w.Header().Get(name); got != want {
		t.Errorf("%s = %q, want %q", name, got, want)
	}
}

func TestStationCommands(t *testing.T) {
	t.Parallel()
	env := newCommandEnv(t, true)

	t.Run("create a circle and read it back", func(t *testing.T) {
		t.Parallel()
		w := env.write(t, http.MethodPost, "/api/v1/stations", circleBody)
		got := decodeStatus[stationJSON](t, w, http.StatusCreated)
		wantHeader(t, w, "Location", "/api/v1/stations/S001")
		wantHeader(t, w, "ETag", `"1"`)
		if got.ID != "S001" || got.Name != "Gate 3" || got.Type != "loading" || got.CoordSystem != "wgs84" || got.Version != 1 ||
			*got.RadiusM != 300 || *got.Detection.ExitMarginM != 50 || got.Detection.EnterConfirmFixes != nil ||
			got.OriginalGeometry != nil || got.Inside != nil || !got.UpdatedAt.After(base) {
			t.Errorf("created %s", w.Body)
		}
		if !sameJSON(t, got.Geometry, []byte(`{"type": "Point", "coordinates": [121.4737, 31.2304]}`)) {
			t.Errorf("geometry %s", got.Geometry)
		}
		r := env.get(t, "/api/v1/stations/S001")
		read := decode[stationJSON](t, r, "application/json")
		wantHeader(t, r, "ETag", `"1"`)
		if read.Inside == nil || len(*read.Inside) != 0 {
			t.Errorf("inside = %v, want []", read.Inside)
		}
		read.Inside = nil
		if a, b := mustJSON(t, read), mustJSON(t, got); a != b {
			t.Errorf("GET differs from the POST's answer:\n%s\n%s", a, b)
		}
		var raw map[string]any
		_ = json.Unmarshal(r.Body.Bytes(), &raw)
		wantKeys(t, raw, "id", "name", "type", "coord_system", "geometry", "radius_m", "detection", "version", "updated_at", "inside")
	})

	t.Run("create a polygon with a hole, without an id", func(t *testing.T) {
		t.Parallel()
		w := env.write(t, http.MethodPost, "/api/v1/stations", polygonBody)
		got := decodeStatus[stationJSON](t, w, http.StatusCreated)
		if uuid.Validate(got.ID) != nil {
			t.Errorf("the server made id %q", got.ID)
		}
		wantHeader(t, w, "Location", "/api/v1/stations/"+got.ID)
		var body struct{ Geometry json.RawMessage }
		_ = json.Unmarshal([]byte(polygonBody), &body)
		if !sameJSON(t, got.Geometry, body.Geometry) || got.RadiusM != nil {
			t.Errorf("stored %s", w.Body)
		}
		decode[stationJSON](t, env.get(t, "/api/v1/stations/"+got.ID), "application/json")
	})

	t.Run("GCJ-02 is stored in WGS84 with the original kept", func(t *testing.T) {
		t.Parallel()
		got := decodeStatus[stationJSON](t, env.write(t, http.MethodPost, "/api/v1/stations", gcjBody), http.StatusCreated)
		read := decode[stationJSON](t, env.get(t, "/api/v1/stations/G1"), "application/json")
		given := geo.Point{Lat: 31.2304, Lng: 121.4737}
		want := station.FromGCJ02(given)
		for _, s := range []stationJSON{got, read} {
			var g, o struct{ Coordinates [2]float64 }
			_ = json.Unmarshal(s.Geometry, &g)
			_ = json.Unmarshal(s.OriginalGeometry, &o)
			if s.CoordSystem != "gcj02" || g.Coordinates != [2]float64{want.Lng, want.Lat} || o.Coordinates != [2]float64{given.Lng, given.Lat} {
				t.Errorf("stored %+v: geometry %s, original %s; want %v from %v", s, s.Geometry, s.OriginalGeometry, want, given)
			}
			if d := geo.Haversine(given, want); d < 100 {
				t.Errorf("the conversion moved the centre %v m only", d)
			}
		}
	})

	t.Run("POST of an existing id is 409", func(t *testing.T) {
		t.Parallel()
		decodeStatus[stationJSON](t, env.write(t, http.MethodPost, "/api/v1/stations", circle("DUP", "a")), http.StatusCreated)
		w := env.write(t, http.MethodPost, "/api/v1/stations", circle("DUP", "b"))
		wantProblem(t, w, "/api/v1/stations", http.StatusConflict)
		if got := decode[stationJSON](t, env.get(t, "/api/v1/stations/DUP"), "application/json"); got.Name != "a" || got.Version != 1 {
			t.Errorf("after the 409: %+v", got)
		}
	})

	t.Run("PUT creates and replaces, honouring If-Match and If-None-Match", func(t *testing.T) {
		t.Parallel()
		path := "/api/v1/stations/P1"
		body := strings.Replace(circle("P1", "p"), `"id": "P1", `, "", 1) // the path names it
		w := env.write(t, http.MethodPut, path, body)
		decodeStatus[stationJSON](t, w, http.StatusCreated)
		wantHeader(t, w, "Location", path)
		wantHeader(t, w, "ETag", `"1"`)
		steps := []struct {
			name    string
			headers []string
			status  int
			etag    string
		}{
			{"unconditional", nil, 200, `"2"`},
			{"If-Match the current", []string{"If-Match", `"2"`}, 200, `"3"`},
			{"If-Match a stale one", []string{"If-Match", `"2"`}, 412, ""},
			{"If-Match one of several", []string{"If-Match", `"1", "3"`}, 200, `"4"`},
			{"If-Match weak", []string{"If-Match", `W/"4"`}, 412, ""},
			{"If-Match not ours", []string{"If-Match", `"abc"`}, 412, ""},
			{"If-Match *", []string{"If-Match", "*"}, 200, `"5"`},
			{"If-None-Match * on an existing one", []string{"If-None-Match", "*"}, 412, ""},
		}
		for _, s := range steps {
			w := env.write(t, http.MethodPut, path, body, s.headers...)
			if s.status != 200 {
				p := wantProblem(t, w, path, s.status)
				if s.status == 412 && !strings.Contains(p.Detail, "version") {
					t.Errorf("%s: detail %q", s.name, p.Detail)
				}
				continue
			}
			decodeStatus[stationJSON](t, w, s.status)
			wantHeader(t, w, "ETag", s.etag)
			if w.Header().Get("Location") != "" {
				t.Errorf("%s: a replacement has a Location", s.name)
			}
		}
		w = env.write(t, http.MethodPut, "/api/v1/stations/P2", circle("P2", "x"), "If-None-Match", "*")
		decodeStatus[stationJSON](t, w, http.StatusCreated)
		for _, h := range [][]string{{"If-Match", `"1"`}, {"If-Match", "*"}, {"If-Match", `"0"`}} {
			wantProblem(t, env.write(t, http.MethodPut, "/api/v1/stations/P3", circle("P3", "x"), h...), "/api/v1/stations/P3", 412)
		}
		wantProblem(t, env.get(t, "/api/v1/stations/P3"), "/api/v1/stations/P3", 404)
	})

	t.Run("delete, then 404, and created again it continues its versions", func(t *testing.T) {
		t.Parallel()
		path := "/api/v1/stations/D1"
		decodeStatus[stationJSON](t, env.write(t, http.MethodPost, "/api/v1/stations", circle("D1", "one")), http.StatusCreated)
		decodeStatus[stationJSON](t, env.write(t, http.MethodPut, path, circle("D1", "two")), http.StatusOK)
		wantProblem(t, env.send(t, http.MethodDelete, path, operatorToken, "", "", "If-Match", `"1"`), path, 412)
		if w := env.send(t, http.MethodDelete, path, operatorToken, "", "", "If-Match", `"2"`); w.Code != http.StatusNoContent || w.Body.Len() != 0 {
			t.Fatalf("DELETE: %d %s", w.Code, w.Body)
		}
		wantProblem(t, env.get(t, path), path, 404)
		wantProblem(t, env.send(t, http.MethodDelete, path, operatorToken, "", ""), path, 404)
		list := decode[stationListJSON](t, env.get(t, "/api/v1/stations?limit=1000"), "application/json")
		if slices.ContainsFunc(list.Stations, func(s stationJSON) bool { return s.ID == "D1" }) {
			t.Error("a deleted station is listed")
		}
		w := env.write(t, http.MethodPut, path, circle("D1", "three"), "If-None-Match", "*")
		got := decodeStatus[stationJSON](t, w, http.StatusCreated)
		wantHeader(t, w, "ETag", `"4"`)
		if got.Version != 4 || got.Name != "three" {
			t.Errorf("created again: %+v", got)
		}
		wantProblem(t, env.write(t, http.MethodPost, "/api/v1/stations", circle("D1", "four")), "/api/v1/stations", 409)

		var d1 []station.Change
		for _, c := range stationEvents(t, env.kc) {
			if c.ID == "D1" {
				d1 = append(d1, c)
			}
		}
		kinds := ""
		for i, c := range d1 {
			kinds += fmt.Sprintf("%s%d ", c.Kind, c.Version)
			if i > 0 && !c.At.After(d1[i-1].At) {
				t.Errorf("event %d is not later than the one before: %v, %v", i, c.At, d1[i-1].At)
			}
			if want := event.ID(map[station.Kind]string{station.Upsert: event.TypeStationUpserted, station.Delete: event.TypeStationDeleted}[c.Kind], "D1", fmt.Sprint(c.Version)); c.EventID != want {
				t.Errorf("event %d id %s, want %s", i, c.EventID, want)
			}
		}
		if kinds != "upsert1 upsert2 delete3 upsert4 " {
			t.Errorf("D1's events: %s", kinds)
		}
	})

	t.Run("a viewer may not write", func(t *testing.T) {
		t.Parallel()
		for _, r := range []struct{ method, path string }{
			{http.MethodPost, "/api/v1/stations"},
			{http.MethodPut, "/api/v1/stations/V1"},
			{http.MethodDelete, "/api/v1/stations/S001"},
		} {
			w := env.send(t, r.method, r.path, viewerToken, "application/json", circle("V1", "v"))
			wantProblem(t, w, r.path, http.StatusForbidden)
		}
		wantProblem(t, env.get(t, "/api/v1/stations/V1"), "/api/v1/stations/V1", 404)
		w := env.send(t, http.MethodPost, "/api/v1/stations", "", "application/json", circle("V1", "v"))
		wantProblem(t, w, "/api/v1/stations", http.StatusUnauthorized)
	})

	t.Run("bad requests name every bad field", func(t *testing.T) {
		t.Parallel()
		cases := []struct {
			name, method, path, contentType, body string
			headers                               []string
			status                                int
			fields                                []string
		}{
			{"several bad fields", "POST", "/api/v1/stations", "application/json",
				`{"id": "a b", "name": "", "type": "depot", "coord_system": "utm", "geometry": {"type": "Point", "coordinates": [121, 95]},
				  "radius_m": 5, "detection": {"exit_margin_m": 9000, "enter_confirm_fixes": 0}, "colour": "red", "version": 2}`, nil,
				400, []string{"id", "name", "type", "coord_system", "geometry.coordinates", "radius_m", "detection.exit_margin_m",
					"detection.enter_confirm_fixes", "colour", "version"}},
			{"a polygon that crosses itself", "POST", "/api/v1/stations", "application/json",
				`{"name": "x", "type": "oil", "geometry": {"type": "Polygon", "coordinates": [[[121, 31], [121.2, 31.2], [121.2, 31], [121, 31.1], [121, 31]]]}}`, nil,
				400, []string{"geometry.coordinates[0][2]"}},
			{"a ring not closed, and a radius with a polygon", "POST", "/api/v1/stations", "application/json",
				`{"name": "x", "type": "oil", "radius_m": 50, "geometry": {"type": "Polygon", "coordinates": [[[121, 31], [121.2, 31.2], [121.2, 31], [121, 31.1]]]}}`, nil,
				400, []string{"geometry.coordinates[0]", "radius_m"}},
			{"malformed JSON", "POST", "/api/v1/stations", "application/json", `{"name": "x",`, nil, 400, []string{"body"}},
			{"not an object", "POST", "/api/v1/stations", "application/json", `[]`, nil, 400, []string{"body"}},
			{"an empty body", "POST", "/api/v1/stations", "application/json", ``, nil, 400, []string{"body"}},
			{"JSON with a charset", "POST", "/api/v1/stations", "application/json; charset=utf-8", `{}`, nil, 400, []string{"name", "type", "geometry"}},
			{"form data", "POST", "/api/v1/stations", "application/x-www-form-urlencoded", "name=x", nil, 415, nil},
			{"no content type", "POST", "/api/v1/stations", "", circle("X", "x"), nil, 415, nil},
			{"too large", "POST", "/api/v1/stations", "application/json", `{"name": "` + strings.Repeat("x", maxStationBody) + `"}`, nil, 413, nil},
			{"the body's id is not the path's", "PUT", "/api/v1/stations/A1", "application/json", circle("B1", "x"), nil, 400, []string{"id"}},
			{"a bad path id", "PUT", "/api/v1/stations/a%20b", "application/json", circle("X", "x"), nil, 400, []string{"id"}},
			{"a bad path id and a bad body", "PUT", "/api/v1/stations/a%20b", "application/json", `{"name": 1, "type": "oil", "geometry": {"type": "Point", "coordinates": [1, 1]}, "radius_m": 50}`, nil, 400, []string{"id", "name"}},
			{"a malformed If-Match", "PUT", "/api/v1/stations/A1", "application/json", circle("A1", "x"), []string{"If-Match", "3"}, 400, []string{"If-Match"}},
			{"an If-None-Match other than *", "PUT", "/api/v1/stations/A1", "application/json", circle("A1", "x"), []string{"If-None-Match", `"3"`}, 400, []string{"If-None-Match"}},
			{"a bad id to delete", "DELETE", "/api/v1/stations/" + strings.Repeat("x", 65), "", "", nil, 400, []string{"id"}},
			{"a bad id to read", "GET", "/api/v1/stations/%E7%AB%99", "", "", nil, 400, []string{"id"}},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				t.Parallel()
				w := env.send(t, c.method, c.path, operatorToken, c.contentType, c.body, c.headers...)
				if c.fields != nil {
					wantProblem(t, w, c.path, c.status, c.fields...)
				} else {
					wantProblem(t, w, c.path, c.status)
				}
			})
		}
		if w := env.get(t, "/api/v1/stations/A1"); w.Code != 404 {
			t.Errorf("a refused write wrote: %d %s", w.Code, w.Body)
		}
	})

	t.Run("list by type, in pages", func(t *testing.T) {
		t.Parallel()
		for _, id := range []string{"L1", "L2", "L3"} {
			body := strings.Replace(circle(id, id), `"oil"`, `"repair"`, 1)
			decodeStatus[stationJSON](t, env.write(t, http.MethodPost, "/api/v1/stations", body), http.StatusCreated)
		}
		var seen []string
		q := "/api/v1/stations?type=repair&limit=2"
		for page := 0; ; page++ {
			got := decode[stationListJSON](t, env.get(t, q), "application/json")
			for _, s := range got.Stations {
				seen = append(seen, s.ID)
			}
			if got.NextCursor == nil || page > 5 {
				break
			}
			q = "/api/v1/stations?type=repair&limit=2&cursor=" + *got.NextCursor
		}
		if !slices.Equal(seen, []string{"L1", "L2", "L3"}) {
			t.Errorf("repair stations %v", seen)
		}
		wantProblem(t, env.get(t, "/api/v1/stations?type=depot"), "/api/v1/stations", 400, "type")
		wantProblem(t, env.get(t, "/api/v1/stations?cursor=!!"), "/api/v1/stations", 400, "cursor")
	})
}

// TestConcurrentPutsWithTheSameIfMatch: editors who read version 1 all
// send If-Match "1" at once, through two API instances (each with its
// own producer, as two processes would be): exactly one wins.
func TestConcurrentPutsWithTheSameIfMatch(t *testing.T) {
	t.Parallel()
	env := newCommandEnv(t, true)
	other := newDBAPI(t, env.pool, func(c *Config) { c.StationCommands = newCommands(t, env.kc, env.pool) })
	decodeStatus[stationJSON](t, env.write(t, http.MethodPost, "/api/v1/stations", circle("C1", "v1")), http.StatusCreated)

	const editors = 8
	codes := make([]int, editors)
	var wg sync.WaitGroup
	for i := range editors {
		api := env.testAPI
		if i%2 == 1 {
			api = other
		}
		wg.Go(func() {
			codes[i] = api.write(t, http.MethodPut, "/api/v1/stations/C1", circle("C1", fmt.Sprint("editor ", i)), "If-Match", `"1"`).Code
		})
	}
	wg.Wait()
	slices.Sort(codes)
	want := append([]int{200}, slices.Repeat([]int{412}, editors-1)...)
	if !slices.Equal(codes, want) {
		t.Errorf("answers %v, want one 200 and %d 412", codes, editors-1)
	}
	got := decode[stationJSON](t, env.get(t, "/api/v1/stations/C1"), "application/json")
	if got.Version != 2 {
		t.Errorf("version %d, want 2", got.Version)
	}
	versions := map[int64]int{}
	for _, c := range stationEvents(t, env.kc) {
		versions[c.Version]++
	}
	if len(versions) != 2 || versions[1] != 1 || versions[2] != 1 {
		t.Errorf("events per version %v: a version was claimed twice, or lost", versions)
	}
}

// TestCommandsAnswerAcceptedWhenTheReadModelLags runs the commands with
// no projector: the first command is appended and answered 202; the next
// cannot be decided on a read model that is behind, and is refused with
// 503 without writing. Once a projector runs, the first shows.
func TestCommandsAnswerAcceptedWhenTheReadModelLags(t *testing.T) {
	t.Parallel()
	env := newCommandEnv(t, false, func(c *stationcmd.Config) { c.Timeout = 2 * time.Second })
	w := env.write(t, http.MethodPost, "/api/v1/stations", circle("LAG1", "x"))
	if w.Code != http.StatusAccepted {
		t.Log(env.logs)
	}
	got := decodeStatus[acceptedJSON](t, w, http.StatusAccepted)
	wantHeader(t, w, "Location", "/api/v1/stations/LAG1")
	if got.Status != "accepted" || got.StationID != "LAG1" || got.Version != 1 || got.EventID != event.ID(event.TypeStationUpserted, "LAG1", "1") {
		t.Errorf("202 body %s", w.Body)
	}
	w = env.write(t, http.MethodPut, "/api/v1/stations/LAG2", circle("LAG2", "x"))
	wantProblem(t, w, "/api/v1/stations/LAG2", http.StatusServiceUnavailable)
	wantHeader(t, w, "Retry-After", "1")
	if n := len(stationEvents(t, env.kc)); n != 1 {
		t.Errorf("%d events on tms.stations, want the first command's only", n)
	}

	runStationsProjector(t, env.kc, env.pool)
	deadline := time.Now().Add(30 * time.Second)
	for env.get(t, "/api/v1/stations/LAG1").Code != http.StatusOK {
		if time.Now().After(deadline) {
			t.Fatal("the accepted station never showed")
		}
		time.Sleep(20 * time.Millisecond)
	}
	decodeStatus[stationJSON](t, env.write(t, http.MethodPut, "/api/v1/stations/LAG2", circle("LAG2", "x")), http.StatusCreated)
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
