package bench

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tmsfleet/tms/adapters/mqtt"
	"github.com/tmsfleet/tms/domain/event"
	"github.com/tmsfleet/tms/internal/testenv"
	"github.com/tmsfleet/tms/pipeline/ingest"
	"github.com/tmsfleet/tms/simulator"
)

// The ingest load: the simulator's G7 batches from a fleet of
// ingestVehicles, as fast as the broker and ingest take them.
const (
	ingestPositions = 400_000
	// ingestWarmupPasses of ingestPositions each go through the same path,
	// untimed, before the measured run: a freshly started Kafka uses much
	// more CPU per record while its JVM warms up (measured: about 4 s per
	// 400,000 records at first, 0.7 s after some two million).
	ingestWarmupPasses = 6
	ingestVehicles     = 10_000
	ingestBatch        = 50
	// ingestTimeout bounds one run (it would take 80 s at 5,000/s).
	ingestTimeout = 3 * time.Minute
)

// BenchmarkIngest measures simulator -> Mosquitto -> ingest -> Kafka in
// positions per second: from the first MQTT publish until Kafka has
// acknowledged the last position record.
//
// Ingest runs in this process, wired as `tms serve` wires its ingest role
// (cmd/tms/serve.go): a persistent-session mqtt.Subscriber and a producer
// from kafka.Config.NewClient("ingest"), with metrics registered. In
// process, the producer can be wrapped to count Kafka's acknowledgements
// as they arrive, which times the last one exactly, and a -cpuprofile of
// the benchmark covers ingest itself.
func BenchmarkIngest(b *testing.B) {
	reportCores(b, fmt.Sprintf("simulator (Accelerated, %d vehicles, %d positions, batches of %d, QoS 1, 64 messages in flight) "+
		"-> Mosquitto -> pipeline/ingest in the benchmark process (mqtt.Subscriber, kafka.Config.NewClient(\"ingest\"): "+
		"acks=all, idempotent, lz4, linger 2ms) -> Kafka topic with 3 partitions; all co-located; after %d untimed warm-up passes",
		ingestVehicles, ingestPositions, ingestBatch, ingestWarmupPasses))
	b.StopTimer()
	rates := make([]string, ingestWarmupPasses)
	for i := range rates {
		rates[i] = fmt.Sprintf("%.0f", ingestPositions/runIngest(b, ingestPositions, false).Seconds())
	}
	b.Logf("warm-up passes, not timed, %d positions each, positions/s: %s", ingestPositions, strings.Join(rates, ", "))
	var total int64
	var elapsed time.Duration
	for range b.N {
		elapsed += runIngest(b, ingestPositions, true)
		total += ingestPositions
	}
	b.ReportMetric(float64(total)/elapsed.Seconds(), "positions/s")
}

// runIngest sends positions through a fresh ingest, each time in a Kafka
// namespace and on an MQTT topic of its own, and returns the time from the
// first publish to Kafka's acknowledgement of the last record. With timed
// set it runs the benchmark's timer and logs what it measured.
func runIngest(b *testing.B, positions int64, timed bool) time.Duration {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	reg := prometheus.NewRegistry()
	kc := svc.Kafka(b)
	kc.Logger, kc.Registerer = quiet, reg
	brokerURL := svc.MQTT(b)
	topic := testenv.Name("g7") + "/positions"
	topicPositions := kc.Topic(event.TopicPositions)

	sub, err := mqtt.NewSubscriber(mqtt.Config{URL: brokerURL, ClientID: testenv.Name("tms-ingest"), Topic: topic, Logger: quiet})
	if err != nil {
		b.Fatal(err)
	}
	client, err := kc.NewClient("ingest")
	if err != nil {
		b.Fatal(err)
	}
	defer client.Close()
	producer := &countingProducer{client: client, topic: topicPositions, want: positions, done: make(chan struct{})}
	in, err := ingest.New(ingest.Config{
		Subscriber: sub, Producer: producer,
		PositionsTopic: topicPositions, DeadLetterTopic: kc.Topic(event.TopicDeadLetter),
		Registerer: reg, Logger: quiet,
	})
	if err != nil {
		b.Fatal(err)
	}
	ingestDone := make(chan error, 1)
	go func() { ingestDone <- in.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-ingestDone; err != nil {
			b.Errorf("ingest stopped with %v", err)
		}
	}()
	select {
	case <-sub.Subscribed():
	case <-time.After(30 * time.Second):
		b.Fatal("the ingest subscriber did not subscribe within 30 s")
	}

	sim, err := simulator.New(simulator.Config{
		BrokerURL: brokerURL, Topic: topic, ClientID: testenv.Name("simulator"),
		Seed: 1, Vehicles: ingestVehicles, BatchSize: ingestBatch,
		Accelerated: true, MaxPositions: positions,
		LogEvery: time.Hour, Logger: quiet,
	})
	if err != nil {
		b.Fatal(err)
	}
	cpu := startCPU()
	if timed {
		b.StartTimer()
	}
	// The simulator's MQTT connect (a few ms to a local broker) is inside
	// the interval: it cannot be told apart from the first publish.
	start := time.Now()
	simDone := make(chan error, 1)
	var simEnd atomic.Int64
	go func() {
		err := sim.Run(ctx)
		simEnd.Store(time.Now().UnixNano())
		simDone <- err
	}()
	deadline := time.After(ingestTimeout)
	var simErr error
	simRunning := simDone
wait:
	for {
		select {
		case <-producer.done:
			break wait
		case simErr = <-simRunning:
			// Done publishing; ingest may still be behind.
			if simErr != nil {
				b.Fatalf("simulator: %v", simErr)
			}
			simRunning = nil
		case <-deadline:
			break wait
		}
	}
	if timed {
		b.StopTimer()
	}
	shares, wall := cpu.stop()
	select {
	case <-producer.done:
	default:
		b.Fatalf("after %s Kafka had acknowledged %d of %d positions (simulator: %+v)",
			time.Since(start).Round(time.Second), producer.acked.Load(), positions, sim.Stats())
	}
	elapsed := time.Unix(0, producer.lastAt.Load()).Sub(start)
	if simRunning != nil {
		if simErr = <-simRunning; simErr != nil {
			b.Fatalf("simulator: %v", simErr)
		}
	}
	st := sim.Stats()
	inKafka := endOffset(b, kc, topicPositions)
	if inKafka < positions {
		b.Errorf("the positions topic holds %d records, want %d", inKafka, positions)
	}
	if !timed {
		return elapsed
	}
	published := time.Unix(0, simEnd.Load()).Sub(start)
	b.Logf("%d positions (%d MQTT messages) acknowledged by Kafka in %s: %.0f positions/s; "+
		"the simulator had all of them acknowledged by Mosquitto after %s (%.0f positions/s); "+
		"topic end offsets %d; simulator failures %d, retries %d",
		positions, st.MessagesPublished, elapsed.Round(time.Millisecond), float64(positions)/elapsed.Seconds(),
		published.Round(time.Millisecond), float64(st.PositionsPublished)/published.Seconds(),
		inKafka, st.MessagesFailed, st.Retries)
	logCPU(b, shares, wall)
	return elapsed
}

// countingProducer is the ingest producer, counting Kafka's
// acknowledgements of records to topic and noting when the want-th came.
type countingProducer struct {
	client *kgo.Client
	topic  string
	want   int64
	acked  atomic.Int64
	lastAt atomic.Int64 // Unix ns of the want-th acknowledgement
	done   chan struct{}
}

func (p *countingProducer) Produce(ctx context.Context, r *kgo.Record, promise func(*kgo.Record, error)) {
	p.client.Produce(ctx, r, func(r *kgo.Record, err error) {
		if err == nil && r.Topic == p.topic && p.acked.Add(1) == p.want {
			p.lastAt.Store(time.Now().UnixNano())
			close(p.done)
		}
		promise(r, err)
	})
}

func (p *countingProducer) Flush(ctx context.Context) error { return p.client.Flush(ctx) }
