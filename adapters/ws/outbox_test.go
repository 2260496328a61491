package ws

import (
	"encoding/json"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/tmsfleet/tms/domain/event"
)

func TestOutbox(t *testing.T) {
	t.Parallel()
	at := time.Date(2025, 3, 1, 8, 0, 0, 0, time.UTC)
	position := func(plate string, s int) *published {
		return &published{subject: plate, position: true, fixTime: at.Add(time.Duration(s) * time.Second),
			body: []byte(plate + "@" + at.Add(time.Duration(s)*time.Second).Format("05"))}
	}
	discrete := func(name string) *published { return &published{subject: "x", body: []byte(name)} }
	drain := func(o *outbox, hold bool) []string {
		var out []string
		for {
			p, ok := o.pop(hold)
			if !ok {
				return out
			}
			body := p.body
			if p.rf != nil {
				body = p.rf.payload
			}
			out = append(out, kindNames[p.kind]+":"+string(body))
		}
	}
	equal := func(t *testing.T, got, want []string) {
		t.Helper()
		if len(got) != len(want) {
			t.Fatalf("got %q, want %q", got, want)
		}
		for i := range got {
			if got[i] != want[i] {
				t.Fatalf("got %q, want %q", got, want)
			}
		}
	}

	t.Run("a newer position keeps the pending one's place", func(t *testing.T) {
		var o outbox
		coalesced := 0
		for _, ev := range []*published{
			position("A", 1), position("B", 1), discrete("entered"), position("A", 2), position("A", 0), position("C", 1), position("B", 3),
		} {
			if o.pushEvent(ev) {
				coalesced++
			}
		}
		if coalesced != 3 {
			t.Errorf("coalesced %d, want 3 (A@2 over A@1, A@0 lost to A@2, B@3 over B@1)", coalesced)
		}
		equal(t, drain(&o, false), []string{"event:A@02", "event:B@03", "event:entered", "event:C@01"})
		// Once sent, a vehicle's next position queues afresh, at the back.
		o.pushEvent(position("B", 4))
		o.pushEvent(position("A", 4))
		equal(t, drain(&o, false), []string{"event:B@04", "event:A@04"})
	})

	t.Run("replies go first, and events wait while held", func(t *testing.T) {
		var o outbox
		o.pushEvent(position("A", 1))
		o.pushEvent(discrete("d1"))
		o.pushReply(kindSubscribed, []byte("s"))
		equal(t, drain(&o, true), []string{"subscribed:s"})
		o.pushReply(kindSnapshot, []byte("snap"))
		if o.bounded() != 2 || o.len() != 3 {
			t.Errorf("bounded %d len %d, want 2 (d1, snap) and 3", o.bounded(), o.len())
		}
		equal(t, drain(&o, false), []string{"snapshot:snap", "event:A@01", "event:d1"})
		if o.bounded() != 0 || o.len() != 0 || len(o.pending) != 0 {
			t.Errorf("drained outbox holds %d/%d/%d", o.bounded(), o.len(), len(o.pending))
		}
	})

	t.Run("drop", func(t *testing.T) {
		var o outbox
		o.pushEvent(position("A", 1))
		o.pushEvent(discrete("d1"))
		o.pushReply(kindSnapshot, []byte("old"))
		o.pushReply(kindError, []byte("e"))
		if n := o.dropEvents(); n != 2 {
			t.Errorf("dropEvents %d, want 2", n)
		}
		if n := o.dropReplies(kindSnapshot); n != 1 {
			t.Errorf("dropReplies %d, want 1", n)
		}
		o.pushEvent(position("A", 2))
		equal(t, drain(&o, false), []string{"error:e", "event:A@02"})
	})
}

func TestRing(t *testing.T) {
	t.Parallel()
	var r ring[int]
	next := 0
	for round := range 50 {
		for i := range round % 13 {
			r.push(round*100 + i)
		}
		for range round % 7 {
			v, ok := r.pop()
			if !ok {
				break
			}
			if v < next {
				t.Fatalf("popped %d after %d", v, next)
			}
			next = v
		}
	}
	for r.len() > 0 {
		v, _ := r.pop()
		if v < next {
			t.Fatalf("popped %d after %d", v, next)
		}
		next = v
	}
	if _, ok := r.pop(); ok {
		t.Error("pop from an empty ring")
	}
}

func TestOutboxBytes(t *testing.T) {
	t.Parallel()
	at := time.Date(2025, 3, 1, 8, 0, 0, 0, time.UTC)
	ev := func(plate string, s int, body string, position bool) *published {
		return &published{subject: plate, position: position, fixTime: at.Add(time.Duration(s) * time.Second), body: []byte(body)}
	}
	var o outbox
	want := int64(0)
	check := func(step string) {
		t.Helper()
		if o.bytes() != want {
			t.Fatalf("%s: bytes %d, want %d", step, o.bytes(), want)
		}
	}
	push := func(e *published) {
		t.Helper()
		cost := o.eventCost(e)
		o.pushEvent(e)
		want += cost
	}
	push(ev("A", 1, "aaaa", true))
	want = frameCost([]byte("aaaa"))
	check("a position")
	push(ev("A", 2, "aaaaaaaa", true)) // replaces: grows by 4
	want = frameCost([]byte("aaaaaaaa"))
	check("a newer position of the same vehicle")
	push(ev("A", 0, "a", true)) // late: dropped, costs nothing
	check("a late position")
	push(ev("B", 1, "bb", true))
	push(ev("x", 1, "entered", false))
	o.pushReply(kindSubscribed, []byte("sub"))
	want += frameCost([]byte("sub"))
	check("a reply")
	o.pop(false)
	want -= frameCost([]byte("sub"))
	check("popped the reply")
	o.pop(false)
	want -= frameCost([]byte("aaaaaaaa"))
	check("popped A")
	o.pushReply(kindSnapshot, []byte("snap"))
	o.dropReplies(kindSnapshot)
	check("dropped the snapshot")
	o.dropEvents()
	want = 0
	check("dropped the events")
	push(ev("C", 1, "c", true))
	o.pushReply(kindError, []byte("e"))
	o.reset()
	want = 0
	check("reset")
}

// TestOutboxMemoryAccounting fills an outbox with positions of distinct
// plates, each its own event (as a flood is), and checks that the bytes
// the outbox counts cover the heap it takes: the byte limit is a memory
// limit. Not parallel, so that the heap it measures is its own.
func TestOutboxMemoryAccounting(t *testing.T) {
	const n = 100_000
	data := []byte(`{"vehicle":"","fix_time":"2025-03-01T08:00:00Z","received_at":"2025-03-01T08:00:01Z","lat":31.2,"lng":121.5,"speed_kmh":42.5,"course_deg":90,"flags":[]}`)
	before := heapInUse()
	var o outbox
	for i := range n {
		plate := fmt.Sprintf("沪A%07d", i)
		e := event.Envelope{SpecVersion: event.SpecVersion, ID: plate, Source: "/tms/ingest/g7", Type: event.TypePositionReported,
			Subject: plate, Time: time.Date(2025, 3, 1, 8, 0, 0, 0, time.UTC), DataContentType: event.ContentType, Data: data}
		raw, err := json.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		o.pushEvent(inspect(&e, raw, time.Time{}))
	}
	used := heapInUse() - before
	counted := o.bytes()
	t.Logf("%d positions: counted %d bytes (%d each), the heap grew by %d (%d each)", n, counted, counted/n, used, used/n)
	if used > counted {
		t.Errorf("the outbox takes %d bytes of heap and counts %d: frameOverhead (%d) is too small", used, counted, frameOverhead)
	}
	if o.len() != n {
		t.Fatalf("outbox holds %d, want %d", o.len(), n)
	}
}

func heapInUse() int64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapAlloc)
}
