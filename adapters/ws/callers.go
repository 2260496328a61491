package ws

import "sync"

// callers counts the hub's connections, in total and per caller (the
// identity Config.Caller gives, a digest of the token), and holds each
// connected caller's snapshot slots. Its map is keyed by caller, not by
// anything a client sends in a message: it has an entry per caller with
// a connection open, so at most MaxConnections entries.
type callers struct {
	mu    sync.Mutex
	byID  map[string]*caller
	conns int
	// The limits: connections per caller and in total, snapshots per
	// caller.
	perCaller, total, snapshots int
	// replays are the replays running; at most maxReplays, and
	// replaysPerCaller of one caller.
	replays                      int
	maxReplays, replaysPerCaller int
}

// caller is one caller's share of the hub.
type caller struct {
	id      string
	conns   int // guarded by callers.mu
	replays int // guarded by callers.mu
	// snapshots is a semaphore over the caller's snapshot loads.
	snapshots chan struct{}
}

// refusal is why an upgrade was refused, as the metric labels it.
type refusal string

const (
	refusedUnauthorised      refusal = "unauthorised"
	refusedOrigin            refusal = "origin"
	refusedCallerConnections refusal = "caller_connections"
	refusedConnections       refusal = "connections"
)

// join counts a new connection of the caller id (identified is false when
// the hub groups no connections) and returns its caller, nil when not
// identified; or why it may not connect.
func (cs *callers) join(id string, identified bool) (*caller, refusal) {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	cl := cs.byID[id]
	if identified && cl != nil && cl.conns >= cs.perCaller {
		return nil, refusedCallerConnections
	}
	if cs.conns >= cs.total {
		return nil, refusedConnections
	}
	cs.conns++
	if !identified {
		return nil, ""
	}
	if cl == nil {
		cl = &caller{id: id, snapshots: make(chan struct{}, cs.snapshots)}
		cs.byID[id] = cl
	}
	cl.conns++
	return cl, ""
}

// leave counts a connection of cl (nil: not identified) gone.
func (cs *callers) leave(cl *caller) {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	cs.conns--
	if cl == nil {
		return
	}
	cl.conns--
	if cl.conns == 0 {
		delete(cs.byID, cl.id)
	}
}

// Which replay limit refused a replay, as the metric labels it.
const (
	replayLimitConnection = "connection"
	replayLimitCaller     = "caller"
	replayLimitTotal      = "total"
)

// startReplay counts a replay of cl (nil: not identified) started, or
// says which limit refuses it ("" when none does).
func (cs *callers) startReplay(cl *caller) string {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	if cl != nil && cl.replays >= cs.replaysPerCaller {
		return replayLimitCaller
	}
	if cs.replays >= cs.maxReplays {
		return replayLimitTotal
	}
	cs.replays++
	if cl != nil {
		cl.replays++
	}
	return ""
}

// endReplay counts a replay of cl ended.
func (cs *callers) endReplay(cl *caller) {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	cs.replays--
	if cl != nil {
		cl.replays--
	}
}
