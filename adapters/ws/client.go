package ws

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/olahol/melody"
)

// client is one WebSocket connection: its subscription, its outbox and
// its flow control.
//
// Flow control: melody's Session.Write only enqueues into a bounded
// channel and drops the frame when the channel is full, so the hub never
// lets melody hold more than SendWindow of a client's frames. The rest
// wait in the outbox (where positions coalesce), and each frame melody
// reports written (HandleSentMessage) releases the next. Seq numbers are
// assigned on release, so the frames a client receives are numbered
// without gaps whatever was coalesced.
//
// Memory: what the hub holds for a client, the outbox and the frames in
// flight, counted by frameCost, never passes MaxPendingBytes: a frame that
// would take it past closes the client instead (closeTooSlowLocked).
type client struct {
	hub  *Hub
	sess *melody.Session
	// caller is the client's caller, whose snapshot slots it uses; nil
	// when the hub groups no connections.
	caller *caller
	// filter is the subscription in force, nil before the first
	// subscribe. Publish reads it without the lock to skip clients that
	// do not want an event cheaply; it is replaced under mu.
	filter atomic.Pointer[filter]

	mu     sync.Mutex
	closed bool
	seq    uint64
	// gen counts subscribes, so that a snapshot loaded for a subscribe
	// that has since been replaced is discarded.
	gen uint64
	// loading holds events back while a snapshot loads: they wait in the
	// outbox (coalescing) and follow the snapshot.
	loading    bool
	cancelLoad context.CancelFunc
	out        outbox
	// inflight are the frames handed to melody and not yet reported
	// written, oldest first: melody writes a session's frames in order,
	// so each sent report is for the oldest. inflightBytes is what they
	// cost.
	inflight      ring[sentFrame]
	inflightBytes int64
	// replays are the connection's running replays by id (replay.go);
	// replayIDs numbers the ones the hub names.
	replays   map[string]*replay
	replayIDs uint64
}

type sentFrame struct {
	kind   frameKind
	origin time.Time
	buf    *[]byte
	cost   int64
}

// Why a client was closed as too slow, for the log.
const (
	limitFrames = "frames"
	limitBytes  = "bytes"
)

// heldLocked is what the hub holds for c, by frameCost. c.mu must be
// held.
func (c *client) heldLocked() int64 { return c.out.bytes() + c.inflightBytes }

// fitsLocked reports whether c may take a frame that adds cost bytes to
// what the hub holds for it. c.mu must be held.
func (c *client) fitsLocked(cost int64) bool {
	return c.heldLocked()+cost <= c.hub.cfg.MaxPendingBytes
}

// offer gives ev to the client if its filter wants it. It never blocks on
// the connection. It reports whether the client overflowed and was closed.
func (c *client) offer(ev *published) (tooSlow bool) {
	f := c.filter.Load()
	if f == nil || !f.match(ev) {
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return false
	}
	// A subscribe may have replaced the filter since the check above; the
	// events queued for the old one were dropped with it, and this one
	// must not slip in behind the subscribed frame unless it matches.
	if cur := c.filter.Load(); cur != f && !cur.match(ev) {
		return false
	}
	window := c.hub.cfg.SendWindow
	if c.out.len() == 0 && !c.loading && c.inflight.len() < window {
		// Keeping up: straight to melody, nothing queued.
		if !c.fitsLocked(frameCost(ev.body)) {
			c.closeTooSlowLocked(limitBytes)
			return true
		}
		c.send(kindEvent, ev.body, ev.origin)
		return false
	}
	if !ev.position && c.out.bounded() >= c.hub.cfg.MaxPending {
		c.closeTooSlowLocked(limitFrames)
		return true
	}
	if !c.fitsLocked(c.out.eventCost(ev)) {
		c.closeTooSlowLocked(limitBytes)
		return true
	}
	if c.out.pushEvent(ev) {
		c.hub.metrics.coalesced.Inc()
	}
	c.hub.noteHeld(c.heldLocked())
	c.pump()
	return false
}

// send hands one frame to melody. c.mu must be held, and the window must
// have room.
func (c *client) send(k frameKind, body []byte, origin time.Time) {
	c.seq++
	buf := getBuf(len(framePrefixes[k]) + 20 + len(body))
	*buf = appendFrame((*buf)[:0], k, c.seq, body)
	cost := frameCost(body)
	c.inflight.push(sentFrame{kind: k, origin: origin, buf: buf, cost: cost})
	c.inflightBytes += cost
	c.hub.noteHeld(c.heldLocked())
	if err := c.sess.Write(*buf); err != nil {
		// The connection is going; the disconnect handler cleans up.
		c.closed = true
	}
}

// pump releases queued frames while the window has room. c.mu must be
// held.
func (c *client) pump() {
	for !c.closed && c.inflight.len() < c.hub.cfg.SendWindow {
		p, ok := c.out.pop(c.loading)
		if !ok {
			return
		}
		var origin time.Time
		if p.ev != nil {
			origin = p.ev.origin
		}
		body := p.body
		if f := p.rf; f != nil {
			// A replay's frame gets its place in the replay as it leaves,
			// so that replay_seq has no gaps whatever a seek dropped.
			if f.kind == kindReplay {
				f.r.sent++
				f.r.queued--
				f.r.poke()
			}
			body = replayFrameBody(f.kind, f.r.id, f.r.sent, f.payload)
		}
		c.send(p.kind, body, origin)
	}
}

// sent is melody's report that the oldest in-flight frame was written.
func (c *client) sent() {
	c.mu.Lock()
	f, ok := c.inflight.pop()
	c.inflightBytes -= f.cost
	c.pump()
	// What was written frees room for the replays that wait for it.
	c.wakeWaitingLocked()
	c.mu.Unlock()
	if ok {
		c.hub.metrics.frameSent(f.kind, f.origin)
		putBuf(f.buf)
	}
}

// replyLocked queues a reply. c.mu must be held. It reports whether the
// client overflowed and was closed.
func (c *client) replyLocked(k frameKind, body []byte) (tooSlow bool) {
	if c.closed {
		return false
	}
	if c.out.bounded() >= c.hub.cfg.MaxPending {
		c.closeTooSlowLocked(limitFrames)
		return true
	}
	if !c.fitsLocked(frameCost(body)) {
		c.closeTooSlowLocked(limitBytes)
		return true
	}
	c.out.pushReply(k, body)
	c.hub.noteHeld(c.heldLocked())
	c.pump()
	return false
}

// handleMessage acts on one client message. melody calls it from the
// connection's read loop, one message at a time, so subscribes take
// effect in the order the client sent them.
func (c *client) handleMessage(msg []byte) {
	m, rerr := parseMessage(msg, c.hub.limits)
	switch {
	case m.replay != nil:
		c.startReplay(m.replay)
		return
	case m.control != nil:
		c.controlReplay(m.control)
		return
	}
	c.mu.Lock()
	var tooSlow bool
	if rerr != nil {
		// The subscription in force, and the replays, stay as they were.
		tooSlow = c.replyLocked(kindError, rerr.body())
	} else {
		tooSlow = c.subscribeLocked(m.subscribe)
	}
	c.mu.Unlock()
	if tooSlow {
		c.hub.remove(c)
	}
}

// subscribeLocked puts f in force. c.mu must be held.
func (c *client) subscribeLocked(f *filter) (tooSlow bool) {
	if c.closed {
		return false
	}
	c.gen++
	c.stopLoadLocked()
	c.filter.Store(f)
	// What is queued was chosen by the old filter, and a snapshot not yet
	// sent describes it: after the subscribed frame, everything the client
	// receives is for the new one.
	c.out.dropEvents()
	c.out.dropReplies(kindSnapshot)
	c.loading = f.admitsPositions()
	if c.replyLocked(kindSubscribed, subscribedBody(&f.spec)) {
		return true
	}
	if c.loading {
		// Load off the read loop: a slow query must not stall pongs or
		// the next subscribe, which cancels this load.
		ctx, cancel := context.WithTimeout(c.sess.Request.Context(), c.hub.cfg.SnapshotTimeout)
		c.cancelLoad = cancel
		go c.loadSnapshot(ctx, cancel, c.gen, f)
	}
	return false
}

func (c *client) loadSnapshot(ctx context.Context, cancel context.CancelFunc, gen uint64, f *filter) {
	defer cancel()
	body, err := c.hub.snapshot(ctx, c.caller, f)
	c.mu.Lock()
	if c.closed || c.gen != gen {
		c.mu.Unlock()
		return // replaced by a newer subscribe, or gone
	}
	c.loading = false
	c.cancelLoad = nil
	var tooSlow bool
	switch {
	case errors.Is(err, errCallerBusy):
		tooSlow = c.replyLocked(kindError, refuse("", "the snapshot did not start within %s: this token's "+
			"other connections are loading %d snapshots, the most one token may at once; live events follow; "+
			"subscribe again to retry", c.hub.cfg.SnapshotTimeout, c.hub.cfg.MaxSnapshotsPerCaller).body())
	case err != nil:
		c.hub.log.Warn("websocket snapshot failed", "err", err)
		tooSlow = c.replyLocked(kindError, refuse("",
			"the snapshot could not be loaded; live events follow; subscribe again to retry").body())
	default:
		tooSlow = c.replyLocked(kindSnapshot, body)
	}
	c.pump() // the events held while loading
	c.mu.Unlock()
	if tooSlow {
		c.hub.remove(c)
	}
}

func (c *client) stopLoadLocked() {
	if c.cancelLoad != nil {
		c.cancelLoad()
		c.cancelLoad = nil
	}
}

// closeTooSlowLocked closes a client whose outbox overflowed (limit says
// which limit it passed) with 1013 (try again later): the client should
// reconnect, and its new subscribe resynchronises it from a snapshot. The
// frames already handed to melody go out first. c.mu must be held.
func (c *client) closeTooSlowLocked(limit string) {
	c.closed = true
	c.stopLoadLocked()
	c.stopReplaysLocked()
	dropped := c.out.reset()
	c.hub.metrics.closedSlow.Inc()
	c.hub.metrics.dropped.Add(float64(dropped))
	c.hub.log.Info("closing a websocket client that cannot keep up",
		"remote", c.sess.Request.RemoteAddr, "limit", limit, "dropped_frames", dropped)
	_ = c.sess.CloseWithMsg(melody.FormatCloseMessage(melody.CloseTryAgainLater, "too slow"))
}

// shutdown stops the client taking frames; what is queued is dropped.
func (c *client) shutdown() {
	c.mu.Lock()
	c.closed = true
	c.stopLoadLocked()
	c.stopReplaysLocked()
	c.out.reset()
	c.mu.Unlock()
}

// bufPool recycles frame buffers: a frame is copied into melody's
// connection buffer when written, after which its buffer is free. Without
// the pool every frame to every client would be garbage.
var bufPool = sync.Pool{New: func() any { return new([]byte) }}

// maxPooledBuf keeps large buffers out of the pool: a small frame in
// flight may sit in a pooled buffer up to this size, beyond what its cost
// counts.
const maxPooledBuf = 16 << 10

func getBuf(size int) *[]byte {
	b := bufPool.Get().(*[]byte)
	if cap(*b) < size {
		*b = make([]byte, 0, size)
	}
	return b
}

func putBuf(b *[]byte) {
	if b != nil && cap(*b) <= maxPooledBuf {
		bufPool.Put(b)
	}
}
