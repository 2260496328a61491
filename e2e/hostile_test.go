package e2e

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/url"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tmsfleet/tms/domain/deadletter"
	"github.com/tmsfleet/tms/domain/event"
	"github.com/tmsfleet/tms/internal/hostile"
	"github.com/tmsfleet/tms/internal/testenv"
	"github.com/tmsfleet/tms/internal/tmsproc"
)

// TestHostileMessagesNeverStopIngest publishes the hostile messages
// (internal/hostile: a plate of 250 KB of '<' and one of invalid UTF-8,
// huge fields other than the plate, a number of 250 KB of digits, nesting
// 100,000 deep, a 10 MB payload, an array of 500 KB of 1s, 5,000 bad
// items) to the real tms binary through Mosquitto, which accepts them
// all, each followed by a good position. Every good position reaches the
// API within seconds, the process never exits, and each bad message
// leaves exactly the dead letters it deserves, none larger than its
// bound. Before the limits, the first message ended the process:
// Kafka refused its 3.6 MB dead letter, and the refusal stopped ingest.
func TestHostileMessagesNeverStopIngest(t *testing.T) {
	t.Parallel()
	d := newDeployment(t)
	d.Start()
	pub := paho.NewClient(paho.NewClientOptions().AddBroker(d.MQTTURL).SetClientID(testenv.Name("hostile")).
		SetWriteTimeout(time.Minute))
	if tok := pub.Connect(); !tok.WaitTimeout(30*time.Second) || tok.Error() != nil {
		t.Fatalf("publisher connect: %v", tok.Error())
	}
	defer pub.Disconnect(0)
	publish := func(payload []byte) {
		t.Helper()
		// A timed-out token carries no error: it is a failure too.
		if tok := pub.Publish(d.Topic, 1, false, payload); !tok.WaitTimeout(time.Minute) || tok.Error() != nil {
			t.Fatalf("publish %d bytes: %v", len(payload), tok.Error())
		}
	}
	alive := func() {
		t.Helper()
		if d.Exited() {
			t.Fatal("tms exited (its output follows)")
		}
	}

	messages := hostile.Messages()
	fix := time.Now().Add(-time.Minute).Truncate(time.Millisecond)
	for i, m := range messages {
		publish(m.Payload)
		plate := fmt.Sprintf("沪G%05d", i)
		publish(fmt.Appendf(nil, `{"data":[{"plateNum":%q,"lng":121.4737,"lat":31.2304,"speed":10,"gps_time":%d}]}`,
			plate, fix.UnixMilli()))
		start := time.Now()
		tmsproc.Eventually(t, 10*time.Second, "the good position after "+m.Name+" in the API", func() bool {
			alive()
			return d.Get("/api/v1/vehicles/"+url.PathEscape(plate), nil) == 200
		})
		t.Logf("%s: the next good position was in the API %v after it was published", m.Name, time.Since(start).Round(time.Millisecond))
	}
	// The good fix among the huge fields went through too.
	if code := d.Get("/api/v1/vehicles/"+url.PathEscape("沪H00001"), nil); code != 200 {
		t.Errorf("沪H00001 (a good fix with a huge extra field): %d", code)
	}

	// The dead letters: each message's, by reason, none larger than its
	// bound, and nothing else.
	want := 0
	for _, m := range messages {
		for _, n := range m.Letters {
			want += n
		}
	}
	records := readAll(t, d, want)
	byMessage := map[string][]deadletter.Letter{}
	for _, r := range records {
		if len(r.Value) > deadletter.MaxEventBytes || len(r.Key) > deadletter.MaxVehicleBytes {
			t.Errorf("dead letter of %d bytes (bound %d), key of %d", len(r.Value), deadletter.MaxEventBytes, len(r.Key))
		}
		e, err := event.Decode(r.Value)
		if err != nil {
			t.Fatal(err)
		}
		var l deadletter.Letter
		if err := json.Unmarshal(e.Data, &l); err != nil {
			t.Fatal(err)
		}
		id := l.BatchSHA256
		if id == "" {
			id = l.RawSHA256 // a letter of a whole message
		}
		byMessage[id] = append(byMessage[id], l)
	}
	for _, m := range messages {
		sum := sha256.Sum256(m.Payload)
		letters := byMessage[hex.EncodeToString(sum[:])]
		reasons, counts := map[string]int{}, map[string]int{}
		for _, l := range letters {
			reasons[l.Reason]++
			if l.Count > 0 {
				counts[l.Reason] = l.Count
			}
			if m.Oversized && (l.Raw != "" || l.RawSHA256 != hex.EncodeToString(sum[:])) {
				t.Errorf("%s: the letter of a message discarded unread has %d raw bytes and hash %s",
					m.Name, len(l.Raw), l.RawSHA256)
			}
		}
		if fmt.Sprint(reasons) != fmt.Sprint(m.Letters) {
			t.Errorf("%s: letters %v, want %v", m.Name, reasons, m.Letters)
		}
		if len(m.Counts) > 0 && fmt.Sprint(counts) != fmt.Sprint(m.Counts) {
			t.Errorf("%s: summaries count %v, want %v", m.Name, counts, m.Counts)
		}
	}
	alive()
	d.Stop()
}

// readAll reads the deployment's dead-letter topic from the start until
// it has n records, and checks that the topic holds no more.
func readAll(t *testing.T, d *tmsproc.Deployment, n int) []*kgo.Record {
	t.Helper()
	topic := d.Kafka.Topic(event.TopicDeadLetter)
	cl, err := d.Kafka.NewClient("e2e-hostile", kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	var out []*kgo.Record
	for len(out) < n {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("%d of %d dead letters", len(out), n)
		}
		out = append(out, fs.Records()...)
	}
	ends, err := kadm.NewClient(cl).ListEndOffsets(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	var total int64
	ends.Each(func(o kadm.ListedOffset) { total += o.Offset })
	if total != int64(len(out)) {
		t.Errorf("the dead-letter topic holds %d records, %d expected", total, len(out))
	}
	return out
}
