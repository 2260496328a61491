package ingest

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tmsfleet/tms/adapters/mqtt"
	"github.com/tmsfleet/tms/domain/deadletter"
	"github.com/tmsfleet/tms/domain/event"
	"github.com/tmsfleet/tms/domain/position"
	"github.com/tmsfleet/tms/internal/hostile"
	"github.com/tmsfleet/tms/internal/testenv"
	"github.com/tmsfleet/tms/internal/tmsproc"
)

// letterOf decodes a dead-letter record.
func letterOf(t *testing.T, r *kgo.Record) deadletter.Letter {
	t.Helper()
	e, err := event.Decode(r.Value)
	if err != nil {
		t.Fatal(err)
	}
	if e.Type != deadletter.TypeRejected {
		t.Fatalf("record of type %s on the dead-letter topic", e.Type)
	}
	var l deadletter.Letter
	if err := json.Unmarshal(e.Data, &l); err != nil {
		t.Fatal(err)
	}
	return l
}

// TestHostileMessagesMakeBoundedRecords hands ingest each hostile message
// and checks what it would produce: the dead letters the message deserves
// (by reason, with the summaries' counts), and no record larger than its
// bound, known before it is produced. Before the limits, the plate of '<'
// made a 3.6 MB record, the array of 1s 262,000 letters, and the 5,000 bad
// items as many letters.
func TestHostileMessagesMakeBoundedRecords(t *testing.T) {
	t.Parallel()
	for _, m := range hostile.Messages() {
		t.Run(m.Name, func(t *testing.T) {
			t.Parallel()
			p := newHeldProducer()
			in := newTestIngest(t, p)
			msg := &fakeMessage{payload: m.Payload}
			in.Handle(msg)
			letters, counts, positions := map[string]int{}, map[string]int{}, 0
			for i, r := range p.records {
				if len(r.Key) > deadletter.MaxVehicleBytes {
					t.Errorf("record %d: key of %d bytes", i, len(r.Key))
				}
				switch r.Topic {
				case event.TopicPositions:
					positions++
					if len(r.Value) > position.MaxEventBytes {
						t.Errorf("position record of %d bytes", len(r.Value))
					}
				case event.TopicDeadLetter:
					if len(r.Value) > deadletter.MaxEventBytes {
						t.Errorf("dead letter of %d bytes, bound %d", len(r.Value), deadletter.MaxEventBytes)
					}
					l := letterOf(t, r)
					letters[l.Reason]++
					if l.Count > 0 {
						counts[l.Reason] = l.Count
					}
					if len(l.Detail) > deadletter.MaxDetailBytes || len(l.Vehicle) > deadletter.MaxVehicleBytes {
						t.Errorf("letter %s: detail of %d bytes, vehicle of %d", l.Reason, len(l.Detail), len(l.Vehicle))
					}
				default:
					t.Fatalf("record for %s", r.Topic)
				}
				p.resolve(i, nil)
			}
			if fmt.Sprint(letters) != fmt.Sprint(m.Letters) || positions != m.Positions {
				t.Errorf("letters %v and %d positions; want %v and %d", letters, positions, m.Letters, m.Positions)
			}
			if len(m.Counts) > 0 && fmt.Sprint(counts) != fmt.Sprint(m.Counts) {
				t.Errorf("summary counts %v, want %v", counts, m.Counts)
			}
			if msg.acks.Load() != 1 {
				t.Error("not acknowledged")
			}
		})
	}
}

// TestHostileSummaryCountsTheRestByReason: past MaxLetters, the
// rejected items of a message are counted by reason in one letter.
func TestHostileSummaryCountsTheRestByReason(t *testing.T) {
	t.Parallel()
	p := newHeldProducer()
	in := newTestIngest(t, p, func(c *Config) { c.MaxLetters = 2 })
	items := []string{
		`{"plateNum":"沪A1","lng":121.4,"lat":95,"speed":1}`,
		`{"plateNum":"沪A1","lng":121.4,"lat":31.2,"speed":1}`,
		`{"plateNum":"沪A1","lng":181,"lat":31.2,"speed":1}`,
		`{"plateNum":"沪A1","lng":121.4,"lat":96,"speed":1}`,
		`{"plateNum":"沪A1","lng":182,"lat":31.2,"speed":1}`,
		`{"plateNum":"沪A1","lng":121.4,"lat":97,"speed":1}`,
	}
	in.Handle(&fakeMessage{payload: []byte(`{"data":[` + strings.Join(items, ",") + `]}`)})
	if len(p.records) != 4 {
		t.Fatalf("%d records, want a position, two letters and a summary", len(p.records))
	}
	l := letterOf(t, p.records[3])
	if l.Reason != deadletter.ReasonTooManyRejections || l.Count != 3 ||
		fmt.Sprint(l.Counts) != fmt.Sprint(map[string]int{position.ReasonLatOutOfRange: 2, position.ReasonLngOutOfRange: 1}) ||
		l.BatchSHA256 == "" || l.Index != nil {
		t.Errorf("summary %+v", l)
	}
}

// TestHostileOversizedMessageGetsOneLetterWithoutItsBytes: a message the
// subscriber discarded for its size becomes one too_large letter naming
// its size and hash, and is acknowledged once Kafka has the letter, so
// that the broker does not send it again.
func TestHostileOversizedMessageGetsOneLetterWithoutItsBytes(t *testing.T) {
	t.Parallel()
	p := newHeldProducer()
	in := newTestIngest(t, p)
	sum := sha256.Sum256([]byte("the discarded payload"))
	msg := &fakeMessage{oversize: &mqtt.Oversize{Bytes: 10 << 20, SHA256: sum}}
	in.Handle(msg)
	if len(p.records) != 1 {
		t.Fatalf("%d records", len(p.records))
	}
	l := letterOf(t, p.records[0])
	if l.Reason != position.ReasonTooLarge || l.Raw != "" || !l.RawTruncated || l.RawSHA256 != hex.EncodeToString(sum[:]) ||
		!strings.Contains(l.Detail, "10485760 bytes") || l.Origin != "mqtt:g7/positions" {
		t.Errorf("letter %+v", l)
	}
	if msg.acks.Load() != 0 {
		t.Fatal("acknowledged before Kafka had the letter")
	}
	p.resolve(0, nil)
	if msg.acks.Load() != 1 {
		t.Fatal("not acknowledged")
	}
}

// TestHostileRefusedRecordIsReplacedAndTheMessageAcked: Kafka refuses one
// record of a message for itself. It is replaced by a record_refused
// letter naming the error, topic, key and size, the message is
// acknowledged once the replacement is stored, and ingest goes on.
// Before, the refusal stopped ingest (and, through it, tms) and the
// message was never acknowledged, so it came back after every restart.
func TestHostileRefusedRecordIsReplacedAndTheMessageAcked(t *testing.T) {
	t.Parallel()
	for _, refusal := range []error{
		fmt.Errorf("%w (uncompressed_bytes=5242880)", kerr.MessageTooLarge), // franz-go's own, before sending
		kerr.RecordListTooLarge, kerr.InvalidRecord, kerr.CorruptMessage, kerr.InvalidTimestamp,
	} {
		t.Run(errorName(refusal), func(t *testing.T) {
			t.Parallel()
			p := newHeldProducer()
			in := newTestIngest(t, p)
			msg := &fakeMessage{payload: []byte(mixedBatch)}
			in.Handle(msg)
			refused := p.record(t, 0)
			p.resolve(0, refusal)
			p.resolve(1, nil)
			p.resolve(2, nil)
			replacement := p.record(t, 3)
			if msg.acks.Load() != 0 {
				t.Fatal("acknowledged before the replacement was stored")
			}
			l := letterOf(t, replacement)
			if l.Reason != deadletter.ReasonRecordRefused || l.Refused == nil || l.Refused.Error != errorName(refusal) ||
				l.Refused.Topic != event.TopicPositions || l.Refused.Key != "沪A12345" || l.Refused.Bytes != len(refused.Value) ||
				string(replacement.Key) != "沪A12345" || l.Origin != "mqtt:g7/positions" || l.RawSHA256 != deadletter.Hash(refused.Value) {
				t.Errorf("replacement %+v (refused %+v)", l, l.Refused)
			}
			p.resolve(3, nil)
			if msg.acks.Load() != 1 {
				t.Fatal("not acknowledged after the replacement was stored")
			}
			if got := value(t, in.metrics.refused.WithLabelValues(errorName(refusal))); got != 1 {
				t.Errorf("refusals counted: %v", got)
			}
		})
	}
}

// TestHostileRefusedReplacementHoldsTheMessage: when Kafka refuses even
// the small replacement (a dead-letter topic that holds nothing), the
// message is held, not acknowledged, and nothing is replaced twice.
func TestHostileRefusedReplacementHoldsTheMessage(t *testing.T) {
	t.Parallel()
	p := newHeldProducer()
	in := newTestIngest(t, p)
	msg := &fakeMessage{payload: []byte(`{"data":[{"plateNum":"沪A1","lng":121.4,"lat":95,"speed":1}]}`)}
	in.Handle(msg)
	p.resolve(0, kerr.MessageTooLarge)
	p.record(t, 1)
	p.resolve(1, kerr.MessageTooLarge)
	if msg.acks.Load() != 0 || value(t, in.metrics.held) != 1 || p.count() != 2 {
		t.Errorf("acks %d, held %v, %d records", msg.acks.Load(), value(t, in.metrics.held), p.count())
	}
}

// TestHostileKafkaRefusalOnARealBroker provokes MESSAGE_TOO_LARGE from
// the broker itself: the test's dead-letter topic holds at most 3,000
// bytes a batch, and a bad item whose plate is random bytes makes a
// letter whose raw excerpt (base64 of 4 KiB of noise) no compression
// brings under that. Ingest replaces it with a record_refused letter,
// which the topic takes, acknowledges the message, and the next message
// goes through as usual. Before, the refusal ended ingest.
func TestHostileKafkaRefusalOnARealBroker(t *testing.T) {
	t.Parallel()
	svc := testenv.FromEnv(os.LookupEnv)
	kc := svc.Kafka(t)
	deadTopic := kc.Topic(event.TopicDeadLetter)
	adm, err := kc.NewAdmin("ingest-test-admin")
	if err != nil {
		t.Fatal(err)
	}
	defer adm.Close()
	limit := "3000"
	resp, err := adm.AlterTopicConfigs(t.Context(), []kadm.AlterConfig{{Name: "max.message.bytes", Value: &limit}}, deadTopic)
	if err == nil {
		var r kadm.AlterConfigsResponse
		if r, err = resp.On(deadTopic, nil); err == nil {
			err = r.Err
		}
	}
	if err != nil {
		t.Fatalf("set max.message.bytes: %v", err)
	}
	producer, err := kc.NewClient("ingest-test")
	if err != nil {
		t.Fatal(err)
	}
	defer producer.Close()
	// The broker applies a topic's new configuration after the answer:
	// wait until it refuses a record over the limit (those it took before
	// are read past below).
	probes := 0
	tmsproc.Eventually(t, 30*time.Second, "the broker refusing records over 3,000 bytes", func() bool {
		value := make([]byte, 4000) // random: no compression brings it under the limit
		for i := range value {
			value[i] = byte(rand.Uint32())
		}
		probe := &kgo.Record{Topic: deadTopic, Key: []byte("probe"), Value: value}
		err := producer.ProduceSync(t.Context(), probe).FirstErr()
		if err == nil {
			probes++
		}
		return errors.Is(err, kerr.MessageTooLarge)
	})
	in, err := New(Config{Subscriber: noSubscriber{}, Producer: producer,
		PositionsTopic: kc.Topic(event.TopicPositions), DeadLetterTopic: deadTopic})
	if err != nil {
		t.Fatal(err)
	}
	in.produceCtx = t.Context()

	noise := make([]byte, 8<<10)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range noise {
		noise[i] = byte(0x80 + rng.IntN(0x80)) // never a quote or a backslash
	}
	bad := &fakeMessage{payload: []byte(`{"data":[{"plateNum":"` + string(noise) + `","lng":121.4,"lat":31.2,"speed":1}]}`)}
	in.Handle(bad)
	waitAck(t, bad)
	good := &fakeMessage{payload: []byte(mixedBatch)}
	in.Handle(good)
	waitAck(t, good)

	// The two letters are on partitions of their own: read them by reason.
	letters := map[string]deadletter.Letter{}
	for _, r := range consume(t, kc, deadTopic, 2+probes) {
		if string(r.Key) == "probe" {
			continue
		}
		l := letterOf(t, r)
		letters[l.Reason] = l
	}
	l := letters[deadletter.ReasonRecordRefused]
	if l.Refused == nil || l.Refused.Error != "MESSAGE_TOO_LARGE" || l.Refused.Topic != deadTopic ||
		l.Refused.Bytes <= 3000 || len(l.Refused.Key) > deadletter.MaxVehicleBytes {
		t.Errorf("replacement %+v (refused %+v)", l, l.Refused)
	}
	if _, ok := letters[position.ReasonLatOutOfRange]; !ok {
		t.Errorf("the next message's letter is missing: %v", letters)
	}
}

func waitAck(t *testing.T, m *fakeMessage) {
	t.Helper()
	tmsproc.Eventually(t, 30*time.Second, "the message acknowledged", func() bool { return m.acks.Load() > 0 })
}

// FuzzRecords checks the bounds of what one message makes, whatever it
// holds: with limits of 8 items and 3 letters, at most 8 positions, 3
// item letters and 2 summaries, each record within its size bound, keys
// within MaxVehicleBytes, and the message acknowledged once Kafka has
// them all.
func FuzzRecords(f *testing.F) {
	f.Add([]byte(mixedBatch))
	f.Add([]byte(`[1,2,3,4,5,6,7,8,9,10,11,12]`))
	f.Add([]byte(`{"data":[{"plateNum":"<<<<<<<<<<<<<<<<<<<<<<<<<<<<<<","lat":95},{"lat":"\u2028"},{},{},{}]}`))
	f.Fuzz(func(t *testing.T, payload []byte) {
		p := newHeldProducer()
		in := newTestIngest(t, p, func(c *Config) { c.MaxItems, c.MaxLetters = 8, 3 })
		msg := &fakeMessage{payload: payload}
		in.Handle(msg)
		positions, letters, summaries := 0, 0, 0
		for i, r := range p.records {
			if len(r.Key) > deadletter.MaxVehicleBytes {
				t.Fatalf("key of %d bytes", len(r.Key))
			}
			if r.Topic == event.TopicPositions {
				positions++
				if len(r.Value) > position.MaxEventBytes {
					t.Fatalf("position record of %d bytes", len(r.Value))
				}
			} else {
				if len(r.Value) > deadletter.MaxEventBytes {
					t.Fatalf("dead letter of %d bytes", len(r.Value))
				}
				switch letterOf(t, r).Reason {
				case deadletter.ReasonTooManyItems, deadletter.ReasonTooManyRejections:
					summaries++
				default:
					letters++
				}
			}
			p.resolve(i, nil)
		}
		if positions+letters > 8 || letters > 3 || summaries > 2 {
			t.Fatalf("%d positions, %d letters, %d summaries", positions, letters, summaries)
		}
		if msg.acks.Load() != 1 {
			t.Fatalf("acks %d", msg.acks.Load())
		}
	})
}
