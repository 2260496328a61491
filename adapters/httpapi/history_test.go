package httpapi

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tmsfleet/tms/domain/geo"
	"github.com/tmsfleet/tms/domain/trip"
	"github.com/tmsfleet/tms/internal/tmsproc"
	"github.com/tmsfleet/tms/projections/trips"
	"github.com/tmsfleet/tms/projections/vehicles"
)

// longDrive is a vehicle's days: a fix every 10 s, driving with turns at
// about 45 km/h, and standing still (within a few metres of GPS drift)
// for 20 minutes every 3 hours. Each stop's first and last fix are
// more than 80 m from the fixes before and after it.
type longDrive struct {
	fixes []fix
	stops [][2]int // first and last index of each stop
}

func newLongDrive(plate string, start time.Time, days int) longDrive {
	rng := rand.New(rand.NewPCG(9, 9))
	var d longDrive
	p := geo.Point{Lat: 31.2, Lng: 121.4}
	heading := 0.3
	n := days * 8640
	move := func() {
		heading += rng.NormFloat64() * 0.05
		if rng.Float64() < 0.02 {
			heading += rng.NormFloat64()
		}
		step := 90 + rng.Float64()*60 // metres in 10 s
		p.Lat += step * math.Cos(heading) / geo.MetresPerDegreeLat
		p.Lng += step * math.Sin(heading) / (geo.MetresPerDegreeLat * math.Cos(p.Lat*math.Pi/180))
	}
	for i := 0; i < n; i++ {
		at := start.Add(time.Duration(i) * 10 * time.Second)
		if i%1080 == 540 && i+120 < n {
			d.stops = append(d.stops, [2]int{i, i + 119})
			for j := range 120 {
				drift := geo.Point{Lat: p.Lat + rng.NormFloat64()*3/geo.MetresPerDegreeLat, Lng: p.Lng + rng.NormFloat64()*3/(geo.MetresPerDegreeLat*0.85)}
				d.fixes = append(d.fixes, fix{plate: plate, at: start.Add(time.Duration(i+j) * 10 * time.Second), lat: drift.Lat, lng: drift.Lng})
			}
			i += 119
			move()
			continue
		}
		d.fixes = append(d.fixes, fix{plate: plate, at: at, lat: p.Lat, lng: p.Lng, speed: 45})
		move()
	}
	return d
}

// distanceToLine is the distance in metres of (lat, lng) from the line
// through points, each segment measured on the flat projection at its
// mid-latitude (as docs/history.md defines the tolerance).
func distanceToLine(lat, lng float64, points []trackPointJSON) float64 {
	best := math.Inf(1)
	for i := 0; i+1 < len(points); i++ {
		a, b := points[i], points[i+1]
		kx := geo.MetresPerDegreeLat * math.Cos((a.Lat+b.Lat)/2*math.Pi/180)
		bx, by := (b.Lng-a.Lng)*kx, (b.Lat-a.Lat)*geo.MetresPerDegreeLat
		px, py := (lng-a.Lng)*kx, (lat-a.Lat)*geo.MetresPerDegreeLat
		t := 0.0
		if l2 := bx*bx + by*by; l2 > 0 {
			t = math.Min(math.Max((px*bx+py*by)/l2, 0), 1)
		}
		best = math.Min(best, math.Hypot(px-t*bx, py-t*by))
	}
	return best
}

// insertVisit adds a visit of plate to station S-H from entered to
// exited.
func insertVisit(t *testing.T, pool *pgxpool.Pool, id, plate string, entered time.Time, exited *time.Time) {
	t.Helper()
	var dwell *float64
	if exited != nil {
		d := exited.Sub(entered).Seconds()
		dwell = &d
	}
	if _, err := pool.Exec(t.Context(), `INSERT INTO visits (visit_id, vehicle, station_id, station_type, station_version,
		entered_at, exited_at, dwell_s) VALUES ($1, $2, 'S-H', 'loading', 1, $3, $4, $5)`, id, plate, entered, exited, dwell); err != nil {
		t.Fatal(err)
	}
}

// TestSimplifiedTrackKeepsTheShapeStopsAndVisits asks for three days of
// 10 s fixes (25,920) in 300 points: every fix lies within the tolerance
// the answer gives of the line it draws, each stop is there by its first
// and last fix, and so are the fixes at each station entry and exit.
// Before max_points existed, the request was answered with the window's
// first page of 1,000 raw fixes.
func TestSimplifiedTrackKeepsTheShapeStopsAndVisits(t *testing.T) {
	t.Parallel()
	d := newLongDrive("沪K00001", base.Add(-3*24*time.Hour), 3)
	pool := newDB(t, d.fixes)
	// A visit entered at a fix and left between two fixes, and one still
	// open, entered at a fix.
	s1, s2 := d.stops[1], d.stops[4]
	exit := d.fixes[s1[1]+3].at.Add(4 * time.Second)
	insertVisit(t, pool, "0d9e4b8a-4c53-4bbd-9a55-5b7f2c7f0a01", "沪K00001", d.fixes[s1[0]+5].at, &exit)
	insertVisit(t, pool, "0d9e4b8a-4c53-4bbd-9a55-5b7f2c7f0a02", "沪K00001", d.fixes[s2[0]+1].at, nil)
	a := newDBAPI(t, pool)
	path := "/api/v1/vehicles/%E6%B2%AAK00001/track"
	window := url.Values{"from": {rfc(d.fixes[0].at)}, "to": {rfc(d.fixes[len(d.fixes)-1].at.Add(time.Second))}}

	q := url.Values{"max_points": {"300"}}
	for k, v := range window {
		q[k] = v
	}
	got := decode[trackJSON](t, a.get(t, path+"?"+q.Encode()), "application/json")
	s := got.Simplification
	if s == nil {
		t.Fatalf("no simplification in the answer of %d points", len(got.Points))
	}
	if len(got.Points) > 300 || len(got.Points) < 250 || s.Points != len(got.Points) || s.MaxPoints != 300 {
		t.Errorf("%d points (simplification %+v): want at most 300, the budget used", len(got.Points), *s)
	}
	if s.Fixes != int64(len(d.fixes)) || s.Stops != len(d.stops) || s.StationEntriesExits != 3 || got.NextCursor != nil {
		t.Errorf("simplification %+v, next_cursor %v: want %d fixes, %d stops, 3 entries and exits, no next page",
			*s, got.NextCursor, len(d.fixes), len(d.stops))
	}
	if s.ToleranceM <= 0 {
		t.Errorf("tolerance %.2f m for %d fixes in %d points", s.ToleranceM, len(d.fixes), len(got.Points))
	}
	worst := 0.0
	for _, f := range d.fixes {
		worst = math.Max(worst, distanceToLine(f.lat, f.lng, got.Points))
	}
	if worst > s.ToleranceM+1e-6 {
		t.Errorf("a fix lies %.3f m from the line; the answer's tolerance is %.2f m", worst, s.ToleranceM)
	}
	have := map[time.Time]bool{}
	for _, p := range got.Points {
		have[p.FixTime] = true
	}
	for i, st := range d.stops {
		if !have[d.fixes[st[0]].at] || !have[d.fixes[st[1]].at] {
			t.Errorf("stop %d (fixes %d to %d) is not kept by its first and last fix", i, st[0], st[1])
		}
	}
	for _, i := range []int{s1[0] + 5, s1[1] + 3, s1[1] + 4, s2[0] + 1} {
		if !have[d.fixes[i].at] {
			t.Errorf("the fix at %s, at a station entry or exit, is not kept", d.fixes[i].at)
		}
	}
	if !have[d.fixes[0].at] || !have[d.fixes[len(d.fixes)-1].at] {
		t.Error("the window's first and last fix must be kept")
	}

	t.Run("geojson", func(t *testing.T) {
		t.Parallel()
		raw := decode[map[string]any](t, a.get(t, path+"?format=geojson&"+q.Encode()), "application/geo+json")
		feature := raw["features"].([]any)[0].(map[string]any)
		coords := feature["geometry"].(map[string]any)["coordinates"].([]any)
		props := feature["properties"].(map[string]any)
		simp, _ := props["simplification"].(map[string]any)
		if len(coords) != len(got.Points) || simp == nil || simp["fixes"] != float64(len(d.fixes)) {
			t.Errorf("%d coordinates, simplification %v; want %d and the same simplification", len(coords), simp, len(got.Points))
		}
	})
	t.Run("more stops and visits than points", func(t *testing.T) {
		t.Parallel()
		q := url.Values{"max_points": {"10"}, "from": window["from"], "to": window["to"]}
		p := wantProblem(t, a.get(t, path+"?"+q.Encode()), path, http.StatusBadRequest, "max_points")
		if !strings.Contains(p.Errors[0].Detail, "stops, station entries and exits") {
			t.Errorf("detail %q", p.Errors[0].Detail)
		}
	})
	t.Run("a window of fewer fixes than points comes whole", func(t *testing.T) {
		t.Parallel()
		q := url.Values{"max_points": {"500"}, "from": {rfc(d.fixes[100].at)}, "to": {rfc(d.fixes[400].at)}}
		got := decode[trackJSON](t, a.get(t, path+"?"+q.Encode()), "application/json")
		if len(got.Points) != 300 || got.Simplification.ToleranceM != 0 || got.Simplification.Fixes != 300 {
			t.Errorf("%d points, %+v: want the 300 fixes, tolerance 0", len(got.Points), *got.Simplification)
		}
	})
}

// TestJobTrackSimplified asks for a job's track in 10 points, in each
// format: one answer, the job's window's first and last fix among them,
// and playback's distances those of the whole track at the same fixes.
func TestJobTrackSimplified(t *testing.T) {
	t.Parallel()
	pool, h := seedJobHistory(t)
	a := newDBAPI(t, pool)
	path := "/api/v1/jobs/" + h.ord1.JobID + "/track"
	full := decode[jobTrackJSON](t, a.get(t, path+"?limit=10000"), "application/json")
	got := decode[jobTrackJSON](t, a.get(t, path+"?max_points=10"), "application/json")
	if got.Simplification == nil || len(got.Points) > 10 || got.Simplification.Fixes != int64(len(full.Points)) || got.NextCursor != nil {
		t.Fatalf("%d points, %+v; want at most 10 standing for the window's %d fixes", len(got.Points), got.Simplification, len(full.Points))
	}
	if got.Points[0].FixTime != full.Points[0].FixTime || got.Points[len(got.Points)-1].FixTime != full.Points[len(full.Points)-1].FixTime {
		t.Error("the window's first and last fix must be kept")
	}
	fullPlay := decode[playbackJSON](t, a.get(t, path+"?format=playback&limit=10000"), "application/json")
	play := decode[playbackJSON](t, a.get(t, path+"?format=playback&max_points=10"), "application/json")
	if len(play.Meta) != len(got.Points) || play.Simplification == nil || play.TotalDistance != fullPlay.TotalDistance {
		t.Fatalf("playback: %d points, total %v; want %d, total %v", len(play.Meta), play.TotalDistance, len(got.Points), fullPlay.TotalDistance)
	}
	for _, m := range play.Meta {
		i := slices.IndexFunc(fullPlay.Meta, func(f playbackMeta) bool { return f.Time.Equal(m.Time) })
		if i < 0 || fullPlay.Meta[i].Distance != m.Distance {
			t.Errorf("the point at %s: distance %v, the whole track's %v", m.Time, m.Distance, fullPlay.Meta[max(i, 0)].Distance)
		}
	}
	raw := decode[map[string]any](t, a.get(t, path+"?format=geojson&max_points=10"), "application/geo+json")
	line := raw["features"].([]any)[0].(map[string]any)
	if n := len(line["geometry"].(map[string]any)["coordinates"].([]any)); n != len(got.Points) {
		t.Errorf("geojson: %d coordinates, want %d", n, len(got.Points))
	}
	wantProblem(t, a.get(t, path+"?max_points=10&limit=5"), path, http.StatusBadRequest, "max_points")
}

// setHistoryFrom records that retention dropped the history before from.
func setHistoryFrom(t *testing.T, pool *pgxpool.Pool, from time.Time) {
	t.Helper()
	if _, err := pool.Exec(t.Context(), `INSERT INTO history_retention (table_name, kept_from, retention, updated_at)
		VALUES ('positions', $1, '90 days', now())`, from); err != nil {
		t.Fatal(err)
	}
}

// TestHistoryBeforeRetentionIsGone: once retention has dropped the
// history before a time, a track or positions export wholly before it is
// answered 410, saying since when history is kept; one that begins before
// it says so with the fixes it has.
func TestHistoryBeforeRetentionIsGone(t *testing.T) {
	t.Parallel()
	pool := newDB(t, fleet())
	keptFrom := base.Add(5 * time.Minute)
	setHistoryFrom(t, pool, keptFrom)
	a := newDBAPI(t, pool)
	before := url.Values{"from": {rfc(base.Add(-time.Hour))}, "to": {rfc(keptFrom)}}
	for _, r := range []struct{ path, query string }{
		{trackPath, ""}, {trackPath, "max_points=100&"}, {trackPath, "format=geojson&"}, {"/api/v1/exports/positions", ""},
	} {
		p := wantProblem(t, a.get(t, r.path+"?"+r.query+before.Encode()), r.path, http.StatusGone)
		if p.Type != problemBase+"history-dropped" || !strings.Contains(p.Detail, keptFrom.Format(time.RFC3339)) ||
			!strings.Contains(p.Detail, "TMS_POSITIONS_RETENTION") {
			t.Errorf("%s?%s: problem %+v: want history-dropped, naming %s and the setting", r.path, r.query, p, keptFrom.Format(time.RFC3339))
		}
	}
	across := url.Values{"from": {rfc(base.Add(-time.Hour))}, "to": {rfc(base.Add(time.Hour))}}
	got := decode[trackJSON](t, a.get(t, trackPath+"?"+across.Encode()), "application/json")
	if got.HistoryFrom == nil || !got.HistoryFrom.Equal(keptFrom) || len(got.Points) != 10 {
		t.Errorf("history_from %v, %d points; want %s and the fixes there are", got.HistoryFrom, len(got.Points), keptFrom)
	}
	after := url.Values{"from": {rfc(keptFrom)}, "to": {rfc(base.Add(time.Hour))}}
	if got := decode[trackJSON](t, a.get(t, trackPath+"?"+after.Encode()), "application/json"); got.HistoryFrom != nil {
		t.Errorf("history_from %v for a window after it", got.HistoryFrom)
	}
	w := a.get(t, "/api/v1/exports/positions?"+across.Encode())
	if w.Code != http.StatusOK || w.Header().Get("Tms-History-From") != keptFrom.Format(time.RFC3339) {
		t.Errorf("export across it: %d, Tms-History-From %q", w.Code, w.Header().Get("Tms-History-From"))
	}
}

// exportResult is a recorded export: its body and trailer.
func exportResult(t *testing.T, a *testAPI, target string) (body []byte, rows string, contentType string) {
	t.Helper()
	w := a.get(t, target)
	res := w.Result()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("%s: status %d: %s\n%s", target, res.StatusCode, w.Body, a.logs.String())
	}
	return w.Body.Bytes(), res.Trailer.Get(exportRowsTrailer), res.Header.Get("Content-Type")
}

func TestExports(t *testing.T) {
	t.Parallel()
	pool, h := seedJobHistory(t)
	if _, err := pool.Exec(t.Context(), `INSERT INTO stations (id, name, type, coord_system, geometry, radius_m, detection, version, updated_at)
		VALUES ('S-H', 'Quarry, north', 'loading', 'wgs84', '{"type": "Point", "coordinates": [121, 31]}', 300, '{}', 1, now())`); err != nil {
		t.Fatal(err)
	}
	exited := at(600)
	insertVisit(t, pool, "0d9e4b8a-4c53-4bbd-9a55-5b7f2c7f0b01", "沪A00001", at(-600), &exited) // in progress at from
	insertVisit(t, pool, "0d9e4b8a-4c53-4bbd-9a55-5b7f2c7f0b02", "沪A00001", at(1100), nil)
	insertVisit(t, pool, "0d9e4b8a-4c53-4bbd-9a55-5b7f2c7f0b03", "沪B00002", at(20), nil)
	for _, tr := range []struct {
		plate string
		start float64
	}{{"沪A00001", -100}, {"沪A00001", 100}, {"沪B00002", 50}} {
		if _, err := pool.Exec(t.Context(), `INSERT INTO trips (id, vehicle, start_time, start_lat, start_lng, end_time, end_lat,
			end_lng, open, distance_m, max_speed_kmh, moving_s, idle_s, fixes, fixes_used, fixes_dropped, distance_dropped_m,
			flags, revision) VALUES ($1, $2, $3, 31.201, 121.402, $4, 31.204, 121.408, false, 1500, 62.5, 150, 30, 3, 3, 0, 0, '{}', 1)`,
			trips.SegmentID(trip.KindTrip, tr.plate, at(tr.start)), tr.plate, at(tr.start), at(tr.start+180)); err != nil {
			t.Fatal(err)
		}
	}
	a := newDBAPI(t, pool)
	window := "from=" + url.QueryEscape(rfc(at(0))) + "&to=" + url.QueryEscape(rfc(at(3600)))

	var want [][]string // the positions, as rows: plate, fix_time
	rows, _ := pool.Query(t.Context(), `SELECT plate, fix_time FROM positions WHERE fix_time >= $1 AND fix_time < $2 ORDER BY plate, fix_time`, at(0), at(3600))
	var plate string
	var ft time.Time
	if _, err := pgx.ForEachRow(rows, []any{&plate, &ft}, func() error {
		want = append(want, []string{plate, ft.UTC().Format(time.RFC3339Nano)})
		return nil
	}); err != nil || len(want) < 200 {
		t.Fatalf("%d positions in the window (%v)", len(want), err)
	}

	t.Run("positions csv, the fleet", func(t *testing.T) {
		t.Parallel()
		body, n, ct := exportResult(t, a, "/api/v1/exports/positions?"+window)
		records, err := csv.NewReader(bytes.NewReader(body)).ReadAll()
		if err != nil {
			t.Fatal(err)
		}
		if ct != contentCSV || !slices.Equal(records[0], exportKinds["positions"].columns) || n != strconv.Itoa(len(want)) {
			t.Fatalf("Content-Type %q, header %v, trailer %q", ct, records[0], n)
		}
		if len(records)-1 != len(want) {
			t.Fatalf("%d rows, want %d", len(records)-1, len(want))
		}
		for i, r := range records[1:] {
			if r[0] != want[i][0] || r[1] != want[i][1] {
				t.Fatalf("row %d: %v, want %v", i, r[:2], want[i])
			}
			if lat, err := strconv.ParseFloat(r[3], 64); err != nil || lat < 30 || lat > 32 || r[6] != "90" {
				t.Fatalf("row %d: %v", i, r)
			}
		}
	})
	t.Run("positions ndjson, one vehicle", func(t *testing.T) {
		t.Parallel()
		body, n, ct := exportResult(t, a, "/api/v1/exports/positions?format=ndjson&vehicle=%E6%B2%AAB00002&"+window)
		lines := strings.Split(strings.TrimSuffix(string(body), "\n"), "\n")
		var of []string
		for _, w := range want {
			if w[0] == "沪B00002" {
				of = append(of, w[1])
			}
		}
		if ct != contentNDJSON || len(lines) != len(of) || n != strconv.Itoa(len(of)) {
			t.Fatalf("Content-Type %q, %d lines, trailer %q; want %d", ct, len(lines), n, len(of))
		}
		for i, l := range lines {
			var f struct {
				Type     string `json:"type"`
				Geometry struct {
					Type        string     `json:"type"`
					Coordinates [2]float64 `json:"coordinates"`
				} `json:"geometry"`
				Properties map[string]any `json:"properties"`
			}
			if err := json.Unmarshal([]byte(l), &f); err != nil {
				t.Fatalf("line %d: %v: %s", i, err, l)
			}
			if f.Type != "Feature" || f.Geometry.Type != "Point" || f.Geometry.Coordinates[0] < 120 ||
				f.Properties["plate"] != "沪B00002" || f.Properties["fix_time"] != of[i] {
				t.Fatalf("line %d: %s", i, l)
			}
		}
	})
	t.Run("visits", func(t *testing.T) {
		t.Parallel()
		body, n, _ := exportResult(t, a, "/api/v1/exports/visits?"+window)
		records, err := csv.NewReader(bytes.NewReader(body)).ReadAll()
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, r := range records[1:] {
			ids = append(ids, r[0][len(r[0])-2:])
		}
		if n != "3" || !slices.Equal(ids, []string{"01", "03", "02"}) {
			t.Errorf("visits %v (trailer %q): want the one in progress at from, then by entry", ids, n)
		}
		body, _, _ = exportResult(t, a, "/api/v1/exports/visits?format=ndjson&vehicle=%E6%B2%AAA00001&"+window)
		var f struct {
			Geometry   map[string]any `json:"geometry"`
			Properties map[string]any `json:"properties"`
		}
		first, _, _ := bytes.Cut(body, []byte("\n"))
		if err := json.Unmarshal(first, &f); err != nil || f.Geometry["type"] != "Point" || f.Properties["radius_m"] != 300.0 ||
			f.Properties["station_id"] != "S-H" || f.Properties["dwell_s"] != 1200.0 {
			t.Errorf("%v: %s", err, first)
		}
	})
	t.Run("jobs", func(t *testing.T) {
		t.Parallel()
		body, n, _ := exportResult(t, a, "/api/v1/exports/jobs?vehicle=%E6%B2%AAA00001&"+window)
		records, err := csv.NewReader(bytes.NewReader(body)).ReadAll()
		if err != nil {
			t.Fatal(err)
		}
		if n != "2" || len(records) != 3 || records[1][0] != h.ord1.JobID || records[1][2] != "ORD-1" || records[1][3] != "completed" ||
			records[1][9] != "2" {
			t.Fatalf("trailer %q, %v", n, records)
		}
		var stops []map[string]any
		if err := json.Unmarshal([]byte(records[1][15]), &stops); err != nil || len(stops) != 2 || stops[1]["station_id"] != "U1" {
			t.Errorf("stops %q: %v", records[1][15], err)
		}
		body, _, _ = exportResult(t, a, "/api/v1/exports/jobs?format=ndjson&"+window)
		lines := strings.Split(strings.TrimSpace(string(body)), "\n")
		var f struct {
			Geometry   map[string]any `json:"geometry"`
			Properties map[string]any `json:"properties"`
		}
		if err := json.Unmarshal([]byte(lines[0]), &f); err != nil || len(lines) != 4 || f.Geometry["type"] != "LineString" ||
			f.Properties["id"] != h.ord1.JobID {
			t.Errorf("%d lines, %v: %s", len(lines), err, lines[0])
		}
	})
	t.Run("trips", func(t *testing.T) {
		t.Parallel()
		body, n, _ := exportResult(t, a, "/api/v1/exports/trips?"+window)
		records, err := csv.NewReader(bytes.NewReader(body)).ReadAll()
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, r := range records[1:] {
			got = append(got, r[1]+"@"+r[4])
		}
		want := []string{"沪B00002@" + rfc(at(50)), "沪A00001@" + rfc(at(100))} // started in the window, in start order
		if !slices.Equal(records[0], exportKinds["trips"].columns) || n != "2" || !slices.Equal(got, want) {
			t.Fatalf("header %v, trailer %q, trips %v; want %v", records[0], n, got, want)
		}
		if r := records[2]; r[7] != "S-H" || r[13] != "1500" || r[14] != "62.5" || r[15] != "36" || r[22] != "" {
			t.Errorf("沪A00001's trip: %v", r)
		}
		body, _, _ = exportResult(t, a, "/api/v1/exports/trips?format=ndjson&vehicle=%E6%B2%AAA00001&"+window)
		var f struct {
			Geometry struct {
				Type        string       `json:"type"`
				Coordinates [][2]float64 `json:"coordinates"`
			} `json:"geometry"`
			Properties map[string]any `json:"properties"`
		}
		if err := json.Unmarshal(bytes.TrimSpace(body), &f); err != nil || f.Geometry.Type != "LineString" ||
			f.Geometry.Coordinates[1] != [2]float64{121.408, 31.204} || f.Properties["distance_m"] != 1500.0 {
			t.Errorf("%v: %s", err, body)
		}
	})
	t.Run("an empty range has the header only", func(t *testing.T) {
		t.Parallel()
		body, n, _ := exportResult(t, a, "/api/v1/exports/positions?from=2001-01-01T00:00:00Z&to=2001-01-02T00:00:00Z")
		if string(body) != strings.Join(exportKinds["positions"].columns, ",")+"\n" || n != "0" {
			t.Errorf("body %q, trailer %q", body, n)
		}
	})
	t.Run("bad requests", func(t *testing.T) {
		t.Parallel()
		for target, fields := range map[string][]string{
			"/api/v1/exports/trucks":                                                             {"kind"},
			"/api/v1/exports/positions?format=xlsx":                                              {"format"},
			"/api/v1/exports/positions?vehicle=a%2Fb":                                            {"vehicle"},
			"/api/v1/exports/visits?from=2025-03-10T09:00:00Z&to=2025-03-10T08:00:00Z&format=no": {"from", "format"},
		} {
			path, _, _ := strings.Cut(target, "?")
			wantProblem(t, a.get(t, target), path, http.StatusBadRequest, fields...)
		}
	})
}

// TestExportLimits: an export of more rows than ExportMaxRows (the
// fleet's 15 fixes, over 10) or of a range longer than ExportMaxRange is
// refused before anything is sent, naming the setting; one beyond
// MaxExports at once is a 429 with Retry-After.
func TestExportLimits(t *testing.T) {
	t.Parallel()
	pool := newDB(t, fleet())
	a := newDBAPI(t, pool, func(c *Config) { c.History.ExportMaxRows, c.History.MaxExports = 10, 1 })
	path := "/api/v1/exports/positions"
	window := "?from=" + url.QueryEscape(rfc(base.Add(-time.Hour))) + "&to=" + url.QueryEscape(rfc(base.Add(time.Hour)))
	p := wantProblem(t, a.get(t, path+window), path, http.StatusBadRequest, "from")
	if !strings.Contains(p.Errors[0].Detail, "more than 10 rows (TMS_EXPORT_MAX_ROWS)") {
		t.Errorf("detail %q", p.Errors[0].Detail)
	}
	if _, rows, _ := exportResult(t, a, path+window+"&vehicle=%E6%B2%AAA12345"); rows != "10" {
		t.Errorf("the 10 fixes of one vehicle: trailer %q", rows)
	}
	// A year and a day is longer than the 366 days an export may cover
	// by default; exactly 366 days is not.
	long := "?from=2025-01-01T00:00:00Z&to=2026-01-02T00:00:01Z"
	p = wantProblem(t, a.get(t, path+long), path, http.StatusBadRequest, "from")
	if !strings.Contains(p.Errors[0].Detail, "TMS_EXPORT_MAX_RANGE") {
		t.Errorf("detail %q", p.Errors[0].Detail)
	}
	if _, rows, _ := exportResult(t, a, "/api/v1/exports/jobs?from=2025-01-01T00:00:00Z&to=2026-01-02T00:00:00Z"); rows != "0" {
		t.Errorf("the jobs of 366 days: trailer %q", rows)
	}
	a.srv.exports <- struct{}{} // an export under way
	w := a.get(t, path+window)
	wantProblem(t, w, path, http.StatusTooManyRequests)
	if w.Header().Get("Retry-After") == "" || !strings.Contains(w.Body.String(), "TMS_EXPORT_MAX_CONCURRENT") {
		t.Errorf("Retry-After %q, body %s", w.Header().Get("Retry-After"), w.Body)
	}
	<-a.srv.exports
}

// bigFleet fills positions with n fixes of 100 vehicles, 10 s apart, by
// COPY, and returns the window they span.
func bigFleet(t *testing.T, n int) (*pgxpool.Pool, time.Time, time.Time) {
	t.Helper()
	pool := newDB(t, nil)
	start := base.Add(-24 * time.Hour)
	end := start.Add(time.Duration(n/100) * 10 * time.Second)
	if _, err := vehicles.EnsurePartitions(t.Context(), pool, vehicles.PositionsTable, start, end); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(t.Context(), `
		INSERT INTO positions (plate, fix_time, received_at, lat, lng, speed_kmh, course_deg)
		SELECT '沪L' || lpad(v::text, 5, '0'), $1::timestamptz + (i * 10) * interval '1 second',
		       $1::timestamptz + (i * 10 + 1) * interval '1 second', 31 + v * 0.001 + i * 1e-6, 121 + i * 1e-6, 40, 90
		FROM generate_series(0, $2::int - 1) i, generate_series(1, 100) v`, start, n/100); err != nil {
		t.Fatal(err)
	}
	return pool, start, end
}

// TestALargeExportStreamsInBoundedMemory exports a million fixes (some
// 90 MB of CSV) through a real HTTP server and reads them as they come:
// the server's heap never grows by more than a fraction of the body, and
// the first bytes arrive long before the last.
func TestALargeExportStreamsInBoundedMemory(t *testing.T) {
	// Not parallel: the heap is the process's, and the parallel tests
	// would grow it too (they wait until this one has run).
	const n = 1_000_000
	pool, from, to := bigFleet(t, n)
	a := newDBAPI(t, pool)
	srv := httptest.NewServer(a.handler)
	defer srv.Close()

	runtime.GC()
	var base runtime.MemStats
	runtime.ReadMemStats(&base)
	var peak atomic.Uint64
	done := make(chan struct{})
	go func() {
		var m runtime.MemStats
		for {
			select {
			case <-done:
				return
			case <-time.After(20 * time.Millisecond):
			}
			runtime.ReadMemStats(&m)
			if m.HeapInuse > peak.Load() {
				peak.Store(m.HeapInuse)
			}
		}
	}()
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, srv.URL+"/api/v1/exports/positions?from="+
		url.QueryEscape(rfc(from))+"&to="+url.QueryEscape(rfc(to)), nil)
	req.Header.Set("Authorization", "Bearer "+viewerToken)
	start := time.Now()
	res, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	r := bufio.NewReaderSize(res.Body, 64<<10)
	if _, err := r.Peek(1); err != nil {
		t.Fatal(err)
	}
	firstByte := time.Since(start)
	var lines, size int64
	for {
		line, err := r.ReadSlice('\n')
		size += int64(len(line))
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		lines++
	}
	total := time.Since(start)
	close(done)
	if res.StatusCode != http.StatusOK || lines != n+1 || res.Trailer.Get(exportRowsTrailer) != strconv.Itoa(n) {
		t.Fatalf("status %d, %d lines, trailer %q; want %d rows and the header", res.StatusCode, lines, res.Trailer.Get(exportRowsTrailer), n)
	}
	grew := int64(peak.Load()) - int64(base.HeapInuse)
	t.Logf("%d MB in %s (first byte after %s); the heap grew by at most %d MB", size>>20, total.Round(time.Millisecond),
		firstByte.Round(time.Millisecond), grew>>20)
	if grew > size/4 || grew > 32<<20 {
		t.Errorf("the heap grew by %d MB for a body of %d MB: the export is held in memory", grew>>20, size>>20)
	}
	if firstByte > total/2 {
		t.Errorf("the first byte came after %s of %s: the export is not streamed", firstByte, total)
	}
}

// TestAnExportCutShortIsAnIncompleteTransfer: a client that stops
// reading is cut off once a chunk waits longer than ExportWriteTimeout;
// the export ends without its last chunk and trailer, so that the client
// reports an error instead of taking a part for the whole, and the cut is
// logged.
func TestAnExportCutShortIsAnIncompleteTransfer(t *testing.T) {
	t.Parallel()
	pool, from, to := bigFleet(t, 300_000)
	a := newDBAPI(t, pool, func(c *Config) { c.History.ExportWriteTimeout = 300 * time.Millisecond })
	srv := httptest.NewServer(a.handler)
	defer srv.Close()
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, srv.URL+"/api/v1/exports/positions?format=ndjson&from="+
		url.QueryEscape(rfc(from))+"&to="+url.QueryEscape(rfc(to)), nil)
	req.Header.Set("Authorization", "Bearer "+viewerToken)
	res, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("status %d", res.StatusCode)
	}
	// The client stops reading; the server's writes fill the connection's
	// buffers and then wait, until the deadline cuts them.
	tmsproc.Eventually(t, 30*time.Second, "the server to cut the export", func() bool {
		return strings.Contains(a.logs.String(), "export cut short")
	})
	read, err := io.Copy(io.Discard, res.Body)
	if err == nil || read == 0 {
		t.Fatalf("the body ended cleanly after %d bytes (%v): a cut export must not look complete", read, err)
	}
	if res.Trailer.Get(exportRowsTrailer) != "" {
		t.Errorf("trailer %q on a cut export", res.Trailer.Get(exportRowsTrailer))
	}
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Logf("the client's error: %v", err)
	}
}

// TestTrackEncodingIsEncodingJSONs: the track's hand-written encoder
// gives what encoding/json gives of trackJSON, value for value.
func TestTrackEncodingIsEncodingJSONs(t *testing.T) {
	t.Parallel()
	next, kept := "2025-03-10T08:09:00Z", base.Add(-time.Hour)
	for _, out := range []trackJSON{
		{Plate: "沪A12345", From: base, To: base.Add(time.Hour)},
		{Plate: "ANCH-9", From: base, To: base.Add(time.Hour), NextCursor: &next, HistoryFrom: &kept,
			Simplification: &simplificationJSON{MaxPoints: 10, Points: 2, Fixes: 99, ToleranceM: 12.34, Stops: 1, StationEntriesExits: 2}},
	} {
		fixes := []vehicles.Fix{
			{FixTime: base.Add(123456789 * time.Nanosecond), ReceivedAt: base.Add(2 * time.Second), Lat: 31.2000001, Lng: 121.4, SpeedKmh: 0.1,
				CourseDeg: ptr(359.5), Flags: []string{"gap", "late"}},
			{FixTime: base.Add(time.Minute), ReceivedAt: base.Add(time.Minute), Lat: -0.000001, Lng: 1e-7, Flags: []string{}},
		}
		for _, f := range fixes {
			out.Points = append(out.Points, trackPointJSON{FixTime: f.FixTime, ReceivedAt: f.ReceivedAt, Lat: f.Lat, Lng: f.Lng,
				SpeedKmh: f.SpeedKmh, CourseDeg: f.CourseDeg, Flags: nonNil(f.Flags)})
		}
		want, err := json.Marshal(out)
		if err != nil {
			t.Fatal(err)
		}
		got, err := encodeTrack(&out, fixes)
		if err != nil {
			t.Fatal(err)
		}
		var a, b any
		if err := json.Unmarshal(got, &a); err != nil {
			t.Fatalf("%v: %s", err, got)
		}
		_ = json.Unmarshal(want, &b)
		if !reflect.DeepEqual(a, b) {
			t.Errorf("encodeTrack:\n%s\nencoding/json:\n%s", got, want)
		}
	}
}
