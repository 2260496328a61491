package simulator

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
)

// message is one encoded batch on its way to the broker.
type message struct {
	payload   []byte
	positions int
	faulty    int
}

// outlet takes the run loop's messages: the MQTT publisher, or a test's
// recorder.
type outlet interface {
	// send hands m over. It may wait (for room in the in-flight window,
	// for the connection), and fails only when ctx ends.
	send(ctx context.Context, m message) error
}

// publisher publishes at QoS 1 or 2 with a bounded window of messages in
// flight. Tokens are awaited in order by one goroutine (await): deadlines
// grow in the order of sending, so waiting for each token in turn judges
// every message by its own deadline.
type publisher struct {
	cfg    *Config
	client paho.Client
	log    *slog.Logger
	stats  *counters
	// slots holds one token per message in flight; send blocks when full.
	slots chan struct{}
	// pending feeds await; it never blocks, since slots bounds it.
	pending chan inflight
	// awaited is closed when await has judged every message.
	awaited chan struct{}
}

// errPublishTimeout stands in for the error a timed-out token lacks.
var errPublishTimeout = errors.New("no acknowledgement within the publish timeout")

// inflight is a message awaiting its acknowledgement.
type inflight struct {
	message
	token    paho.Token
	deadline time.Time
}

func newPublisher(cfg *Config, stats *counters) *publisher {
	p := &publisher{
		cfg:     cfg,
		log:     cfg.Logger.With("component", "simulator", "broker", redact(cfg.BrokerURL), "topic", cfg.Topic),
		stats:   stats,
		slots:   make(chan struct{}, cfg.MaxInFlight),
		pending: make(chan inflight, cfg.MaxInFlight),
		awaited: make(chan struct{}),
	}
	opts := paho.NewClientOptions().
		AddBroker(cfg.BrokerURL).
		SetClientID(cfg.ClientID).
		SetUsername(cfg.Username).
		SetPassword(cfg.Password).
		// A publisher has no subscriptions to keep. Messages in flight
		// when the connection drops are still resent by the client itself
		// after it reconnects.
		SetCleanSession(true).
		SetKeepAlive(30 * time.Second).
		SetConnectTimeout(cfg.ConnectTimeout).
		// Publish must not block the loop for longer than a message may
		// take as a whole.
		SetWriteTimeout(cfg.PublishTimeout).
		SetAutoReconnect(true).
		SetConnectRetry(true).
		SetConnectRetryInterval(2 * time.Second).
		SetMaxReconnectInterval(cfg.MaxReconnectInterval).
		// Resending a backlog after a reconnect respects the window too.
		SetMaxResumePubInFlight(cfg.MaxInFlight).
		SetOnConnectHandler(func(paho.Client) { p.log.Info("connected") }).
		SetConnectionLostHandler(func(_ paho.Client, err error) {
			p.log.Warn("connection lost; reconnecting", "err", err)
		}).
		SetConnectionNotificationHandler(func(_ paho.Client, n paho.ConnectionNotification) {
			// Without this, a wrong password or an unreachable broker
			// would retry silently for ever.
			if f, ok := n.(paho.ConnectionNotificationFailed); ok {
				p.log.Warn("connection attempt failed; retrying", "err", f.Reason)
			}
		})
	if cfg.TLS != nil {
		opts.SetTLSConfig(cfg.TLS)
	}
	p.client = paho.NewClient(opts)
	return p
}

// connect connects (retrying until the broker answers) and starts
// awaiting acknowledgements. Close must follow a nil return.
func (p *publisher) connect(ctx context.Context) error {
	tok := p.client.Connect()
	select {
	case <-tok.Done():
		if err := tok.Error(); err != nil {
			return fmt.Errorf("simulator: connect to %s: %w", redact(p.cfg.BrokerURL), err)
		}
	case <-ctx.Done():
		p.client.Disconnect(0)
		return ctx.Err()
	}
	go p.await()
	return nil
}

// send publishes m once the client is connected and the window has room.
func (p *publisher) send(ctx context.Context, m message) error {
	if err := p.waitConnected(ctx); err != nil {
		return err
	}
	select {
	case p.slots <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	p.stats.sent(m)
	tok := p.client.Publish(p.cfg.Topic, p.cfg.QoS, false, m.payload)
	p.pending <- inflight{token: tok, deadline: time.Now().Add(p.cfg.PublishTimeout), message: m}
	return nil
}

// reconnectPoll is how often a pause for a lost connection checks whether
// the client has reconnected.
const reconnectPoll = 100 * time.Millisecond

// waitConnected pauses while the client is reconnecting: what it published
// now could only be queued, and in real time would arrive late and all at
// once. Polling, rather than the client's connect and lost callbacks, is
// immune to the order in which those callbacks run.
func (p *publisher) waitConnected(ctx context.Context) error {
	if p.client.IsConnectionOpen() {
		return nil
	}
	t := time.NewTicker(reconnectPoll)
	defer t.Stop()
	for !p.client.IsConnectionOpen() {
		select {
		case <-t.C:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// await judges each message in sending order, acknowledged or failed, and
// frees its slot in the window.
func (p *publisher) await() {
	defer close(p.awaited)
	for m := range p.pending {
		if err := p.judge(m); err != nil {
			// The first failure says why; the progress summaries count
			// the rest.
			if p.stats.failed(m.positions) == 1 {
				p.log.Warn("publish failed; further failures are counted in the progress summary", "err", err)
			}
		} else {
			p.stats.published(m.positions)
		}
		<-p.slots
	}
}

// maxAttempts bounds how often one message is published.
const maxAttempts = 3

// judge waits for m's acknowledgement until its deadline. A token that has
// not completed by then is a failure even though it carries no error. A
// token that fails before then (its write broke as the connection dropped)
// is published again: the client may also resend its stored copy after it
// reconnects, but a duplicate is harmless (tms keeps one event per plate
// and fix time) where a loss is not, and only the new token tells whether
// the broker got the message.
func (p *publisher) judge(m inflight) error {
	timer := time.NewTimer(time.Until(m.deadline))
	defer timer.Stop()
	tok := m.token
	for attempt := 1; ; attempt++ {
		select {
		case <-tok.Done():
		case <-timer.C:
			return errPublishTimeout
		}
		err := tok.Error()
		if err == nil || attempt == maxAttempts || errors.Is(err, paho.ErrNotConnected) {
			return err
		}
		p.stats.retries.Add(1)
		tok = p.client.Publish(p.cfg.Topic, p.cfg.QoS, false, m.payload)
	}
}

// close waits for the messages in flight to be judged (each within its
// own deadline, so within PublishTimeout overall) and disconnects.
func (p *publisher) close() {
	close(p.pending)
	<-p.awaited
	p.client.Disconnect(250)
}
