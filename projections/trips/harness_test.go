package trips_test

import (
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tmsfleet/tms/adapters/kafka"
	"github.com/tmsfleet/tms/adapters/postgres"
	"github.com/tmsfleet/tms/domain/event"
	"github.com/tmsfleet/tms/domain/geo"
	"github.com/tmsfleet/tms/domain/position"
	"github.com/tmsfleet/tms/internal/testenv"
	"github.com/tmsfleet/tms/projections/projector"
	"github.com/tmsfleet/tms/projections/trips"
)

var t0 = time.Date(2026, 11, 27, 6, 0, 0, 0, time.UTC)

// harness is a Kafka namespace and a database of the test's own, and the
// records it has produced to tms.positions.
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

// produce writes fixes as position events to tms.positions, keyed by
// plate, in order.
func (h *harness) produce(t *testing.T, fixes ...position.Position) {
	t.Helper()
	cl, err := h.kc.NewClient("test-producer")
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	records := make([]*kgo.Record, 0, len(fixes))
	for _, f := range fixes {
		if f.ReceivedAt.IsZero() {
			f.ReceivedAt = f.FixTime.Add(time.Second)
		}
		e, err := f.Event("/test/ingest")
		if err != nil {
			t.Fatal(err)
		}
		v, err := json.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		records = append(records, &kgo.Record{Topic: h.kc.Topic(event.TopicPositions), Key: []byte(f.Plate), Value: v})
	}
	if err := cl.ProduceSync(t.Context(), records...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	h.n += len(records)
}

// project runs the trips projector, in batches of at most maxBatch
// records, until it has committed every record produced, and stops it.
func (h *harness) project(t *testing.T, s trips.Settings, maxBatch int) {
	t.Helper()
	p, err := projector.New(projector.Config[trips.Fix]{
		Spec: trips.Spec, Kafka: h.kc, Pool: h.pool, Projection: trips.NewProjection(s, nil, nil),
		MaxBatch: maxBatch, RetryBackoff: 10 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	stop := testenv.Go(t, "projector", p.Run)
	defer stop()
	h.wait(t)
}

// wait waits until the projector has committed every record produced.
func (h *harness) wait(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for {
		var got int64
		if err := h.pool.QueryRow(t.Context(), `
			SELECT coalesce(sum(next_offset), 0) FROM projector_offsets WHERE projector = $1 AND topic = $2`,
			trips.ProjectionName, h.kc.Topic(event.TopicPositions)).Scan(&got); err != nil {
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

// tables reads every table of the read model, each as its rows in order,
// one line per row.
func (h *harness) tables(t *testing.T) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, table := range trips.Spec.Tables {
		var s string
		if err := h.pool.QueryRow(t.Context(), `SELECT coalesce(string_agg(t::text, E'\n' ORDER BY t::text), '')
			FROM `+pgx.Identifier{table}.Sanitize()+` t`).Scan(&s); err != nil {
			t.Fatal(err)
		}
		out[table] = s
	}
	return out
}

// sameTables reports how two readings of the tables differ.
func sameTables(t *testing.T, what string, a, b map[string]string) {
	t.Helper()
	for _, table := range slices.Sorted(maps.Keys(a)) {
		if a[table] != b[table] {
			al, bl := strings.Split(a[table], "\n"), strings.Split(b[table], "\n")
			for i := range max(len(al), len(bl)) {
				var x, y string
				if i < len(al) {
					x = al[i]
				}
				if i < len(bl) {
					y = bl[i]
				}
				if x != y {
					t.Errorf("%s: table %s differs (%d and %d rows), first at row %d:\n  %s\n  %s", what, table, len(al), len(bl), i, x, y)
					break
				}
			}
		}
	}
}

// segment is a row of trips or stops, as the tests compare them.
type segment struct {
	kind       string
	id         string
	start, end time.Time
	open       bool
	distance   float64
	revision   int
	flags      []string
}

func (s segment) String() string {
	return fmt.Sprintf("%s %s-%s %.0fm r%d open=%v %v", s.kind, s.start.Format("15:04:05"), s.end.Format("15:04:05"),
		s.distance, s.revision, s.open, s.flags)
}

// segments reads a vehicle's trips and stops, in start order (a trip
// before the stop that starts where it ends).
func (h *harness) segments(t *testing.T, plate string) []segment {
	t.Helper()
	rows, err := h.pool.Query(t.Context(), `
		SELECT 'trip', id::text, start_time, end_time, open, distance_m, revision, flags FROM trips WHERE vehicle = $1
		UNION ALL
		SELECT 'stop', id::text, start_time, end_time, open, 0, revision, flags FROM stops WHERE vehicle = $1
		ORDER BY 3, 1 DESC`, plate)
	if err != nil {
		t.Fatal(err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (segment, error) {
		var s segment
		err := r.Scan(&s.kind, &s.id, &s.start, &s.end, &s.open, &s.distance, &s.revision, &s.flags)
		s.start, s.end = s.start.UTC(), s.end.UTC()
		return s, err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func describe(segs []segment) string {
	var b strings.Builder
	for _, s := range segs {
		b.WriteString(s.String() + "\n")
	}
	return b.String()
}

// offset moves p by north and east metres.
func offset(p geo.Point, north, east float64) geo.Point {
	return geo.Point{
		Lat: p.Lat + north/geo.MetresPerDegreeLat,
		Lng: p.Lng + east/(geo.MetresPerDegreeLat*math.Cos(p.Lat*math.Pi/180)),
	}
}

// day writes a vehicle's day fix by fix, as the domain tests do.
type day struct {
	plate string
	at    time.Time
	p     geo.Point
	every time.Duration
	rng   *rand.Rand
	fixes []position.Position
}

func newDay(plate string, seed uint64, every time.Duration) *day {
	return &day{plate: plate, at: t0, p: geo.Point{Lat: 31.2, Lng: 121.4}, every: every, rng: rand.New(rand.NewPCG(seed, 1))}
}

func (d *day) fix(p geo.Point, kmh float64) {
	d.fixes = append(d.fixes, position.Position{Plate: d.plate, FixTime: d.at, ReceivedAt: d.at.Add(time.Second),
		Lat: p.Lat, Lng: p.Lng, SpeedKmh: kmh})
}

func (d *day) park(dur time.Duration, driftM float64) {
	for end := d.at.Add(dur); d.at.Before(end); d.at = d.at.Add(d.every) {
		d.fix(offset(d.p, d.rng.NormFloat64()*driftM, d.rng.NormFloat64()*driftM), 0)
	}
}

// drive goes north and east metres in a straight line at kmh, setting
// off at the last fix; the last fix is at the destination, standing.
func (d *day) drive(north, east, kmh float64) {
	to := offset(d.p, north, east)
	dur := time.Duration(geo.Haversine(d.p, to) / (kmh / 3.6) * float64(time.Second))
	from, start := d.p, d.at.Add(-d.every)
	for e := d.every; e < dur; e += d.every {
		f := float64(e) / float64(dur)
		d.at = start.Add(e)
		d.fix(geo.Point{Lat: from.Lat + f*(to.Lat-from.Lat), Lng: from.Lng + f*(to.Lng-from.Lng)}, kmh)
	}
	d.at = start.Add(dur).Truncate(time.Second)
	if !d.at.After(d.fixes[len(d.fixes)-1].FixTime) {
		d.at = d.fixes[len(d.fixes)-1].FixTime.Add(time.Second)
	}
	d.p = to
	d.fix(to, 0)
	d.at = d.at.Add(d.every)
}

// working is a working day of plate: depot, three drops, depot, with
// waits at lights, a long lunch break with the receiver off, and noise.
func working(plate string, seed uint64) []position.Position {
	d := newDay(plate, seed, 10*time.Second)
	d.park(20*time.Minute, 5)
	d.drive(0, 6000, 50)
	d.park(40*time.Second, 2)
	d.drive(3000, 1000, 60)
	d.park(25*time.Minute, 5)
	d.drive(-2000, 4000, 45)
	d.park(15*time.Minute, 5)
	d.park(90*time.Minute, 5)
	d.at = d.at.Add(80 * time.Minute) // lunch, receiver off
	d.park(10*time.Minute, 5)
	d.drive(-1000, -11000, 70)
	d.park(30*time.Minute, 5)
	// A jump, and a multipath fix while parked.
	d.fixes[300].Lat += 0.2
	d.fixes[len(d.fixes)-20].Lat += 300 / geo.MetresPerDegreeLat
	return d.fixes
}

// reset empties the read model's tables and its projector's offsets, so
// that the next projection starts from the beginning of the topic.
func (h *harness) reset(t *testing.T) {
	t.Helper()
	tables := make([]string, len(trips.Spec.Tables))
	for i, name := range trips.Spec.Tables {
		tables[i] = pgx.Identifier{name}.Sanitize()
	}
	err := pgx.BeginFunc(t.Context(), h.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(t.Context(), "TRUNCATE "+strings.Join(tables, ", ")); err != nil {
			return err
		}
		_, err := tx.Exec(t.Context(), `DELETE FROM projector_offsets WHERE projector = $1`, trips.ProjectionName)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}
