package httpapi

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers/legacy"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tmsfleet/tms/domain/g7event"
	"github.com/tmsfleet/tms/domain/trip"
	"github.com/tmsfleet/tms/projections/g7events"
	"github.com/tmsfleet/tms/projections/trips"
)

const (
	g7EventsPath   = "/api/v1/vehicles/%E6%B2%AAA12345/g7-events"
	comparisonPath = "/api/v1/vehicles/%E6%B2%AAA12345/g7-stops/comparison"
)

func minute(m int) time.Time { return base.Add(time.Duration(m) * time.Minute) }

// seedG7 stores G7 reports through the projection, as it would.
func seedG7(t *testing.T, pool *pgxpool.Pool, reports ...g7event.Report) {
	t.Helper()
	proj := g7events.NewProjection(nil, nil)
	var items []g7events.Report
	for _, r := range reports {
		if rej := r.Validate(g7event.DefaultMaxDuration); rej != nil {
			t.Fatal(rej)
		}
		e, err := r.Event("/test")
		if err != nil {
			t.Fatal(err)
		}
		v, _ := json.Marshal(e)
		it, ok := proj.Decode(&kgo.Record{Value: v})
		if !ok {
			t.Fatalf("skipped %s", v)
		}
		items = append(items, it)
	}
	tx, err := pool.Begin(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if err := proj.Apply(t.Context(), tx, items); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(t.Context()); err != nil {
		t.Fatal(err)
	}
}

func g7Report(kind g7event.Kind, from int, to *int, lat float64) g7event.Report {
	r := g7event.Report{Plate: "沪A12345", Kind: kind, Start: minute(from), StartLat: lat, StartLng: 121.4, ReceivedAt: minute(from)}
	if to != nil {
		end := minute(*to)
		r.End, r.ReceivedAt = &end, end
	}
	return r
}

func ptrInt(v int) *int { return &v }

// seedStop stores a tms stop as the trips projection would.
func seedStop(t *testing.T, pool *pgxpool.Pool, from, to int, lat float64, open bool) {
	t.Helper()
	_, err := pool.Exec(t.Context(), `INSERT INTO stops (id, vehicle, start_time, end_time, lat, lng, open, fixes, flags, revision)
		VALUES ($1, '沪A12345', $2, $3, $4, 121.4, $5, 2, '{}', 1)`, trips.SegmentID(trip.KindStop, "沪A12345", minute(from)),
		minute(from), minute(to), lat, open)
	if err != nil {
		t.Fatal(err)
	}
}

// conforms checks an answer against openapi.json: its status is
// documented for the operation, and its body matches the schema.
func conforms(t *testing.T, target string, w *httptest.ResponseRecorder) {
	t.Helper()
	doc, err := openapi3.NewLoader().LoadFromData(openAPISpec)
	if err != nil {
		t.Fatal(err)
	}
	doc.Servers = nil
	router, err := legacy.NewRouter(doc)
	if err != nil {
		t.Fatal(err)
	}
	req := httptest.NewRequest(http.MethodGet, target, nil)
	route, params, err := router.FindRoute(req)
	if err != nil {
		t.Fatalf("%s: %v", target, err)
	}
	in := &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route,
		Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc}}
	err = openapi3filter.ValidateResponse(t.Context(), &openapi3filter.ResponseValidationInput{
		RequestValidationInput: in, Status: w.Code, Header: w.Header(), Body: io.NopCloser(bytes.NewReader(w.Body.Bytes())),
		Options: &openapi3filter.Options{IncludeResponseStatus: true},
	})
	if err != nil {
		t.Errorf("%s: the %d answer does not match openapi.json: %v\n%s", target, w.Code, err, w.Body)
	}
}

// TestG7EventsOfAVehicle: one row per event, of one kind or all, in start
// order, paged, the answers as openapi.json has them; bad parameters are
// 400 naming the field, an unknown vehicle 404.
func TestG7EventsOfAVehicle(t *testing.T) {
	t.Parallel()
	pool := newDB(t, fleet())
	// A stop reported open, then closed; an idle event still open; an EMS
	// alarm; one stop before the window.
	seedG7(t, pool,
		g7Report(g7event.KindStop, 10, nil, 31.2),
		g7Report(g7event.KindStop, 10, ptrInt(30), 31.2),
		g7Report(g7event.KindStop, 10, nil, 31.2), // a late open repeat: the close stands
		g7Report(g7event.KindIdle, 40, nil, 31.2),
		g7Report(g7event.KindEMS, 45, ptrInt(46), 31.2),
		g7Report(g7event.KindStop, -300, ptrInt(-200), 31.2),
	)
	a := newDBAPI(t, pool, func(c *Config) { c.Now = func() time.Time { return minute(120) } })
	window := "?from=" + url.QueryEscape(minute(0).Format(time.RFC3339)) + "&to=" + url.QueryEscape(minute(60).Format(time.RFC3339))

	w := a.get(t, g7EventsPath+window)
	conforms(t, g7EventsPath+window, w)
	got := decode[g7EventListJSON](t, w, "application/json")
	if len(got.Events) != 3 || got.NextCursor != nil || got.Kind != nil || got.Vehicle != "沪A12345" {
		t.Fatalf("events %+v", got)
	}
	stop, idle, ems := got.Events[0], got.Events[1], got.Events[2]
	if stop.Kind != g7event.KindStop || stop.Open || !stop.EndTime.Equal(minute(30)) || *stop.DurationS != 1200 {
		t.Errorf("stop %+v", stop)
	}
	if idle.Kind != g7event.KindIdle || !idle.Open || idle.EndTime != nil || idle.DurationS != nil {
		t.Errorf("idle %+v", idle)
	}
	if ems.Kind != g7event.KindEMS {
		t.Errorf("ems %+v", ems)
	}

	w = a.get(t, g7EventsPath+window+"&kind=idle")
	conforms(t, g7EventsPath+window+"&kind=idle", w)
	if got := decode[g7EventListJSON](t, w, "application/json"); len(got.Events) != 1 || *got.Kind != g7event.KindIdle {
		t.Errorf("kind=idle: %+v", got)
	}

	// Paging: two, then one.
	w = a.get(t, g7EventsPath+window+"&limit=2")
	first := decode[g7EventListJSON](t, w, "application/json")
	if len(first.Events) != 2 || first.NextCursor == nil {
		t.Fatalf("page 1: %+v", first)
	}
	w = a.get(t, g7EventsPath+window+"&limit=2&cursor="+url.QueryEscape(*first.NextCursor))
	second := decode[g7EventListJSON](t, w, "application/json")
	if len(second.Events) != 1 || second.Events[0].ID != ems.ID || second.NextCursor != nil {
		t.Errorf("page 2: %+v", second)
	}

	for _, c := range []struct{ query, field string }{
		{"?kind=parking", "kind"},
		{"?from=yesterday", "from"},
		{"?to=2025-13-01T00:00:00Z", "to"},
		{"?from=2025-03-10T10:00:00Z&to=2025-03-10T09:00:00Z", "from"},
		{"?cursor=x", "cursor"},
	} {
		w := a.get(t, g7EventsPath+c.query)
		wantProblem(t, w, g7EventsPath, http.StatusBadRequest, c.field)
		conforms(t, g7EventsPath+c.query, w)
	}
	w = a.get(t, "/api/v1/vehicles/%E6%B2%AAZ99999/g7-events")
	wantProblem(t, w, "/api/v1/vehicles/%E6%B2%AAZ99999/g7-events", http.StatusNotFound)
	if w := a.do(t, http.MethodGet, g7EventsPath, ""); w.Code != http.StatusUnauthorized {
		t.Errorf("without a token: %d", w.Code)
	}
}

// TestG7StopComparison: G7's stops beside tms's, paired by the rule, with
// their differences, and each side's own; the rule's parameters are read
// and checked.
func TestG7StopComparison(t *testing.T) {
	t.Parallel()
	pool := newDB(t, fleet())
	north := func(m float64) float64 { return 31.2 + m/111_195 }
	seedG7(t, pool,
		g7Report(g7event.KindStop, 10, ptrInt(30), north(0)), // both: tms 9 to 29, 40 m away
		g7Report(g7event.KindStop, 50, ptrInt(51), north(0)), // G7 only
		g7Report(g7event.KindIdle, 60, ptrInt(80), north(0)), // idle: not compared
		g7Report(g7event.KindStop, 100, nil, north(0)),       // open, with tms's open stop
	)
	seedStop(t, pool, 9, 29, north(40), false)
	seedStop(t, pool, 70, 75, north(0), false) // tms only
	seedStop(t, pool, 101, 110, north(10), true)
	a := newDBAPI(t, pool, func(c *Config) { c.Now = func() time.Time { return minute(110) } })
	target := comparisonPath + "?from=" + url.QueryEscape(minute(0).Format(time.RFC3339)) + "&to=" + url.QueryEscape(minute(120).Format(time.RFC3339))
	w := a.get(t, target)
	conforms(t, target, w)
	got := decode[stopComparisonJSON](t, w, "application/json")
	if got.Summary != (comparisonSummaryJSON{G7Stops: 3, TMSStops: 3, Matched: 2, OnlyG7: 1, OnlyTMS: 1}) {
		t.Fatalf("summary %+v", got.Summary)
	}
	if got.Rules != (matchRulesJSON{MaxDistanceM: 200, SlackS: 120}) {
		t.Errorf("rules %+v", got.Rules)
	}
	p := got.Matched[0]
	if p.StartDiffS != 60 || p.EndDiffS == nil || *p.EndDiffS != 60 || p.DistanceM < 39.5 || p.DistanceM > 40.5 ||
		p.OverlapS != 19*60 || !p.G7.StartTime.Equal(minute(10)) || !p.TMS.StartTime.Equal(minute(9)) {
		t.Errorf("pair 0 %+v", p)
	}
	if q := got.Matched[1]; q.EndDiffS != nil || !q.G7.Open || !q.TMS.Open || q.StartDiffS != -60 {
		t.Errorf("open pair %+v", q)
	}
	if !got.OnlyG7[0].StartTime.Equal(minute(50)) || !got.OnlyTMS[0].StartTime.Equal(minute(70)) {
		t.Errorf("only G7 %+v, only tms %+v", got.OnlyG7, got.OnlyTMS)
	}
	// A stricter distance leaves the first pair apart.
	w = a.get(t, target+"&max_distance_m=20&slack_s=0")
	conforms(t, target+"&max_distance_m=20&slack_s=0", w)
	if got := decode[stopComparisonJSON](t, w, "application/json"); got.Summary.Matched != 1 || got.Summary.OnlyG7 != 2 {
		t.Errorf("max_distance_m=20: %+v", got.Summary)
	}
	for _, c := range []struct{ query, field string }{
		{"?max_distance_m=-1", "max_distance_m"},
		{"?max_distance_m=NaN", "max_distance_m"},
		{"?slack_s=7200", "slack_s"},
		{"?from=x", "from"},
	} {
		w := a.get(t, comparisonPath+c.query)
		wantProblem(t, w, comparisonPath, http.StatusBadRequest, c.field)
		conforms(t, comparisonPath+c.query, w)
	}
	wantProblem(t, a.get(t, "/api/v1/vehicles/%E6%B2%AAZ99999/g7-stops/comparison"), "/api/v1/vehicles/%E6%B2%AAZ99999/g7-stops/comparison", http.StatusNotFound)
}
