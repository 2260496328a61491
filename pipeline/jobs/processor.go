package jobs

import (
	"context"
	"encoding/json"
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
	"github.com/tmsfleet/tms/pipeline/txloop"
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

	// parts holds the state of the partitions this instance owns.
	parts   *txloop.Partitions[*partitionState]
	barrier *barrier
	ready   chan struct{}
	// readyOnce closes ready at the first session; outage follows the
	// Kafka errors the processor waits out.
	readyOnce sync.Once
	outage    *kafka.Outage
}

// New validates cfg and builds the processor.
func New(cfg Config) (*Processor, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	p := &Processor{cfg: cfg, log: cfg.Logger.With("component", "jobs"), metrics: newMetrics(cfg.Registerer), ready: make(chan struct{})}
	p.outage = cfg.Kafka.Health.Outage("jobs", cfg.Kafka)
	k := cfg.Kafka
	p.topics.positions, p.topics.geofence, p.topics.jobs = k.Topic(event.TopicPositions), k.Topic(event.TopicGeofence), k.Topic(event.TopicJobs)
	p.topics.state, p.topics.deadletter = k.Topic(event.TopicJobsState), k.Topic(event.TopicDeadLetter)
	p.input = map[string]int{p.topics.jobs: inJobs, p.topics.geofence: inGeofence, p.topics.positions: inPositions}
	p.parts = txloop.NewPartitions[*partitionState](p.topics.positions)
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
	// Kafka errors are waited out, with a new session when the old one
	// cannot go on (txloop.Keep): only a permanent one ends the processor.
	var started sync.Once
	return txloop.Keep(ctx, p.parts, p.outage, func(ctx context.Context) error {
		partitions, err := p.checkPartitions(ctx, adm)
		if err != nil {
			return err
		}
		started.Do(func() {
			p.capacity = max(p.cfg.MaxVehicles/partitions, 1)
			p.barrier = &barrier{adm: adm, group: p.cfg.Kafka.Group(p.cfg.GeofenceGroup), topic: p.topics.positions,
				geofence: p.topics.geofence, interval: p.cfg.BarrierInterval}
			go p.barrier.run(ctx)
		})
		return p.session(ctx)
	})
}

// session runs one transact session of the job processor until ctx ends
// or the session fails.
func (p *Processor) session(ctx context.Context) error {
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
	p.readyOnce.Do(func() { close(p.ready) })
	return txloop.Run(ctx, sess, p.parts, txloop.Config{
		Name: "jobs", CommitInterval: p.cfg.CommitInterval, MaxBatch: p.cfg.MaxBatch,
		// The poll returns at least every barrier interval: the
		// geofence's progress moves the watermark without any record.
		PollTimeout: p.cfg.BarrierInterval,
		Process: func(ctx context.Context, fetches kgo.Fetches) error {
			return p.process(ctx, sess, aux, fetches)
		},
		Due:    func() bool { return p.barrierMoved() || p.unrestored() || p.quietDue() },
		Logger: p.log, Metrics: p.metrics.Metrics, Outage: p.outage,
	})
}

func (p *Processor) newSession() (*kgo.GroupTransactSession, error) {
	return txloop.NewSession(p.cfg.Kafka, "jobs", Group, p.topics.state, append([]kgo.Opt{
		kgo.ConsumeTopics(p.topics.positions, p.topics.geofence, p.topics.jobs),
		// Partition p of every input goes to the same member: they hold
		// the same vehicles.
		kgo.Balancers(kgo.RangeBalancer()),
		// Transaction markers are kept, so that the offsets a step reaches
		// can be compared with where an input ends (its last stable
		// offset, which follows a marker); steps skip them.
		kgo.KeepControlRecords(),
	}, p.parts.Options()...)...)
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

// unrestored reports whether a partition assigned to this instance has no
// state yet: it is restored even before it has new records, so that what
// waits on its watermark is not held up.
func (p *Processor) unrestored() bool {
	for _, part := range p.parts.Assigned() {
		if p.parts.Held[part] == nil {
			return true
		}
	}
	return false
}

// barrierMoved reports whether the geofence has progressed on a partition
// since the partition's last step.
func (p *Processor) barrierMoved() bool {
	for part, ps := range p.parts.Held {
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
	// Only a partition whose positions are live (or that has none) may
	// take the clock: one fed old fixes (a backlog, a backfill) will be
	// fed more of them, older than the clock, whatever it has read now.
	if !ps.positions.IsZero() && p.cfg.Now().Sub(ps.positions) > liveWithin {
		return false
	}
	last := seen[len(seen)-1]
	return last.Decided >= last.Positions && ps.next[inPositions] >= last.Positions && ps.next[inGeofence] >= last.Written
}

// liveWithin is how close to the clock a partition's positions must be
// for the partition to be quiet rather than behind.
const liveWithin = time.Minute

// quietDue reports whether a quiet partition has something due now.
func (p *Processor) quietDue() bool {
	now := p.cfg.Now()
	for part, ps := range p.parts.Held {
		if next := ps.nextDeadline(); !next.IsZero() && !next.After(now) && ps.applied.Before(now) && p.quiet(ps, p.barrier.pairs(part)) {
			return true
		}
	}
	return false
}

// process takes one step for every partition with records, a moved
// barrier, or no state yet, producing what the steps emit, in the open
// transaction.
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
	for _, part := range p.parts.Assigned() {
		batch(part)
	}
	parts := make([]int32, 0, len(batches))
	for part := range batches {
		parts = append(parts, part)
	}
	slices.Sort(parts)
	for _, part := range parts {
		b := batches[part]
		ps := p.parts.Held[part]
		if ps == nil {
			restored, err := p.restore(ctx, cl, aux, part)
			if err != nil {
				return fmt.Errorf("restore partition %d: %w", part, err)
			}
			ps = restored
			p.parts.Held[part] = ps
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
			quiet = p.cfg.Now()
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
	p.metrics.Snapshotted()
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
