package simulator

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/eclipse/paho.mqtt.golang/packets"

	"github.com/tmsfleet/tms/adapters/g7"
	"github.com/tmsfleet/tms/internal/testenv"
)

// quiet keeps the simulator's logs out of test output; paho's goroutines
// may log after a test has ended, when t's output is gone.
var quiet = slog.New(slog.DiscardHandler)

// subscribe connects a client of the test's own to url and returns the
// payloads it receives on topic.
func subscribe(t *testing.T, url, topic string) <-chan []byte {
	t.Helper()
	got := make(chan []byte, 4096)
	c := paho.NewClient(paho.NewClientOptions().AddBroker(url).SetClientID(testenv.Name("sub")).SetCleanSession(true))
	wait := func(what string, tok paho.Token) {
		t.Helper()
		if !tok.WaitTimeout(10 * time.Second) {
			t.Fatalf("%s: timed out", what)
		}
		if err := tok.Error(); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	wait("connect", c.Connect())
	t.Cleanup(func() { c.Disconnect(250) })
	wait("subscribe", c.Subscribe(topic, 1, func(_ paho.Client, m paho.Message) { got <- m.Payload() }))
	return got
}

func TestPublishesEveryPositionToTheBroker(t *testing.T) {
	t.Parallel()
	url := testenv.FromEnv(os.LookupEnv).MQTT(t)
	topic := testenv.Name("tms_sim")
	got := subscribe(t, url, topic)

	const positions = 2000
	sim, err := New(Config{
		BrokerURL:    url,
		Logger:       quiet,
		Topic:        topic,
		ClientID:     testenv.Name("sim"),
		Seed:         7,
		Vehicles:     120, // rounds of 50 + 50 + 20 items
		Accelerated:  true,
		Start:        time.Date(2025, 11, 24, 8, 0, 0, 0, time.UTC),
		MaxPositions: positions,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := sim.Run(t.Context()); err != nil {
		t.Fatal(err)
	}
	st := sim.Stats()
	if st.PositionsPublished != positions || st.PositionsSent != positions || st.MessagesFailed != 0 || st.InFlight() != 0 {
		t.Fatalf("stats %+v", st)
	}

	// QoS 1 may deliver a message twice: count each fix once.
	seen := map[string]bool{}
	deadline := time.NewTimer(30 * time.Second)
	defer deadline.Stop()
	for len(seen) < positions {
		select {
		case msg := <-got:
			b := g7.Parse(msg, time.Now())
			if b.Rejection != nil {
				t.Fatalf("message rejected: %v", b.Rejection)
			}
			for _, it := range b.Items {
				if it.Rejection != nil {
					t.Fatalf("item rejected: %v: %s", it.Rejection, it.Raw)
				}
				seen[fmt.Sprint(it.Position.Plate, it.Position.FixTime.UnixMilli())] = true
			}
		case <-deadline.C:
			t.Fatalf("%d of %d positions arrived", len(seen), positions)
		}
	}
	if len(seen) != positions {
		t.Errorf("%d distinct positions arrived, %d were published", len(seen), positions)
	}
}

// fakeBroker is a minimal MQTT broker for one client at a time. policy
// decides, for the n-th PUBLISH (from 1) on the c-th connection (from 1),
// whether it is acknowledged, and whether the connection then drops.
type fakeBroker struct {
	url string
	// publishes reports when each PUBLISH arrived.
	publishes chan time.Time
	// connections counts the CONNECTs.
	connections atomic.Int32
}

func startFakeBroker(t *testing.T, policy func(c, n int) (ack, drop bool)) *fakeBroker {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	b := &fakeBroker{url: "tcp://" + ln.Addr().String(), publishes: make(chan time.Time, 1024)}
	go func() {
		n := 0
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			c := int(b.connections.Add(1))
			b.serve(conn, func() (bool, bool) { n++; return policy(c, n) })
		}
	}()
	return b
}

func (b *fakeBroker) serve(conn net.Conn, next func() (ack, drop bool)) {
	defer conn.Close()
	for {
		p, err := packets.ReadPacket(conn)
		if err != nil {
			return
		}
		var reply packets.ControlPacket
		switch p := p.(type) {
		case *packets.ConnectPacket:
			reply = packets.NewControlPacket(packets.Connack)
		case *packets.PingreqPacket:
			reply = packets.NewControlPacket(packets.Pingresp)
		case *packets.PublishPacket:
			b.publishes <- time.Now()
			ack, drop := next()
			if drop {
				return
			}
			if ack {
				puback := packets.NewControlPacket(packets.Puback).(*packets.PubackPacket)
				puback.MessageID = p.MessageID
				reply = puback
			}
		case *packets.DisconnectPacket:
			return
		}
		if reply != nil {
			if err := reply.Write(conn); err != nil {
				return
			}
		}
	}
}

func TestUnacknowledgedMessagesAreFailures(t *testing.T) {
	t.Parallel()
	silent := startFakeBroker(t, func(int, int) (bool, bool) { return false, false })
	const timeout = 300 * time.Millisecond
	sim, err := New(Config{
		BrokerURL: silent.url, Topic: "silent", Vehicles: 50, Accelerated: true, MaxPositions: 200,
		MaxInFlight: 2, PublishTimeout: timeout, Logger: quiet,
	})
	if err != nil {
		t.Fatal(err)
	}
	err = sim.Run(t.Context())
	if err == nil || !strings.Contains(err.Error(), "4 of 4 messages") {
		t.Errorf("Run: %v; want an error for the 4 unacknowledged messages", err)
	}
	st := sim.Stats()
	if st.MessagesFailed != 4 || st.PositionsFailed != 200 || st.MessagesPublished != 0 || st.InFlight() != 0 {
		t.Errorf("stats %+v", st)
	}
	// Two in flight at most: the third message waited for the first to
	// time out.
	var at []time.Time
	for range 4 {
		at = append(at, <-silent.publishes)
	}
	if gap := at[2].Sub(at[0]); gap < timeout/2 {
		t.Errorf("third message sent %v after the first; the window of 2 should have held it for about %v", gap, timeout)
	}
}

func TestRunStopsConnectingWhenTheContextEnds(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close() // nothing listens there now
	sim, err := New(Config{BrokerURL: "tcp://" + addr, ConnectTimeout: time.Second, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	if err := sim.Run(ctx); err != nil {
		t.Errorf("Run ended by its context: %v", err)
	}
	if err := sim.Run(t.Context()); err == nil {
		t.Error("a second Run was accepted")
	}
	if !errors.Is(ctx.Err(), context.DeadlineExceeded) {
		t.Error("Run returned before its context ended")
	}
}
