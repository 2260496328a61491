package txloop_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tmsfleet/tms/adapters/kafka"
	"github.com/tmsfleet/tms/domain/event"
	"github.com/tmsfleet/tms/internal/metricstest"
	"github.com/tmsfleet/tms/internal/testenv"
	"github.com/tmsfleet/tms/internal/tmsproc"
	"github.com/tmsfleet/tms/pipeline/txloop"
)

// copier is a processor that copies its input to an output, keeping as
// its state of a partition how many records it copied since it restored
// it. It fails once, at the record failAt of partition 0.
type copier struct {
	sess        *kgo.GroupTransactSession
	parts       *txloop.Partitions[*int]
	out         string
	failAt      int64
	mu          sync.Mutex
	failed      bool // the failure happened
	forgotten   bool // the first batch after it found no state held
	emptyBatch  bool // a batch without records was processed
	wantEmpty   bool // Due is to begin a transaction without records
	afterFailed bool
}

func (c *copier) process(ctx context.Context, fetches kgo.Fetches) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.afterFailed {
		c.afterFailed, c.forgotten = false, len(c.parts.Held) == 0
	}
	if fetches.NumRecords() == 0 {
		c.emptyBatch, c.wantEmpty = true, false
	}
	var failed error
	var once sync.Once
	for _, r := range fetches.Records() {
		st := c.parts.Held[r.Partition]
		if st == nil {
			st = new(int) // a restore
			c.parts.Held[r.Partition] = st
		}
		if r.Partition == 0 && r.Offset == c.failAt && !c.failed {
			c.failed, c.afterFailed = true, true
			return errors.New("a failure of the test's")
		}
		*st++
		c.sess.Produce(ctx, &kgo.Record{Topic: c.out, Key: r.Key, Value: r.Value}, func(_ *kgo.Record, err error) {
			if err != nil {
				once.Do(func() { failed = err })
			}
		})
	}
	if err := c.sess.Client().Flush(ctx); err != nil {
		return err
	}
	return failed
}

func (c *copier) due() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.wantEmpty
}

// TestRun: a batch that fails is aborted and the state of every partition
// forgotten; what commits holds every input record once for a
// read_committed reader; Due begins a transaction without records; Run
// returns nil once its context ends.
func TestRun(t *testing.T) {
	t.Parallel()
	kc := testenv.FromEnv(os.LookupEnv).Kafka(t)
	in, out, state := kc.Topic(event.TopicPositions), kc.Topic(event.TopicGeofence), kc.Topic(event.TopicGeofenceState)
	const n = 60
	var records []*kgo.Record
	for i := range n {
		records = append(records, &kgo.Record{Topic: in, Partition: int32(i % 3), Key: fmt.Appendf(nil, "k%d", i), Value: fmt.Appendf(nil, "v%d", i)})
	}
	producer, err := kc.NewClient("txloop-test-producer", kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer producer.Close()
	if err := producer.ProduceSync(t.Context(), records...).FirstErr(); err != nil {
		t.Fatal(err)
	}

	parts := txloop.NewPartitions[*int](in)
	sess, err := txloop.NewSession(kc, "txloop-test", "txloop-test", state, append([]kgo.Opt{kgo.ConsumeTopics(in)}, parts.Options()...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sess.Close) // after Run has stopped: cleanups run last in, first out
	c := &copier{sess: sess, parts: parts, out: out, failAt: 10}
	reg := prometheus.NewRegistry()
	stop := testenv.Go(t, "txloop", func(ctx context.Context) error {
		return txloop.Run(ctx, sess, parts, txloop.Config{
			Name: "txloop-test", CommitInterval: 50 * time.Millisecond, MaxBatch: 7, PollTimeout: 100 * time.Millisecond,
			Process: c.process, Due: c.due,
			Logger: testLogger(t), Metrics: txloop.NewMetrics(reg, "tms_txloop_test", "Input"),
		})
	})

	adm, err := kc.NewAdmin("txloop-test-admin")
	if err != nil {
		t.Fatal(err)
	}
	defer adm.Close()
	tmsproc.Eventually(t, time.Minute, "the group commits every input record", func() bool {
		return committed(t, adm, kc.Group("txloop-test"), in) == n
	})
	c.mu.Lock()
	c.wantEmpty = true
	c.mu.Unlock()
	tmsproc.Eventually(t, 30*time.Second, "a transaction without records begins when Due says so", func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.emptyBatch
	})
	stop() // fails the test if Run returns an error

	c.mu.Lock()
	if !c.failed || !c.forgotten {
		t.Errorf("failed %v, state forgotten after it %v: want both", c.failed, c.forgotten)
	}
	c.mu.Unlock()
	if got := metricstest.Sum(t, reg, "tms_txloop_test_transactions_total", "result", "aborted"); got != 1 {
		t.Errorf("%v transactions aborted, want 1", got)
	}
	if got := metricstest.Sum(t, reg, "tms_txloop_test_transactions_total", "result", "committed"); got < 2 {
		t.Errorf("%v transactions committed, want several", got)
	}
	got := readCommitted(t, kc, adm, out)
	if len(got) != n {
		t.Errorf("%d distinct records committed to the output, want %d", len(got), n)
	}
	for k, times := range got {
		if times != 1 {
			t.Errorf("%s committed %d times", k, times)
		}
	}
}

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
}

// committed sums the group's committed offsets on topic.
func committed(t *testing.T, adm *kadm.Client, group, topic string) int64 {
	t.Helper()
	offs, err := adm.FetchOffsets(t.Context(), group)
	if err != nil {
		return 0
	}
	var sum int64
	offs.Each(func(o kadm.OffsetResponse) {
		if o.Topic == topic && o.Err == nil {
			sum += o.At
		}
	})
	return sum
}

// readCommitted counts the records of topic by key, read up to its last
// stable offsets.
func readCommitted(t *testing.T, kc *kafka.Config, adm *kadm.Client, topic string) map[string]int {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	stable, err := adm.ListCommittedOffsets(ctx, topic)
	if err == nil {
		err = stable.Error()
	}
	if err != nil {
		t.Fatal(err)
	}
	behind := map[int32]int64{}
	stable.Each(func(o kadm.ListedOffset) {
		if o.Offset > 0 {
			behind[o.Partition] = o.Offset
		}
	})
	cl, err := kc.NewClient("txloop-test-reader", kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.KeepControlRecords())
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	got := map[string]int{}
	for len(behind) > 0 {
		fetches := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("reading %s: %d partitions not read to their stable offset", topic, len(behind))
		}
		for _, r := range fetches.Records() {
			if end, ok := behind[r.Partition]; ok && r.Offset+1 >= end {
				delete(behind, r.Partition)
			}
			if !r.Attrs.IsControl() {
				got[string(r.Key)]++
			}
		}
	}
	return got
}
