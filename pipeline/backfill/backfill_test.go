package backfill_test

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tmsfleet/tms/adapters/g7api"
	"github.com/tmsfleet/tms/domain/event"
	"github.com/tmsfleet/tms/internal/g7fake"
	"github.com/tmsfleet/tms/pipeline/backfill"
)

const plate = "沪A12345"

var (
	from = time.Date(2026, 9, 1, 0, 0, 0, 0, time.UTC)
	to   = from.Add(10 * 24 * time.Hour)
)

// store is an in-memory backfill.Progresses: the progress rows, and the
// fixes tms has, by plate and Unix microseconds.
type store struct {
	mu       sync.Mutex
	progress map[string]backfill.Progress
	known    map[string]map[int64]bool
	saves    int
	// failSave fails the failSave-th save (from 1).
	failSave int
}

func newStore() *store {
	return &store{progress: map[string]backfill.Progress{}, known: map[string]map[int64]bool{}}
}

func (s *store) Load(_ context.Context, _, plate string, _, _ time.Time) (backfill.Progress, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.progress[plate]
	return p, ok, nil
}

func (s *store) Save(_ context.Context, p backfill.Progress, _ time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.saves++; s.saves == s.failSave {
		return errors.New("postgres went away")
	}
	s.progress[p.Plate] = p
	return nil
}

func (s *store) Known(_ context.Context, plate string, from, through time.Time) (map[int64]bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[int64]bool{}
	for at := range s.known[plate] {
		if at >= from.UnixMicro() && at <= through.UnixMicro() {
			out[at] = true
		}
	}
	return out, nil
}

// project stores fixes as the positions projector would.
func (s *store) project(t *testing.T, records []*kgo.Record) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range records {
		var e struct {
			Subject string
			Time    time.Time
			Type    string
		}
		if err := json.Unmarshal(r.Value, &e); err != nil {
			t.Fatal(err)
		}
		if e.Type != event.TypePositionReported {
			continue
		}
		if s.known[e.Subject] == nil {
			s.known[e.Subject] = map[int64]bool{}
		}
		s.known[e.Subject][e.Time.UnixMicro()] = true
	}
}

// producer keeps what it is given; it fails the failAt-th call (from 1).
type producer struct {
	records []*kgo.Record
	calls   int
	failAt  int
}

func (p *producer) ProduceSync(_ context.Context, rs ...*kgo.Record) kgo.ProduceResults {
	p.calls++
	var out kgo.ProduceResults
	for _, r := range rs {
		var err error
		if p.calls == p.failAt {
			err = errors.New("NOT_ENOUGH_REPLICAS")
		} else {
			p.records = append(p.records, r)
		}
		out = append(out, kgo.ProduceResult{Record: r, Err: err})
	}
	return out
}

// ids counts the records of each event id, by topic.
func ids(t *testing.T, records []*kgo.Record) map[string]map[string]int {
	out := map[string]map[string]int{}
	for _, r := range records {
		e, err := event.Decode(r.Value)
		if err != nil {
			t.Fatal(err)
		}
		if out[r.Topic] == nil {
			out[r.Topic] = map[string]int{}
		}
		out[r.Topic][e.ID]++
	}
	return out
}

func g7(t *testing.T) (*g7fake.Server, *g7api.Client, []g7fake.Row) {
	srv := g7fake.New(t, "k", "s")
	rows := g7fake.Track(from, 2500, 5*time.Minute, 31.2, 121.4)
	srv.Add(plate, rows...)
	srv.Add(plate, g7fake.Row{Time: from.Add(90 * time.Second), Raw: json.RawMessage(`{"lng":"121","lat":"-91","time":` +
		jsonInt(from.Add(90*time.Second).UnixMilli()) + `}`)})
	c, err := g7api.New(g7api.Config{BaseURL: srv.URL, Key: "k", Secret: "s", Rate: 1000, Backoff: time.Millisecond,
		BackoffMax: time.Millisecond, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	return srv, c, rows
}

func jsonInt(n int64) string { b, _ := json.Marshal(n); return string(b) }

func run(t *testing.T, cfg backfill.Config) ([]backfill.Summary, error) {
	t.Helper()
	cfg.Logger = slog.New(slog.DiscardHandler)
	b, err := backfill.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return b.Run(t.Context(), []string{plate}, from, to)
}

// The fixes tms has are left out; the rest go out with the live ids and
// the backfill's source, the bad row as a dead letter; the range is
// recorded done.
func TestRunAddsWhatTmsHasNot(t *testing.T) {
	t.Parallel()
	_, c, rows := g7(t)
	st, prod := newStore(), &producer{}
	st.known[plate] = map[int64]bool{}
	for _, r := range rows[:100] {
		st.known[plate][r.Time.UnixMicro()] = true
	}
	sums, err := run(t, backfill.Config{History: c, Producer: prod, Store: st})
	if err != nil {
		t.Fatal(err)
	}
	s := sums[0]
	if s.Fetched != 2501 || s.Rejected != 1 || s.Known != 100 || s.Added != 2400 || s.Pages != 3 || !s.Completed {
		t.Errorf("summary %+v", s)
	}
	got := ids(t, prod.records)
	for _, r := range rows[100:] {
		if got[event.TopicPositions][event.ID(event.TypePositionReported, plate, r.Time.Format(time.RFC3339Nano))] != 1 {
			t.Fatalf("the fix at %s is not there once with its live id", r.Time)
		}
	}
	if len(got[event.TopicPositions]) != 2400 || len(got[event.TopicDeadLetter]) != 1 {
		t.Errorf("%d positions, %d dead letters", len(got[event.TopicPositions]), len(got[event.TopicDeadLetter]))
	}
	for _, r := range prod.records {
		if e, _ := event.Decode(r.Value); e.Source != backfill.Source || string(r.Key) != plate {
			t.Fatalf("a record of source %s, key %s", e.Source, r.Key)
		}
	}
	if p := st.progress[plate]; p.CompletedAt == nil || !p.Until.Equal(to) || p.Added != 2400 {
		t.Errorf("progress %+v", p)
	}
}

func TestDryRunWritesNothing(t *testing.T) {
	t.Parallel()
	_, c, _ := g7(t)
	st := newStore()
	sums, err := run(t, backfill.Config{History: c, Store: st, DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	if s := sums[0]; s.Added != 2500 || s.Rejected != 1 || s.Completed {
		t.Errorf("summary %+v", s)
	}
	if len(st.progress) != 0 {
		t.Errorf("a dry run recorded progress: %+v", st.progress)
	}
}

// Progress is recorded only once Kafka has the page: a page Kafka
// refused is not, and the rerun sends it.
func TestProgressOnlyAfterKafka(t *testing.T) {
	t.Parallel()
	_, c, rows := g7(t)
	st, prod := newStore(), &producer{failAt: 2}
	if _, err := run(t, backfill.Config{History: c, Producer: prod, Store: st}); err == nil {
		t.Fatal("a refused page did not end the run")
	}
	// The first page is 1,000 rows: the bad one and rows[:999].
	p := st.progress[plate]
	if p.CompletedAt != nil || !p.Until.Equal(rows[998].Time.Add(time.Millisecond)) {
		t.Fatalf("progress until %s after one page in Kafka", p.Until)
	}
	prod.failAt = 0
	sums, err := run(t, backfill.Config{History: c, Producer: prod, Store: st})
	if err != nil {
		t.Fatal(err)
	}
	if s := sums[0]; s.ResumedFrom == nil || !s.ResumedFrom.Equal(p.Until) || !s.Completed || s.Added != 2500 {
		t.Errorf("summary %+v", s)
	}
	if got := ids(t, prod.records)[event.TopicPositions]; len(got) != 2500 {
		t.Errorf("%d fixes in Kafka, want 2500", len(got))
	}
	for id, n := range ids(t, prod.records)[event.TopicPositions] {
		if n != 1 {
			t.Fatalf("%s %d times", id, n)
		}
	}
}

// Killed between Kafka's acknowledgement and the progress record, the
// rerun sends that page again with the same ids, less what the positions
// projector has stored meanwhile. (The second page holds 999 new fixes:
// it is asked from the second of the first page's last row, which it
// repeats.)
func TestAckedButNotRecorded(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name      string
		projected bool
		again     int
	}{{"the projector behind", false, 999}, {"the projector caught up", true, 0}} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			_, client, _ := g7(t)
			st, prod := newStore(), &producer{}
			st.failSave = 2
			if _, err := run(t, backfill.Config{History: client, Producer: prod, Store: st}); err == nil {
				t.Fatal("a failed save did not end the run")
			}
			if c.projected {
				st.project(t, prod.records)
			}
			sums, err := run(t, backfill.Config{History: client, Producer: prod, Store: st})
			if err != nil {
				t.Fatal(err)
			}
			got := ids(t, prod.records)[event.TopicPositions]
			twice := 0
			for _, n := range got {
				twice += n - 1
			}
			if len(got) != 2500 || twice != c.again || sums[0].Known != int64(999-c.again) {
				t.Errorf("%d ids, %d sent twice (want %d), summary %+v", len(got), twice, c.again, sums[0])
			}
		})
	}
}

func TestConfig(t *testing.T) {
	t.Parallel()
	if _, err := backfill.New(backfill.Config{}); err == nil {
		t.Error("an empty config")
	}
	if _, err := backfill.New(backfill.Config{History: &g7api.Client{}, Store: newStore()}); err == nil {
		t.Error("no producer outside a dry run")
	}
	b, err := backfill.New(backfill.Config{History: &g7api.Client{}, Store: newStore(), DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Run(t.Context(), []string{plate}, to, from); err == nil {
		t.Error("a range backwards")
	}
}
