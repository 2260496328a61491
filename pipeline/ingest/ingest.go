package ingest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tmsfleet/tms/adapters/g7"
	"github.com/tmsfleet/tms/adapters/kafka"
	"github.com/tmsfleet/tms/adapters/mqtt"
	"github.com/tmsfleet/tms/domain/deadletter"
	"github.com/tmsfleet/tms/domain/event"
)

// Source is the CloudEvents source of the events ingest produces.
const Source = "/tms/ingest/g7"

// stage names the ingest stage in dead letters.
const stage = "ingest"

// Producer is the part of a Kafka client ingest needs. *kgo.Client
// satisfies it. Produce must be safe for concurrent use and call promise
// exactly once per record.
type Producer interface {
	Produce(ctx context.Context, r *kgo.Record, promise func(*kgo.Record, error))
	Flush(ctx context.Context) error
}

// Subscriber delivers MQTT messages; *mqtt.Subscriber satisfies it.
type Subscriber interface {
	Run(ctx context.Context, h mqtt.Handler) error
}

// Config configures the ingest stage.
type Config struct {
	// Subscriber delivers the feed's messages.
	Subscriber Subscriber
	// Producer writes to Kafka.
	Producer Producer
	// PositionsTopic and DeadLetterTopic are where accepted fixes and
	// rejected input go. Default tms.positions and tms.deadletter.
	PositionsTopic, DeadLetterTopic string
	// Clock gives receive times. It is the one place ingest reads the
	// clock: the receive time is part of the input. Default time.Now.
	Clock func() time.Time
	// ShutdownTimeout bounds the wait for Kafka to acknowledge what is in
	// flight when ingest stops. Default 10s.
	ShutdownTimeout time.Duration
	// Registerer receives ingest's metrics; nil means none.
	Registerer prometheus.Registerer
	// Logger; default slog's.
	Logger *slog.Logger
}

func (c *Config) setDefaults() {
	if c.PositionsTopic == "" {
		c.PositionsTopic = kafka.TopicPositions
	}
	if c.DeadLetterTopic == "" {
		c.DeadLetterTopic = kafka.TopicDeadLetter
	}
	if c.Clock == nil {
		c.Clock = time.Now
	}
	if c.ShutdownTimeout == 0 {
		c.ShutdownTimeout = 10 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

// Validate reports a config that cannot work.
func (c *Config) Validate() error {
	if c.Subscriber == nil || c.Producer == nil {
		return errors.New("ingest: a subscriber and a producer are required")
	}
	return nil
}

// Ingest is the running ingest stage.
type Ingest struct {
	cfg     Config
	log     *slog.Logger
	metrics *metrics
	// stopping makes the handler leave new messages unacknowledged, for
	// the next session, once shutdown has begun.
	stopping atomic.Bool
	// failed carries the first produce error; ingest then stops, since
	// the unacknowledged message will only be redelivered to a new session.
	failed   chan error
	failOnce sync.Once
	// produceCtx outlives the run context so that records in flight at
	// shutdown can still be acknowledged.
	produceCtx context.Context
}

// New validates cfg and builds the stage.
func New(cfg Config) (*Ingest, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Ingest{
		cfg:     cfg,
		log:     cfg.Logger.With("component", "ingest"),
		metrics: newMetrics(cfg.Registerer),
		failed:  make(chan error, 1),
	}, nil
}

// Run ingests until ctx ends or a record cannot be written to Kafka. It
// stops intake first, then waits (up to ShutdownTimeout) for Kafka to
// acknowledge what is in flight, so those messages are acknowledged too.
func (in *Ingest) Run(ctx context.Context) error {
	in.produceCtx = context.WithoutCancel(ctx)
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	subErr := make(chan error, 1)
	go func() { subErr <- in.cfg.Subscriber.Run(runCtx, in.Handle) }()

	var err error
	select {
	case <-ctx.Done():
	case err = <-in.failed:
	case err = <-subErr:
		subErr = nil
	}
	in.stopping.Store(true)
	flushCtx, cancelFlush := context.WithTimeout(context.WithoutCancel(ctx), in.cfg.ShutdownTimeout)
	defer cancelFlush()
	if ferr := in.cfg.Producer.Flush(flushCtx); ferr != nil {
		in.log.Warn("records still in flight at shutdown; their messages will be redelivered", "err", ferr)
	}
	cancel()
	if subErr != nil {
		if serr := <-subErr; err == nil {
			err = serr
		}
	}
	return err
}

// Handle turns one MQTT message into records and acknowledges the message
// once Kafka has them all. It is the subscriber's handler.
func (in *Ingest) Handle(msg mqtt.Message) {
	if in.stopping.Load() {
		return
	}
	start := in.cfg.Clock()
	records := in.records(msg.Topic(), msg.Payload(), start)
	in.metrics.messages.Inc()
	if len(records) == 0 {
		msg.Ack()
		return
	}
	in.metrics.inflight.Inc()
	pending := atomic.Int64{}
	pending.Store(int64(len(records)))
	var failed atomic.Bool
	promise := func(r *kgo.Record, err error) {
		if err != nil {
			failed.Store(true)
			in.fail(fmt.Errorf("ingest: produce to %s: %w", r.Topic, err))
		}
		if pending.Add(-1) > 0 {
			return
		}
		in.metrics.inflight.Dec()
		if failed.Load() {
			return
		}
		msg.Ack()
		in.metrics.produceLatency.Observe(in.cfg.Clock().Sub(start).Seconds())
	}
	for _, r := range records {
		in.cfg.Producer.Produce(in.produceCtx, r, promise)
	}
}

func (in *Ingest) fail(err error) {
	in.failOnce.Do(func() {
		in.log.Error("stopping: a record was not written, its message stays unacknowledged", "err", err)
		in.failed <- err
	})
}

// records parses a message into position records and dead letters.
func (in *Ingest) records(topic string, payload []byte, receivedAt time.Time) []*kgo.Record {
	origin := "mqtt:" + topic
	batch := g7.Parse(payload, receivedAt)
	if batch.Rejection != nil {
		in.metrics.rejected.WithLabelValues(batch.Rejection.Reason).Inc()
		l := deadletter.New(stage, origin, batch.Rejection.Reason, batch.Rejection.Field, batch.Rejection.Detail,
			payload, receivedAt)
		return in.appendLetter(nil, l)
	}
	records := make([]*kgo.Record, 0, len(batch.Items))
	batchHash := ""
	for i, it := range batch.Items {
		in.metrics.received.Inc()
		if it.Rejection == nil {
			e, err := it.Position.Event(Source)
			if err != nil {
				// A validated fix is finite numbers and strings.
				panic(fmt.Sprintf("ingest: encode position: %v", err))
			}
			in.metrics.accepted.Inc()
			records = append(records, record(in.cfg.PositionsTopic, it.Position.Plate, e, receivedAt))
			continue
		}
		in.metrics.rejected.WithLabelValues(it.Rejection.Reason).Inc()
		if batchHash == "" {
			batchHash = deadletter.Hash(payload)
		}
		l := deadletter.New(stage, origin, it.Rejection.Reason, it.Rejection.Field, it.Rejection.Detail, it.Raw, receivedAt).
			InBatch(i, batchHash)
		l.Vehicle = it.Plate
		records = in.appendLetter(records, l)
	}
	return records
}

func (in *Ingest) appendLetter(records []*kgo.Record, l deadletter.Letter) []*kgo.Record {
	e, err := l.Event(Source)
	if err != nil {
		// A letter is plain strings: encoding cannot fail unless the
		// program is wrong.
		panic(fmt.Sprintf("ingest: encode dead letter: %v", err))
	}
	return append(records, record(in.cfg.DeadLetterTopic, l.Vehicle, e, l.ReceivedAt))
}

// record builds a Kafka record for an event: keyed by subject (the plate),
// stamped with the receive time so that the topic's time index follows
// arrival (the event time is inside the event).
func record(topic, key string, e event.Envelope, receivedAt time.Time) *kgo.Record {
	value, err := json.Marshal(e)
	if err != nil {
		panic(fmt.Sprintf("ingest: encode %s envelope: %v", e.Type, err))
	}
	r := &kgo.Record{
		Topic:     topic,
		Value:     value,
		Timestamp: receivedAt,
		Headers:   []kgo.RecordHeader{{Key: "content-type", Value: []byte(event.StructuredContentType)}},
	}
	if key != "" {
		r.Key = []byte(key)
	}
	return r
}
