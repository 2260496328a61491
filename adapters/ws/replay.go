package ws

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/tmsfleet/tms/projections/timeline"
)

// WindowSource finds what a replay of a trip or a job covers: its vehicle
// and its time window. timeline.JobWindows is the jobs'. Window must be
// safe for concurrent use, honour ctx, and return an error wrapping
// timeline.ErrNotFound for an id it does not know and
// timeline.ErrNotStarted for one with no history yet.
type WindowSource interface {
	Window(ctx context.Context, id string) (timeline.Query, error)
}

// replay is one replay of a connection: a goroutine (run) that reads the
// timeline a page at a time, paces its events in event time / speed, and
// queues them in the client's outbox when it has room. The client's
// message handler changes its state (pause, resume, seek, speed, stop)
// under the client's mutex and wakes it.
//
// Pacing: the replay maps event time to wall time through an anchor, the
// event time anchorAt at the wall time anchorWall; an event of time t is
// due at anchorWall + (t - anchorAt) / speed. The replay starts at its
// first event (anchored when it is read, so that a window beginning in a
// silence does not start with one), and a seek anchors it at the time
// sought. Pause, resume and speed anchor it anew at the position it has
// reached, so that nothing jumps.
type replay struct {
	id   string
	q    timeline.Query
	trip string
	job  string
	// cancel ends the replay's goroutine and its query in flight.
	cancel context.CancelFunc
	// wake tells the goroutine that its state changed or that the outbox
	// has room. Sends never block: one pending wake is enough.
	wake chan struct{}

	// The rest is guarded by the client's mutex.
	speed   float64
	paused  bool
	stopped bool // stopped by the client, or ended: nothing more may be queued
	// gen counts seeks: the goroutine reopens its reader at start when it
	// sees a new one, and drops what it read for the old.
	gen   uint64
	start time.Time
	// anchored: anchorAt and anchorWall hold.
	anchored   bool
	anchorAt   time.Time
	anchorWall time.Time
	// queued are the replay's events in the outbox; sent the ones that
	// have left it (the last replay_seq).
	queued int
	sent   uint64
	// waiting: the goroutine waits for room in the outbox.
	waiting bool
}

func (r *replay) poke() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// position is where the replay is in event time at now: the start until
// its first event, then the anchor moved on by the time since, times the
// speed (still, while paused), at most its end.
func (r *replay) position(now time.Time) time.Time {
	switch {
	case !r.anchored:
		return r.start
	case r.paused:
		return r.anchorAt
	}
	at := r.anchorAt.Add(time.Duration(float64(now.Sub(r.anchorWall)) * r.speed))
	if at.After(r.q.To) {
		return r.q.To
	}
	return at
}

// reanchor anchors the replay at the position it has reached at now.
func (r *replay) reanchor(now time.Time) {
	if r.anchored {
		r.anchorAt, r.anchorWall = r.position(now), now
	}
}

// due is when an event of time t is to be sent.
func (r *replay) due(t time.Time) time.Time {
	return r.anchorWall.Add(time.Duration(float64(t.Sub(r.anchorAt)) / r.speed))
}

// startReplay handles a replay message: it finds the window of a trip or
// a job, checks the limits, and starts the replay. It runs on the
// connection's read loop; the window lookup is one indexed query, bounded
// by ReplayQueryTimeout.
func (c *client) startReplay(req *replayRequest) {
	h := c.hub
	named := func(field, format string, args ...any) *requestError {
		e := refuse(field, format, args...)
		e.ReplayID = req.id
		return e
	}
	var rerr *requestError
	c.mu.Lock()
	switch {
	case h.cfg.History == nil:
		rerr = named("replay", "this server does not replay history")
	case len(c.replays) >= h.cfg.MaxReplaysPerConnection:
		h.metrics.replayRefused(replayLimitConnection)
		rerr = named("replay", "this connection has %d replays running, the most one connection may: stop one first",
			len(c.replays))
	case req.id != "" && c.replays[req.id] != nil:
		rerr = named("id", "this connection has a replay %s running already", req.id)
	}
	c.mu.Unlock()
	q := timeline.Query{Vehicle: req.vehicle, From: req.from, To: req.to}
	if rerr == nil && (req.trip != "" || req.job != "") {
		q, rerr = c.lookupWindow(req)
	}
	if rerr == nil {
		switch h.callers.startReplay(c.caller) {
		case replayLimitCaller:
			h.metrics.replayRefused(replayLimitCaller)
			rerr = named("replay", "this token has %d replays running, the most one token may: stop one first",
				h.cfg.MaxReplaysPerCaller)
		case replayLimitTotal:
			h.metrics.replayRefused(replayLimitTotal)
			rerr = named("replay", "the server is running %d replays, the most it runs at once: try again later",
				h.cfg.MaxReplays)
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if rerr != nil {
		if c.replyLocked(kindError, rerr.body()) {
			c.hub.remove(c)
		}
		return
	}
	if c.closed {
		h.callers.endReplay(c.caller)
		return
	}
	id := req.id
	for id == "" || c.replays[id] != nil {
		c.replayIDs++
		id = "r" + strconv.FormatUint(c.replayIDs, 10)
	}
	ctx, cancel := context.WithCancel(c.sess.Request.Context())
	r := &replay{id: id, q: q, trip: req.trip, job: req.job, cancel: cancel, wake: make(chan struct{}, 1),
		speed: req.speed, start: q.From}
	if c.replays == nil {
		c.replays = map[string]*replay{}
	}
	c.replays[id] = r
	h.metrics.replays.Inc()
	h.metrics.replaysStarted.Inc()
	if c.replyLocked(kindReplayStarted, replayStartedBody(r)) {
		c.hub.remove(c)
		return // closed: its replays are stopped
	}
	go c.runReplay(ctx, r)
}

// lookupWindow finds the window of the trip or job req names.
func (c *client) lookupWindow(req *replayRequest) (timeline.Query, *requestError) {
	h := c.hub
	what, id, src := "job", req.job, h.cfg.Jobs
	if req.trip != "" {
		what, id, src = "trip", req.trip, h.cfg.Trips
	}
	named := func(format string, args ...any) *requestError {
		e := refuse(what, format, args...)
		e.ReplayID = req.id
		return e
	}
	if src == nil {
		return timeline.Query{}, named("this server does not replay %ss", what)
	}
	ctx, cancel := context.WithTimeout(c.sess.Request.Context(), h.cfg.ReplayQueryTimeout)
	defer cancel()
	q, err := src.Window(ctx, id)
	switch {
	case errors.Is(err, timeline.ErrNotFound):
		return q, named("there is no %s %s", what, id)
	case errors.Is(err, timeline.ErrNotStarted):
		return q, named("%s %s has not started: it has no history to replay yet", what, id)
	case err != nil:
		h.log.Warn("websocket replay: window lookup failed", what, id, "err", err)
		return q, named("the %s could not be looked up; try again", what)
	}
	if rerr := checkWindow(what, q.From, q.To, h.cfg.MaxReplayRange); rerr != nil {
		rerr.ReplayID = req.id
		return q, rerr
	}
	return q, nil
}

// controlReplay handles pause, resume, seek, speed and stop. Each is
// answered in the replay's own line of frames, after the events it
// queued before: replay_state (replay_ended for stop). After it, every
// event of the replay follows the new state: a seek and a stop drop the
// replay's queued events first.
func (c *client) controlReplay(ctl *replayControl) {
	c.mu.Lock()
	defer c.mu.Unlock()
	r := c.replays[ctl.id]
	if r == nil {
		e := refuse(ctl.op, "no replay %s runs on this connection (it may have ended)", ctl.id)
		e.ReplayID = ctl.id
		if c.replyLocked(kindError, e.body()) {
			c.hub.remove(c)
		}
		return
	}
	now := time.Now()
	switch ctl.op {
	case opStop:
		c.finishReplayLocked(r, endStopped, "")
		return
	case opPause:
		r.reanchor(now)
		r.paused = true
	case opResume:
		if r.paused {
			r.paused = false
			r.anchorWall = now
		}
	case opSpeed:
		r.reanchor(now)
		r.speed = ctl.speed
	case opSeek:
		if ctl.to.Before(r.q.From) || !ctl.to.Before(r.q.To) {
			e := refuse("to", "must be within the replay's window, from %s to before %s",
				r.q.From.UTC().Format(time.RFC3339Nano), r.q.To.UTC().Format(time.RFC3339Nano))
			e.ReplayID = r.id
			if c.replyLocked(kindError, e.body()) {
				c.hub.remove(c)
			}
			return
		}
		r.gen++
		r.start = ctl.to
		r.anchored, r.anchorAt, r.anchorWall = true, ctl.to, now
		r.queued -= c.out.dropReplayEvents(r)
	}
	c.pushReplayControlLocked(r, kindReplayState, replayStateBody(r, r.position(now)))
	r.poke()
}

// pushReplayControlLocked queues a replay's state or end. c.mu must be
// held.
func (c *client) pushReplayControlLocked(r *replay, k frameKind, payload []byte) {
	if c.closed {
		return
	}
	if c.out.bounded() >= c.hub.cfg.MaxPending {
		c.closeTooSlowLocked(limitFrames)
		c.hub.remove(c)
		return
	}
	if !c.fitsLocked(replayFrameCost(payload)) {
		c.closeTooSlowLocked(limitBytes)
		c.hub.remove(c)
		return
	}
	c.out.pushReplay(replayFrame{r: r, kind: k, payload: payload})
	c.hub.noteHeld(c.heldLocked())
	c.pump()
}

// finishReplayLocked ends r: its queued events are dropped when it was
// stopped, and replay_ended follows what remains. c.mu must be held.
func (c *client) finishReplayLocked(r *replay, reason, detail string) {
	if r.stopped {
		return
	}
	r.stopped = true
	if reason == endStopped {
		r.queued -= c.out.dropReplayEvents(r)
	}
	c.forgetReplayLocked(r)
	c.pushReplayControlLocked(r, kindReplayEnded, replayEndedTail(reason, detail))
	r.cancel()
	r.poke()
}

// stopReplaysLocked stops every replay of a client that is going away.
// c.mu must be held.
func (c *client) stopReplaysLocked() {
	for _, r := range c.replays {
		r.stopped = true
		r.cancel()
		c.forgetReplayLocked(r)
	}
}

// forgetReplayLocked takes r, stopped, out of the client's replays and
// gives back its places under the limits: a client that sees its
// replay_ended may start another at once (its goroutine, if still in a
// query, ends with the query, which is cancelled). c.mu must be held.
func (c *client) forgetReplayLocked(r *replay) {
	delete(c.replays, r.id)
	c.hub.metrics.replays.Dec()
	c.hub.callers.endReplay(c.caller)
}

// replayRoomLocked reports whether r may queue an event that costs cost:
// it has fewer than SendWindow events queued, and what the hub holds for
// the client stays within half of MaxPendingBytes with it (the other half
// is the live feed's and the replies'). c.mu must be held.
func (c *client) replayRoomLocked(r *replay, cost int64) bool {
	return r.queued < c.hub.cfg.SendWindow && c.heldLocked()+cost <= c.hub.cfg.MaxPendingBytes/2
}

// wakeWaitingLocked wakes the replays that wait for room. c.mu must be
// held.
func (c *client) wakeWaitingLocked() {
	for _, r := range c.replays {
		if r.waiting {
			r.poke()
		}
	}
}

// runReplay is r's goroutine: it reads r's timeline one item ahead, waits
// until the item is due and the outbox has room, queues it, and so on to
// the end. It reads the next page of a stream only when it needs the next
// item, which is after the previous one was queued: a replay whose client
// falls behind is slowed down, never dropped, and never reads ahead.
func (c *client) runReplay(ctx context.Context, r *replay) {
	h := c.hub
	defer r.cancel()
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	var (
		rd   *timeline.Reader
		gen  = ^uint64(0)
		next *timeline.Item
		body []byte
	)
	// wait waits for d (0: for a wake only); false when the replay is
	// over.
	wait := func(d time.Duration) bool {
		var tick <-chan time.Time
		if d > 0 {
			timer.Reset(d)
			tick = timer.C
			defer timer.Stop()
		}
		select {
		case <-tick:
		case <-r.wake:
		case <-ctx.Done():
			return false
		}
		return true
	}
	for {
		c.mu.Lock()
		if r.stopped || c.closed {
			c.mu.Unlock()
			return
		}
		if r.gen != gen {
			gen = r.gen
			rd = timeline.NewReader(h.cfg.History, timeline.Query{Vehicle: r.q.Vehicle, From: r.start, To: r.q.To}, h.cfg.ReplayPageRows)
			next = nil
		}
		paused := r.paused
		c.mu.Unlock()
		if paused {
			if !wait(0) {
				return
			}
			continue
		}
		if next == nil {
			item, b, err := c.readNext(ctx, rd)
			if ctx.Err() != nil {
				return
			}
			if err != nil {
				reason, detail := endCompleted, ""
				if !errors.Is(err, io.EOF) {
					h.log.Warn("websocket replay failed", "vehicle", r.q.Vehicle, "err", err)
					reason, detail = endFailed, "the history could not be read; start the replay again, or seek, to retry"
				}
				c.mu.Lock()
				done := r.gen == gen // a seek meanwhile starts over instead
				if done {
					c.finishReplayLocked(r, reason, detail)
				}
				c.mu.Unlock()
				if done {
					return
				}
				continue
			}
			next, body = &item, b
		}
		c.mu.Lock()
		if r.gen != gen || r.stopped || r.paused {
			c.mu.Unlock()
			continue
		}
		now := time.Now()
		if !r.anchored {
			r.anchored, r.anchorAt, r.anchorWall = true, next.Time(), now
		}
		d := r.due(next.Time()).Sub(now)
		if d <= 0 {
			if r.waiting = !c.replayRoomLocked(r, replayFrameCost(body)); !r.waiting {
				r.queued++
				c.out.pushReplay(replayFrame{r: r, kind: kindReplay, payload: body})
				c.hub.noteHeld(c.heldLocked())
				c.pump()
				next, body = nil, nil
				c.mu.Unlock()
				continue
			}
		}
		c.mu.Unlock()
		if !wait(max(d, 0)) {
			return
		}
	}
}

// readNext reads r's next item and encodes its envelope, within
// ReplayQueryTimeout.
func (c *client) readNext(ctx context.Context, rd *timeline.Reader) (timeline.Item, []byte, error) {
	qctx, cancel := context.WithTimeout(ctx, c.hub.cfg.ReplayQueryTimeout)
	defer cancel()
	item, err := rd.Next(qctx)
	if err != nil {
		return item, nil, err
	}
	b, err := json.Marshal(item.Event)
	if err != nil {
		return item, nil, fmt.Errorf("encode %s: %w", item.Event.ID, err)
	}
	if !utf8.Valid(b) {
		// A text frame must be UTF-8, or browsers fail the connection.
		return item, nil, fmt.Errorf("event %s is not valid UTF-8", item.Event.ID)
	}
	return item, b, nil
}
