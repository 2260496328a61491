package ingest

import (
	"context"
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/tmsfleet/tms/adapters/mqtt"
	"github.com/tmsfleet/tms/domain/deadletter"
	"github.com/tmsfleet/tms/domain/event"
	"github.com/tmsfleet/tms/domain/g7event"
	"github.com/tmsfleet/tms/domain/position"
	"github.com/tmsfleet/tms/internal/testenv"
)

const (
	stopMessage = `{"pushTime":1764229900000,"data":{"plateNum":"沪A12345","startTime":1764229000000,"endTime":1764229600000,
		"seconds":600,"startLng":121.47,"startLat":31.23,"endlng":121.47,"endlat":31.23}}`
	idleOpenMessage = `{"pushTime":1764229900000,"data":{"plateNum":"苏B00001","startTime":1764229000000,"endTime":null,
		"startLng":"120.58","startLat":"31.29"}}`
	badEventMessage = `{"pushTime":1764229900000,"data":{"plateNum":"沪A12345","startTime":1764229600000,"endTime":1764229000000,
		"startLng":121.47,"startLat":31.23}}`
)

func eventFeeds(c *Config) {
	c.Events = []EventFeed{
		{Filter: "$share/tms/g7/stop", Kind: g7event.KindStop},
		{Filter: "g7/idle/+", Kind: g7event.KindIdle},
		{Filter: "g7/ems", Kind: g7event.KindEMS},
	}
}

// TestEventMessagesAreRoutedByTopicAndAckedAfterKafka: a message under
// an event feed's filter (shared or with wildcards) becomes one report
// on tms.g7events keyed by plate, acknowledged only once Kafka has it; a
// bad one becomes a dead letter with its reason; anything else is still
// a position batch.
func TestEventMessagesAreRoutedByTopicAndAckedAfterKafka(t *testing.T) {
	t.Parallel()
	p := newHeldProducer()
	in := newTestIngest(t, p, eventFeeds)
	msgs := []*fakeMessage{
		{topic: "g7/stop", payload: []byte(stopMessage)},
		{topic: "g7/idle/east", payload: []byte(idleOpenMessage)},
		{topic: "g7/ems", payload: []byte(badEventMessage)},
		{topic: "g7/positions", payload: []byte(mixedBatch)},
	}
	for _, m := range msgs {
		in.Handle(m)
	}
	if n := p.count(); n != 6 {
		t.Fatalf("%d records, want 3 for the events and 3 for the batch", n)
	}
	for i := range 3 {
		if msgs[i].acks.Load() != 0 {
			t.Fatalf("message %d acknowledged before Kafka answered", i)
		}
		p.resolve(i, nil)
		if msgs[i].acks.Load() != 1 {
			t.Fatalf("message %d not acknowledged after Kafka answered", i)
		}
	}
	want := []struct {
		topic, key, typ string
		kind            g7event.Kind
		open            bool
	}{
		{event.TopicG7Events, "沪A12345", event.TypeG7EventReported, g7event.KindStop, false},
		{event.TopicG7Events, "苏B00001", event.TypeG7EventReported, g7event.KindIdle, true},
		{event.TopicDeadLetter, "沪A12345", deadletter.TypeRejected, "", false},
	}
	for i, w := range want {
		r := p.record(t, i)
		if r.Topic != w.topic || string(r.Key) != w.key {
			t.Errorf("record %d: %s key %s, want %s key %s", i, r.Topic, r.Key, w.topic, w.key)
		}
		e, err := event.Decode(r.Value)
		if err != nil || e.Type != w.typ {
			t.Fatalf("record %d: %s, %v", i, e.Type, err)
		}
		if w.typ == deadletter.TypeRejected {
			var l deadletter.Letter
			if err := json.Unmarshal(e.Data, &l); err != nil {
				t.Fatal(err)
			}
			if l.Reason != g7event.ReasonEndBeforeStart || l.Field != "endTime" || l.Origin != "mqtt:g7/ems" || l.Vehicle != "沪A12345" {
				t.Errorf("dead letter %+v", l)
			}
			continue
		}
		d, err := g7event.FromEvent(e)
		if err != nil {
			t.Fatal(err)
		}
		if d.Kind != w.kind || d.Open != w.open || d.Vehicle != w.key || !d.ReceivedAt.Equal(received) {
			t.Errorf("record %d: %+v", i, d)
		}
		// The event's time is G7's: the end of a closed event, the start
		// of an open one; never the receive time.
		wantTime := time.UnixMilli(1764229600000)
		if w.open {
			wantTime = time.UnixMilli(1764229000000)
		}
		if !e.Time.Equal(wantTime) {
			t.Errorf("record %d: time %s, want %s", i, e.Time, wantTime)
		}
	}
	if r := p.record(t, 3); r.Topic != event.TopicPositions {
		t.Errorf("the position batch went to %s", r.Topic)
	}
	if v := value(t, in.metrics.eventsAccepted.WithLabelValues("stop")); v != 1 {
		t.Errorf("stop events accepted: %v", v)
	}
	if v := value(t, in.metrics.eventsRejected.WithLabelValues("ems", g7event.ReasonEndBeforeStart)); v != 1 {
		t.Errorf("ems events rejected: %v", v)
	}
}

func TestEventFeedsAreChecked(t *testing.T) {
	t.Parallel()
	for name, feeds := range map[string][]EventFeed{
		"unknown kind": {{Filter: "g7/x", Kind: "parking"}},
		"kind twice":   {{Filter: "g7/a", Kind: g7event.KindStop}, {Filter: "g7/b", Kind: g7event.KindStop}},
		"no filter":    {{Kind: g7event.KindIdle}},
	} {
		if _, err := New(Config{Subscriber: noSubscriber{}, Producer: newHeldProducer(), Events: feeds}); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, err := New(Config{Subscriber: noSubscriber{}, Producer: newHeldProducer(), EventMaxBytes: -1}); err == nil {
		t.Error("a negative event size limit accepted")
	}
}

// TestEventFeedsEndToEnd runs ingest between a real MQTT broker and Kafka
// with the position feed and the three event feeds in one persistent
// session: each feed's message reaches its topic.
func TestEventFeedsEndToEnd(t *testing.T) {
	t.Parallel()
	svc := testenv.FromEnv(os.LookupEnv)
	kc := svc.Kafka(t)
	brokerURL := svc.MQTT(t)
	prefix := testenv.Name("g7")
	topics := map[g7event.Kind]string{g7event.KindStop: prefix + "/stop", g7event.KindIdle: prefix + "/idle", g7event.KindEMS: prefix + "/ems"}
	sub, err := mqtt.NewSubscriber(mqtt.Config{URL: brokerURL, ClientID: testenv.Name("ingest"), Topic: prefix + "/positions",
		Topics: []string{topics[g7event.KindStop], topics[g7event.KindIdle], topics[g7event.KindEMS]}})
	if err != nil {
		t.Fatal(err)
	}
	producer, err := kc.NewClient("ingest-test")
	if err != nil {
		t.Fatal(err)
	}
	defer producer.Close()
	var feeds []EventFeed
	for k, topic := range topics {
		feeds = append(feeds, EventFeed{Filter: topic, Kind: k})
	}
	in, err := New(Config{Subscriber: sub, Producer: producer, Events: feeds,
		PositionsTopic: kc.Topic(event.TopicPositions), DeadLetterTopic: kc.Topic(event.TopicDeadLetter),
		EventsTopic: kc.Topic(event.TopicG7Events)})
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
	for topic, payload := range map[string]string{
		topics[g7event.KindStop]: stopMessage, topics[g7event.KindIdle]: idleOpenMessage, topics[g7event.KindEMS]: stopMessage,
		prefix + "/positions": mixedBatch,
	} {
		if tok := pub.Publish(topic, 1, false, payload); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
			t.Fatalf("publish: %v", tok.Error())
		}
	}
	kinds := map[g7event.Kind]bool{}
	for _, r := range consume(t, kc, kc.Topic(event.TopicG7Events), 3) {
		e, err := event.Decode(r.Value)
		if err != nil {
			t.Fatal(err)
		}
		d, err := g7event.FromEvent(e)
		if err != nil {
			t.Fatal(err)
		}
		kinds[d.Kind] = true
	}
	if len(kinds) != 3 {
		t.Errorf("kinds on tms.g7events: %v", kinds)
	}
	consume(t, kc, kc.Topic(event.TopicPositions), 2)
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("ingest stopped with %v", err)
	}
}

// TestHostileG7EventMessagesAreBounded: whatever a publisher to an event
// feed sends, it makes one record of bounded size (a report or a dead
// letter), and the message is acknowledged once Kafka has it: a message
// past TMS_G7_EVENT_MAX_BYTES is one too_large letter, and a plate of
// 250 KB (under a limit raised to let it in) is cut in its letter.
func TestHostileG7EventMessagesAreBounded(t *testing.T) {
	t.Parallel()
	huge := `{"data":{"plateNum":"沪A1","startTime":1764229000000,"startLng":121,"startLat":31,"x":"` + strings.Repeat("a", 8<<10) + `"}}`
	longPlate := `{"data":{"plateNum":"` + strings.Repeat("<", 250<<10) + `","startTime":1764229000000,"startLng":121,"startLat":31}}`
	for _, c := range []struct {
		name, payload, reason string
		maxBytes              int
	}{
		{"past the size limit", huge, position.ReasonTooLarge, 0},
		{"a 250 KB plate", longPlate, position.ReasonInvalidPlate, 1 << 20},
		{"not JSON", strings.Repeat("{", 4000), position.ReasonInvalidJSON, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			p := newHeldProducer()
			in := newTestIngest(t, p, eventFeeds, func(cfg *Config) { cfg.EventMaxBytes = c.maxBytes })
			msg := &fakeMessage{topic: "g7/ems", payload: []byte(c.payload)}
			in.Handle(msg)
			if n := p.count(); n != 1 {
				t.Fatalf("%d records, want one letter", n)
			}
			r := p.record(t, 0)
			if r.Topic != event.TopicDeadLetter || len(r.Value) > deadletter.MaxEventBytes || len(r.Key) > deadletter.MaxVehicleBytes {
				t.Fatalf("record on %s of %d bytes, key of %d", r.Topic, len(r.Value), len(r.Key))
			}
			if l := letterOf(t, r); l.Reason != c.reason {
				t.Errorf("reason %s, want %s", l.Reason, c.reason)
			}
			p.resolve(0, nil)
			if msg.acks.Load() != 1 {
				t.Error("not acknowledged once Kafka had the letter")
			}
		})
	}
}
