package mqtt

import (
	"errors"
	"fmt"
	"log/slog"

	mochi "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/hooks/auth"
	"github.com/mochi-mqtt/server/v2/listeners"
)

// Embedded is an in-process MQTT broker (mochi-mqtt) for `make run` and
// demos, used when no broker URL is configured. It accepts any client,
// keeps sessions in memory only, and listens on loopback by default.
type Embedded struct {
	server *mochi.Server
	addr   string
}

// EmbeddedConfig configures the embedded broker.
type EmbeddedConfig struct {
	// Addr is where it listens (host:port; port 0 picks a free one).
	Addr string
	// MaxPacketBytes bounds an incoming packet (TMS_MQTT_MAX_PACKET_BYTES).
	// mochi reads a packet's fixed header first and refuses a larger one
	// before reading its body: it closes the connection (with no reason
	// code, whatever the client's MQTT version), keeps nothing of the
	// packet and delivers nothing. It counts the packet without its
	// remaining-length bytes (1 to 4). Default DefaultMaxPacketBytes.
	MaxPacketBytes int
	// Logger; default slog's.
	Logger *slog.Logger
}

func (c *EmbeddedConfig) setDefaults() {
	if c.MaxPacketBytes == 0 {
		c.MaxPacketBytes = DefaultMaxPacketBytes
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

// Validate reports every problem of a config that cannot work.
func (c *EmbeddedConfig) Validate() error {
	var errs []error
	if c.Addr == "" {
		errs = append(errs, errors.New("embedded mqtt: a listen address is required"))
	}
	if err := validMaxPacketBytes(c.MaxPacketBytes); err != nil {
		errs = append(errs, fmt.Errorf("embedded %w", err))
	}
	return errors.Join(errs...)
}

// StartEmbedded starts a broker as cfg says.
func StartEmbedded(cfg EmbeddedConfig) (*Embedded, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	caps := mochi.NewDefaultServerCapabilities()
	// Room for the simulator's bursts of QoS 1 batches.
	caps.MaximumInflight = 8192
	caps.ReceiveMaximum = 1024
	caps.MaximumClientWritesPending = 64 * 1024
	caps.MaximumPacketSize = uint32(cfg.MaxPacketBytes)
	s := mochi.New(&mochi.Options{
		Capabilities: caps,
		Logger:       slog.New(boundedHandler{cfg.Logger.Handler()}).With("component", "embedded-mqtt"),
	})
	if err := s.AddHook(new(auth.AllowHook), nil); err != nil {
		return nil, fmt.Errorf("embedded mqtt: %w", err)
	}
	l := listeners.NewTCP(listeners.Config{ID: "tcp", Address: cfg.Addr})
	if err := s.AddListener(l); err != nil {
		return nil, fmt.Errorf("embedded mqtt: listen on %s: %w", cfg.Addr, err)
	}
	if err := s.Serve(); err != nil {
		return nil, fmt.Errorf("embedded mqtt: %w", err)
	}
	return &Embedded{server: s, addr: l.Address()}, nil
}

// URL is the broker's address as a client URL.
func (e *Embedded) URL() string { return "tcp://" + e.addr }

// Close stops the broker.
func (e *Embedded) Close() error { return e.server.Close() }
