package geofence

import (
	"context"
	"encoding/json"
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
	"github.com/tmsfleet/tms/pipeline/txloop"
)

// Processor is the running geofence role.
type Processor struct {
	cfg     Config
	log     *slog.Logger
	metrics *metrics
	catalog *geofence.Catalog
	feed    *stationFeed

	topics struct{ positions, geofence, state, deadletter string }
	// parts holds the state of the partitions this instance owns.
	parts *txloop.Partitions[*partitionState]
	// ready is closed once the catalogue holds every station there was
	// at start and processing can begin.
	ready     chan struct{}
	readyOnce sync.Once
	// outage follows the Kafka errors the geofence waits out.
	outage *kafka.Outage
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
		catalog: catalog, ready: make(chan struct{}),
	}
	p.outage = cfg.Kafka.Health.Outage("geofence", cfg.Kafka)
	p.feed = newStationFeed(&p.cfg, p.log, p.metrics.stationsSkipped)
	p.topics.positions = cfg.Kafka.Topic(event.TopicPositions)
	p.topics.geofence = cfg.Kafka.Topic(event.TopicGeofence)
	p.topics.state = cfg.Kafka.Topic(event.TopicGeofenceState)
	p.topics.deadletter = cfg.Kafka.Topic(event.TopicDeadLetter)
	p.parts = txloop.NewPartitions[*partitionState](p.topics.positions)
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

	// Kafka errors are waited out, with a new session when the old one
	// cannot go on (txloop.Keep): only a permanent one ends the geofence.
	return txloop.Keep(ctx, p.parts, p.outage, p.session)
}

// session runs one transact session of the geofence until ctx ends or
// the session fails.
func (p *Processor) session(ctx context.Context) error {
	partitions, err := p.checkPartitions(ctx)
	if err != nil {
		return err
	}
	sess, err := p.newSession()
	if err != nil {
		return err
	}
	defer sess.Close()
	p.readyOnce.Do(func() { close(p.ready) })
	// Markers go to the state partition they name.
	aux, err := p.cfg.Kafka.NewClient("geofence-aux", kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		return err
	}
	defer aux.Close()
	rest := &restorer{kafka: p.cfg.Kafka, marker: aux, fleetCapacity: fleetCapacity(p.cfg.MaxVehicles, partitions)}

	return txloop.Run(ctx, sess, p.parts, txloop.Config{
		Name: "geofence", CommitInterval: p.cfg.CommitInterval, MaxBatch: p.cfg.MaxBatch,
		Process: func(ctx context.Context, fetches kgo.Fetches) error {
			return p.process(ctx, sess, rest, fetches)
		},
		// Stations changed meanwhile apply from their event time on.
		Polled: p.drainStations,
		Logger: p.log, Metrics: p.metrics.Metrics, Outage: p.outage,
	})
}

func (p *Processor) newSession() (*kgo.GroupTransactSession, error) {
	return txloop.NewSession(p.cfg.Kafka, "geofence", Group, p.topics.state,
		append([]kgo.Opt{kgo.ConsumeTopics(p.topics.positions)}, p.parts.Options()...)...)
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
			jobs = append(jobs, &job{fp: fp, ps: p.parts.Held[fp.Partition]})
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
		p.parts.Held[j.fp.Partition] = j.ps
	}
	held := 0
	for _, ps := range p.parts.Held {
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
	if ps == nil {
		tracker, err := geofence.NewTracker(p.cfg.Geofence, p.catalog)
		if err != nil {
			return nil, err
		}
		start := time.Now()
		restored, replayed, err := rest.restore(ctx, tracker, fp.Partition, fp.Records[0].Offset)
		if err != nil {
			return nil, fmt.Errorf("restore partition %d: %w", fp.Partition, err)
		}
		p.metrics.Restored(time.Since(start), replayed)
		p.log.Info("restored a partition's vehicles", "partition", fp.Partition, "vehicles", restored.fleet.Len(),
			"replayed", replayed, "took", time.Since(start).Round(time.Millisecond))
		ps = restored
		ps.tracker = tracker
	}
	tracker := ps.tracker
	var out []geofence.Transition
	forgotten, fixes := 0, 0
	for _, r := range fp.Records {
		pos, ok, err := ps.decoder.Decode(r.Value)
		switch {
		case err != nil:
			produce(p.deadLetter(r, err))
		case ok:
			fixes++
			var n int
			out, n = observe(tracker, ps, pos, r.Offset, out[:0])
			forgotten += n
			for i := range out {
				if err := p.emit(produce, ps, &out[i]); err != nil {
					return nil, err
				}
			}
		}
		ps.next = r.Offset + 1
		ps.sinceSnapshot++
	}
	p.metrics.fixes.Add(float64(fixes))
	if forgotten > 0 {
		p.metrics.forgotten.Add(float64(forgotten))
		p.warnForgotten(fp.Partition, forgotten, ps.fleet.Capacity())
	}
	if ps.sinceSnapshot >= p.cfg.SnapshotEvery || time.Since(ps.snapshotAt) >= p.cfg.SnapshotInterval {
		records, err := snapshotRecords(p.topics.state, fp.Partition, ps, p.cfg.SnapshotFormat)
		if err != nil {
			return nil, err
		}
		for _, r := range records {
			produce(r)
		}
		ps.sinceSnapshot, ps.snapshotAt = 0, time.Now()
		p.metrics.Snapshotted()
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

// emit produces a transition's events, keyed by plate. Their keys and
// values are carved out of ps's buffer, which the records keep alive
// until they are produced.
func (p *Processor) emit(produce func(*kgo.Record), ps *partitionState, tr *geofence.Transition) error {
	if cap(ps.buf)-len(ps.buf) < minEventRoom {
		ps.buf = make([]byte, 0, eventBufferBytes)
	}
	start := len(ps.buf)
	ps.buf = append(ps.buf, tr.Vehicle...)
	key := ps.buf[start:len(ps.buf):len(ps.buf)]
	var err error
	ps.buf, err = tr.AppendEvents(ps.buf, Source, func(value []byte) {
		// The record's timestamp is when it was produced: Kafka refuses
		// timestamps far in the future, which a device with a fast clock can
		// give an event. The event time is in the event.
		produce(&kgo.Record{Topic: p.topics.geofence, Key: key, Value: value, Headers: structuredHeaders})
	})
	if err != nil {
		return err
	}
	p.metrics.transitions.WithLabelValues(tr.Kind.String()).Inc()
	return nil
}

// structuredHeaders are the headers of every event record; records share
// them, and the client only reads them.
var structuredHeaders = []kgo.RecordHeader{{Key: "content-type", Value: []byte(event.StructuredContentType)}}

// Events are encoded into buffers of eventBufferBytes, a new one once
// less than minEventRoom (more than an event and its alert take) is
// left: one allocation for hundreds of events.
const (
	eventBufferBytes = 64 << 10
	minEventRoom     = 4 << 10
)

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

func geoPoint(p position.Position) geo.Point { return geo.Point{Lat: p.Lat, Lng: p.Lng} }
