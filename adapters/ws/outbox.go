package ws

// outbox holds what a client is owed but has not yet been handed to
// melody. It is what keeps a slow client's memory bounded:
//
//   - Positions coalesce: a vehicle has at most one pending position. A
//     newer fix replaces the pending one in place, keeping its place in
//     line, so a chatty vehicle cannot push the others back and nothing
//     waits longer than one pass over the pending vehicles. An older fix
//     (a late one) arriving while a newer is pending is dropped. Either
//     way the client receives the vehicle's latest fix, not every one.
//   - Other events are discrete (each one matters: a station entered, an
//     alert): each takes its own place in the same line, in arrival order.
//     (A replaced position keeps its earlier place, so a vehicle's newest
//     fix can overtake a discrete event that happened before it; every
//     frame carries its own time.) They are bounded, together with the
//     replies, by the client's frame limit; past it the client is closed.
//   - Replies (subscribed, snapshot, error, replay_started) go before any
//     event, so that a snapshot overtakes the events that arrived while it
//     was loading.
//   - Replays' frames (replay, replay_state, replay_ended) wait in a line
//     of their own, in the order each replay made them, and take turns
//     with the events: neither the live feed nor a replay can hold the
//     other back. A replay never queues more than SendWindow events, and
//     waits for room rather than overflowing (see replay.go); its control
//     frames count against the frame limit as replies do.
//   - Every queued frame, coalesced positions included, counts its bytes
//     (frameCost) against the client's byte limit: coalescing bounds the
//     frames of a fleet that keeps reporting, not those of a flood of
//     distinct plates, each of which takes a place of its own.
//
// The outbox is not safe for concurrent use; its client's mutex guards it.
type outbox struct {
	replies ring[reply]
	events  ring[*slot]
	// pending finds a vehicle's queued position, to replace it. It is the
	// one structure keyed by plate; the byte limit bounds it.
	pending map[string]*slot
	// discrete counts the queued events that are not positions.
	discrete int
	// replays are the replays' frames, in order; replayControls counts
	// those that are not replayed events.
	replays        ring[replayFrame]
	replayControls int
	// replyBytes, eventBytes and replayBytes are what the queued frames
	// cost.
	replyBytes, eventBytes, replayBytes int64
	// replayTurn: the next frame after the replies is a replay's, if any.
	replayTurn bool
}

// replayFrame is a replay's frame in the outbox: a replayed event (its
// envelope's JSON), a state or the end. The body of an event or an end is
// made when it leaves, which is when it gets its replay_seq.
type replayFrame struct {
	r       *replay
	kind    frameKind
	payload []byte
	cost    int64
}

// replayFrameCost is what a replay's frame with payload costs: the
// payload and what its body adds (the id and the replay_seq).
func replayFrameCost(payload []byte) int64 { return frameCost(payload) + 96 }

// frameOverhead is what a queued frame costs beyond its body: its slot
// and place in line, its pending-map entry keyed by the plate, and the
// published event's own fields (shared by the clients that queue it, so
// counting it for each overstates). TestOutboxMemoryAccounting checks
// that the bytes counted cover the heap a flood of distinct plates takes.
const frameOverhead = 320

// frameCost is what a frame with body counts against a client's byte
// limit, queued or in flight.
func frameCost(body []byte) int64 { return int64(len(body)) + frameOverhead }

// shrinkAbove is the ring capacity past which an outbox that empties
// gives its buffers back, so that one burst does not pin its peak size.
const shrinkAbove = 1024

// slot is a place in the event line; a position's is reused when a newer
// fix of the same vehicle replaces it.
type slot struct{ ev *published }

type reply struct {
	kind frameKind
	body []byte
}

// bounded is the number of frames counted against the client's frame
// limit.
func (o *outbox) bounded() int { return o.replies.len() + o.discrete + o.replayControls }

// len is the number of frames queued.
func (o *outbox) len() int { return o.replies.len() + o.events.len() + o.replays.len() }

// bytes is what the queued frames cost, by frameCost.
func (o *outbox) bytes() int64 { return o.replyBytes + o.eventBytes + o.replayBytes }

// pushReplay queues a replay's frame.
func (o *outbox) pushReplay(f replayFrame) {
	f.cost = replayFrameCost(f.payload)
	o.replays.push(f)
	o.replayBytes += f.cost
	if f.kind != kindReplay {
		o.replayControls++
	}
}

// dropReplayEvents forgets r's queued events (not its states) and
// returns how many there were.
func (o *outbox) dropReplayEvents(r *replay) int {
	n := 0
	kept := ring[replayFrame]{}
	for {
		f, ok := o.replays.pop()
		if !ok {
			break
		}
		if f.r == r && f.kind == kindReplay {
			n++
			o.replayBytes -= f.cost
			continue
		}
		kept.push(f)
	}
	o.replays = kept
	return n
}

// popReplay takes the next replay frame.
func (o *outbox) popReplay() (replayFrame, bool) {
	f, ok := o.replays.pop()
	if !ok {
		return f, false
	}
	o.replayBytes -= f.cost
	if f.kind != kindReplay {
		o.replayControls--
	}
	if o.replays.len() == 0 && o.replays.capacity() > shrinkAbove {
		o.replays = ring[replayFrame]{}
	}
	return f, true
}

// pushReply queues a reply.
func (o *outbox) pushReply(k frameKind, body []byte) {
	o.replies.push(reply{k, body})
	o.replyBytes += frameCost(body)
}

// eventCost is by how much pushEvent(ev) would grow the queued bytes.
func (o *outbox) eventCost(ev *published) int64 {
	if ev.position {
		if s, ok := o.pending[ev.subject]; ok {
			if ev.fixTime.Before(s.ev.fixTime) {
				return 0
			}
			return int64(len(ev.body) - len(s.ev.body))
		}
	}
	return frameCost(ev.body)
}

// pushEvent queues ev and reports whether it coalesced with (replaced, or
// was dropped in favour of) a pending position of the same vehicle.
func (o *outbox) pushEvent(ev *published) (coalesced bool) {
	o.eventBytes += o.eventCost(ev)
	if !ev.position {
		o.discrete++
		o.events.push(&slot{ev})
		return false
	}
	if s, ok := o.pending[ev.subject]; ok {
		if !ev.fixTime.Before(s.ev.fixTime) {
			s.ev = ev
		}
		return true
	}
	if o.pending == nil {
		o.pending = make(map[string]*slot)
	}
	s := &slot{ev}
	o.pending[ev.subject] = s
	o.events.push(s)
	return false
}

// popped is a frame taken from the outbox: a reply, an event (ev), or a
// replay's frame (rf, whose body its client makes).
type popped struct {
	kind frameKind
	body []byte
	ev   *published
	rf   *replayFrame
}

// pop takes the next frame: a reply if any, else an event (unless events
// are held, while a snapshot loads) or a replay's frame, in turns.
func (o *outbox) pop(holdEvents bool) (popped, bool) {
	if r, ok := o.replies.pop(); ok {
		o.replyBytes -= frameCost(r.body)
		return popped{kind: r.kind, body: r.body}, true
	}
	events := !holdEvents && o.events.len() > 0
	if o.replays.len() > 0 && (o.replayTurn || !events) {
		o.replayTurn = false
		f, _ := o.popReplay()
		return popped{kind: f.kind, rf: &f}, true
	}
	o.replayTurn = true
	if !events {
		return popped{}, false
	}
	s, _ := o.events.pop()
	o.eventBytes -= frameCost(s.ev.body)
	if s.ev.position {
		delete(o.pending, s.ev.subject)
	} else {
		o.discrete--
	}
	if o.events.len() == 0 && o.events.capacity() > shrinkAbove {
		o.releaseEvents()
	}
	return popped{kind: kindEvent, body: s.ev.body, ev: s.ev}, true
}

// releaseEvents empties the event line and gives its memory back.
func (o *outbox) releaseEvents() {
	o.events = ring[*slot]{}
	o.pending = nil // a map does not shrink; a new one starts small
	o.discrete = 0
	o.eventBytes = 0
}

// dropEvents forgets the queued events and returns how many there were.
func (o *outbox) dropEvents() int {
	n := o.events.len()
	o.releaseEvents()
	return n
}

// dropReplies forgets the queued replies of kind k and returns how many
// there were.
func (o *outbox) dropReplies(k frameKind) int {
	n := 0
	kept := ring[reply]{}
	for {
		r, ok := o.replies.pop()
		if !ok {
			break
		}
		if r.kind == k {
			n++
			o.replyBytes -= frameCost(r.body)
			continue
		}
		kept.push(r)
	}
	o.replies = kept
	return n
}

// reset forgets everything and returns how many frames there were.
func (o *outbox) reset() int {
	n := o.replies.len() + o.dropEvents() + o.replays.len()
	o.replies = ring[reply]{}
	o.replyBytes = 0
	o.replays = ring[replayFrame]{}
	o.replayBytes, o.replayControls = 0, 0
	return n
}

// ring is a FIFO queue on a growable circular buffer: no allocation per
// element once it has grown to its working size.
type ring[T any] struct {
	buf  []T
	head int
	n    int
}

func (r *ring[T]) len() int { return r.n }

func (r *ring[T]) capacity() int { return len(r.buf) }

func (r *ring[T]) push(v T) {
	if r.n == len(r.buf) {
		grown := make([]T, max(8, 2*len(r.buf)))
		for i := range r.n {
			grown[i] = r.buf[(r.head+i)%len(r.buf)]
		}
		r.buf, r.head = grown, 0
	}
	r.buf[(r.head+r.n)%len(r.buf)] = v
	r.n++
}

func (r *ring[T]) pop() (T, bool) {
	var zero T
	if r.n == 0 {
		return zero, false
	}
	v := r.buf[r.head]
	r.buf[r.head] = zero // let the collector have it
	r.head = (r.head + 1) % len(r.buf)
	r.n--
	return v, true
}
