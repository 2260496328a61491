package mqtt

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"golang.org/x/net/proxy"
)

// Config says how to reach the broker and what to subscribe to.
type Config struct {
	// URL is the broker, e.g. tcp://host:1883 or ssl://host:8883.
	URL string
	// ClientID identifies the persistent session. Two subscribers with
	// the same id take the session from each other: give each instance
	// its own id, or use a shared subscription ($share/group/topic).
	ClientID string
	// Username and Password authenticate the client (G7's access id and
	// secret). Never logged.
	Username string
	Password string
	// Topic is the topic filter to subscribe to.
	Topic string
	// Topics are further filters subscribed in the same session, at the
	// same QoS (G7's event feeds beside its positions). Every message,
	// whichever filter it came by, goes to the one handler: Match tells
	// which filter a message's topic is under. Each must differ from
	// Topic and from the others.
	Topics []string
	// QoS of the subscription. Default 1; 0 would let the broker drop
	// messages, so it is refused.
	QoS byte
	// KeepAlive between client and broker. Default 30s.
	KeepAlive time.Duration
	// ConnectTimeout bounds one connection attempt. Default 10s.
	ConnectTimeout time.Duration
	// MaxReconnectInterval caps the back-off between reconnects. Default 10s.
	MaxReconnectInterval time.Duration
	// MaxPacketBytes bounds an incoming packet, its fixed header included
	// (TMS_MQTT_MAX_PACKET_BYTES). paho reads a packet whole into memory
	// and has no limit of its own, so the subscriber reads the connection
	// first: a larger PUBLISH is discarded as it arrives, never held
	// whole, and delivered as a Message whose Oversized says so (see
	// oversizeConn). Default DefaultMaxPacketBytes; at least
	// MinMaxPacketBytes, at most MQTT's own limit, MaxMQTTPacketBytes.
	MaxPacketBytes int
	// TLS is used for ssl://, tls:// and wss:// URLs; nil takes the
	// system's roots.
	TLS *tls.Config
	// Logger receives connection events. Default: slog's.
	Logger *slog.Logger
}

func (c *Config) setDefaults() {
	if c.QoS == 0 {
		c.QoS = 1
	}
	if c.KeepAlive == 0 {
		c.KeepAlive = 30 * time.Second
	}
	if c.ConnectTimeout == 0 {
		c.ConnectTimeout = 10 * time.Second
	}
	if c.MaxReconnectInterval == 0 {
		c.MaxReconnectInterval = 10 * time.Second
	}
	if c.MaxPacketBytes == 0 {
		c.MaxPacketBytes = DefaultMaxPacketBytes
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

// Limits of MaxPacketBytes.
const (
	// DefaultMaxPacketBytes is TMS_MQTT_MAX_PACKET_BYTES's default: about
	// ten times the largest batch tms's simulator sends (1,000 fixes,
	// 110 KB).
	DefaultMaxPacketBytes = 1 << 20
	// MinMaxPacketBytes is the smallest limit accepted: a smaller one
	// would refuse even batches of a few fixes.
	MinMaxPacketBytes = 1 << 10
	// MaxMQTTPacketBytes is the largest packet MQTT can frame (a
	// remaining length of 268,435,455 and its 5 bytes of fixed header).
	MaxMQTTPacketBytes = 268_435_455 + 5
)

// Validate reports every problem of a config that cannot work.
func (c *Config) Validate() error {
	var errs []error
	if c.URL == "" {
		errs = append(errs, errors.New("mqtt: URL is required"))
	} else if _, err := url.Parse(c.URL); err != nil {
		errs = append(errs, fmt.Errorf("mqtt: URL: %w", err))
	}
	if c.ClientID == "" {
		errs = append(errs, errors.New("mqtt: a client id is required for a persistent session"))
	}
	if c.Topic == "" {
		errs = append(errs, errors.New("mqtt: topic is required"))
	}
	seen := map[string]bool{c.Topic: true}
	for _, t := range c.Topics {
		switch {
		case t == "":
			errs = append(errs, errors.New("mqtt: an empty topic filter"))
		case seen[t]:
			errs = append(errs, fmt.Errorf("mqtt: topic filter %q is given twice", t))
		}
		seen[t] = true
	}
	if c.QoS > 2 {
		errs = append(errs, fmt.Errorf("mqtt: QoS %d does not exist", c.QoS))
	}
	if err := validMaxPacketBytes(c.MaxPacketBytes); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

func validMaxPacketBytes(n int) error {
	if n < MinMaxPacketBytes || n > MaxMQTTPacketBytes {
		return fmt.Errorf("mqtt: MaxPacketBytes %d: must be in [%d, %d]", n, MinMaxPacketBytes, MaxMQTTPacketBytes)
	}
	return nil
}

// Message is one received message. Ack acknowledges it to the broker; a
// message never acknowledged is redelivered after a reconnect.
type Message interface {
	Topic() string
	Payload() []byte
	Ack()
	// Oversized is nil for a message within MaxPacketBytes. For a larger
	// one it says how large it was; its payload was discarded unread and
	// Payload is empty. It must still be acknowledged, or the broker
	// sends it again after every reconnect.
	Oversized() *Oversize
}

// message is a paho message as the handler sees it.
type message struct {
	paho.Message
	oversize *Oversize
}

func (m message) Payload() []byte {
	if m.oversize != nil {
		return nil
	}
	return m.Message.Payload()
}

func (m message) Oversized() *Oversize { return m.oversize }

// Handler receives messages in the order the broker sends them, one at a
// time. It must not block for long: it may acknowledge a message later,
// from any goroutine.
type Handler func(Message)

// Subscriber is a connected, persistent-session MQTT subscription.
type Subscriber struct {
	cfg    Config
	client paho.Client
	// connected is whether a connection is up; active, whether the
	// broker confirmed the subscription on it. Readiness reads active.
	connected, active atomic.Bool
	// subscribed is closed once the broker has confirmed the first
	// subscription: from then on nothing published to the topic is lost.
	subscribed     chan struct{}
	subscribedOnce sync.Once
	// secret marks the stand-ins of oversized messages (see
	// oversizeConn); it never leaves the process.
	secret [secretLen]byte
}

// NewSubscriber validates cfg and prepares a subscriber; Run connects it.
func NewSubscriber(cfg Config) (*Subscriber, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s := &Subscriber{cfg: cfg, subscribed: make(chan struct{})}
	if _, err := rand.Read(s.secret[:]); err != nil {
		return nil, fmt.Errorf("mqtt: %w", err)
	}
	return s, nil
}

// Subscribed is closed once the broker has confirmed the subscription.
// A persistent session keeps messages for the subscriber from then on,
// even across disconnections; before it, the broker drops them.
func (s *Subscriber) Subscribed() <-chan struct{} { return s.subscribed }

// Connected reports whether the subscriber is connected to the broker now
// and the broker has confirmed the subscription on this connection.
func (s *Subscriber) Connected() bool { return s.connected.Load() && s.active.Load() }

// subscribe subscribes on a new connection c. The broker refusing the
// subscription (SUBACK 0x80: not allowed, or a filter it does not take,
// such as a $share filter on a broker without shared subscriptions) is a
// configuration error: it is sent to fatal and ends Run. Anything else
// (the connection lost before the SUBACK, no SUBACK within the connect
// timeout) is an outage: the subscription is tried again, backing off,
// while this connection lasts, and by the next connection's handler once
// paho has reconnected.
func (s *Subscriber) subscribe(ctx context.Context, c paho.Client, handle paho.MessageHandler, fatal chan<- error, log *slog.Logger) {
	backoff := time.Second
	filters := map[string]byte{s.cfg.Topic: s.cfg.QoS}
	for _, t := range s.cfg.Topics {
		filters[t] = s.cfg.QoS
	}
	for {
		tok := c.SubscribeMultiple(filters, handle)
		// A timed-out token carries no error: treat it as a failure.
		var err error
		if !tok.WaitTimeout(s.cfg.ConnectTimeout) {
			err = errors.New("no SUBACK within the connect timeout")
		} else {
			err = tok.Error()
		}
		if err == nil {
			if st, ok := tok.(*paho.SubscribeToken); ok {
				for topic := range filters {
					if code, ok := st.Result()[topic]; ok && code == subackFailure {
						select {
						case fatal <- fmt.Errorf("mqtt: the broker refused the subscription to %s (SUBACK 0x80: not allowed, or a filter it does not support)", topic):
						default:
						}
						return
					}
				}
			}
			s.active.Store(true)
			s.subscribedOnce.Do(func() { close(s.subscribed) })
			return
		}
		if !c.IsConnectionOpen() {
			log.Warn("subscription not confirmed before the connection was lost; subscribing again on the next connection", "err", err)
			return
		}
		log.Warn("subscription not confirmed; trying again", "err", err, "in", backoff)
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, s.cfg.MaxReconnectInterval)
	}
}

// subackFailure is the SUBACK return code of a refused subscription.
const subackFailure = 0x80

// Run connects, subscribes and delivers messages to h until ctx ends; it
// reconnects by itself whenever the broker goes away. On return the
// client is disconnected; messages h has not acknowledged by then are
// redelivered to the next session.
func (s *Subscriber) Run(ctx context.Context, h Handler) error {
	log := s.cfg.Logger.With("component", "mqtt", "broker", redact(s.cfg.URL), "topic", s.cfg.Topic)
	if len(s.cfg.Topics) > 0 {
		log = log.With("topics", s.cfg.Topics)
	}
	// A subscription the broker refuses is fatal: a session that
	// receives nothing must not look healthy (see subscribe).
	fatal := make(chan error, 1)
	handle := func(_ paho.Client, m paho.Message) {
		o, _ := marker(m.Payload(), s.secret)
		h(message{Message: m, oversize: o})
	}
	opts := paho.NewClientOptions().
		AddBroker(s.cfg.URL).
		SetClientID(s.cfg.ClientID).
		SetUsername(s.cfg.Username).
		SetPassword(s.cfg.Password).
		SetCleanSession(false).
		// The handler acknowledges, once Kafka has the data.
		SetAutoAckDisabled(true).
		SetOrderMatters(true).
		SetKeepAlive(s.cfg.KeepAlive).
		SetConnectTimeout(s.cfg.ConnectTimeout).
		SetAutoReconnect(true).
		SetConnectRetry(true).
		SetConnectRetryInterval(time.Second).
		SetMaxReconnectInterval(s.cfg.MaxReconnectInterval).
		SetCustomOpenConnectionFn(func(uri *url.URL, o paho.ClientOptions) (net.Conn, error) {
			c, err := dial(uri, o)
			if err != nil {
				return nil, err
			}
			return newOversizeConn(c, s.cfg.MaxPacketBytes, s.secret), nil
		}).
		// Redelivered messages of the persistent session can arrive before
		// the subscription is renewed: route them to the handler too.
		SetDefaultPublishHandler(handle).
		SetOnConnectHandler(func(c paho.Client) {
			s.connected.Store(true)
			log.Info("connected")
			go s.subscribe(ctx, c, handle, fatal, log)
		}).
		SetConnectionLostHandler(func(_ paho.Client, err error) {
			s.connected.Store(false)
			s.active.Store(false)
			log.Warn("connection lost; reconnecting", "err", err)
		})
	if s.cfg.TLS != nil {
		opts.SetTLSConfig(s.cfg.TLS)
	}
	s.client = paho.NewClient(opts)
	// With ConnectRetry the token completes only once connected (or on a
	// permanent error such as bad credentials), so it is waited for in
	// the background while ctx can still end the wait.
	tok := s.client.Connect()
	connectErr := make(chan error, 1)
	go func() {
		tok.Wait()
		connectErr <- tok.Error()
	}()
	select {
	case err := <-connectErr:
		if err != nil {
			s.client.Disconnect(0)
			return fmt.Errorf("mqtt: connect to %s: %w", redact(s.cfg.URL), err)
		}
	case <-ctx.Done():
	}
	var err error
	select {
	case <-ctx.Done():
	case err = <-fatal:
	}
	s.connected.Store(false)
	s.client.Disconnect(250)
	log.Info("disconnected")
	return err
}

// dial opens the network connection to the broker as paho itself does
// (its own dialer is not exported): TCP, TLS, WebSocket or a Unix socket,
// through the proxy the environment names.
func dial(uri *url.URL, o paho.ClientOptions) (net.Conn, error) {
	dialer := o.Dialer
	if dialer == nil {
		dialer = &net.Dialer{Timeout: 30 * time.Second}
	}
	switch uri.Scheme {
	case "ws", "wss":
		u := *uri
		u.User = nil // gorilla/websocket refuses URLs with credentials
		var tlsc *tls.Config
		if uri.Scheme == "wss" {
			tlsc = o.TLSConfig
		}
		return paho.NewWebsocket(u.String(), tlsc, o.ConnectTimeout, o.HTTPHeaders, o.WebsocketOptions)
	case "mqtt", "tcp":
		return proxy.FromEnvironmentUsing(dialer).Dial("tcp", uri.Host)
	case "unix":
		if uri.Host != "" {
			return dialer.Dial("unix", uri.Host)
		}
		return dialer.Dial("unix", uri.Path)
	case "ssl", "tls", "mqtts", "mqtt+ssl", "tcps":
		// Through the environment's proxy when one is set (all_proxy), as
		// paho's own dialer does; the handshake bounded like the dial.
		c, err := proxy.FromEnvironmentUsing(dialer).Dial("tcp", uri.Host)
		if err != nil {
			return nil, err
		}
		cfg := &tls.Config{}
		if o.TLSConfig != nil {
			cfg = o.TLSConfig.Clone()
		}
		if cfg.ServerName == "" {
			cfg.ServerName = uri.Hostname()
		}
		timeout := dialer.Timeout
		if timeout <= 0 {
			timeout = 30 * time.Second
		}
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		tc := tls.Client(c, cfg)
		if err := tc.HandshakeContext(ctx); err != nil {
			_ = c.Close()
			return nil, err
		}
		return tc, nil
	}
	return nil, fmt.Errorf("mqtt: unknown scheme %q", uri.Scheme)
}

// redact removes credentials from a broker URL before it is logged.
func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparseable URL)"
	}
	return u.Redacted()
}
