package mqtt_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/tmsfleet/tms/adapters/mqtt"
	"github.com/tmsfleet/tms/internal/testenv"
)

// TestSubscriberReconnectsAndKeepsItsSession stops the broker under a
// subscriber and starts it again: the subscriber reconnects by itself,
// and a message published while it was away reaches it through its
// persistent session. The broker is a Mosquitto of the test's own, as it
// must be stopped.
func TestSubscriberReconnectsAndKeepsItsSession(t *testing.T) {
	t.Parallel()
	broker := startMosquitto(t)
	topic := testenv.Name("reconnect")
	sub, err := mqtt.NewSubscriber(mqtt.Config{URL: broker.url, ClientID: testenv.Name("subscriber"), Topic: topic,
		MaxReconnectInterval: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	received := make(chan string, 10)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- sub.Run(ctx, func(m mqtt.Message) {
			received <- string(m.Payload())
			m.Ack()
		})
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("subscriber: %v", err)
		}
	})
	select {
	case <-sub.Subscribed():
	case <-time.After(30 * time.Second):
		t.Fatal("not subscribed after 30 s")
	}

	publish(t, broker.url, topic, "before")
	expect(t, received, "before")

	broker.restart(t)
	// The subscriber is probably still away: the broker keeps the
	// message for its session.
	publish(t, broker.url, topic, "while away")
	expect(t, received, "while away")
	// The redelivered message may come before the SUBACK of the renewed
	// subscription: Connected (connected and subscribed) follows it.
	for deadline := time.Now().Add(10 * time.Second); !sub.Connected(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the subscriber received a message but has not said it is connected and subscribed within 10s")
		}
	}
}

func expect(t *testing.T, received <-chan string, want string) {
	t.Helper()
	select {
	case got := <-received:
		if got != want {
			t.Fatalf("received %q, want %q", got, want)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("%q not received after 30 s", want)
	}
}

func publish(t *testing.T, url, topic, payload string) {
	t.Helper()
	c := paho.NewClient(paho.NewClientOptions().AddBroker(url).SetClientID(testenv.Name("publisher")).
		SetConnectTimeout(10 * time.Second))
	if tok := c.Connect(); !tok.WaitTimeout(30*time.Second) || tok.Error() != nil {
		t.Fatalf("publisher: connect: %v", tok.Error())
	}
	defer c.Disconnect(100)
	if tok := c.Publish(topic, 1, false, payload); !tok.WaitTimeout(30*time.Second) || tok.Error() != nil {
		t.Fatalf("publisher: publish: %v", tok.Error())
	}
}

// privateBroker is a Mosquitto that keeps sessions on disk across
// restarts, as a production broker does.
type privateBroker struct {
	url, conf, port string
	cmd             *exec.Cmd
}

func startMosquitto(t *testing.T) *privateBroker {
	t.Helper()
	bin, err := exec.LookPath("mosquitto")
	if err != nil {
		bin, err = exec.LookPath("/usr/sbin/mosquitto")
	}
	if err != nil {
		msg := "mosquitto is not installed: this test starts and stops a broker of its own (make test installs it)"
		if testenv.FromEnv(os.LookupEnv).Require {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	dir := t.TempDir()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
	l.Close()
	conf := fmt.Sprintf("listener %s 127.0.0.1\nallow_anonymous true\npersistence true\npersistence_location %s/\n", port, dir)
	if os.Geteuid() == 0 {
		// As root, mosquitto otherwise switches to a `mosquitto` user.
		conf += "user root\n"
	}
	b := &privateBroker{url: "tcp://127.0.0.1:" + port, conf: filepath.Join(dir, "mosquitto.conf"), port: port}
	if err := os.WriteFile(b.conf, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	b.start(t, bin)
	t.Cleanup(func() { b.stop(t) })
	return b
}

func (b *privateBroker) start(t *testing.T, bin string) {
	t.Helper()
	b.cmd = exec.Command(bin, "-c", b.conf)
	if err := b.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, err := net.Dial("tcp", "127.0.0.1:"+b.port)
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("mosquitto does not listen on %s: %v", b.port, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stop ends the broker as an orderly shutdown does: SIGTERM, upon which
// it writes its sessions to disk.
func (b *privateBroker) stop(t *testing.T) {
	t.Helper()
	if b.cmd == nil {
		return
	}
	_ = b.cmd.Process.Signal(syscall.SIGTERM)
	_ = b.cmd.Wait()
	b.cmd = nil
}

func (b *privateBroker) restart(t *testing.T) {
	t.Helper()
	bin := b.cmd.Path
	b.stop(t)
	b.start(t, bin)
}

// TestHostileSubscriberDeliversAnOversizedMessageAsOversized publishes,
// through the test services' broker (Mosquitto, which accepts messages of
// up to 256 MB), a 600 KB message to a subscriber whose limit is 64 KiB,
// then a small one. The handler gets the big one as Oversized (its size
// and hash, no payload) and acknowledges it; a new session of the same
// client then gets only what came after: the acknowledgement reached the
// broker, which will not send the big message again. Before, the
// subscriber had no limit: paho read the whole message into memory and
// handed it over.
func TestHostileSubscriberDeliversAnOversizedMessageAsOversized(t *testing.T) {
	t.Parallel()
	brokerURL := testenv.FromEnv(os.LookupEnv).MQTT(t)
	topic, clientID := testenv.Name("oversize"), testenv.Name("subscriber")
	big := bytes.Repeat([]byte("<"), 600_000)

	received := make(chan mqtt.Message, 10)
	run := func() (*mqtt.Subscriber, func()) {
		sub, err := mqtt.NewSubscriber(mqtt.Config{URL: brokerURL, ClientID: clientID, Topic: topic, MaxPacketBytes: 64 << 10})
		if err != nil {
			t.Fatal(err)
		}
		stop := testenv.Go(t, "subscriber", func(ctx context.Context) error {
			return sub.Run(ctx, func(m mqtt.Message) { received <- m })
		})
		select {
		case <-sub.Subscribed():
		case <-time.After(30 * time.Second):
			t.Fatal("not subscribed after 30 s")
		}
		return sub, stop
	}
	next := func() mqtt.Message {
		t.Helper()
		select {
		case m := <-received:
			return m
		case <-time.After(30 * time.Second):
			t.Fatal("no message after 30 s")
		}
		return nil
	}

	_, stop := run()
	publish(t, brokerURL, topic, string(big))
	publish(t, brokerURL, topic, "small")
	m := next()
	o := m.Oversized()
	if o == nil || o.Bytes != len(big) || o.SHA256 != sha256.Sum256(big) || len(m.Payload()) != 0 || m.Topic() != topic {
		t.Fatalf("oversized message delivered as %+v, payload of %d bytes", o, len(m.Payload()))
	}
	m.Ack()
	if m := next(); m.Oversized() != nil || string(m.Payload()) != "small" {
		t.Fatalf("then %q, %+v", m.Payload(), m.Oversized())
	}
	// "small" is left unacknowledged: the next session gets it again,
	// and only it.
	stop()
	run()
	publish(t, brokerURL, topic, "after")
	for _, want := range []string{"small", "after"} {
		if m := next(); m.Oversized() != nil || string(m.Payload()) != want {
			t.Fatalf("new session: got %q (oversized %+v), want %q", m.Payload(), m.Oversized(), want)
		}
	}
}

// TestHostileEmbeddedBrokerRefusesAnOversizedPacketBeforeReadingIt opens a
// raw connection to the embedded broker, announces a 200 MiB PUBLISH and
// sends a few bytes of it: the broker closes the connection at once,
// without waiting for (or buffering) the rest. Before, it had no limit
// and waited for the 200 MiB. A normal message then still goes through.
func TestHostileEmbeddedBrokerRefusesAnOversizedPacketBeforeReadingIt(t *testing.T) {
	t.Parallel()
	b, err := mqtt.StartEmbedded(mqtt.EmbeddedConfig{Addr: "127.0.0.1:0", MaxPacketBytes: 64 << 10})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	u, _ := url.Parse(b.URL())
	conn, err := net.DialTimeout("tcp", u.Host, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	// CONNECT, MQTT 3.1.1, clean session, keep-alive 60 s, client id "raw".
	connect := []byte{0x10, 15, 0, 4, 'M', 'Q', 'T', 'T', 4, 0x02, 0, 60, 0, 3, 'r', 'a', 'w'}
	if _, err := conn.Write(connect); err != nil {
		t.Fatal(err)
	}
	connack := make([]byte, 4)
	if _, err := io.ReadFull(conn, connack); err != nil || connack[0] != 0x20 || connack[3] != 0 {
		t.Fatalf("CONNACK %x: %v", connack, err)
	}
	// PUBLISH at QoS 0 to "t" with a remaining length of 200 MiB
	// (varint 0x80 0x80 0x80 0x64), then the topic and 1 KiB of payload.
	header := []byte{0x30, 0x80, 0x80, 0x80, 0x64, 0, 1, 't'}
	if _, err := conn.Write(append(header, bytes.Repeat([]byte("x"), 1024)...)); err != nil {
		t.Fatal(err)
	}
	if n, err := conn.Read(make([]byte, 64)); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("the broker kept the connection open after a 200 MiB PUBLISH was announced (read %d bytes, %v)", n, err)
	}

	topic := testenv.Name("after")
	sub, err := mqtt.NewSubscriber(mqtt.Config{URL: b.URL(), ClientID: testenv.Name("subscriber"), Topic: topic})
	if err != nil {
		t.Fatal(err)
	}
	received := make(chan string, 1)
	testenv.Go(t, "subscriber", func(ctx context.Context) error {
		return sub.Run(ctx, func(m mqtt.Message) { received <- string(m.Payload()); m.Ack() })
	})
	select {
	case <-sub.Subscribed():
	case <-time.After(30 * time.Second):
		t.Fatal("not subscribed after 30 s")
	}
	publish(t, b.URL(), topic, "small")
	expect(t, received, "small")
}
