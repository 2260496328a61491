package geofence

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tmsfleet/tms/adapters/kafka"
	"github.com/tmsfleet/tms/domain/deadletter"
	"github.com/tmsfleet/tms/domain/event"
	"github.com/tmsfleet/tms/domain/geo"
	"github.com/tmsfleet/tms/domain/geofence"
	"github.com/tmsfleet/tms/domain/position"
	"github.com/tmsfleet/tms/domain/station"
)

// Processor is the running geofence role.
type Processor struct {
	cfg     Config
	log     *slog.Logger
	metrics *metrics
	catalog *geofence.Catalog
	feed    *stationFeed

	topics struct{ positions, geofence, state, deadletter string }
	// parts holds the state of the partitions this instance owns and
	// has restored; revoked lists those a rebalance took away.
	parts   map[int32]*partitionState
	mu      sync.Mutex
	revoked map[int32]bool
	// ready is closed once the catalogue holds every station there was
	// at start and processing can begin.
	ready chan struct{}
	// forgetWarned is when vehicles being forgotten was last logged
	// (Unix nanoseconds).
	forgetWarned atomic.Int64
}

// Ready is closed once the processor has loaded the station catalogue
// and starts deciding; readiness checks wait for it.
func (p *Processor) Ready() <-chan struct{} { return p.ready }

// New validates cfg and builds the processor.
func New(cfg Config) (*Processor, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	idx, err := cfg.NewIndex()
	if err != nil {
		return nil, err
	}
	catalog := geofence.NewCatalog(idx)
	// Each partition's goroutine makes a tracker of its own; this one
	// checks the configuration now rather than at the first batch.
	if _, err := geofence.NewTracker(cfg.Geofence, catalog); err != nil {
		return nil, err
	}
	p := &Processor{
		cfg: cfg, log: cfg.Logger.With("component", "geofence"), metrics: newMetrics(cfg.Registerer),
		catalog: catalog, parts: map[int32]*partitionState{}, revoked: map[int32]bool{},
		ready: make(chan struct{}),
	}
	p.feed = newStationFeed(&p.cfg, p.log, p.metrics.stationsSkipped)
	p.topics.positions = cfg.Kafka.Topic(event.TopicPositions)
	p.topics.geofence = cfg.Kafka.Topic(event.TopicGeofence)
	p.topics.state = cfg.Kafka.Topic(event.TopicGeofenceState)
	p.topics.deadletter = cfg.Kafka.Topic(event.TopicDeadLetter)
	return p, nil
}

// Run processes until ctx ends or a transaction fails for good. Once ctx
// ends, whatever was in progress is abandoned (an open transaction is
// aborted by the broker or by the next owner) and Run returns nil.
func (p *Processor) Run(ctx context.Context) error {
	err := p.run(ctx)
	if ctx.Err() != nil {
		return nil
	}
	return err
}

func (p *Processor) run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	feedErr := make(chan error, 1)
	go func() { feedErr <- p.feed.run(ctx) }()
	// Decide nothing before the catalogue holds every station there was.
	for caughtUp := false; !caughtUp; {
		select {
		case <-ctx.Done():
			return nil
		case err := <-feedErr:
			return err
		case c := <-p.feed.changes:
			p.apply(c)
		case <-p.feed.caughtUp:
			caughtUp = true
		}
	}
	p.drainStations()
	p.log.Info("station catalogue loaded", "stations", p.catalog.Stations())

	partitions, err := p.checkPartitions(ctx)
	if err != nil {
		return err
	}
	sess, err := p.newSession()
	if err != nil {
		return err
	}
	defer sess.Close()
	close(p.ready)
	// Markers go to the state partition they name.
	aux, err := p.cfg.Kafka.NewClient("geofence-aux", kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		return err
	}
	defer aux.Close()
	rest := &restorer{kafka: p.cfg.Kafka, marker: aux, fleetCapacity: fleetCapacity(p.cfg.MaxVehicles, partitions)}

	for {
		fetches := sess.PollRecords(ctx, p.cfg.MaxBatch)
		if ctx.Err() != nil {
			return nil
		}
		if err := fatalFetchError(fetches); err != nil {
			return err
		}
		p.drainStations()
		p.dropRevoked()
		if fetches.NumRecords() == 0 {
			continue
		}
		if err := sess.Begin(); err != nil {
			return fmt.Errorf("geofence: begin a transaction: %w", err)
		}
		failed := p.transact(ctx, sess, rest, fetches)
		if failed != nil {
			if ctx.Err() != nil {
				// Stopping: abort now rather than leave the transaction open
				// until it times out, holding back every read_committed
				// consumer of the topics it wrote to.
				abortCtx, cancelAbort := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
				_, _ = sess.End(abortCtx, kgo.TryAbort)
				cancelAbort()
				return nil
			}
			// The records stay uncommitted; abort and start over from the
			// committed state.
			p.log.Error("processing a batch failed; aborting it", "err", failed)
		}
		committed, err := sess.End(context.WithoutCancel(ctx), kgo.TransactionEndTry(failed == nil))
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("geofence: end a transaction: %w", err)
		}
		p.metrics.transaction(committed)
		if !committed {
			p.log.Warn("a transaction was aborted; restoring the partitions' state from their snapshots")
			// Offsets are back at the last commit; so must the state be.
			p.parts = map[int32]*partitionState{}
		}
	}
}

func (p *Processor) newSession() (*kgo.GroupTransactSession, error) {
	txnID := "tms-geofence-" + newID()
	if p.cfg.Kafka.InstanceID != "" {
		// A stable id: a restarted instance aborts the transaction its
		// crashed predecessor left open at once, instead of consumers
		// waiting for it to time out.
		txnID = "tms-geofence-" + p.cfg.Kafka.InstanceID
	}
	opts := append(p.cfg.Kafka.Options("geofence"), p.cfg.Kafka.GroupOptions(Group)...)
	opts = append(opts,
		kgo.ConsumeTopics(p.topics.positions),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.RequireStableFetchOffsets(),
		kgo.TransactionalID(p.cfg.Kafka.Namespace+txnID),
		kgo.TransactionTimeout(30*time.Second),
		kgo.RecordPartitioner(statePartitioner{state: p.topics.state}),
		kgo.OnPartitionsRevoked(p.onRevoked),
		kgo.OnPartitionsLost(p.onRevoked),
	)
	sess, err := kgo.NewGroupTransactSession(opts...)
	if err != nil {
		return nil, fmt.Errorf("geofence: %w", err)
	}
	return sess, nil
}

// checkPartitions makes sure the state topic has a partition for every
// positions partition (the state of positions partition p lives in state
// partition p) and returns how many there are.
func (p *Processor) checkPartitions(ctx context.Context) (int, error) {
	adm, err := p.cfg.Kafka.NewAdmin("geofence-admin")
	if err != nil {
		return 0, err
	}
	defer adm.Close()
	n, err := kafka.CoPartitioned(ctx, adm, p.topics.positions, p.topics.state)
	if err != nil {
		return 0, fmt.Errorf("geofence: %w (the state of positions partition p is in state partition p: add partitions to %s)", err, p.topics.state)
	}
	return n, nil
}

// fleetCapacity is each partition's share of maxVehicles.
func fleetCapacity(maxVehicles, partitions int) int {
	return max(maxVehicles/max(partitions, 1), 1)
}

// onRevoked notes partitions another instance now owns: their state here
// is stale from now on.
func (p *Processor) onRevoked(_ context.Context, _ *kgo.Client, revoked map[string][]int32) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, part := range revoked[p.topics.positions] {
		p.revoked[part] = true
	}
}

func (p *Processor) dropRevoked() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for part := range p.revoked {
		delete(p.parts, part)
	}
	clear(p.revoked)
}

// transact fills the open transaction: the batch polled, then whatever
// else arrives until CommitInterval has passed since it began or MaxBatch
// records are in it. It returns nil once everything in it is produced.
//
// Holding a transaction open for a moment is what Kafka Streams does with
// exactly-once too (commit.interval.ms), and for the same reasons: fewer,
// bigger transactions cost the broker less, and a transaction that begins
// the instant the previous one ended races the coordinator still writing
// that one's markers. A transaction that has produced nothing yet then
// fails its offset commit with CONCURRENT_TRANSACTIONS, which franz-go
// answers by aborting, and every abort means restoring every partition's
// state.
func (p *Processor) transact(ctx context.Context, sess *kgo.GroupTransactSession, rest *restorer, fetches kgo.Fetches) error {
	deadline := time.Now().Add(p.cfg.CommitInterval)
	records := 0
	for {
		if err := p.process(ctx, sess, rest, fetches); err != nil {
			return err
		}
		records += fetches.NumRecords()
		if records >= p.cfg.MaxBatch || !time.Now().Before(deadline) {
			return nil
		}
		pollCtx, cancel := context.WithDeadline(ctx, deadline)
		fetches = sess.PollRecords(pollCtx, p.cfg.MaxBatch-records)
		cancel()
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err := fatalFetchError(fetches); err != nil {
			return err
		}
		if fetches.NumRecords() == 0 {
			return nil
		}
		// A partition revoked meanwhile fails the transaction anyway;
		// stations changed meanwhile apply from their event time on.
		p.drainStations()
		p.dropRevoked()
	}
}

// process runs one polled batch inside the open transaction, its records
// all produced when it returns nil.
func (p *Processor) process(ctx context.Context, sess *kgo.GroupTransactSession, rest *restorer, fetches kgo.Fetches) error {
	var failed atomic.Pointer[error]
	promise := func(_ *kgo.Record, err error) {
		if err != nil {
			failed.CompareAndSwap(nil, &err)
		}
	}
	produce := func(r *kgo.Record) { sess.Produce(ctx, r, promise) }
	// Partitions hold different vehicles: they are decided side by side,
	// each with a tracker of its own, over the one catalogue (read only
	// while a batch is processed: station changes apply between batches).
	type job struct {
		fp  kgo.FetchTopicPartition
		ps  *partitionState
		err error
	}
	var jobs []*job
	fetches.EachPartition(func(fp kgo.FetchTopicPartition) {
		if len(fp.Records) > 0 {
			jobs = append(jobs, &job{fp: fp, ps: p.parts[fp.Partition]})
		}
	})
	var wg sync.WaitGroup
	for _, j := range jobs {
		wg.Go(func() { j.ps, j.err = p.processPartition(ctx, produce, rest, j.fp, j.ps) })
	}
	wg.Wait()
	for _, j := range jobs {
		if j.err != nil {
			return j.err
		}
		p.parts[j.fp.Partition] = j.ps
	}
	held := 0
	for _, ps := range p.parts {
		held += ps.fleet.Len()
	}
	p.metrics.vehicles.Set(float64(held))
	if err := sess.Client().Flush(ctx); err != nil {
		return err
	}
	if err := failed.Load(); err != nil {
		return *err
	}
	return nil
}

// processPartition decides one partition's records of a batch, restoring
// the partition's state first when this instance does not hold it.
func (p *Processor) processPartition(ctx context.Context, produce func(*kgo.Record), rest *restorer,
	fp kgo.FetchTopicPartition, ps *partitionState) (*partitionState, error) {
	tracker, err := geofence.NewTracker(p.cfg.Geofence, p.catalog)
	if err != nil {
		return nil, err
	}
	if ps == nil {
		start := time.Now()
		restored, replayed, err := rest.restore(ctx, tracker, fp.Partition, fp.Records[0].Offset)
		if err != nil {
			return nil, fmt.Errorf("restore partition %d: %w", fp.Partition, err)
		}
		p.metrics.restored(time.Since(start), replayed)
		p.log.Info("restored a partition's vehicles", "partition", fp.Partition, "vehicles", restored.fleet.Len(),
			"replayed", replayed, "took", time.Since(start).Round(time.Millisecond))
		ps = restored
	}
	var out []geofence.Transition
	forgotten := 0
	for _, r := range fp.Records {
		pos, _, ok, err := position.DecodeEvent(r.Value)
		switch {
		case err != nil:
			produce(p.deadLetter(r, err))
		case ok:
			p.metrics.fixes.Inc()
			var n int
			out, n = observe(tracker, ps, pos, r.Offset, out[:0])
			forgotten += n
			for _, tr := range out {
				if err := p.emit(produce, tr); err != nil {
					return nil, err
				}
			}
		}
		ps.next = r.Offset + 1
		ps.sinceSnapshot++
	}
	if forgotten > 0 {
		p.metrics.forgotten.Add(float64(forgotten))
		p.warnForgotten(fp.Partition, forgotten, ps.fleet.Capacity())
	}
	if ps.sinceSnapshot >= p.cfg.SnapshotEvery || time.Since(ps.snapshotAt) >= p.cfg.SnapshotInterval {
		records, err := snapshotRecords(p.topics.state, fp.Partition, ps)
		if err != nil {
			return nil, err
		}
		for _, r := range records {
			produce(r)
		}
		ps.sinceSnapshot, ps.snapshotAt = 0, time.Now()
		p.metrics.snapshots.Inc()
	}
	return ps, nil
}

// warnForgotten says, at most once a minute, that vehicles are being
// forgotten: once it happens under a flood it happens at every batch.
func (p *Processor) warnForgotten(partition int32, n, capacity int) {
	now := time.Now()
	last := p.forgetWarned.Load()
	if last != 0 && now.Sub(time.Unix(0, last)) < time.Minute || !p.forgetWarned.CompareAndSwap(last, now.UnixNano()) {
		return
	}
	p.log.Warn("forgetting the vehicles that reported least recently: a partition holds as many as it may "+
		"(tms_geofence_vehicles_forgotten_total counts them; raise TMS_GEOFENCE_MAX_VEHICLES if the fleet is really this big)",
		"partition", partition, "forgotten", n, "limit", capacity)
}

// emit produces a transition's events, keyed by plate.
func (p *Processor) emit(produce func(*kgo.Record), tr geofence.Transition) error {
	events, err := tr.Events(Source)
	if err != nil {
		return err
	}
	p.metrics.transitions.WithLabelValues(tr.Kind.String()).Inc()
	for _, e := range events {
		value, err := json.Marshal(e)
		if err != nil {
			return err
		}
		// The record's timestamp is when it was produced: Kafka refuses
		// timestamps far in the future, which a device with a fast clock can
		// give an event. The event time is in the event.
		produce(&kgo.Record{Topic: p.topics.geofence, Key: []byte(tr.Vehicle), Value: value,
			Headers: []kgo.RecordHeader{{Key: "content-type", Value: []byte(event.StructuredContentType)}}})
	}
	return nil
}

// deadLetter records a positions record the geofence cannot read.
func (p *Processor) deadLetter(r *kgo.Record, err error) *kgo.Record {
	p.metrics.deadLetters.Inc()
	origin := fmt.Sprintf("kafka:%s/%d@%d", r.Topic, r.Partition, r.Offset)
	l := deadletter.New("geofence", origin, "malformed_event", "", err.Error(), r.Value, r.Timestamp)
	e, eerr := l.Event(Source)
	if eerr != nil {
		panic(fmt.Sprintf("geofence: encode a dead letter: %v", eerr))
	}
	value, _ := json.Marshal(e)
	return &kgo.Record{Topic: p.topics.deadletter, Key: r.Key, Value: value, Timestamp: r.Timestamp}
}

// drainStations applies every station change waiting.
func (p *Processor) drainStations() {
	for {
		select {
		case c := <-p.feed.changes:
			p.apply(c)
		default:
			p.metrics.stations.Set(float64(p.catalog.Stations()))
			return
		}
	}
}

// apply applies a station change to the catalogue; a station the index
// cannot take is skipped and counted.
func (p *Processor) apply(c station.Change) {
	if err := c.ApplyTo(p.catalog); err != nil {
		p.metrics.stationsSkipped.Inc()
		p.log.Error("a station cannot be indexed", "station", c.ID, "err", err)
	}
}

// statePartitioner sends state records to the partition they name (the
// positions partition they belong to) and keys every other record as
// Kafka's default partitioner does.
type statePartitioner struct{ state string }

func (s statePartitioner) ForTopic(topic string) kgo.TopicPartitioner {
	if topic == s.state {
		return kgo.ManualPartitioner().ForTopic(topic)
	}
	return kgo.StickyKeyPartitioner(nil).ForTopic(topic)
}

func fatalFetchError(fetches kgo.Fetches) error {
	var fatal error
	fetches.EachError(func(topic string, partition int32, err error) {
		if fatal == nil && !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
			fatal = fmt.Errorf("geofence: fetch %s[%d]: %w", topic, partition, err)
		}
	})
	return fatal
}

func geoPoint(p position.Position) geo.Point { return geo.Point{Lat: p.Lat, Lng: p.Lng} }
