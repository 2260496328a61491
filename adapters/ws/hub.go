package ws

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/olahol/melody"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/tmsfleet/tms/domain/event"
	"github.com/tmsfleet/tms/projections/timeline"
	"github.com/tmsfleet/tms/projections/vehicles"
)

// Snapshot gives the latest position of the vehicles a subscription
// selects; *vehicles.Store satisfies it. List must be safe for concurrent
// use and must honour ctx: a subscribe that is replaced, or a client that
// leaves, cancels its load.
type Snapshot interface {
	List(ctx context.Context, q vehicles.ListQuery) ([]vehicles.Vehicle, error)
}

// Config configures a Hub. Every limit has a default that a real
// deployment can keep; docs/security.md lists them with their settings.
type Config struct {
	// Snapshot loads subscribers' snapshots (required).
	Snapshot Snapshot
	// Authorize, when set, is asked about every upgrade request; false
	// refuses it with 401. The API's auth middleware normally runs first;
	// this keeps the hub safe when mounted on its own.
	Authorize func(*http.Request) bool
	// Caller names who is connecting, for the per-caller limits
	// (MaxConnectionsPerCaller, MaxSnapshotsPerCaller). It must be stable
	// for a caller and must not be a secret: cmd/tms passes a digest of
	// the bearer token, never the token. The hub never logs it. nil: the
	// connections are not grouped and only the hub-wide limits apply; an
	// empty identity is one caller (every unidentified connection).
	Caller func(*http.Request) string
	// AllowedOrigins are the origins (scheme://host[:port]) whose pages
	// may open a connection besides the server's own: a browser request
	// whose Origin's host is the request's Host is always allowed, and a
	// request without Origin is not from a browser page and is allowed
	// too. "*" allows every origin. Others are refused with 403 before
	// the upgrade. Tokens, not cookies, authenticate the socket, so a
	// foreign page cannot ride on a user's ambient credentials; the check
	// keeps a page from elsewhere from using a token it was given or
	// found (and from spending a user's connections). Default: none.
	AllowedOrigins []string
	// SendWindow is how many of a client's frames may sit inside melody
	// (queued or being written) at once. melody drops frames past its own
	// buffer, so the hub keeps this small and releases the next frame
	// only as one is written. Default 8.
	SendWindow int
	// MaxPending bounds a client's queued discrete frames: events other
	// than positions (which coalesce per vehicle instead) and replies.
	// A client past it is closed with 1013. Default 1024.
	MaxPending int
	// MaxPendingBytes bounds what the hub holds for one client: every
	// frame queued for it (coalesced positions too: a flood of distinct
	// plates does not coalesce) and every frame handed to melody and not
	// yet written, each counting its bytes plus a fixed overhead for its
	// bookkeeping. A frame that would take a client past it closes the
	// client with 1013. A snapshot is cut at half of it, so that a
	// snapshot always fits. Default 4 MiB; at least 256 KiB.
	MaxPendingBytes int64
	// MaxMessageBytes is the largest message a client may send; a larger
	// one closes the connection with 1009. Default 64 KiB.
	MaxMessageBytes int64
	// MaxFilterEntries caps each list of a subscribe (vehicles, stations,
	// types); a longer list is refused with an error frame naming the
	// field and the limit. Default 1000.
	MaxFilterEntries int
	// MaxSnapshotRows caps the vehicles of one snapshot; a snapshot that
	// matches more carries the first MaxSnapshotRows by plate and says it
	// is truncated. Default 10,000.
	MaxSnapshotRows int
	// MaxConnections caps the hub's connections; an upgrade past it is
	// refused with 503. With MaxPendingBytes it bounds the memory of all
	// clients together. Default 256.
	MaxConnections int
	// MaxConnectionsPerCaller caps one caller's connections (see Caller);
	// the next upgrade is refused with 429 before upgrading. Default 32.
	MaxConnectionsPerCaller int
	// WriteTimeout is how long writing one frame may take before the
	// connection is dropped as dead. Default 10s.
	WriteTimeout time.Duration
	// PongTimeout is how long the hub waits for the pong to its ping
	// before dropping a connection as dead; it pings at 9/10 of it.
	// Browsers answer pings by themselves. Default 60s.
	PongTimeout time.Duration
	// SnapshotTimeout bounds loading one snapshot, waiting for a slot
	// included. Default 10s.
	SnapshotTimeout time.Duration
	// MaxConcurrentSnapshots bounds the snapshot queries in flight across
	// all clients, so that a fleet of dashboards reconnecting at once
	// after a deploy does not flood the database. Default 8.
	MaxConcurrentSnapshots int
	// MaxSnapshotsPerCaller bounds one caller's snapshot queries in flight
	// (and waiting for a slot), so that one token cannot take all of
	// MaxConcurrentSnapshots: its further snapshots wait for its own.
	// Default 2; at most MaxConcurrentSnapshots.
	MaxSnapshotsPerCaller int
	// History is what replays read (*timeline.Store: the positions,
	// visits and jobs read models). nil: the hub replays nothing, and a
	// replay message is answered with an error frame saying so.
	History timeline.Source
	// Jobs finds the window of a job replay (timeline.JobWindows); nil:
	// job replays are refused.
	Jobs WindowSource
	// Trips finds the window of a trip replay; nil: trip replays are
	// refused.
	Trips WindowSource
	// MaxReplays caps the replays running at once in the hub, each a
	// goroutine with at most one query in flight and four pages of rows;
	// one more is refused with an error frame. Default 64.
	MaxReplays int
	// MaxReplaysPerCaller caps one caller's running replays (see Caller),
	// so that one token cannot take all of MaxReplays. Default 8; at most
	// MaxReplays.
	MaxReplaysPerCaller int
	// MaxReplaysPerConnection caps one connection's running replays.
	// Default 4.
	MaxReplaysPerConnection int
	// MaxReplaySpeed is the fastest a replay may go, in times real time
	// (the slowest is 1). Default 1000: a day in under a minute and a
	// half.
	MaxReplaySpeed float64
	// MaxReplayRange caps a replay's window. Its cost is bounded by the
	// pages whatever the window; the cap keeps a replay to what a person
	// watches (a year at the top speed takes nine hours). Default 366
	// days.
	MaxReplayRange time.Duration
	// ReplayPageRows is how many rows a replay reads at once from each of
	// its four streams (positions, entries, exits, job events), and so
	// about what it holds: a few hundred bytes a row. Default 500.
	ReplayPageRows int
	// ReplayQueryTimeout bounds each query of a replay: a trip's or a
	// job's window, a page. A replay whose page times out ends (failed).
	// Default 10s.
	ReplayQueryTimeout time.Duration
	// Registerer receives the hub's metrics; nil means none.
	Registerer prometheus.Registerer
	// Logger; default slog's.
	Logger *slog.Logger
}

// minPendingBytes is the least MaxPendingBytes: room for a few hundred
// events and a small snapshot.
const minPendingBytes = 256 << 10

func (c *Config) setDefaults() {
	if c.SendWindow == 0 {
		c.SendWindow = 8
	}
	if c.MaxPending == 0 {
		c.MaxPending = 1024
	}
	if c.MaxPendingBytes == 0 {
		c.MaxPendingBytes = 4 << 20
	}
	if c.MaxMessageBytes == 0 {
		c.MaxMessageBytes = 64 << 10
	}
	if c.MaxFilterEntries == 0 {
		c.MaxFilterEntries = 1000
	}
	if c.MaxSnapshotRows == 0 {
		c.MaxSnapshotRows = 10000
	}
	if c.MaxConnections == 0 {
		c.MaxConnections = 256
	}
	if c.MaxConnectionsPerCaller == 0 {
		c.MaxConnectionsPerCaller = 32
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
	if c.MaxSnapshotsPerCaller == 0 {
		c.MaxSnapshotsPerCaller = min(2, c.MaxConcurrentSnapshots)
	}
	if c.MaxReplays == 0 {
		c.MaxReplays = 64
	}
	if c.MaxReplaysPerCaller == 0 {
		c.MaxReplaysPerCaller = min(8, c.MaxReplays)
	}
	if c.MaxReplaysPerConnection == 0 {
		c.MaxReplaysPerConnection = 4
	}
	if c.MaxReplaySpeed == 0 {
		c.MaxReplaySpeed = 1000
	}
	if c.MaxReplayRange == 0 {
		c.MaxReplayRange = 366 * 24 * time.Hour
	}
	if c.ReplayPageRows == 0 {
		c.ReplayPageRows = 500
	}
	if c.ReplayQueryTimeout == 0 {
		c.ReplayQueryTimeout = 10 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

// Validate reports every setting that cannot work.
func (c *Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf("ws: "+format, args...)) }
	if c.Snapshot == nil {
		bad("a Snapshot source is required")
	}
	if c.SendWindow < 1 {
		bad("SendWindow must be at least 1")
	}
	if c.MaxPending < 1 {
		bad("MaxPending must be at least 1")
	}
	if c.MaxPendingBytes < minPendingBytes {
		bad("MaxPendingBytes must be at least %d", minPendingBytes)
	}
	if c.MaxMessageBytes < 512 {
		bad("MaxMessageBytes must be at least 512")
	}
	if c.MaxFilterEntries < 1 {
		bad("MaxFilterEntries must be at least 1")
	}
	if c.MaxSnapshotRows < 1 {
		bad("MaxSnapshotRows must be at least 1")
	}
	if c.MaxConnections < 1 || c.MaxConnectionsPerCaller < 1 {
		bad("MaxConnections and MaxConnectionsPerCaller must be at least 1")
	}
	if c.WriteTimeout <= 0 || c.PongTimeout <= 0 || c.SnapshotTimeout <= 0 {
		bad("timeouts must be positive")
	}
	if c.MaxConcurrentSnapshots < 1 {
		bad("MaxConcurrentSnapshots must be at least 1")
	}
	if c.MaxSnapshotsPerCaller < 1 || c.MaxSnapshotsPerCaller > c.MaxConcurrentSnapshots {
		bad("MaxSnapshotsPerCaller must be between 1 and MaxConcurrentSnapshots (%d)", c.MaxConcurrentSnapshots)
	}
	for _, o := range c.AllowedOrigins {
		if _, err := normaliseOrigin(o); err != nil {
			bad("AllowedOrigins: %w", err)
		}
	}
	if c.MaxReplays < 1 || c.MaxReplaysPerConnection < 1 {
		bad("MaxReplays and MaxReplaysPerConnection must be at least 1")
	}
	if c.MaxReplaysPerCaller < 1 || c.MaxReplaysPerCaller > c.MaxReplays {
		bad("MaxReplaysPerCaller must be between 1 and MaxReplays (%d)", c.MaxReplays)
	}
	if !(c.MaxReplaySpeed >= 1) || math.IsInf(c.MaxReplaySpeed, 0) {
		bad("MaxReplaySpeed must be a number of at least 1")
	}
	if c.MaxReplayRange <= 0 || c.ReplayQueryTimeout <= 0 {
		bad("MaxReplayRange and ReplayQueryTimeout must be positive")
	}
	if c.ReplayPageRows < timeline.MinRows {
		bad("ReplayPageRows must be at least %d", timeline.MinRows)
	}
	return errors.Join(errs...)
}

// Hub is the live WebSocket endpoint: an http.Handler that upgrades
// requests, takes subscriptions, and pushes the events given to Publish
// to the clients whose filter matches. See the package documentation for
// the protocol.
type Hub struct {
	cfg     Config
	limits  limits
	m       *melody.Melody
	log     *slog.Logger
	metrics *metrics
	// snapshotSlots is a semaphore over snapshot queries.
	snapshotSlots chan struct{}
	// origins are the allowed origins besides the request's own,
	// normalised; anyOrigin is "*".
	origins   map[string]bool
	anyOrigin bool
	callers   callers
	// peakHeld is the most bytes the hub has held for one client: the
	// high-water mark of what MaxPendingBytes bounds.
	peakHeld atomic.Int64

	// clients is copied on write (connect, disconnect), so that Publish
	// reads it without a lock.
	clients atomic.Pointer[[]*client]
	mu      sync.Mutex // serialises writers of clients
	closed  atomic.Bool
}

// Keys of a melody session.
const (
	// clientKey is where a melody session keeps its client.
	clientKey = "tms.ws.client"
	// callerKey is where ServeHTTP leaves the connection's caller for
	// connect.
	callerKey = "tms.ws.caller"
)

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
		snapshotSlots: make(chan struct{}, cfg.MaxConcurrentSnapshots),
		origins:       map[string]bool{},
		callers: callers{byID: map[string]*caller{}, perCaller: cfg.MaxConnectionsPerCaller, total: cfg.MaxConnections,
			snapshots: cfg.MaxSnapshotsPerCaller, maxReplays: cfg.MaxReplays, replaysPerCaller: cfg.MaxReplaysPerCaller},
		limits: limits{maxEntries: cfg.MaxFilterEntries, maxSpeed: cfg.MaxReplaySpeed, maxRange: cfg.MaxReplayRange},
	}
	for _, o := range cfg.AllowedOrigins {
		n, _ := normaliseOrigin(o) // Validate checked it
		h.origins[n] = true
		h.anyOrigin = h.anyOrigin || n == "*"
	}
	h.metrics = newMetrics(cfg.Registerer, &h.peakHeld)
	h.clients.Store(&[]*client{})

	mc := h.m.Config
	mc.WriteWait = cfg.WriteTimeout
	mc.PongWait = cfg.PongTimeout
	mc.PingPeriod = cfg.PongTimeout * 9 / 10
	mc.MaxMessageSize = cfg.MaxMessageBytes
	// The window, plus room for the close frames (ours and melody's own
	// on shutdown), which must never be the frame melody drops.
	mc.MessageBufferSize = cfg.SendWindow + 4
	// ServeHTTP checks the origin itself, to answer a refusal with a
	// problem document.
	h.m.Upgrader.CheckOrigin = func(*http.Request) bool { return true }

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
// authentication. Before upgrading it refuses, each with a problem
// document: an unauthorised request (401), a page from an origin not
// allowed (403), a caller at its connection limit (429), and any request
// while the hub is shutting down or full (503).
func (h *Hub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if h.cfg.Authorize != nil && !h.cfg.Authorize(r) {
		h.metrics.refused(refusedUnauthorised)
		w.Header().Set("WWW-Authenticate", `Bearer realm="tms"`)
		problem(w, http.StatusUnauthorized, "a valid bearer token is required")
		return
	}
	if h.closed.Load() {
		problem(w, http.StatusServiceUnavailable, "the server is shutting down")
		return
	}
	if origin, ok := h.originAllowed(r); !ok {
		h.metrics.refused(refusedOrigin)
		problem(w, http.StatusForbidden, fmt.Sprintf("pages from the origin %s may not open this WebSocket: "+
			"the server allows its own origin and the ones it is configured with", excerpt(origin)))
		return
	}
	cl, refusal := h.callers.join(h.callerOf(r))
	switch refusal {
	case refusedCallerConnections:
		h.metrics.refused(refusal)
		problem(w, http.StatusTooManyRequests, fmt.Sprintf("this token has %d WebSocket connections open, the most it may; "+
			"close one before opening another", h.cfg.MaxConnectionsPerCaller))
		return
	case refusedConnections:
		h.metrics.refused(refusal)
		w.Header().Set("Retry-After", "10")
		problem(w, http.StatusServiceUnavailable, fmt.Sprintf("the server has %d WebSocket connections open, the most it takes; "+
			"try again later", h.cfg.MaxConnections))
		return
	}
	defer h.callers.leave(cl)
	switch err := h.m.HandleRequestWithKeys(w, r, map[string]any{callerKey: cl}); {
	case errors.Is(err, melody.ErrClosed):
		problem(w, http.StatusServiceUnavailable, "the server is shutting down")
	case err != nil:
		// The upgrader has answered the request already.
		h.log.Debug("websocket upgrade refused", "remote", r.RemoteAddr, "err", err)
	}
}

// callerOf is r's caller identity, and whether it has one (Caller set).
func (h *Hub) callerOf(r *http.Request) (string, bool) {
	if h.cfg.Caller == nil {
		return "", false
	}
	return h.cfg.Caller(r), true
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
	v, _ := s.Get(callerKey)
	cl, _ := v.(*caller)
	c := &client{hub: h, sess: s, caller: cl}
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

// errCallerBusy is a snapshot that could not start within its timeout
// because its caller's other snapshots held all of the caller's slots.
var errCallerBusy = errors.New("the caller's snapshot slots are all taken")

// snapshot loads and encodes the snapshot for f, taking first a slot of
// cl's (nil: none) then one of the hub's. It asks for one row more than
// MaxSnapshotRows, to know that the snapshot is cut without counting.
func (h *Hub) snapshot(ctx context.Context, cl *caller, f *filter) ([]byte, error) {
	if cl != nil {
		select {
		case cl.snapshots <- struct{}{}:
			defer func() { <-cl.snapshots }()
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			// A slot freed as the time ran out counts as none.
			return nil, fmt.Errorf("ws: snapshot: %w", errCallerBusy)
		}
	}
	select {
	case h.snapshotSlots <- struct{}{}:
		defer func() { <-h.snapshotSlots }()
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	q := f.snapshotQuery()
	q.Limit = h.cfg.MaxSnapshotRows + 1
	vs, err := h.cfg.Snapshot.List(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("ws: snapshot: %w", err)
	}
	return snapshotBody(vs, h.cfg.MaxSnapshotRows, h.snapshotBudget()), nil
}

// snapshotBudget is the most bytes a snapshot frame's body may take: half
// of a client's byte limit, so that it fits beside the events held while
// it loaded.
func (h *Hub) snapshotBudget() int { return int(h.cfg.MaxPendingBytes / 2) }

// noteHeld records that the hub holds n bytes for one client.
func (h *Hub) noteHeld(n int64) {
	for {
		peak := h.peakHeld.Load()
		if n <= peak || h.peakHeld.CompareAndSwap(peak, n) {
			return
		}
	}
}
