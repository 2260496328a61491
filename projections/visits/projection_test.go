package visits_test

import (
	"encoding/json"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tmsfleet/tms/adapters/kafka"
	"github.com/tmsfleet/tms/adapters/postgres"
	"github.com/tmsfleet/tms/domain/event"
	"github.com/tmsfleet/tms/domain/geo"
	"github.com/tmsfleet/tms/domain/geofence"
	"github.com/tmsfleet/tms/internal/testenv"
	"github.com/tmsfleet/tms/projections/projector"
	"github.com/tmsfleet/tms/projections/visits"
)

var t0 = time.Date(2026, 11, 27, 8, 0, 0, 0, time.UTC)

func at(min int) time.Time { return t0.Add(time.Duration(min) * time.Minute) }

type harness struct {
	kc   *kafka.Config
	pool *pgxpool.Pool
	n    int
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	svc := testenv.FromEnv(os.LookupEnv)
	kc := svc.Kafka(t)
	pool, err := postgres.Open(t.Context(), svc.Postgres(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return &harness{kc: kc, pool: pool}
}

// visit is one visit's transitions: an entry at in, an exit at out (none
// when out < 0).
type visit struct {
	plate, station, typ string
	in, out             int
	entryFlags          []string
	exitFlags           []string
	cause               string
}

func (v visit) id() string {
	return event.ID("test-visit", v.plate, v.station, at(v.in).Format(time.RFC3339))
}

func (v visit) transitions() []geofence.Transition {
	typ := v.typ
	if typ == "" {
		typ = geofence.TypeLoading
	}
	in := geofence.Transition{Kind: geofence.Entered, Vehicle: v.plate, StationID: v.station, StationType: typ,
		StationVersion: 1, VisitID: v.id(), At: at(v.in), Point: geo.Point{Lat: 31, Lng: 121},
		Flags: v.entryFlags, InitialCause: v.cause}
	if v.out < 0 {
		return []geofence.Transition{in}
	}
	out := in
	out.Kind, out.At, out.Flags, out.InitialCause = geofence.Exited, at(v.out), v.exitFlags, ""
	out.EnteredAt, out.Dwell = at(v.in), at(v.out).Sub(at(v.in))
	if v.out == v.in && slices.Contains(v.exitFlags, geofence.FlagInterpolated) {
		out.Gap = 90 * time.Second
	}
	return []geofence.Transition{in, out}
}

// produce writes the transitions' events (alerts included) to
// tms.geofence, keyed by plate, in order.
func (h *harness) produce(t *testing.T, trs ...geofence.Transition) {
	t.Helper()
	cl, err := h.kc.NewClient("test-producer")
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var records []*kgo.Record
	for _, tr := range trs {
		es, err := tr.Events("/test/geofence")
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range es {
			v, _ := json.Marshal(e)
			records = append(records, &kgo.Record{Topic: h.kc.Topic(event.TopicGeofence), Key: []byte(tr.Vehicle), Value: v})
		}
	}
	if err := cl.ProduceSync(t.Context(), records...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	h.n += len(records)
}

func (h *harness) start(t *testing.T) (stop func()) {
	t.Helper()
	p, err := projector.New(projector.Config[visits.Change]{
		Spec: visits.Spec, Kafka: h.kc, Pool: h.pool, Projection: visits.NewProjection(nil, nil), RetryBackoff: 10 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	return testenv.Go(t, "projector", p.Run)
}

// wait waits until the projector has committed every record produced.
func (h *harness) wait(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		var got int64
		if err := h.pool.QueryRow(t.Context(), `
			SELECT coalesce(sum(next_offset), 0) FROM projector_offsets WHERE projector = $1 AND topic = $2`,
			visits.ProjectionName, h.kc.Topic(event.TopicGeofence)).Scan(&got); err != nil {
			t.Fatal(err)
		}
		if got >= int64(h.n) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("projector committed %d of %d records", got, h.n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// The history every test below reads: minutes after t0.
var (
	closedA   = visit{plate: "沪A00001", station: "S1", in: 10, out: 40}
	openA     = visit{plate: "沪A00001", station: "S2", in: 50, out: -1, entryFlags: []string{geofence.FlagInitial}, cause: geofence.CauseStationAdded}
	hazardB   = visit{plate: "沪B00002", station: "H1", typ: geofence.TypeHazard, in: 5, out: -1}
	longB     = visit{plate: "沪B00002", station: "S1", in: -600, out: 30} // began well before the windows below
	crossingC = visit{plate: "沪C00003", station: "S1", in: 20, out: 20, entryFlags: []string{geofence.FlagInterpolated}, exitFlags: []string{geofence.FlagInterpolated}}
	exitOnlyD = visit{plate: "沪D00004", station: "S2", in: 1, out: 3, exitFlags: []string{geofence.FlagStationDeleted}}
)

func seed(t *testing.T) (*harness, *visits.Store) {
	t.Helper()
	h := newHarness(t)
	var trs []geofence.Transition
	for _, v := range []visit{closedA, openA, hazardB, longB, crossingC} {
		trs = append(trs, v.transitions()...)
	}
	trs = append(trs, exitOnlyD.transitions()[1]) // its entry never seen
	h.produce(t, trs...)
	h.start(t)
	h.wait(t)
	return h, visits.NewStore(h.pool)
}

func ids(vs []visits.Visit) []string {
	out := make([]string, len(vs))
	for i, v := range vs {
		out[i] = v.VisitID
	}
	return out
}

func idsOf(vs ...visit) []string {
	out := make([]string, len(vs))
	for i, v := range vs {
		out[i] = v.id()
	}
	return out
}

func TestEntriesAndExitsMakeVisits(t *testing.T) {
	t.Parallel()
	h, store := seed(t)
	all, err := store.List(t.Context(), visits.Query{From: at(-1000), To: at(1000), Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	byID := map[string]visits.Visit{}
	for _, v := range all {
		byID[v.VisitID] = v
	}
	if len(all) != 6 {
		t.Fatalf("%d visits, want 6 (the hazard alert is no visit): %+v", len(all), all)
	}
	a := byID[closedA.id()]
	if a.Open() || !a.ExitedAt.Equal(at(40)) || *a.DwellS != 1800 || a.Vehicle != "沪A00001" || a.StationID != "S1" ||
		a.StationType != geofence.TypeLoading || a.StationVersion != 1 || len(a.EntryFlags) != 0 || len(a.ExitFlags) != 0 {
		t.Errorf("closed visit %+v", a)
	}
	o := byID[openA.id()]
	if !o.Open() || o.DwellS != nil || !slices.Equal(o.EntryFlags, []string{"initial"}) || o.InitialCause != geofence.CauseStationAdded {
		t.Errorf("open visit %+v", o)
	}
	c := byID[crossingC.id()]
	if c.Open() || *c.DwellS != 0 || !slices.Equal(c.ExitFlags, []string{"interpolated"}) || c.ExitGapS == nil || *c.ExitGapS != 90 {
		t.Errorf("interpolated crossing %+v", c)
	}
	d := byID[exitOnlyD.id()]
	if d.Open() || !d.EnteredAt.Equal(at(1)) || *d.DwellS != 120 || len(d.EntryFlags) != 0 || !slices.Equal(d.ExitFlags, []string{"station_deleted"}) {
		t.Errorf("visit whose entry was never seen %+v", d)
	}

	// The same events again (a redelivery after a crash of the geofence
	// would not produce them, but a replay re-reads them): nothing changes.
	var trs []geofence.Transition
	for _, v := range []visit{closedA, openA, crossingC} {
		trs = append(trs, v.transitions()...)
	}
	h.produce(t, append(trs, openA.transitions()[0])...)
	h.wait(t)
	again, _ := store.List(t.Context(), visits.Query{From: at(-1000), To: at(1000), Limit: 100})
	if a, b := mustJSON(t, all), mustJSON(t, again); a != b {
		t.Errorf("the same events again changed the visits:\n%s\n%s", a, b)
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestListOverlapsTheWindowNewestFirst(t *testing.T) {
	t.Parallel()
	_, store := seed(t)
	yes, no := true, false
	cases := []struct {
		name string
		q    visits.Query
		want []string
	}{
		{"everything, newest entry first", visits.Query{From: at(-1000), To: at(1000)},
			idsOf(openA, crossingC, closedA, hazardB, exitOnlyD, longB)},
		{"a window: began in it, or in progress when it began", visits.Query{From: at(25), To: at(45)},
			idsOf(closedA, hazardB, longB)},
		{"a window's end is excluded", visits.Query{From: at(41), To: at(50)}, idsOf(hazardB)},
		{"a window's start is included", visits.Query{From: at(40), To: at(41)}, idsOf(closedA, hazardB)},
		{"by station", visits.Query{StationID: "S1", From: at(-1000), To: at(1000)}, idsOf(crossingC, closedA, longB)},
		{"by station in a window", visits.Query{StationID: "S1", From: at(21), To: at(35)}, idsOf(closedA, longB)},
		{"by vehicle", visits.Query{Vehicle: "沪B00002", From: at(0), To: at(10)}, idsOf(hazardB, longB)},
		{"by station and vehicle", visits.Query{StationID: "S1", Vehicle: "沪A00001", From: at(-1000), To: at(1000)}, idsOf(closedA)},
		{"open only", visits.Query{From: at(-1000), To: at(1000), Open: &yes}, idsOf(openA, hazardB)},
		{"open only, began before the window", visits.Query{From: at(60), To: at(70), Open: &yes}, idsOf(openA, hazardB)},
		{"closed only", visits.Query{From: at(0), To: at(1000), Open: &no}, idsOf(crossingC, closedA, exitOnlyD, longB)},
		{"nothing", visits.Query{StationID: "S9", From: at(-1000), To: at(1000)}, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			q := c.q
			q.Limit = 100
			got, err := store.List(t.Context(), q)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(ids(got), c.want) && !(len(got) == 0 && len(c.want) == 0) {
				t.Errorf("got  %v\nwant %v", ids(got), c.want)
			}
			// Page by one: the same visits, in the same order.
			var paged []visits.Visit
			q.Limit = 1
			for range 20 {
				page, err := store.List(t.Context(), q)
				if err != nil {
					t.Fatal(err)
				}
				if len(page) == 0 {
					break
				}
				paged = append(paged, page...)
				last := page[len(page)-1]
				q.After = &visits.Cursor{EnteredAt: last.EnteredAt, VisitID: last.VisitID}
			}
			if !slices.Equal(ids(paged), ids(got)) {
				t.Errorf("paged %v\nwhole %v", ids(paged), ids(got))
			}
		})
	}
}

func TestOpenVisits(t *testing.T) {
	t.Parallel()
	_, store := seed(t)
	got, err := store.OpenByVehicles(t.Context(), []string{"沪A00001", "沪B00002", "沪C00003", "沪Z99999"})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(ids(got), idsOf(openA, hazardB)) {
		t.Errorf("current stations %v", ids(got))
	}
	if got, _ := store.OpenByVehicles(t.Context(), nil); len(got) != 0 {
		t.Errorf("no plates: %v", got)
	}
	inside, err := store.OpenAtStation(t.Context(), "S2", 10)
	if err != nil || !slices.Equal(ids(inside), idsOf(openA)) {
		t.Errorf("inside S2: %v %v", ids(inside), err)
	}
	if inside, _ := store.OpenAtStation(t.Context(), "S1", 10); len(inside) != 0 {
		t.Errorf("inside S1: %v", ids(inside))
	}
}

func TestUnreadableRecordsAreSkipped(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	cl, err := h.kc.NewClient("test-producer")
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	topic := h.kc.Topic(event.TopicGeofence)
	badID, _ := event.New(event.TypeEnteredStation, "/x", "沪A1", t0, geofence.Visit{Vehicle: "沪A1", StationID: "S1", StationType: "oil", VisitID: "v1", FixTime: t0}, "x")
	noDwell, _ := event.New(event.TypeExitedStation, "/x", "沪A1", t0, geofence.Visit{Vehicle: "沪A1", StationID: "S1", StationType: "oil", VisitID: closedA.id(), FixTime: t0}, "y")
	var records []*kgo.Record
	for _, v := range [][]byte{[]byte("{"), mustMarshal(badID), mustMarshal(noDwell)} {
		records = append(records, &kgo.Record{Topic: topic, Key: []byte("沪A1"), Value: v})
	}
	if err := cl.ProduceSync(t.Context(), records...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	h.n += len(records)
	h.produce(t, closedA.transitions()...)
	h.start(t)
	h.wait(t)
	got, err := visits.NewStore(h.pool).List(t.Context(), visits.Query{From: at(-1000), To: at(1000), Limit: 10})
	if err != nil || !slices.Equal(ids(got), idsOf(closedA)) {
		t.Errorf("visits %v, %v", ids(got), err)
	}
}

func mustMarshal(e event.Envelope) []byte {
	b, _ := json.Marshal(e)
	return b
}
