package mqtt

import (
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

// StartEmbedded starts a broker listening on addr (host:port).
func StartEmbedded(addr string, logger *slog.Logger) (*Embedded, error) {
	if logger == nil {
		logger = slog.Default()
	}
	caps := mochi.NewDefaultServerCapabilities()
	// Room for the simulator's bursts of QoS 1 batches.
	caps.MaximumInflight = 8192
	caps.ReceiveMaximum = 1024
	caps.MaximumClientWritesPending = 64 * 1024
	s := mochi.New(&mochi.Options{
		Capabilities: caps,
		Logger:       logger.With("component", "embedded-mqtt"),
	})
	if err := s.AddHook(new(auth.AllowHook), nil); err != nil {
		return nil, fmt.Errorf("embedded mqtt: %w", err)
	}
	l := listeners.NewTCP(listeners.Config{ID: "tcp", Address: addr})
	if err := s.AddListener(l); err != nil {
		return nil, fmt.Errorf("embedded mqtt: listen on %s: %w", addr, err)
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
