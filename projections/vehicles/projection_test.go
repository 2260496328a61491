package vehicles_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tmsfleet/tms/adapters/kafka"
	"github.com/tmsfleet/tms/adapters/postgres"
	"github.com/tmsfleet/tms/domain/event"
	"github.com/tmsfleet/tms/domain/position"
	"github.com/tmsfleet/tms/internal/testenv"
	"github.com/tmsfleet/tms/projections/projector"
	"github.com/tmsfleet/tms/projections/vehicles"
)

var t0 = time.Date(2026, 11, 27, 8, 0, 0, 0, time.UTC)

func fix(plate string, second int, lat float64) position.Position {
	at := t0.Add(time.Duration(second) * time.Second)
	return position.Position{Plate: plate, FixTime: at, ReceivedAt: at.Add(time.Second), Lat: lat, Lng: 121, SpeedKmh: 30}
}

type harness struct {
	kc   *kafka.Config
	pool *pgxpool.Pool
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

// produce writes fixes to the positions topic, in order, and returns how
// many records it wrote.
func (h *harness) produce(t *testing.T, fixes ...position.Position) int {
	t.Helper()
	cl, err := h.kc.NewClient("test-producer")
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	records := make([]*kgo.Record, 0, len(fixes))
	for _, f := range fixes {
		e, err := f.Event("/test")
		if err != nil {
			t.Fatal(err)
		}
		v, _ := json.Marshal(e)
		records = append(records, &kgo.Record{Topic: h.kc.Topic(event.TopicPositions), Key: []byte(f.Plate), Value: v})
	}
	if err := cl.ProduceSync(t.Context(), records...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	return len(records)
}

// start runs a projector until the returned stop is called or the test
// ends.
func (h *harness) start(t *testing.T, cfg projector.Config[position.Position]) (stop func()) {
	t.Helper()
	cfg.Spec, cfg.Kafka, cfg.Pool = vehicles.Spec, h.kc, h.pool
	if cfg.Projection == nil {
		cfg.Projection = vehicles.NewProjection(nil, nil)
	}
	cfg.RetryBackoff = 10 * time.Millisecond
	p, err := projector.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return testenv.Go(t, "projector", p.Run)
}

// applied returns how many records of the positions topic the projector
// has committed.
func (h *harness) applied(t *testing.T) int64 {
	t.Helper()
	var n int64
	err := h.pool.QueryRow(t.Context(), `
		SELECT coalesce(sum(next_offset), 0) FROM projector_offsets WHERE projector = $1 AND topic = $2`,
		vehicles.ProjectionName, h.kc.Topic(event.TopicPositions)).Scan(&n)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// waitApplied waits until the projector has committed n records. It polls
// the committed state: that state is what the test is about.
func (h *harness) waitApplied(t *testing.T, n int) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for h.applied(t) < int64(n) {
		if time.Now().After(deadline) {
			t.Fatalf("projector committed %d of %d records", h.applied(t), n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestLatestFixByFixTimeAndEachFixOnce(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	n := h.produce(t,
		fix("沪A00001", 1, 31.1), fix("沪A00001", 2, 31.2), fix("沪A00001", 3, 31.3),
		fix("沪A00002", 5, 30.5),
		fix("沪A00002", 4, 30.4), // late: older than what B already reported
		fix("沪A00001", 2, 31.2), // the same fix again (a redelivery)
	)
	h.start(t, projector.Config[position.Position]{})
	h.waitApplied(t, n)

	store := vehicles.NewStore(h.pool)
	a, err := store.Get(t.Context(), "沪A00001")
	if err != nil {
		t.Fatal(err)
	}
	if a.Lat != 31.3 || !a.FixTime.Equal(t0.Add(3*time.Second)) || a.PositionsCount != 3 {
		t.Errorf("A = %+v, want the fix at +3s and 3 fixes", a)
	}
	if !a.FirstSeen.Equal(t0.Add(2*time.Second)) || !a.LastSeen.Equal(t0.Add(4*time.Second)) {
		t.Errorf("A first seen %v, last seen %v", a.FirstSeen, a.LastSeen)
	}
	b, err := store.Get(t.Context(), "沪A00002")
	if err != nil {
		t.Fatal(err)
	}
	if b.Lat != 30.5 || b.PositionsCount != 2 {
		t.Errorf("B = %+v: the late fix must not replace the newer one, and both count", b)
	}
	track, err := store.Track(t.Context(), vehicles.TrackQuery{Plate: "沪A00002", From: t0, To: t0.Add(time.Hour), Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	if len(track) != 2 || track[0].Lat != 30.4 || track[1].Lat != 30.5 {
		t.Errorf("B's track = %+v, want both fixes in fix-time order", track)
	}
	if _, err := store.Get(t.Context(), "沪Z99999"); !errors.Is(err, vehicles.ErrNotFound) {
		t.Errorf("unknown plate: %v", err)
	}
}

// TestFailureBetweenWritingAndCommittingDoublesNothing injects a failure
// after a batch's rows and offsets are written and before the commit, and
// stops that projector at that moment, as a crash would. A new projector
// then finishes the topic: every count must be exact.
func TestFailureBetweenWritingAndCommittingDoublesNothing(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	const vehiclesN, fixesEach = 20, 25
	var fixes []position.Position
	for s := range fixesEach {
		for v := range vehiclesN {
			fixes = append(fixes, fix(fmt.Sprintf("沪B%05d", v), s, 31+float64(s)/100))
		}
	}
	n := h.produce(t, fixes...)

	crashed := make(chan struct{})
	var batches atomic.Int32
	stop := h.start(t, projector.Config[position.Position]{
		MaxBatch: 37,
		AfterApply: func(context.Context) error {
			if batches.Add(1) == 4 {
				close(crashed)
				return errors.New("injected failure before commit")
			}
			return nil
		},
	})
	<-crashed
	stop()
	if got := h.applied(t); got == 0 || got >= int64(n) {
		t.Fatalf("the failure came after %d of %d records: it should be mid-stream", got, n)
	}

	h.start(t, projector.Config[position.Position]{MaxBatch: 37})
	h.waitApplied(t, n)
	assertCounts(t, h.pool, vehiclesN, fixesEach)
}

// TestTwoInstancesShareTheTopicWithoutDoubling runs two projectors in one
// group at once; partitions move between them as the second joins.
func TestTwoInstancesShareTheTopicWithoutDoubling(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	const vehiclesN, fixesEach = 30, 20
	var fixes []position.Position
	for s := range fixesEach {
		for v := range vehiclesN {
			fixes = append(fixes, fix(fmt.Sprintf("沪C%05d", v), s, 31))
		}
	}
	h.start(t, projector.Config[position.Position]{MaxBatch: 25})
	n := h.produce(t, fixes[:len(fixes)/2]...)
	h.start(t, projector.Config[position.Position]{MaxBatch: 25})
	n += h.produce(t, fixes[len(fixes)/2:]...)
	h.waitApplied(t, n)
	assertCounts(t, h.pool, vehiclesN, fixesEach)
}

// TestMembersShareThePartitions runs one projector with three members of
// its group, as `tms serve` runs the vehicles projection, with client
// metrics on and static membership (as with TMS_INSTANCE_ID): the
// members join as three, and every fix is stored once.
func TestMembersShareThePartitions(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	kc := *h.kc
	kc.InstanceID = "members-test"
	kc.Registerer = prometheus.NewRegistry()
	h.kc = &kc
	const vehiclesN, fixesEach = 30, 20
	var fixes []position.Position
	for s := range fixesEach {
		for v := range vehiclesN {
			fixes = append(fixes, fix(fmt.Sprintf("沪D%05d", v), s, 31))
		}
	}
	n := h.produce(t, fixes...)
	stop := h.start(t, projector.Config[position.Position]{MaxBatch: 25, Members: 3})
	h.waitApplied(t, n)
	assertCounts(t, h.pool, vehiclesN, fixesEach)
	adm, err := kc.NewAdmin("test-admin")
	if err != nil {
		t.Fatal(err)
	}
	defer adm.Close()
	groups, err := adm.DescribeGroups(t.Context(), kc.Group(vehicles.ProjectionName))
	if err != nil {
		t.Fatal(err)
	}
	if g := groups[kc.Group(vehicles.ProjectionName)]; len(g.Members) != 3 {
		t.Errorf("the group has %d members, want 3", len(g.Members))
	}
	stop()
}

func assertCounts(t *testing.T, pool *pgxpool.Pool, vehiclesN, fixesEach int) {
	t.Helper()
	var rows, distinct, counted, vehicleRows int64
	if err := pool.QueryRow(t.Context(), `
		SELECT (SELECT count(*) FROM positions),
		       (SELECT count(DISTINCT (plate, fix_time)) FROM positions),
		       (SELECT coalesce(sum(positions_count), 0) FROM vehicles),
		       (SELECT count(*) FROM vehicles)`).Scan(&rows, &distinct, &counted, &vehicleRows); err != nil {
		t.Fatal(err)
	}
	want := int64(vehiclesN * fixesEach)
	if rows != want || distinct != want || counted != want || vehicleRows != int64(vehiclesN) {
		t.Errorf("positions %d (distinct %d), counted %d, vehicles %d; want %d fixes of %d vehicles",
			rows, distinct, counted, vehicleRows, want, vehiclesN)
	}
}

// TestARedeliveredFixIsStoredOnceAcrossBatches covers the fix that comes
// back at a new offset (ingest redelivered it after a crash): the batch
// holding it cannot be copied whole, and goes in row by row.
func TestARedeliveredFixIsStoredOnceAcrossBatches(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	n := h.produce(t, fix("沪D00001", 1, 31.1), fix("沪D00001", 2, 31.2))
	h.start(t, projector.Config[position.Position]{})
	h.waitApplied(t, n)
	noTime := fix("沪D00001", 3, 31.3)
	noTime.Flags = []string{position.FlagNoFixTime}
	n += h.produce(t, fix("沪D00001", 2, 31.2), noTime, fix("沪D00002", 1, 30.0))
	h.waitApplied(t, n)

	a, err := vehicles.NewStore(h.pool).Get(t.Context(), "沪D00001")
	if err != nil {
		t.Fatal(err)
	}
	if a.PositionsCount != 3 || a.Lat != 31.3 || len(a.Flags) != 1 || a.Flags[0] != position.FlagNoFixTime {
		t.Errorf("vehicle = %+v, want 3 fixes, the latest flagged %s", a, position.FlagNoFixTime)
	}
	assertRows(t, h.pool, 4)
}

func assertRows(t *testing.T, pool *pgxpool.Pool, want int64) {
	t.Helper()
	var rows, counted int64
	if err := pool.QueryRow(t.Context(), `SELECT (SELECT count(*) FROM positions), (SELECT sum(positions_count) FROM vehicles)`).
		Scan(&rows, &counted); err != nil {
		t.Fatal(err)
	}
	if rows != want || counted != want {
		t.Errorf("%d positions stored, %d counted; want %d", rows, counted, want)
	}
}

// TestTransactionalInputIsReadToItsEnd feeds the projection from a
// transactional producer, one transaction committed and one aborted: the
// aborted fixes are never stored, and the stored offsets reach the end a
// read_committed reader can reach, transaction markers included.
func TestTransactionalInputIsReadToItsEnd(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	cl, err := h.kc.NewClient("test-txn", kgo.TransactionalID(testenv.Name("txn")), kgo.DefaultProduceTopic(h.kc.Topic(event.TopicPositions)))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	txn := func(commit bool, fixes ...position.Position) {
		if err := cl.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		for _, f := range fixes {
			e, _ := f.Event("/test")
			v, _ := json.Marshal(e)
			if err := cl.ProduceSync(t.Context(), &kgo.Record{Key: []byte(f.Plate), Value: v}).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
		if err := cl.EndTransaction(t.Context(), kgo.TransactionEndTry(commit)); err != nil {
			t.Fatal(err)
		}
	}
	txn(true, fix("沪E00001", 1, 31.1), fix("沪E00001", 2, 31.2))
	txn(false, fix("沪E00001", 3, 39.9))
	txn(true, fix("沪E00001", 4, 31.4))

	adm, err := h.kc.NewAdmin("test-admin")
	if err != nil {
		t.Fatal(err)
	}
	defer adm.Close()
	stable, err := adm.ListCommittedOffsets(t.Context(), h.kc.Topic(event.TopicPositions))
	if err != nil {
		t.Fatal(err)
	}
	var end int64
	stable.Each(func(o kadm.ListedOffset) { end += o.Offset })
	h.start(t, projector.Config[position.Position]{})
	h.waitApplied(t, int(end))

	a, err := vehicles.NewStore(h.pool).Get(t.Context(), "沪E00001")
	if err != nil {
		t.Fatal(err)
	}
	if a.PositionsCount != 3 || a.Lat != 31.4 {
		t.Errorf("vehicle = %+v: want the 3 committed fixes only", a)
	}
}
