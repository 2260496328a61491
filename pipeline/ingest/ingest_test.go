package ingest

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tmsfleet/tms/adapters/kafka"
	"github.com/tmsfleet/tms/adapters/mqtt"
	"github.com/tmsfleet/tms/domain/deadletter"
	"github.com/tmsfleet/tms/domain/event"
	"github.com/tmsfleet/tms/domain/position"
	"github.com/tmsfleet/tms/internal/testenv"
)

// heldProducer keeps every record's promise until the test releases it,
// to observe what ingest does before and after Kafka acknowledges.
type heldProducer struct {
	mu       sync.Mutex
	records  []*kgo.Record
	promises []func(*kgo.Record, error)
	// produced receives a value for every record produced.
	produced chan struct{}
}

func newHeldProducer() *heldProducer { return &heldProducer{produced: make(chan struct{}, 1_000_000)} }

func (p *heldProducer) Produce(_ context.Context, r *kgo.Record, promise func(*kgo.Record, error)) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.records = append(p.records, r)
	p.promises = append(p.promises, promise)
	p.produced <- struct{}{}
}

func (p *heldProducer) Flush(context.Context) error { return nil }

func (p *heldProducer) resolve(i int, err error) {
	p.mu.Lock()
	r, promise := p.records[i], p.promises[i]
	p.mu.Unlock()
	promise(r, err)
}

// record waits for the i-th record (from 0) to be produced.
func (p *heldProducer) record(t *testing.T, i int) *kgo.Record {
	t.Helper()
	for {
		p.mu.Lock()
		n := len(p.records)
		p.mu.Unlock()
		if n > i {
			p.mu.Lock()
			defer p.mu.Unlock()
			return p.records[i]
		}
		select {
		case <-p.produced:
		case <-time.After(10 * time.Second):
			t.Fatalf("record %d not produced after 10 s (%d were)", i, n)
		}
	}
}

func (p *heldProducer) count() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.records)
}

type fakeMessage struct {
	// topic is g7/positions when empty.
	topic    string
	payload  []byte
	oversize *mqtt.Oversize
	acks     atomic.Int32
}

func (m *fakeMessage) Topic() string {
	if m.topic == "" {
		return "g7/positions"
	}
	return m.topic
}
func (m *fakeMessage) Payload() []byte           { return m.payload }
func (m *fakeMessage) Ack()                      { m.acks.Add(1) }
func (m *fakeMessage) Oversized() *mqtt.Oversize { return m.oversize }

func newTestIngest(t *testing.T, p Producer, cfg ...func(*Config)) *Ingest {
	t.Helper()
	c := Config{Subscriber: noSubscriber{}, Producer: p, Clock: func() time.Time { return received }}
	for _, f := range cfg {
		f(&c)
	}
	in, err := New(c)
	if err != nil {
		t.Fatal(err)
	}
	in.produceCtx = t.Context()
	return in
}

type noSubscriber struct{}

func (noSubscriber) Run(ctx context.Context, _ mqtt.Handler) error { <-ctx.Done(); return nil }

var received = time.Date(2026, 11, 27, 8, 0, 0, 0, time.UTC)

const mixedBatch = `{"data":[
	{"plateNum":"沪A12345","lng":121.47,"lat":31.23,"speed":42,"gps_time":1764230000000},
	{"plateNum":"沪A12345","lng":121.47,"lat":95,"speed":42,"gps_time":1764230001000},
	{"plateNum":"苏B00001","lng":"120.58","lat":"31.29","speed":"0","gps_time":1764230000000}
]}`

func TestMessageIsAckedOnlyAfterKafkaHasEveryRecord(t *testing.T) {
	t.Parallel()
	p := newHeldProducer()
	in := newTestIngest(t, p)
	msg := &fakeMessage{payload: []byte(mixedBatch)}
	in.Handle(msg)
	if len(p.records) != 3 {
		t.Fatalf("produced %d records, want 3 (two positions, one dead letter)", len(p.records))
	}
	for i := range p.records {
		if msg.acks.Load() != 0 {
			t.Fatalf("acked after %d of 3 records were acknowledged", i)
		}
		p.resolve(i, nil)
	}
	if n := msg.acks.Load(); n != 1 {
		t.Fatalf("acks = %d after all records were acknowledged, want 1", n)
	}
}

// TestMessageIsHeldWhenARecordFailsAndIngestGoesOn: an error that is not
// a refusal of the record itself (here: not authorised) leaves the
// message unacknowledged, for the broker to send again on the next
// connection, and is counted; ingest keeps running and the next message
// is acknowledged as usual.
func TestMessageIsHeldWhenARecordFailsAndIngestGoesOn(t *testing.T) {
	t.Parallel()
	p := newHeldProducer()
	reg := prometheus.NewRegistry()
	in := newTestIngest(t, p, func(c *Config) { c.Registerer = reg })
	msg := &fakeMessage{payload: []byte(mixedBatch)}
	in.Handle(msg)
	p.resolve(0, nil)
	p.resolve(1, fmt.Errorf("produce: %w", kerr.TopicAuthorizationFailed))
	p.resolve(2, nil)
	if msg.acks.Load() != 0 {
		t.Fatal("a message was acked although one of its records was not written")
	}
	if got := value(t, in.metrics.produceErrors.WithLabelValues("TOPIC_AUTHORIZATION_FAILED")); got != 1 {
		t.Errorf("produce errors counted %v", got)
	}
	if got := value(t, in.metrics.held); got != 1 {
		t.Errorf("held messages counted %v", got)
	}
	if p.count() != 3 {
		t.Errorf("%d records produced: a failed record was retried or replaced", p.count())
	}
	next := &fakeMessage{payload: []byte(mixedBatch)}
	in.Handle(next)
	for i := 3; i < 6; i++ {
		p.resolve(i, nil)
	}
	if next.acks.Load() != 1 {
		t.Fatal("the next message was not acked")
	}
}

// TestMessageIsHeldQuietlyAtShutdown: records failed because the client
// is closing hold their message without counting an error.
func TestMessageIsHeldQuietlyAtShutdown(t *testing.T) {
	t.Parallel()
	p := newHeldProducer()
	in := newTestIngest(t, p)
	msg := &fakeMessage{payload: []byte(mixedBatch)}
	in.Handle(msg)
	for i := range 3 {
		p.resolve(i, kgo.ErrClientClosed)
	}
	if msg.acks.Load() != 0 || value(t, in.metrics.held) != 1 ||
		countSeries(in.metrics.produceErrors) != 0 {
		t.Errorf("acks %d, held %v, errors %d", msg.acks.Load(), value(t, in.metrics.held),
			countSeries(in.metrics.produceErrors))
	}
}

func TestEmptyBatchIsAckedAtOnce(t *testing.T) {
	t.Parallel()
	in := newTestIngest(t, newHeldProducer())
	msg := &fakeMessage{payload: []byte(`{"data":[]}`)}
	in.Handle(msg)
	if n := msg.acks.Load(); n != 1 {
		t.Fatalf("acks = %d", n)
	}
}

// TestIngestEndToEnd runs ingest between a real MQTT broker and Kafka
// (those `make test` starts, or the in-process ones): a batch with good
// and bad items becomes position events and dead letters.
func TestIngestEndToEnd(t *testing.T) {
	t.Parallel()
	svc := testenv.FromEnv(os.LookupEnv)
	kc := svc.Kafka(t)
	brokerURL := svc.MQTT(t)
	topic := testenv.Name("positions")

	sub, err := mqtt.NewSubscriber(mqtt.Config{URL: brokerURL, ClientID: testenv.Name("ingest"), Topic: topic})
	if err != nil {
		t.Fatal(err)
	}
	producer, err := kc.NewClient("ingest-test")
	if err != nil {
		t.Fatal(err)
	}
	defer producer.Close()
	in, err := New(Config{Subscriber: sub, Producer: producer,
		PositionsTopic: kc.Topic(event.TopicPositions), DeadLetterTopic: kc.Topic(event.TopicDeadLetter)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- in.Run(ctx) }()
	select {
	case <-sub.Subscribed():
	case <-time.After(15 * time.Second):
		t.Fatal("the subscriber did not subscribe")
	}

	pub := paho.NewClient(paho.NewClientOptions().AddBroker(brokerURL).SetClientID(testenv.Name("pub")))
	if tok := pub.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("publisher connect: %v", tok.Error())
	}
	defer pub.Disconnect(0)
	if tok := pub.Publish(topic, 1, false, mixedBatch); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("publish: %v", tok.Error())
	}

	positions := consume(t, kc, kc.Topic(event.TopicPositions), 2)
	plates := map[string]bool{}
	for _, r := range positions {
		e, err := event.Decode(r.Value)
		if err != nil {
			t.Fatal(err)
		}
		p, err := position.FromEvent(e)
		if err != nil {
			t.Fatal(err)
		}
		if string(r.Key) != p.Plate {
			t.Errorf("record key %q, plate %q", r.Key, p.Plate)
		}
		plates[p.Plate] = true
	}
	if !plates["沪A12345"] || !plates["苏B00001"] {
		t.Errorf("positions for %v", plates)
	}
	letters := consume(t, kc, kc.Topic(event.TopicDeadLetter), 1)
	e, err := event.Decode(letters[0].Value)
	if err != nil {
		t.Fatal(err)
	}
	var l deadletter.Letter
	if err := json.Unmarshal(e.Data, &l); err != nil {
		t.Fatal(err)
	}
	if e.Type != deadletter.TypeRejected || l.Reason != position.ReasonLatOutOfRange || l.Field != "lat" ||
		l.Vehicle != "沪A12345" || l.Index == nil || *l.Index != 1 || l.Origin != "mqtt:"+topic {
		t.Errorf("dead letter = %+v", l)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("ingest stopped with %v", err)
	}
}

// consume reads n records of topic from the start.
func consume(t *testing.T, kc *kafka.Config, topic string, n int) []*kgo.Record {
	t.Helper()
	cl, err := kc.NewClient("ingest-test-consumer", kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	var out []*kgo.Record
	for len(out) < n {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("got %d of %d records from %s", len(out), n, topic)
		}
		out = append(out, fs.Records()...)
	}
	return out
}

// value reads a counter.
func value(t *testing.T, c prometheus.Counter) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}

// countSeries counts the series a vector has.
func countSeries(c prometheus.Collector) int {
	ch := make(chan prometheus.Metric, 100)
	c.Collect(ch)
	close(ch)
	return len(ch)
}
