package g7events_test

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tmsfleet/tms/adapters/postgres"
	"github.com/tmsfleet/tms/domain/event"
	"github.com/tmsfleet/tms/domain/g7event"
	"github.com/tmsfleet/tms/internal/testenv"
	"github.com/tmsfleet/tms/internal/tmsproc"
	"github.com/tmsfleet/tms/projections/g7events"
	"github.com/tmsfleet/tms/projections/projector"
)

var t0 = time.Date(2026, 11, 27, 8, 0, 0, 0, time.UTC)

func at(min int) time.Time { return t0.Add(time.Duration(min) * time.Minute) }

func ptr[T any](v T) *T { return &v }

// report is one report of a G7 event: its end (none when open) and
// pushTime, in minutes after t0.
func report(plate string, kind g7event.Kind, start int, end, push *int) g7event.Report {
	r := g7event.Report{Plate: plate, Kind: kind, Start: at(start), StartLat: 31.2, StartLng: 121.4, ReceivedAt: at(start)}
	if end != nil {
		r.End = ptr(at(*end))
		r.EndLat, r.EndLng = ptr(31.2001), ptr(121.4001)
	}
	if push != nil {
		r.PushTime = ptr(at(*push))
		r.ReceivedAt = at(*push)
	}
	return r
}

func envelope(t *testing.T, r g7event.Report) event.Envelope {
	t.Helper()
	if rej := r.Validate(g7event.DefaultMaxDuration); rej != nil {
		t.Fatal(rej)
	}
	e, err := r.Event("/test")
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func pool(t *testing.T) *pgxpool.Pool {
	t.Helper()
	p, err := postgres.Open(t.Context(), testenv.FromEnv(os.LookupEnv).Postgres(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p
}

// apply applies envelopes as the projector does, one transaction per
// call, decoding each from its record.
func apply(t *testing.T, p *pgxpool.Pool, envs ...event.Envelope) {
	t.Helper()
	proj := g7events.NewProjection(nil, nil)
	var reports []g7events.Report
	for _, e := range envs {
		v, _ := json.Marshal(e)
		r, ok := proj.Decode(&kgo.Record{Value: v})
		if !ok {
			t.Fatalf("skipped %s", v)
		}
		reports = append(reports, r)
	}
	tx, err := p.Begin(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(t.Context()) //nolint:errcheck // after a commit, a no-op
	if err := proj.Apply(t.Context(), tx, reports); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(t.Context()); err != nil {
		t.Fatal(err)
	}
}

// TestTheHighestRankingReportStandsInEveryOrder: the reports of one event
// (open, its repeat, open again later, closed, a corrected close, and an
// open repeat pushed after the close) leave one row, the report that
// g7event.Rank puts highest, whatever order they are applied in, alone
// or in batches.
func TestTheHighestRankingReportStandsInEveryOrder(t *testing.T) {
	t.Parallel()
	const plate = "沪A12345"
	reports := []g7event.Report{
		report(plate, g7event.KindStop, 0, nil, ptr(1)),
		report(plate, g7event.KindStop, 0, nil, ptr(1)), // a repeat
		report(plate, g7event.KindStop, 0, nil, ptr(5)),
		report(plate, g7event.KindStop, 0, ptr(20), ptr(21)),
		report(plate, g7event.KindStop, 0, ptr(19), ptr(30)), // G7 corrects the end
		report(plate, g7event.KindStop, 0, nil, ptr(40)),     // a stale open repeat, pushed later
	}
	var envs []event.Envelope
	for _, r := range reports {
		envs = append(envs, envelope(t, r))
	}
	best := 0
	for i, e := range envs {
		d, _ := g7event.FromEvent(e)
		b, _ := g7event.FromEvent(envs[best])
		if g7event.RankOf(envs[best], b).Less(g7event.RankOf(e, d)) {
			best = i
		}
	}
	if best != 4 {
		t.Fatalf("the rank puts report %d highest; the corrected close (4) should be", best)
	}
	p := pool(t)
	rng := rand.New(rand.NewPCG(1, 2))
	orders := [][]int{{0, 1, 2, 3, 4, 5}, {5, 4, 3, 2, 1, 0}, {4, 0, 5, 3}}
	for range 5 {
		orders = append(orders, rng.Perm(len(envs)))
	}
	store := g7events.NewStore(p)
	for n, order := range orders {
		if _, err := p.Exec(t.Context(), `DELETE FROM g7_events`); err != nil {
			t.Fatal(err)
		}
		for i := 0; i < len(order); {
			// Batches of 1 to 3 reports, as the projector's polls fall.
			k := min(len(order), i+1+n%3)
			var batch []event.Envelope
			for _, j := range order[i:k] {
				batch = append(batch, envs[j])
			}
			apply(t, p, batch...)
			i = k
		}
		got, err := store.List(t.Context(), g7events.Query{Vehicle: plate, From: at(-60), To: at(60), Limit: 10})
		if err != nil {
			t.Fatal(err)
		}
		want := envs[best]
		if !slices.Contains(order, best) {
			// The order leaves the corrected close out: the first close wins.
			want = envs[3]
		}
		if len(got) != 1 || got[0].Version != want.ID || got[0].Open || !got[0].End.Equal(want.Time) {
			t.Errorf("order %v: rows %+v, want one holding %s", order, got, want.ID)
		}
		if len(got) == 1 && got[0].ID != reports[0].Key() {
			t.Errorf("row id %s, want the event's key %s", got[0].ID, reports[0].Key())
		}
	}
}

// TestListSelectsByWindowKindAndCursor: the events that overlap the
// window (begun in it, or in progress at its start, open ones included),
// of the kinds asked for, in start order, paged by (start, id).
func TestListSelectsByWindowKindAndCursor(t *testing.T) {
	t.Parallel()
	p := pool(t)
	const plate = "苏B00001"
	before := report(plate, g7event.KindStop, -120, ptr(-90), nil) // ended before the window
	across := report(plate, g7event.KindStop, -30, ptr(10), nil)   // in progress at its start
	openOld := report(plate, g7event.KindEMS, -300, nil, nil)      // open since long before
	idle := report(plate, g7event.KindIdle, 5, ptr(8), nil)
	stop := report(plate, g7event.KindStop, 5, ptr(25), nil) // the same start as idle
	after := report(plate, g7event.KindIdle, 60, ptr(70), nil)
	other := report("浙C55555", g7event.KindStop, 5, ptr(25), nil)
	var envs []event.Envelope
	for _, r := range []g7event.Report{before, across, openOld, idle, stop, after, other} {
		envs = append(envs, envelope(t, r))
	}
	apply(t, p, envs...)
	store := g7events.NewStore(p)
	list := func(q g7events.Query) []string {
		t.Helper()
		q.Vehicle, q.From, q.To = plate, at(0), at(60)
		if q.Limit == 0 {
			q.Limit = 100
		}
		got, err := store.List(t.Context(), q)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, e := range got {
			out = append(out, fmt.Sprintf("%s@%d", e.Kind, int(e.Start.Sub(t0).Minutes())))
		}
		return out
	}
	// Two events starting at 5: stop and idle, in id order.
	sameStart := []string{"idle@5", "stop@5"}
	if idle.Key() > stop.Key() {
		sameStart = []string{"stop@5", "idle@5"}
	}
	all := append([]string{"ems@-300", "stop@-30"}, sameStart...)
	if got := list(g7events.Query{}); !slices.Equal(got, all) {
		t.Errorf("all kinds: %v, want %v", got, all)
	}
	if got := list(g7events.Query{Kinds: []g7event.Kind{g7event.KindStop}}); !slices.Equal(got, []string{"stop@-30", "stop@5"}) {
		t.Errorf("stops: %v", got)
	}
	var pages []string
	var after2 *g7events.Cursor
	for range 10 {
		got, err := store.List(t.Context(), g7events.Query{Vehicle: plate, From: at(0), To: at(60), After: after2, Limit: 1})
		if err != nil {
			t.Fatal(err)
		}
		if len(got) == 0 {
			break
		}
		pages = append(pages, fmt.Sprintf("%s@%d", got[0].Kind, int(got[0].Start.Sub(t0).Minutes())))
		after2 = &g7events.Cursor{Start: got[0].Start, ID: got[0].ID}
	}
	if !slices.Equal(pages, all) {
		t.Errorf("paged one by one: %v, want %v", pages, all)
	}
}

// TestProjectorBuildsOneRowPerEvent runs the projector over Kafka: an
// event reported open, repeated, then closed, and a second event, make
// two rows, and the offsets are committed with them.
func TestProjectorBuildsOneRowPerEvent(t *testing.T) {
	t.Parallel()
	svc := testenv.FromEnv(os.LookupEnv)
	kc := svc.Kafka(t)
	p := pool(t)
	const plate = "沪A12345"
	reports := []g7event.Report{
		report(plate, g7event.KindIdle, 0, nil, ptr(1)),
		report(plate, g7event.KindIdle, 0, nil, ptr(1)),
		report(plate, g7event.KindIdle, 0, ptr(12), ptr(13)),
		report(plate, g7event.KindStop, 30, ptr(50), ptr(51)),
	}
	cl, err := kc.NewClient("test-producer")
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var records []*kgo.Record
	for _, r := range reports {
		v, _ := json.Marshal(envelope(t, r))
		records = append(records, &kgo.Record{Topic: kc.Topic(event.TopicG7Events), Key: []byte(plate), Value: v})
	}
	records = append(records, &kgo.Record{Topic: kc.Topic(event.TopicG7Events), Key: []byte(plate), Value: []byte(`{"not":"an event"}`)})
	if err := cl.ProduceSync(t.Context(), records...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	proj, err := projector.New(projector.Config[g7events.Report]{
		Spec: g7events.Spec, Kafka: kc, Pool: p, Projection: g7events.NewProjection(nil, nil), RetryBackoff: 10 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	testenv.Go(t, "projector", proj.Run)
	tmsproc.Eventually(t, 60*time.Second, "the projector commits every record", func() bool {
		var got int64
		if err := p.QueryRow(t.Context(), `SELECT coalesce(sum(next_offset), 0) FROM projector_offsets WHERE projector = $1 AND topic = $2`,
			g7events.ProjectionName, kc.Topic(event.TopicG7Events)).Scan(&got); err != nil {
			t.Fatal(err)
		}
		return got >= int64(len(records))
	})
	got, err := g7events.NewStore(p).List(t.Context(), g7events.Query{Vehicle: plate, From: at(-1), To: at(60), Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Kind != g7event.KindIdle || got[0].Open || !got[0].End.Equal(at(12)) ||
		got[1].Kind != g7event.KindStop || *got[1].EndLat != 31.2001 {
		t.Errorf("rows %+v", got)
	}
}
