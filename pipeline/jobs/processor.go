package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tmsfleet/tms/adapters/kafka"
	"github.com/tmsfleet/tms/domain/deadletter"
	"github.com/tmsfleet/tms/domain/event"
	"github.com/tmsfleet/tms/domain/job"
	"github.com/tmsfleet/tms/pipeline/snapshot"
)

// Processor is the running jobs role.
type Processor struct {
	cfg     Config
	log     *slog.Logger
	metrics *metrics
	topics  struct{ positions, geofence, jobs, state, deadletter string }
	// input maps a topic to its place in a step.
	input map[string]int
	// capacity is each partition's share of MaxVehicles.
	capacity int

	// parts holds the partitions this instance owns and has restored;
	// assigned the partitions the group gave it; revoked those taken away.
	parts    map[int32]*partitionState
	mu       sync.Mutex
	assigned map[int32]bool
	revoked  map[int32]bool
	barrier  *barrier
	ready    chan struct{}
}

// New validates cfg and builds the processor.
func New(cfg Config) (*Processor, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	p := &Processor{cfg: cfg, log: cfg.Logger.With("component", "jobs"), metrics: newMetrics(cfg.Registerer),
		parts: map[int32]*partitionState{}, assigned: map[int32]bool{}, revoked: map[int32]bool{}, ready: make(chan struct{})}
	k := cfg.Kafka
	p.topics.positions, p.topics.geofence, p.topics.jobs = k.Topic(event.TopicPositions), k.Topic(event.TopicGeofence), k.Topic(event.TopicJobs)
	p.topics.state, p.topics.deadletter = k.Topic(event.TopicJobsState), k.Topic(event.TopicDeadLetter)
	p.input = map[string]int{p.topics.jobs: inJobs, p.topics.geofence: inGeofence, p.topics.positions: inPositions}
	return p, nil
}

// Ready is closed once the processor has checked its topics and joined
// its group.
func (p *Processor) Ready() <-chan struct{} { return p.ready }

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
	adm, err := p.cfg.Kafka.NewAdmin("jobs-admin")
	if err != nil {
		return err
	}
	defer adm.Close()
	partitions, err := p.checkPartitions(ctx, adm)
	if err != nil {
		return err
	}
	p.capacity = max(p.cfg.MaxVehicles/partitions, 1)
	p.barrier = &barrier{adm: adm, group: p.cfg.Kafka.Group(p.cfg.GeofenceGroup), topic: p.topics.positions,
		geofence: p.topics.geofence, interval: p.cfg.BarrierInterval}
	go p.barrier.run(ctx)

	sess, err := p.newSession()
	if err != nil {
		return err
	}
	defer sess.Close()
	aux, err := p.cfg.Kafka.NewClient("jobs-aux", kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		return err
	}
	defer aux.Close()
	close(p.ready)
	for {
		// The poll returns at least every barrier interval: the
		// geofence's progress moves the watermark without any record.
		pollCtx, cancelPoll := context.WithTimeout(ctx, p.cfg.BarrierInterval)
		fetches := sess.PollRecords(pollCtx, p.cfg.MaxBatch)
		cancelPoll()
		if ctx.Err() != nil {
			return nil
		}
		if err := fatalFetchError(fetches); err != nil {
			return err
		}
		p.dropRevoked()
		if fetches.NumRecords() == 0 && !p.barrierMoved() && !p.unrestored() && !p.quietDue() {
			continue
		}
		if err := sess.Begin(); err != nil {
			return fmt.Errorf("jobs: begin a transaction: %w", err)
		}
		failed := p.transact(ctx, sess, aux, fetches)
		if failed != nil {
			if ctx.Err() != nil {
				abortCtx, cancelAbort := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
				_, _ = sess.End(abortCtx, kgo.TryAbort)
				cancelAbort()
				return nil
			}
			p.log.Error("processing a batch failed; aborting it", "err", failed)
		}
		committed, err := sess.End(context.WithoutCancel(ctx), kgo.TransactionEndTry(failed == nil))
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("jobs: end a transaction: %w", err)
		}
		p.metrics.transaction(committed)
		if !committed {
			p.log.Warn("a transaction was aborted; restoring the partitions' state from their snapshots and steps")
			p.parts = map[int32]*partitionState{}
		}
	}
}

func (p *Processor) newSession() (*kgo.GroupTransactSession, error) {
	txnID := "tms-jobs-" + newID()
	if p.cfg.Kafka.InstanceID != "" {
		txnID = "tms-jobs-" + p.cfg.Kafka.InstanceID
	}
	opts := append(p.cfg.Kafka.Options("jobs"), p.cfg.Kafka.GroupOptions(Group)...)
	opts = append(opts,
		kgo.ConsumeTopics(p.topics.positions, p.topics.geofence, p.topics.jobs),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		// Partition p of every input goes to the same member: they hold
		// the same vehicles.
		kgo.Balancers(kgo.RangeBalancer()),
		kgo.RequireStableFetchOffsets(),
		// Transaction markers are kept, so that the offsets a step reaches
		// can be compared with where an input ends (its last stable
		// offset, which follows a marker); steps skip them.
		kgo.KeepControlRecords(),
		kgo.TransactionalID(p.cfg.Kafka.Namespace+txnID),
		kgo.TransactionTimeout(30*time.Second),
		kgo.RecordPartitioner(statePartitioner{state: p.topics.state}),
		kgo.OnPartitionsAssigned(p.onAssigned),
		kgo.OnPartitionsRevoked(p.onRevoked),
		kgo.OnPartitionsLost(p.onRevoked),
	)
	sess, err := kgo.NewGroupTransactSession(opts...)
	if err != nil {
		return nil, fmt.Errorf("jobs: %w", err)
	}
	return sess, nil
}

// checkPartitions refuses to run unless the inputs and the state topic
// are co-partitioned: a vehicle's positions, visits and jobs must meet in
// one partition number, and its state beside them.
func (p *Processor) checkPartitions(ctx context.Context, adm *kadm.Client) (int, error) {
	n, err := kafka.CoPartitioned(ctx, adm, p.topics.positions, p.topics.geofence, p.topics.jobs, p.topics.state)
	if err != nil {
		return 0, fmt.Errorf("jobs: a vehicle's positions, visits and jobs must meet in one partition: %w", err)
	}
	p.log.Info("inputs are co-partitioned", "partitions", n)
	return n, nil
}

func (p *Processor) onAssigned(_ context.Context, _ *kgo.Client, assigned map[string][]int32) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, part := range assigned[p.topics.positions] {
		p.assigned[part] = true
	}
}

func (p *Processor) onRevoked(_ context.Context, _ *kgo.Client, revoked map[string][]int32) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, parts := range revoked {
		for _, part := range parts {
			p.revoked[part] = true
			delete(p.assigned, part)
		}
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

// unrestored reports whether a partition assigned to this instance has no
// state yet: it is restored even before it has new records, so that what
// waits on its watermark is not held up.
func (p *Processor) unrestored() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	for part := range p.assigned {
		if p.parts[part] == nil {
			return true
		}
	}
	return false
}

// barrierMoved reports whether the geofence has progressed on a partition
// since the partition's last step.
func (p *Processor) barrierMoved() bool {
	for part, ps := range p.parts {
		if ps.effectiveBarrier(p.barrier.pairs(part)) != ps.barrier {
			return true
		}
	}
	return false
}

// quiet reports whether a partition has read and decided all its inputs:
// its positions to where they ended, the geofence has decided them all,
// and it has read tms.geofence to where that ended after. Nothing it
// reads later can have an earlier time than now; in a partition where no
// vehicle reports, commands then still come due (a job for a vehicle not
// reporting yet is created, and the API's read-your-writes is answered).
func (p *Processor) quiet(ps *partitionState, seen []progress) bool {
	if len(seen) == 0 {
		return false
	}
	last := seen[len(seen)-1]
	return last.Decided >= last.Positions && ps.next[inPositions] >= last.Positions && ps.next[inGeofence] >= last.Written
}

// quietDue reports whether a quiet partition has something due now.
func (p *Processor) quietDue() bool {
	now := time.Now()
	for part, ps := range p.parts {
		if next := ps.nextDeadline(); !next.IsZero() && !next.After(now) && ps.applied.Before(now) && p.quiet(ps, p.barrier.pairs(part)) {
			return true
		}
	}
	return false
}

// transact fills the open transaction with steps: the batch polled, then
// whatever arrives until CommitInterval has passed or MaxBatch records are
// in it (see the geofence processor for why a transaction stays open).
func (p *Processor) transact(ctx context.Context, sess *kgo.GroupTransactSession, aux *kgo.Client, fetches kgo.Fetches) error {
	deadline := time.Now().Add(p.cfg.CommitInterval)
	records := 0
	for {
		if err := p.process(ctx, sess, aux, fetches); err != nil {
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
		p.dropRevoked()
	}
}

// process takes one step for every partition with records, a moved
// barrier, or no state yet, producing what the steps emit.
func (p *Processor) process(ctx context.Context, sess *kgo.GroupTransactSession, aux *kgo.Client, fetches kgo.Fetches) error {
	var failed error
	var once sync.Once
	promise := func(_ *kgo.Record, err error) {
		if err != nil {
			once.Do(func() { failed = err })
		}
	}
	produce := func(r *kgo.Record) { sess.Produce(ctx, r, promise) }
	cl := sess.Client()
	batches := map[int32]*[numInputs][]*kgo.Record{}
	batch := func(part int32) *[numInputs][]*kgo.Record {
		if batches[part] == nil {
			batches[part] = &[numInputs][]*kgo.Record{}
		}
		return batches[part]
	}
	fetches.EachPartition(func(fp kgo.FetchTopicPartition) {
		if len(fp.Records) > 0 {
			b := batch(fp.Partition)
			b[p.input[fp.Topic]] = append(b[p.input[fp.Topic]], fp.Records...)
		}
	})
	p.mu.Lock()
	for part := range p.assigned {
		batch(part)
	}
	p.mu.Unlock()
	parts := make([]int32, 0, len(batches))
	for part := range batches {
		parts = append(parts, part)
	}
	slices.Sort(parts)
	for _, part := range parts {
		b := batches[part]
		ps := p.parts[part]
		if ps == nil {
			restored, err := p.restore(ctx, cl, aux, part)
			if err != nil {
				return fmt.Errorf("restore partition %d: %w", part, err)
			}
			ps = restored
			p.parts[part] = ps
			// Every command there is now, before anything else: a job
			// must be known before the fixes it is measured by are taken,
			// however far behind the other inputs are.
			if b[inJobs], err = p.readCommands(ctx, part, ps.next[inJobs]); err != nil {
				return fmt.Errorf("restore partition %d: %w", part, err)
			}
		}
		// Records a restore already replayed, or read ahead, come again in
		// the fetch: drop what the state has taken.
		for i := range b {
			b[i] = slices.DeleteFunc(b[i], func(r *kgo.Record) bool { return r.Offset < ps.next[i] })
		}
		seen := p.barrier.pairs(part)
		barrier := ps.effectiveBarrier(seen)
		var quiet time.Time
		if p.quiet(ps, seen) {
			quiet = time.Now()
		}
		due := !quiet.IsZero() && ps.applied.Before(quiet) && !ps.nextDeadline().IsZero() && !ps.nextDeadline().After(quiet)
		if len(b[0])+len(b[1])+len(b[2]) == 0 && barrier == ps.barrier && !due {
			continue
		}
		if err := p.step(ps, part, *b, barrier, quiet, produce); err != nil {
			return err
		}
	}
	if err := cl.Flush(ctx); err != nil {
		return err
	}
	return failed
}

// readCommands reads partition part of tms.jobs from offset from to its
// end.
func (p *Processor) readCommands(ctx context.Context, part int32, from int64) ([]*kgo.Record, error) {
	adm, err := p.cfg.Kafka.NewAdmin("jobs-commands-admin")
	if err != nil {
		return nil, err
	}
	ends, err := adm.ListCommittedOffsets(ctx, p.topics.jobs)
	adm.Close()
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return nil, fmt.Errorf("the end of %s: %w", p.topics.jobs, err)
	}
	end, _ := ends.Lookup(p.topics.jobs, part)
	var to [numInputs]int64
	var start [numInputs]int64
	to[inJobs], start[inJobs] = end.Offset, from
	records, err := p.readInputs(ctx, part, start, to)
	return records[inJobs], err
}

// step takes one step of partition part and produces what it emits, its
// log record and, when due, a snapshot.
func (p *Processor) step(ps *partitionState, part int32, recs [numInputs][]*kgo.Record, barrier int64, quiet time.Time, produce func(*kgo.Record)) error {
	var out outputs
	st := ps.take(recs, barrier, quiet, &out)
	p.metrics.took(recs, out)
	for _, e := range out.events {
		value, err := json.Marshal(e)
		if err != nil {
			return err
		}
		// The record's timestamp is when it was produced; the event's
		// time is inside it.
		produce(&kgo.Record{Topic: p.topics.jobs, Key: []byte(e.Subject), Value: value,
			Headers: []kgo.RecordHeader{{Key: "content-type", Value: []byte(event.StructuredContentType)}}})
	}
	for _, r := range out.deadLetters {
		produce(p.deadLetter(r))
	}
	if out.late > 0 {
		p.log.Debug("inputs arrived after their time was due", "partition", part, "late", out.late)
	}
	value, err := json.Marshal(st)
	if err != nil {
		return err
	}
	produce(&kgo.Record{Topic: p.topics.state, Partition: part, Key: []byte(stepKey(st.N)), Value: value})
	ps.stepsSince = append(ps.stepsSince, st.N)
	if ps.sinceSnapshot < p.cfg.SnapshotEvery && time.Since(ps.snapshotAt) < p.cfg.SnapshotInterval {
		return nil
	}
	meta, items, err := ps.snapshot()
	if err != nil {
		return err
	}
	records, err := snapshot.Records(p.topics.state, part, meta, items)
	if err != nil {
		return err
	}
	for _, r := range records {
		produce(r)
	}
	// The steps the snapshot holds are not needed any more.
	for _, n := range ps.stepsSince {
		produce(&kgo.Record{Topic: p.topics.state, Partition: part, Key: []byte(stepKey(n))})
	}
	ps.stepsSince, ps.sinceSnapshot, ps.snapshotAt = nil, 0, time.Now()
	p.metrics.snapshots.Inc()
	return nil
}

func stepKey(n int64) string { return "step/" + strconv.FormatInt(n, 10) }

// deadLetter records an input record the processor cannot read.
func (p *Processor) deadLetter(r *kgo.Record) *kgo.Record {
	p.metrics.deadLetters.Inc()
	origin := fmt.Sprintf("kafka:%s/%d@%d", r.Topic, r.Partition, r.Offset)
	l := deadletter.New("jobs", origin, "malformed_event", "", "the job processor cannot read this record", r.Value, r.Timestamp)
	e, err := l.Event(job.Source)
	if err != nil {
		panic(fmt.Sprintf("jobs: encode a dead letter: %v", err))
	}
	value, _ := json.Marshal(e)
	return &kgo.Record{Topic: p.topics.deadletter, Key: r.Key, Value: value, Timestamp: r.Timestamp}
}

// statePartitioner sends state records to the partition they name and
// keys every other record as Kafka's default partitioner does.
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
			fatal = fmt.Errorf("jobs: fetch %s[%d]: %w", topic, partition, err)
		}
	})
	return fatal
}
