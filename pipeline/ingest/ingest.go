package ingest

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tmsfleet/tms/adapters/g7"
	"github.com/tmsfleet/tms/adapters/mqtt"
	"github.com/tmsfleet/tms/domain/deadletter"
	"github.com/tmsfleet/tms/domain/event"
	"github.com/tmsfleet/tms/domain/g7event"
	"github.com/tmsfleet/tms/domain/position"
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
	// Events are G7's event feeds (stop, idle, EMS) the Subscriber also
	// delivers: a message whose topic is under one of their filters
	// (mqtt.Match, tried in order) is that feed's event; any other is a
	// position batch. Each kind at most once. None: positions only.
	Events []EventFeed
	// EventsTopic is where accepted event reports go. Default
	// tms.g7events.
	EventsTopic string
	// EventMaxBytes bounds an event message (TMS_G7_EVENT_MAX_BYTES);
	// a larger one is one too_large dead letter. Default
	// g7.DefaultMaxEventBytes.
	EventMaxBytes int
	// EventMaxDuration is the longest event accepted
	// (TMS_G7_EVENT_MAX_DURATION). Default g7event.DefaultMaxDuration.
	EventMaxDuration time.Duration
	// MaxPayloadBytes bounds a message's payload; a larger one is one
	// too_large dead letter. It is the same setting as the MQTT packet
	// limit (TMS_MQTT_MAX_PACKET_BYTES), of which the payload is a part.
	// Default mqtt.DefaultMaxPacketBytes.
	MaxPayloadBytes int
	// MaxItems bounds the items read from one message
	// (TMS_G7_MAX_ITEMS); the rest are not read, and one too_many_items
	// dead letter counts them. Default g7.DefaultMaxItems.
	MaxItems int
	// MaxLetters bounds the dead letters of rejected items of one message
	// (TMS_G7_MAX_LETTERS); one too_many_rejections letter counts the
	// rest by reason. Default DefaultMaxLetters.
	MaxLetters int
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

// EventFeed is one of G7's event feeds: the topic filter it is
// subscribed by and the kind of its events.
type EventFeed struct {
	Filter string
	Kind   g7event.Kind
}

// DefaultMaxLetters is TMS_G7_MAX_LETTERS's default: a real batch with
// a faulty device has a handful of bad items, a hundred shows any pattern,
// and the summary counts the rest.
const DefaultMaxLetters = 100

func (c *Config) setDefaults() {
	if c.PositionsTopic == "" {
		c.PositionsTopic = event.TopicPositions
	}
	if c.DeadLetterTopic == "" {
		c.DeadLetterTopic = event.TopicDeadLetter
	}
	if c.EventsTopic == "" {
		c.EventsTopic = event.TopicG7Events
	}
	if c.MaxPayloadBytes == 0 {
		c.MaxPayloadBytes = mqtt.DefaultMaxPacketBytes
	}
	if c.MaxItems == 0 {
		c.MaxItems = g7.DefaultMaxItems
	}
	if c.MaxLetters == 0 {
		c.MaxLetters = DefaultMaxLetters
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

// Validate reports every problem of a config that cannot work.
func (c *Config) Validate() error {
	var errs []error
	if c.Subscriber == nil || c.Producer == nil {
		errs = append(errs, errors.New("ingest: a subscriber and a producer are required"))
	}
	if c.MaxLetters < 1 {
		errs = append(errs, fmt.Errorf("ingest: MaxLetters %d: must be at least 1", c.MaxLetters))
	}
	if _, err := g7.NewParser(c.parser()); err != nil {
		errs = append(errs, fmt.Errorf("ingest: %w", err))
	}
	if _, err := g7.NewEventParser(c.eventParser()); err != nil {
		errs = append(errs, fmt.Errorf("ingest: %w", err))
	}
	kinds := map[g7event.Kind]bool{}
	for _, f := range c.Events {
		if _, ok := g7event.ParseKind(string(f.Kind)); !ok || kinds[f.Kind] {
			errs = append(errs, fmt.Errorf("ingest: event feed %q: kind %q unknown or given twice", f.Filter, f.Kind))
		}
		if f.Filter == "" {
			errs = append(errs, fmt.Errorf("ingest: event feed %s: a topic filter is required", f.Kind))
		}
		kinds[f.Kind] = true
	}
	return errors.Join(errs...)
}

func (c *Config) eventParser() g7.EventConfig {
	return g7.EventConfig{MaxPayloadBytes: c.EventMaxBytes, MaxDuration: c.EventMaxDuration}
}

func (c *Config) parser() g7.Config {
	return g7.Config{MaxPayloadBytes: c.MaxPayloadBytes, MaxItems: c.MaxItems}
}

// Ingest is the running ingest stage.
type Ingest struct {
	cfg     Config
	parser  *g7.Parser
	events  *g7.EventParser
	log     *slog.Logger
	metrics *metrics
	// stopping makes the handler leave new messages unacknowledged, for
	// the next session, once shutdown has begun.
	stopping atomic.Bool
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
	parser, err := g7.NewParser(cfg.parser())
	if err != nil {
		return nil, err
	}
	events, err := g7.NewEventParser(cfg.eventParser())
	if err != nil {
		return nil, err
	}
	return &Ingest{
		cfg:        cfg,
		parser:     parser,
		events:     events,
		log:        cfg.Logger.With("component", "ingest"),
		metrics:    newMetrics(cfg.Registerer),
		produceCtx: context.Background(),
	}, nil
}

// Run ingests until ctx ends or the subscriber fails. No record, however
// Kafka answers it, ends it (see Handle). It stops intake first, then
// waits (up to ShutdownTimeout) for Kafka to acknowledge what is in
// flight, so those messages are acknowledged too.
func (in *Ingest) Run(ctx context.Context) error {
	in.produceCtx = context.WithoutCancel(ctx)
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	subErr := make(chan error, 1)
	go func() { subErr <- in.cfg.Subscriber.Run(runCtx, in.Handle) }()

	var err error
	select {
	case <-ctx.Done():
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
//
// What Kafka answers decides the acknowledgement, and never stops ingest:
//   - a record Kafka refuses for itself (too large, invalid: see refused)
//     is replaced by a small record_refused dead letter, and the message
//     is acknowledged once that letter is stored;
//   - any other error (not authorised, an unknown topic, shutdown) holds
//     the acknowledgement back: the broker sends the message again on the
//     next connection, and nothing is lost. It is logged and counted
//     (tms_ingest_produce_errors_total, tms_ingest_messages_held_total).
//
// A broker that is only unavailable gives no error at all: the client
// retries until it is back, and the message waits unacknowledged.
func (in *Ingest) Handle(msg mqtt.Message) {
	if in.stopping.Load() {
		return
	}
	start := in.cfg.Clock()
	in.metrics.messages.Inc()
	origin, _ := deadletter.Cut("mqtt:"+msg.Topic(), deadletter.MaxOriginBytes)
	var records []*kgo.Record
	kind, isEvent := in.kind(msg.Topic())
	switch {
	case msg.Oversized() != nil:
		records = in.oversized(origin, msg.Oversized(), start)
	case isEvent:
		records = in.eventRecords(origin, kind, msg.Payload(), start)
	default:
		records = in.records(origin, msg.Payload(), start)
	}
	if len(records) == 0 {
		msg.Ack()
		return
	}
	in.metrics.inflight.Inc()
	d := &delivery{in: in, msg: msg, origin: origin, receivedAt: start}
	d.pending.Store(int64(len(records)))
	for _, r := range records {
		in.cfg.Producer.Produce(in.produceCtx, r, d.promise)
	}
}

// delivery follows the records of one message to its acknowledgement.
type delivery struct {
	in         *Ingest
	msg        mqtt.Message
	origin     string
	receivedAt time.Time
	// pending counts the records Kafka has not answered yet; a refused
	// record stays pending until its replacement is answered.
	pending atomic.Int64
	// held is set when a record could not be stored: the message is then
	// not acknowledged.
	held atomic.Bool
}

// promise receives Kafka's answer for one of the message's records.
func (d *delivery) promise(r *kgo.Record, err error) {
	if err != nil && refused(err) {
		name := errorName(err)
		d.in.metrics.refused.WithLabelValues(name).Inc()
		topic, _ := deadletter.Cut(r.Topic, deadletter.MaxOriginBytes)
		key, _ := deadletter.Cut(string(r.Key), deadletter.MaxVehicleBytes)
		d.in.log.Warn("Kafka refused a record; a record_refused dead letter replaces it",
			"origin", d.origin, "topic", topic, "key", key, "bytes", len(r.Value), "err", name)
		l := deadletter.Refusal(stage, d.origin, r.Topic, r.Key, r.Value, name, d.receivedAt)
		replacement := d.in.letter(l)
		// A promise must not block on the client (franz-go runs them one
		// at a time): produce from a goroutine of its own.
		go d.in.cfg.Producer.Produce(d.in.produceCtx, replacement, d.replaced)
		return
	}
	if err != nil {
		d.hold(r, err)
	}
	d.done()
}

// replaced receives Kafka's answer for the letter that replaces a refused
// record. A replacement is never replaced in turn.
func (d *delivery) replaced(r *kgo.Record, err error) {
	if err != nil {
		d.hold(r, err)
	}
	d.done()
}

// hold records that r could not be stored: the message stays
// unacknowledged, and comes again on the next connection.
func (d *delivery) hold(r *kgo.Record, err error) {
	d.held.Store(true)
	if d.in.stopping.Load() || shutdown(err) {
		return
	}
	name := errorName(err)
	d.in.metrics.produceErrors.WithLabelValues(name).Inc()
	topic, _ := deadletter.Cut(r.Topic, deadletter.MaxOriginBytes)
	d.in.log.Error("a record could not be stored; its message stays unacknowledged and is redelivered on the next connection",
		"origin", d.origin, "topic", topic, "bytes", len(r.Value), "err", name, "detail", err)
}

func (d *delivery) done() {
	if d.pending.Add(-1) > 0 {
		return
	}
	d.in.metrics.inflight.Dec()
	if d.held.Load() {
		d.in.metrics.held.Inc()
		return
	}
	d.msg.Ack()
	d.in.metrics.produceLatency.Observe(d.in.cfg.Clock().Sub(d.receivedAt).Seconds())
}

// refused reports an error with which Kafka refuses a record for what it
// is, not for the state of the cluster: sending it again would give the
// same answer. franz-go gives MESSAGE_TOO_LARGE also for a record larger
// than its own batch limit, before sending it.
func refused(err error) bool {
	for _, e := range []error{kerr.MessageTooLarge, kerr.RecordListTooLarge, kerr.InvalidRecord,
		kerr.CorruptMessage, kerr.InvalidTimestamp} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// shutdown reports an error that only says the client is closing.
func shutdown(err error) bool {
	return errors.Is(err, kgo.ErrClientClosed) || errors.Is(err, kgo.ErrAborting) || errors.Is(err, context.Canceled)
}

// errorName names a produce error by a bounded set of names (Kafka's own
// error names, or franz-go's client errors), for metric labels and dead
// letters.
func errorName(err error) string {
	for _, c := range []struct {
		err  error
		name string
	}{
		{kgo.ErrRecordTimeout, "RECORD_TIMEOUT"}, {kgo.ErrRecordRetries, "RECORD_RETRIES"},
		{kgo.ErrClientClosed, "CLIENT_CLOSED"}, {kgo.ErrAborting, "ABORTING"}, {kgo.ErrMaxBuffered, "MAX_BUFFERED"},
		{context.Canceled, "CANCELED"}, {context.DeadlineExceeded, "DEADLINE_EXCEEDED"},
	} {
		if errors.Is(err, c.err) {
			return c.name
		}
	}
	var ke *kerr.Error
	if errors.As(err, &ke) {
		return ke.Message
	}
	return "OTHER"
}

// records parses a message into position records and dead letters: at
// most MaxItems positions, MaxLetters letters of rejected items, and two
// summary letters, each of a size known before it is produced (see
// deadletter.MaxEventBytes).
func (in *Ingest) records(origin string, payload []byte, receivedAt time.Time) []*kgo.Record {
	batch := in.parser.Parse(payload, receivedAt)
	if batch.Rejection != nil {
		in.metrics.rejected.WithLabelValues(batch.Rejection.Reason).Inc()
		l := deadletter.New(stage, origin, batch.Rejection.Reason, batch.Rejection.Field, batch.Rejection.Detail,
			payload, receivedAt)
		return []*kgo.Record{in.letter(l)}
	}
	records := make([]*kgo.Record, 0, len(batch.Items))
	batchHash := ""
	hash := func() string {
		if batchHash == "" {
			batchHash = deadletter.Hash(payload)
		}
		return batchHash
	}
	letters, unlettered := 0, map[string]int{}
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
		if letters == in.cfg.MaxLetters {
			unlettered[it.Rejection.Reason]++
			continue
		}
		letters++
		l := deadletter.New(stage, origin, it.Rejection.Reason, it.Rejection.Field, it.Rejection.Detail, it.Raw, receivedAt).
			WithVehicle(it.Plate).InBatch(i, hash())
		records = append(records, in.letter(l))
	}
	if n := sum(unlettered); n > 0 {
		l := deadletter.Summary(stage, origin, deadletter.ReasonTooManyRejections,
			fmt.Sprintf("%d more items of this message were rejected than get a letter of their own (at most %d, TMS_G7_MAX_LETTERS); counts gives their reasons",
				n, in.cfg.MaxLetters), n, unlettered, payload, receivedAt)
		l.BatchSHA256 = hash()
		records = append(records, in.letter(l))
	}
	if batch.Excess > 0 {
		in.metrics.received.Add(float64(batch.Excess))
		in.metrics.rejected.WithLabelValues(deadletter.ReasonTooManyItems).Add(float64(batch.Excess))
		l := deadletter.Summary(stage, origin, deadletter.ReasonTooManyItems,
			fmt.Sprintf("the message has %d items past the first %d (TMS_G7_MAX_ITEMS); they were not read",
				batch.Excess, in.cfg.MaxItems), batch.Excess, nil, payload, receivedAt).
			InBatch(in.cfg.MaxItems, hash())
		records = append(records, in.letter(l))
	}
	return records
}

// kind tells an event feed's message by its topic: its kind, or false
// for a position batch.
func (in *Ingest) kind(topic string) (g7event.Kind, bool) {
	for _, f := range in.cfg.Events {
		if mqtt.Match(f.Filter, topic) {
			return f.Kind, true
		}
	}
	return "", false
}

// eventRecords parses an event feed's message into its one record: the
// report on the events topic, or a dead letter saying why not.
func (in *Ingest) eventRecords(origin string, kind g7event.Kind, payload []byte, receivedAt time.Time) []*kgo.Record {
	it := in.events.Parse(kind, payload, receivedAt)
	if it.Rejection != nil {
		in.metrics.eventsRejected.WithLabelValues(string(kind), it.Rejection.Reason).Inc()
		l := deadletter.New(stage, origin, it.Rejection.Reason, it.Rejection.Field, it.Rejection.Detail, payload, receivedAt).
			WithVehicle(it.Plate)
		return []*kgo.Record{in.letter(l)}
	}
	e, err := it.Report.Event(Source)
	if err != nil {
		// A validated report is finite numbers, times and strings.
		panic(fmt.Sprintf("ingest: encode g7 event: %v", err))
	}
	in.metrics.eventsAccepted.WithLabelValues(string(kind)).Inc()
	return []*kgo.Record{record(in.cfg.EventsTopic, it.Report.Plate, e, receivedAt)}
}

func sum(counts map[string]int) int {
	n := 0
	for _, c := range counts {
		n += c
	}
	return n
}

// oversized makes the one dead letter of a message the subscriber
// discarded unread for its size.
func (in *Ingest) oversized(origin string, o *mqtt.Oversize, receivedAt time.Time) []*kgo.Record {
	in.metrics.rejected.WithLabelValues(position.ReasonTooLarge).Inc()
	l := deadletter.Discarded(stage, origin, position.ReasonTooLarge,
		fmt.Sprintf("the message has %d bytes; MQTT packets larger than %d bytes (TMS_MQTT_MAX_PACKET_BYTES) are discarded unread",
			o.Bytes, in.cfg.MaxPayloadBytes), hex.EncodeToString(o.SHA256[:]), receivedAt)
	return []*kgo.Record{in.letter(l)}
}

// letter encodes a dead letter as a record keyed by its vehicle.
func (in *Ingest) letter(l deadletter.Letter) *kgo.Record {
	e, err := l.Event(Source)
	if err != nil {
		// A letter is plain strings: encoding cannot fail unless the
		// program is wrong.
		panic(fmt.Sprintf("ingest: encode dead letter: %v", err))
	}
	return record(in.cfg.DeadLetterTopic, l.Vehicle, e, l.ReceivedAt)
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
