package mqtt_test

import (
	"context"
	"fmt"
	"net"
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
	if !sub.Connected() {
		t.Error("the subscriber received a message but says it is not connected")
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
