package ws

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/olahol/melody"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/tmsfleet/tms/domain/event"
	"github.com/tmsfleet/tms/projections/vehicles"
)

// Snapshot gives the latest position of the vehicles a subscription
// selects; *vehicles.Store satisfies it. List must be safe for concurrent
// use and must honour ctx: a subscribe that is replaced, or a client that
// leaves, cancels its load.
type Snapshot interface {
	List(ctx context.Context, q vehicles.ListQuery) ([]vehicles.Vehicle, error)
}

// Config configures a Hub.
type Config struct {
	// Snapshot loads subscribers' snapshots (required).
	Snapshot Snapshot
	// Authorize, when set, is asked about every upgrade request; false
	// refuses it with 401. The API's auth middleware normally runs first;
	// this keeps the hub safe when mounted on its own.
	Authorize func(*http.Request) bool
	// CheckOrigin decides whether a browser page from the request's
	// Origin may connect. Default: any origin. Tokens, not cookies,
	// authenticate the socket, so a foreign page cannot ride on a user's
	// ambient credentials; set this to restrict it anyway.
	CheckOrigin func(*http.Request) bool
	// SendWindow is how many of a client's frames may sit inside melody
	// (queued or being written) at once. melody drops frames past its own
	// buffer, so the hub keeps this small and releases the next frame
	// only as one is written. Default 8.
	SendWindow int
	// MaxPending bounds a client's queued discrete frames: events other
	// than positions (which coalesce per vehicle instead) and replies.
	// A client past it is closed with 1013. Default 1024.
	MaxPending int
	// MaxMessageBytes is the largest message a client may send; a larger
	// one closes the connection with 1009. Default 64 KiB.
	MaxMessageBytes int64
	// WriteTimeout is how long writing one frame may take before the
	// connection is dropped as dead. Default 10s.
	WriteTimeout time.Duration
	// PongTimeout is how long the hub waits for the pong to its ping
	// before dropping a connection as dead; it pings at 9/10 of it.
	// Browsers answer pings by themselves. Default 60s.
	PongTimeout time.Duration
	// SnapshotTimeout bounds loading one snapshot. Default 10s.
	SnapshotTimeout time.Duration
	// MaxConcurrentSnapshots bounds the snapshot queries in flight across
	// all clients, so that a fleet of dashboards reconnecting at once
	// after a deploy does not flood the database. Default 8.
	MaxConcurrentSnapshots int
	// Registerer receives the hub's metrics; nil means none.
	Registerer prometheus.Registerer
	// Logger; default slog's.
	Logger *slog.Logger
}

func (c *Config) setDefaults() {
	if c.CheckOrigin == nil {
		c.CheckOrigin = func(*http.Request) bool { return true }
	}
	if c.SendWindow == 0 {
		c.SendWindow = 8
	}
	if c.MaxPending == 0 {
		c.MaxPending = 1024
	}
	if c.MaxMessageBytes == 0 {
		c.MaxMessageBytes = 64 << 10
	}
	if c.WriteTimeout == 0 {
		c.WriteTimeout = 10 * time.Second
	}
	if c.PongTimeout == 0 {
		c.PongTimeout = 60 * time.Second
	}
	if c.SnapshotTimeout == 0 {
		c.SnapshotTimeout = 10 * time.Second
	}
	if c.MaxConcurrentSnapshots == 0 {
		c.MaxConcurrentSnapshots = 8
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

// Validate reports a config that cannot work.
func (c *Config) Validate() error {
	switch {
	case c.Snapshot == nil:
		return errors.New("ws: a Snapshot source is required")
	case c.SendWindow < 1:
		return errors.New("ws: SendWindow must be at least 1")
	case c.MaxPending < 1:
		return errors.New("ws: MaxPending must be at least 1")
	case c.MaxMessageBytes < 512:
		return errors.New("ws: MaxMessageBytes must be at least 512")
	case c.WriteTimeout <= 0 || c.PongTimeout <= 0 || c.SnapshotTimeout <= 0:
		return errors.New("ws: timeouts must be positive")
	case c.MaxConcurrentSnapshots < 1:
		return errors.New("ws: MaxConcurrentSnapshots must be at least 1")
	}
	return nil
}

// Hub is the live WebSocket endpoint: an http.Handler that upgrades
// requests, takes subscriptions, and pushes the events given to Publish
// to the clients whose filter matches. See the package documentation for
// the protocol.
type Hub struct {
	cfg     Config
	m       *melody.Melody
	log     *slog.Logger
	metrics *metrics
	// snapshotSlots is a semaphore over snapshot queries.
	snapshotSlots chan struct{}

	// clients is copied on write (connect, disconnect), so that Publish
	// reads it without a lock.
	clients atomic.Pointer[[]*client]
	mu      sync.Mutex // serialises writers of clients
	closed  atomic.Bool
}

// clientKey is where a melody session keeps its client.
const clientKey = "tms.ws.client"

// New validates cfg and builds a hub.
func New(cfg Config) (*Hub, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	h := &Hub{
		cfg:           cfg,
		m:             melody.New(),
		log:           cfg.Logger.With("component", "ws"),
		metrics:       newMetrics(cfg.Registerer),
		snapshotSlots: make(chan struct{}, cfg.MaxConcurrentSnapshots),
	}
	h.clients.Store(&[]*client{})

	mc := h.m.Config
	mc.WriteWait = cfg.WriteTimeout
	mc.PongWait = cfg.PongTimeout
	mc.PingPeriod = cfg.PongTimeout * 9 / 10
	mc.MaxMessageSize = cfg.MaxMessageBytes
	// The window, plus room for the close frames (ours and melody's own
	// on shutdown), which must never be the frame melody drops.
	mc.MessageBufferSize = cfg.SendWindow + 4
	h.m.Upgrader.CheckOrigin = cfg.CheckOrigin

	h.m.HandleConnect(h.connect)
	h.m.HandleDisconnect(h.disconnect)
	h.m.HandleMessage(func(s *melody.Session, msg []byte) {
		if c := clientOf(s); c != nil {
			c.handleMessage(msg)
		}
	})
	h.m.HandleMessageBinary(func(s *melody.Session, _ []byte) {
		if c := clientOf(s); c != nil {
			c.mu.Lock()
			tooSlow := c.replyLocked(kindError, refuse("", "binary messages are not supported; send JSON text").body())
			c.mu.Unlock()
			if tooSlow {
				h.remove(c)
			}
		}
	})
	h.m.HandleSentMessage(func(s *melody.Session, _ []byte) {
		if c := clientOf(s); c != nil {
			c.sent()
		}
	})
	// Called with no lock of ours held, sometimes from inside a client's
	// send: it must not take the client's lock.
	h.m.HandleError(func(s *melody.Session, err error) {
		if errors.Is(err, melody.ErrMessageBufferFull) {
			// The window is meant to make this impossible.
			h.metrics.dropped.Inc()
			h.log.Error("melody dropped a websocket frame", "remote", s.Request.RemoteAddr)
			return
		}
		h.log.Debug("websocket connection error", "remote", s.Request.RemoteAddr, "err", err)
	})
	return h, nil
}

// ServeHTTP upgrades the request to a WebSocket connection and serves it
// until it closes. Mount it at GET /api/v1/ws behind the API's
// authentication.
func (h *Hub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if h.cfg.Authorize != nil && !h.cfg.Authorize(r) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="tms"`)
		problem(w, http.StatusUnauthorized, "a valid bearer token is required")
		return
	}
	if h.closed.Load() {
		problem(w, http.StatusServiceUnavailable, "the server is shutting down")
		return
	}
	switch err := h.m.HandleRequest(w, r); {
	case errors.Is(err, melody.ErrClosed):
		problem(w, http.StatusServiceUnavailable, "the server is shutting down")
	case err != nil:
		// The upgrader has answered the request already.
		h.log.Debug("websocket upgrade refused", "remote", r.RemoteAddr, "err", err)
	}
}

// problem answers with an RFC 9457 problem, as the rest of the API does.
func problem(w http.ResponseWriter, status int, detail string) {
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{
		"type": "about:blank", "title": http.StatusText(status), "status": status, "detail": detail,
	})
}

// Publish pushes e to every client whose filter matches it. It is safe
// for concurrent use and never blocks on a client: a client that is
// behind gets e queued in its outbox (or coalesced there, for positions).
// The push latency is measured from e's data.received_at when it has one,
// else from now.
func (h *Hub) Publish(e event.Envelope) {
	raw, err := json.Marshal(e)
	if err != nil {
		h.log.Error("cannot encode an event for websocket clients", "id", e.ID, "type", e.Type, "err", err)
		return
	}
	h.publish(&e, raw, time.Now())
}

// publish fans out e, whose JSON is envelope. The work that depends only
// on the event (decoding what filters look at, encoding the frame body)
// is done here once; per client there is only the match and, for a
// client that wants the event, a copy of the frame with its seq.
func (h *Hub) publish(e *event.Envelope, envelope []byte, origin time.Time) {
	if h.closed.Load() {
		return
	}
	if !utf8.Valid(envelope) {
		// A text frame must be UTF-8, or browsers fail the connection.
		h.log.Warn("dropping an event that is not valid UTF-8", "id", e.ID, "type", e.Type)
		return
	}
	h.metrics.published.Inc()
	clients := *h.clients.Load()
	if len(clients) == 0 {
		return
	}
	ev := inspect(e, envelope, origin)
	for _, c := range clients {
		if c.offer(ev) {
			h.remove(c)
		}
	}
}

// Clients returns the number of connected clients.
func (h *Hub) Clients() int { return len(*h.clients.Load()) }

// Close closes every connection with 1001 (going away) after the frames
// already handed to melody, and refuses new ones. It does not wait for
// the connections to end: a client that does not read its close frame is
// dropped after WriteTimeout. Publish does nothing afterwards.
func (h *Hub) Close() error {
	if !h.closed.CompareAndSwap(false, true) {
		return nil
	}
	for _, c := range *h.clients.Load() {
		c.shutdown()
	}
	err := h.m.CloseWithMsg(melody.FormatCloseMessage(melody.CloseGoingAway, "server shutting down"))
	if err != nil && !errors.Is(err, melody.ErrClosed) {
		return fmt.Errorf("ws: close: %w", err)
	}
	return nil
}

func (h *Hub) connect(s *melody.Session) {
	c := &client{hub: h, sess: s}
	s.Set(clientKey, c)
	h.mu.Lock()
	next := append(slices.Clone(*h.clients.Load()), c)
	h.clients.Store(&next)
	h.mu.Unlock()
	h.metrics.clients.Inc()
	if h.closed.Load() {
		// Upgraded while Close ran: melody's shutdown may have missed it.
		c.shutdown()
		_ = s.CloseWithMsg(melody.FormatCloseMessage(melody.CloseGoingAway, "server shutting down"))
	}
}

func (h *Hub) disconnect(s *melody.Session) {
	c := clientOf(s)
	if c == nil {
		return
	}
	c.shutdown()
	h.remove(c)
	h.metrics.clients.Dec()
}

// remove takes c out of the fan-out. It is idempotent.
func (h *Hub) remove(c *client) {
	h.mu.Lock()
	defer h.mu.Unlock()
	cur := *h.clients.Load()
	i := slices.Index(cur, c)
	if i < 0 {
		return
	}
	next := slices.Delete(slices.Clone(cur), i, i+1)
	h.clients.Store(&next)
}

func clientOf(s *melody.Session) *client {
	v, _ := s.Get(clientKey)
	c, _ := v.(*client)
	return c
}

// snapshot loads and encodes the snapshot for f.
func (h *Hub) snapshot(ctx context.Context, f *filter) ([]byte, error) {
	select {
	case h.snapshotSlots <- struct{}{}:
		defer func() { <-h.snapshotSlots }()
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	vs, err := h.cfg.Snapshot.List(ctx, f.snapshotQuery())
	if err != nil {
		return nil, fmt.Errorf("ws: snapshot: %w", err)
	}
	return snapshotBody(vs), nil
}
