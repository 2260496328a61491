package ws_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/tmsfleet/tms/adapters/ws"
	"github.com/tmsfleet/tms/domain/event"
	"github.com/tmsfleet/tms/domain/g7event"
	"github.com/tmsfleet/tms/projections/vehicles"
)

func TestSubscribeSnapshotThenLive(t *testing.T) {
	t.Parallel()
	course := 270.0
	snap := &fakeSnapshot{table: []vehicles.Vehicle{
		{Plate: "沪A12345", FixTime: t0, ReceivedAt: t0.Add(time.Second), Lat: 31.2, Lng: 121.5, SpeedKmh: 30, CourseDeg: &course},
		{Plate: "沪B00001", FixTime: t0, ReceivedAt: t0.Add(time.Second), Lat: 31.3, Lng: 121.6, Flags: []string{"interpolated"}},
		{Plate: "京C99999", FixTime: t0, ReceivedAt: t0.Add(time.Second), Lat: 39.9, Lng: 116.4},
	}}
	h := newHarness(t, ws.Config{Snapshot: snap})
	c := h.dial(t)

	sub, snapshot := c.subscribe(`{"vehicles": ["沪a12345", " 沪B00001", "沪A12345"]}`, true)
	if want := []string{"沪A12345", "沪B00001"}; !slices.Equal(sub.Filter.Vehicles, want) {
		t.Errorf("subscribed filter vehicles %q, want normalised and deduplicated %q", sub.Filter.Vehicles, want)
	}
	if sub.Filter.BBox != nil || sub.Filter.Types != nil || sub.Filter.Stations != nil {
		t.Errorf("subscribed filter %+v has filters the client did not give", sub.Filter)
	}
	if len(snapshot.Vehicles) != 2 {
		t.Fatalf("snapshot %+v, want 沪A12345 and 沪B00001", snapshot.Vehicles)
	}
	a, b := snapshot.Vehicles[0], snapshot.Vehicles[1]
	if a.Plate != "沪A12345" || a.Lat != 31.2 || a.Lng != 121.5 || a.SpeedKmh != 30 || a.CourseDeg == nil || *a.CourseDeg != 270 ||
		!a.FixTime.Equal(t0) || !a.ReceivedAt.Equal(t0.Add(time.Second)) || a.Flags == nil {
		t.Errorf("snapshot vehicle %+v does not carry the read model's row", a)
	}
	if b.Plate != "沪B00001" || b.CourseDeg != nil || !slices.Equal(b.Flags, []string{"interpolated"}) {
		t.Errorf("snapshot vehicle %+v does not carry the read model's row", b)
	}

	// Live: the unwanted vehicle's event is skipped, the wanted ones follow
	// in order, positions and discrete events alike.
	skipped := pos(t, "京C99999", t0.Add(time.Minute), 39.9, 116.4)
	moved := pos(t, "沪A12345", t0.Add(time.Minute), 31.21, 121.51)
	entered := geofenceEvent(t, event.TypeEnteredStation, "沪B00001", "S001", t0.Add(time.Minute), 31.3, 121.6)
	for _, e := range []event.Envelope{skipped, moved, entered} {
		h.hub.Publish(e)
	}
	for _, want := range []event.Envelope{moved, entered} {
		f := c.nextOf(ws.FrameEvent)
		if f.Event.ID != want.ID || f.Event.Type != want.Type || f.Event.Subject != want.Subject ||
			!f.Event.Time.Equal(want.Time) || !jsonEqual(t, f.Event.Data, want.Data) {
			t.Errorf("event frame %+v, want %+v", f.Event, want)
		}
	}
	if c.seq != 4 {
		t.Errorf("seq %d after subscribed, snapshot and two events, want 4", c.seq)
	}
	// melody reports a frame written before it writes the next, so once
	// a third event has arrived the first two are counted.
	h.hub.Publish(pos(t, "沪A12345", t0.Add(2*time.Minute), 31.22, 121.52))
	c.nextOf(ws.FrameEvent)
	for name, atLeast := range map[string]float64{
		"tms_ws_events_published_total":           4,
		"tms_ws_frames_sent_total{type=event}":    2,
		"tms_ws_frames_sent_total{type=snapshot}": 1,
		"tms_ws_push_latency_seconds":             2,
		"tms_ws_clients":                          1,
	} {
		if got := h.metric(t, name); got < atLeast {
			t.Errorf("%s %v, want at least %v", name, got, atLeast)
		}
	}
}

func jsonEqual(t *testing.T, a, b json.RawMessage) bool {
	t.Helper()
	var x, y any
	if err := json.Unmarshal(a, &x); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &y); err != nil {
		t.Fatal(err)
	}
	ja, _ := json.Marshal(x)
	jb, _ := json.Marshal(y)
	return string(ja) == string(jb)
}

func TestFilters(t *testing.T) {
	t.Parallel()
	h := newHarness(t, ws.Config{})
	at := t0.Add(time.Hour)
	type published struct {
		e    event.Envelope
		want bool
	}
	// In each case the last event is wanted, so an unwanted one that
	// slipped through would show up before it.
	cases := []struct {
		name      string
		subscribe string
		snapshot  bool
		events    []published
	}{{
		name:      "vehicles",
		subscribe: `{"vehicles": ["沪A00001", "沪a00002"]}`,
		snapshot:  true,
		events: []published{
			{pos(t, "沪A00009", at, 31, 121), false},
			{pos(t, "沪A00001", at, 31, 121), true},
			{geofenceEvent(t, event.TypeExitedStation, "沪A00002", "S1", at, 31, 121), true},
			{stationEvent(t, "S1", at), false},
			{jobEvent(t, "沪A00002", "J1", at), true},
		},
	}, {
		name:      "bbox",
		subscribe: `{"bbox": [121, 31, 122, 32]}`,
		snapshot:  true,
		events: []published{
			{pos(t, "沪A00001", at, 31.5, 121.5), true},
			{pos(t, "沪A00002", at, 32.5, 121.5), false},
			{pos(t, "沪A00003", at, 31.5, 120.9), false},
			{geofenceEvent(t, event.TypeEnteredStation, "沪A00004", "S1", at, 30, 121.5), false},
			{jobEvent(t, "沪A00005", "J1", at), true}, // no coordinates: passes
			{pos(t, "沪A00006", at, 32, 122), true},   // on the edge
		},
	}, {
		name:      "bbox across the antimeridian",
		subscribe: `{"bbox": [170, -50, -170, -30]}`,
		snapshot:  true,
		events: []published{
			{pos(t, "ZK0001", at, -40, 175), true},
			{pos(t, "ZK0002", at, -40, 0), false},
			{pos(t, "ZK0003", at, -40, -175), true},
			{pos(t, "ZK0004", at, -40, 169.9), false},
			{pos(t, "ZK0005", at, -40, -169.9), false},
			{pos(t, "ZK0006", at, -29.9, 180), false},
			{pos(t, "ZK0007", at, -30, 180), true},
			{pos(t, "ZK0008", at, -50, -180), true},
		},
	}, {
		name:      "types",
		subscribe: `{"types": ["tms.vehicle.entered_station.v1", "tms.job.created.v1"]}`,
		events: []published{
			{pos(t, "沪A00001", at, 31, 121), false},
			{geofenceEvent(t, event.TypeEnteredStation, "沪A00001", "S1", at, 31, 121), true},
			{geofenceEvent(t, event.TypeExitedStation, "沪A00001", "S1", at, 31, 121), false},
			{jobEvent(t, "沪A00001", "J1", at), true},
		},
	}, {
		// G7's reports: the types filter selects them, and a bbox places
		// them at their start; every report comes, a repeat included.
		name:      "G7 events",
		subscribe: `{"types": ["tms.g7.event.reported.v1"], "bbox": [121, 31, 122, 32]}`,
		events: []published{
			{pos(t, "沪A00001", at, 31.5, 121.5), false},
			{g7Event(t, "沪A00001", g7event.KindStop, at, 35, 121.5), false},
			{g7Event(t, "沪A00001", g7event.KindStop, at, 31.5, 121.5), true},
			{g7Event(t, "沪A00001", g7event.KindStop, at, 31.5, 121.5), true},
			{jobEvent(t, "沪A00001", "J1", at), false},
			{g7Event(t, "沪A00001", g7event.KindEMS, at, 31.5, 121.5), true},
		},
	}, {
		name:      "stations",
		subscribe: `{"stations": ["S1"]}`,
		events: []published{
			{pos(t, "沪A00001", at, 31, 121), false},
			{geofenceEvent(t, event.TypeEnteredStation, "沪A00001", "S1", at, 31, 121), true},
			{geofenceEvent(t, event.TypeEnteredStation, "沪A00001", "S2", at, 31, 121), false},
			{stationEvent(t, "S2", at), false},
			{stationEvent(t, "S1", at), true},
		},
	}, {
		name:      "all filters together",
		subscribe: `{"vehicles": ["沪A00001"], "bbox": [121, 31, 122, 32], "types": ["tms.position.reported.v1"]}`,
		snapshot:  true,
		events: []published{
			{pos(t, "沪A00002", at, 31.5, 121.5), false},
			{pos(t, "沪A00001", at, 35, 121.5), false},
			{geofenceEvent(t, event.TypeEnteredStation, "沪A00001", "S1", at, 31.5, 121.5), false},
			{pos(t, "沪A00001", at.Add(time.Second), 31.5, 121.5), true},
		},
	}, {
		name:      "everything",
		subscribe: `{}`,
		snapshot:  true,
		events: []published{
			{pos(t, "沪A00001", at, 31.5, 121.5), true},
			{stationEvent(t, "S1", at), true},
			{jobEvent(t, "沪A00005", "J1", at), true},
		},
	}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			// Not parallel: events are published to the whole hub, and each
			// case's client must see only its own case's.
			c := h.dial(t)
			c.subscribe(tc.subscribe, tc.snapshot)
			var want []string
			for _, p := range tc.events {
				h.hub.Publish(p.e)
				if p.want {
					want = append(want, p.e.ID)
				}
			}
			var got []string
			for range want {
				got = append(got, c.nextOf(ws.FrameEvent).Event.ID)
			}
			if !slices.Equal(got, want) {
				t.Errorf("received events %v, want %v", got, want)
			}
			_ = c.conn.Close()
		})
	}
}

func TestInvalidSubscribeKeepsOldFilter(t *testing.T) {
	t.Parallel()
	h := newHarness(t, ws.Config{})
	c := h.dial(t)
	c.subscribe(`{"vehicles": ["沪A12345"], "types": ["tms.position.reported.v1"]}`, true)

	for _, tc := range []struct{ msg, field string }{
		{`{"subscribe": {"bbox": [121, 31, 122]}}`, "bbox"},
		{`{"subscribe": {"bbox": [121, 31, 122, "32"]}}`, "bbox"},
		{`{"subscribe": {"bbox": [121, 31, 122, 91]}}`, "bbox"},
		{`{"subscribe": {"bbox": [121, 32, 122, 31]}}`, "bbox"},
		{`{"subscribe": {"bbox": [-181, 31, 122, 32]}}`, "bbox"},
		{`{"subscribe": {"vehicles": ["沪A 12345"]}}`, "vehicles"},
		{`{"subscribe": {"vehicles": []}}`, "vehicles"},
		{`{"subscribe": {"vehicles": "沪A12345"}}`, "vehicles"},
		{`{"subscribe": {"types": ["positions"]}}`, "types"},
		{`{"subscribe": {"stations": [""]}}`, "stations"},
		{`{"subscribe": {"vehicle": ["沪A12345"]}}`, "vehicle"},
		{`{"subscribe": [1]}`, "subscribe"},
		{`{"subscribe": {}, "extra": 1}`, ""},
		{`{"unsubscribe": {}}`, ""},
		{`not json`, ""},
	} {
		c.send(tc.msg)
		f := c.nextOf(ws.FrameError)
		if f.Field != tc.field || f.Detail == "" {
			t.Errorf("%s: error frame field %q detail %q, want field %q and a detail", tc.msg, f.Field, f.Detail, tc.field)
		}
	}
	if err := c.conn.WriteMessage(websocket.BinaryMessage, []byte{1}); err != nil {
		t.Fatal(err)
	}
	if f := c.nextOf(ws.FrameError); f.Detail == "" {
		t.Errorf("binary message: error frame without detail")
	}

	// The first subscription is still in force.
	other := pos(t, "沪B99999", t0, 31, 121)
	mine := pos(t, "沪A12345", t0, 31, 121)
	h.hub.Publish(other)
	h.hub.Publish(mine)
	if f := c.nextOf(ws.FrameEvent); f.Event.ID != mine.ID {
		t.Errorf("after refused subscribes got %s of %s, want the old filter's %s", f.Event.Type, f.Event.Subject, mine.Subject)
	}
}

// TestSnapshotLoadHoldsEvents checks that events published while a
// snapshot loads are kept for the client (coalesced) and follow the
// snapshot, and that a subscribe replacing one whose snapshot is still
// loading discards that snapshot.
func TestSnapshotLoadHoldsEvents(t *testing.T) {
	t.Parallel()
	snap := &fakeSnapshot{
		table: []vehicles.Vehicle{{Plate: "沪A00001", FixTime: t0, ReceivedAt: t0, Lat: 31, Lng: 121}},
		calls: make(chan vehicles.ListQuery, 1),
		gate:  make(chan struct{}),
	}
	h := newHarness(t, ws.Config{Snapshot: snap})

	t.Run("events during the load follow the snapshot", func(t *testing.T) {
		c := h.dial(t)
		c.send(`{"subscribe": {}}`)
		c.nextOf(ws.FrameSubscribed)
		<-snap.calls // the load has started: events are held from here

		a1 := pos(t, "沪A00001", t0.Add(1*time.Second), 31, 121)
		b := geofenceEvent(t, event.TypeEnteredStation, "沪A00001", "S1", t0.Add(2*time.Second), 31, 121)
		a2 := pos(t, "沪A00001", t0.Add(3*time.Second), 31.1, 121.1)
		late := pos(t, "沪A00001", t0.Add(500*time.Millisecond), 31, 121) // older than a2: dropped
		c2 := pos(t, "沪C00003", t0.Add(4*time.Second), 31, 121)
		for _, e := range []event.Envelope{a1, b, a2, late, c2} {
			h.hub.Publish(e)
		}
		snap.gate <- struct{}{}

		if s := c.nextOf(ws.FrameSnapshot); len(s.Vehicles) != 1 {
			t.Errorf("snapshot %+v, want one vehicle", s.Vehicles)
		}
		// a2 took a1's place in line; the late fix lost to a2.
		for _, want := range []event.Envelope{a2, b, c2} {
			if f := c.nextOf(ws.FrameEvent); f.Event.ID != want.ID {
				t.Errorf("got %s %s at %s, want %s %s at %s", f.Event.Type, f.Event.Subject, f.Event.Time,
					want.Type, want.Subject, want.Time)
			}
		}
		if got := h.metric(t, "tms_ws_frames_coalesced_total"); got != 2 {
			t.Errorf("tms_ws_frames_coalesced_total %v, want 2", got)
		}
	})

	t.Run("a new subscribe discards the loading snapshot", func(t *testing.T) {
		c := h.dial(t)
		c.send(`{"subscribe": {"vehicles": ["沪A00001"]}}`)
		c.nextOf(ws.FrameSubscribed)
		<-snap.calls
		h.hub.Publish(pos(t, "沪A00001", t0.Add(time.Minute), 31, 121)) // held for the old filter, then dropped
		// The new filter admits no positions: no snapshot, nothing held.
		sub, _ := c.subscribe(`{"types": ["tms.vehicle.entered_station.v1"]}`, false)
		if !slices.Equal(sub.Filter.Types, []string{event.TypeEnteredStation}) {
			t.Errorf("subscribed filter %+v", sub.Filter)
		}
		want := geofenceEvent(t, event.TypeEnteredStation, "沪A00001", "S1", t0.Add(time.Minute), 31, 121)
		h.hub.Publish(want)
		if f := c.nextOf(ws.FrameEvent); f.Event.ID != want.ID {
			t.Errorf("got %s, want the new filter's %s", f.Event.Type, want.Type)
		}
	})

	t.Run("a failed snapshot is an error frame and events follow", func(t *testing.T) {
		h := newHarness(t, ws.Config{Snapshot: &fakeSnapshot{err: errors.New("database down")}})
		c := h.dial(t)
		c.send(`{"subscribe": {}}`)
		c.nextOf(ws.FrameSubscribed)
		if f := c.nextOf(ws.FrameError); f.Field != "" || f.Detail == "" {
			t.Errorf("error frame %+v, want a detail and no field", f)
		}
		want := pos(t, "沪A00001", t0, 31, 121)
		h.hub.Publish(want)
		if f := c.nextOf(ws.FrameEvent); f.Event.ID != want.ID {
			t.Errorf("got %+v, want the live event", f.Event)
		}
	})
}

// TestSlowClient stalls one client (it stops reading) while a fast one
// on the same hub reads along. The fast client must receive every event,
// in order, while the slow one is stalled; the slow one, once it reads
// again, must receive each vehicle's latest position rather than every
// one, in order and with gapless seq.
func TestSlowClient(t *testing.T) {
	t.Parallel()
	h := newHarness(t, ws.Config{WriteTimeout: 5 * time.Minute}, smallSocketBuffers())
	slow := h.dial(t, smallReadBuffer())
	fast := h.dial(t)
	slow.subscribe(`{}`, true)
	fast.subscribe(`{}`, true)

	// The fast client reads in its own goroutine and hands frames over,
	// so that the publisher can go in lockstep with it: it never falls
	// behind, so it must get every event.
	fastFrames := make(chan frame)
	fastErr := make(chan error, 1)
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		for {
			f, err := fast.read()
			if err != nil {
				fastErr <- err
				return
			}
			select {
			case fastFrames <- f:
			case <-stop:
				return
			}
		}
	}()

	const nVehicles, rounds = 10, 200
	plate := func(v int) string { return fmt.Sprintf("沪A%05d", v) }
	fixOf := func(r int) time.Time { return t0.Add(time.Duration(r) * time.Second) }
	for r := range rounds {
		for v := range nVehicles {
			e := pos(t, plate(v), fixOf(r), 31+float64(r)/1000, 121+float64(v)/100)
			h.hub.Publish(e)
			select {
			case f := <-fastFrames:
				if f.Type != ws.FrameEvent || f.Event.ID != e.ID {
					t.Fatalf("fast client got %+v, want event %s", f, e.ID)
				}
			case err := <-fastErr:
				t.Fatalf("fast client: %v", err)
			}
		}
	}
	total := nVehicles * rounds
	if got := h.metric(t, "tms_ws_frames_coalesced_total"); got == 0 {
		t.Fatalf("no frames coalesced: the slow client never fell behind (kernel buffers larger than %d events?)", total)
	}

	// The slow client reads again: it must end at each vehicle's last fix,
	// having skipped most of the ones in between.
	last := map[string]time.Time{}
	frames := 0
	for done := 0; done < nVehicles; {
		p, fix := plateAndFix(t, slow.nextOf(ws.FrameEvent))
		frames++
		if prev, ok := last[p]; ok && !fix.After(prev) {
			t.Fatalf("slow client got %s at %s after %s: positions out of order", p, fix, prev)
		}
		last[p] = fix
		if fix.Equal(fixOf(rounds - 1)) {
			done++
		}
	}
	if frames > total/2 {
		t.Errorf("slow client received %d of %d positions: it should get the latest, not every one", frames, total)
	}
	t.Logf("slow client: %d position frames for %d published; coalesced %v",
		frames, total, h.metric(t, "tms_ws_frames_coalesced_total"))

	// Nothing is left over for it, and it is still connected and live.
	final := pos(t, plate(0), fixOf(rounds), 31, 121)
	h.hub.Publish(final)
	if f := slow.nextOf(ws.FrameEvent); f.Event.ID != final.ID {
		t.Errorf("after catching up the slow client got %s at %s, want the newest event", f.Event.Subject, f.Event.Time)
	}
}

func TestDiscreteOverflowClosesTooSlow(t *testing.T) {
	t.Parallel()
	h := newHarness(t, ws.Config{MaxPending: 16, WriteTimeout: 5 * time.Minute}, smallSocketBuffers())
	c := h.dial(t, smallReadBuffer())
	c.subscribe(`{"types": ["tms.vehicle.entered_station.v1"]}`, false)

	// The client does not read: its discrete events cannot coalesce, so
	// its outbox overflows and the hub lets it go.
	const n = 2000
	for i := range n {
		h.hub.Publish(geofenceEvent(t, event.TypeEnteredStation, "沪A00001", fmt.Sprintf("S%d", i), t0, 31, 121))
	}
	if got := h.metric(t, "tms_ws_clients_closed_slow_total"); got != 1 {
		t.Fatalf("tms_ws_clients_closed_slow_total %v, want 1", got)
	}
	if got := h.hub.Clients(); got != 0 {
		t.Errorf("hub still fans out to %d clients after closing the slow one", got)
	}
	if got := h.metric(t, "tms_ws_frames_dropped_total"); got != 16 {
		t.Errorf("tms_ws_frames_dropped_total %v, want the 16 queued", got)
	}

	code, text, frames := c.closeCode()
	if code != websocket.CloseTryAgainLater || text != "too slow" {
		t.Errorf("closed with %d %q, want 1013 \"too slow\"", code, text)
	}
	if frames >= n {
		t.Errorf("got %d frames before the close, want fewer than the %d published", frames, n)
	}
}

func TestOversizedMessageCloses(t *testing.T) {
	t.Parallel()
	h := newHarness(t, ws.Config{MaxMessageBytes: 1024})
	c := h.dial(t)
	c.send(`{"subscribe": {"vehicles": ["` + strings.Repeat("沪A12345", 200) + `"]}}`)
	if code, _, _ := c.closeCode(); code != websocket.CloseMessageTooBig {
		t.Errorf("closed with %d, want 1009", code)
	}
}

func TestUnauthorisedUpgrade(t *testing.T) {
	t.Parallel()
	h := newHarness(t, ws.Config{Authorize: func(r *http.Request) bool {
		return r.Header.Get("Authorization") == "Bearer good"
	}})
	for _, tc := range []struct {
		name   string
		header http.Header
		want   int
	}{
		{"no token", nil, http.StatusUnauthorized},
		{"bad token", http.Header{"Authorization": {"Bearer bad"}}, http.StatusUnauthorized},
		{"good token", http.Header{"Authorization": {"Bearer good"}}, http.StatusSwitchingProtocols},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conn, resp, err := websocket.DefaultDialer.DialContext(t.Context(), h.url(), tc.header)
			if got := httpStatus(resp); got != tc.want {
				t.Fatalf("status %d (err %v), want %d", got, err, tc.want)
			}
			if conn != nil {
				_ = conn.Close()
				return
			}
			if ct := resp.Header.Get("Content-Type"); ct != "application/problem+json" {
				t.Errorf("content type %q, want a problem", ct)
			}
		})
	}
}

func TestCloseGoesAway(t *testing.T) {
	t.Parallel()
	h := newHarness(t, ws.Config{})
	a, b := h.dial(t), h.dial(t)
	a.subscribe(`{}`, true)
	b.subscribe(`{"types": ["tms.job.created.v1"]}`, false)
	if err := h.hub.Close(); err != nil {
		t.Fatal(err)
	}
	for _, c := range []*wsClient{a, b} {
		if code, _, _ := c.closeCode(); code != websocket.CloseGoingAway {
			t.Errorf("closed with %d, want 1001", code)
		}
	}
	h.hub.Publish(pos(t, "沪A00001", t0, 31, 121)) // a no-op, not a panic
	_, resp, err := websocket.DefaultDialer.DialContext(t.Context(), h.url(), nil)
	if got := httpStatus(resp); got != http.StatusServiceUnavailable {
		t.Errorf("dial after Close: status %d (err %v), want 503", got, err)
	}
	if err := h.hub.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

// TestPublishConcurrently publishes from several goroutines while clients
// come, subscribe and go; it is for the race detector, and checks that a
// client that stays receives what it subscribed to.
func TestPublishConcurrently(t *testing.T) {
	t.Parallel()
	h := newHarness(t, ws.Config{})
	stay := h.dial(t)
	stay.subscribe(`{"vehicles": ["沪Z00000"]}`, true)

	var events [4][]event.Envelope
	for p := range events {
		for i := range 300 {
			events[p] = append(events[p], pos(t, fmt.Sprintf("沪A%05d", i%20), t0.Add(time.Duration(p*1000+i)*time.Second), 31, 121))
		}
	}
	var wg sync.WaitGroup
	for p := range events {
		wg.Go(func() {
			for _, e := range events[p] {
				h.hub.Publish(e)
			}
		})
	}
	for range 4 {
		wg.Go(func() {
			for range 5 {
				conn, _, err := websocket.DefaultDialer.DialContext(t.Context(), h.url(), nil)
				if err != nil {
					t.Error(err)
					return
				}
				c := &wsClient{t: t, conn: conn}
				if err := conn.WriteMessage(websocket.TextMessage, []byte(`{"subscribe": {"bbox": [120, 30, 122, 32]}}`)); err != nil {
					t.Error(err)
				}
				if f, err := c.read(); err != nil || f.Type != ws.FrameSubscribed {
					t.Errorf("first frame %+v (err %v), want subscribed", f, err)
				}
				_ = conn.Close()
			}
		})
	}
	wg.Wait()
	want := pos(t, "沪Z00000", t0, 31, 121)
	h.hub.Publish(want)
	if f := stay.nextOf(ws.FrameEvent); f.Event.ID != want.ID {
		t.Errorf("got %+v, want the one event of 沪Z00000", f.Event)
	}
}

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		cfg  ws.Config
		ok   bool
	}{
		{"defaults", ws.Config{Snapshot: &fakeSnapshot{}}, true},
		{"no snapshot", ws.Config{}, false},
		{"negative window", ws.Config{Snapshot: &fakeSnapshot{}, SendWindow: -1}, false},
		{"negative pending", ws.Config{Snapshot: &fakeSnapshot{}, MaxPending: -1}, false},
		{"tiny messages", ws.Config{Snapshot: &fakeSnapshot{}, MaxMessageBytes: 10}, false},
		{"negative timeout", ws.Config{Snapshot: &fakeSnapshot{}, WriteTimeout: -time.Second}, false},
		{"tiny byte limit", ws.Config{Snapshot: &fakeSnapshot{}, MaxPendingBytes: 1000}, false},
		{"negative filter entries", ws.Config{Snapshot: &fakeSnapshot{}, MaxFilterEntries: -1}, false},
		{"negative snapshot rows", ws.Config{Snapshot: &fakeSnapshot{}, MaxSnapshotRows: -1}, false},
		{"negative connections", ws.Config{Snapshot: &fakeSnapshot{}, MaxConnections: -1}, false},
		{"negative connections per caller", ws.Config{Snapshot: &fakeSnapshot{}, MaxConnectionsPerCaller: -1}, false},
		{"more snapshots per caller than in all", ws.Config{Snapshot: &fakeSnapshot{}, MaxConcurrentSnapshots: 2, MaxSnapshotsPerCaller: 3}, false},
		{"one snapshot slot", ws.Config{Snapshot: &fakeSnapshot{}, MaxConcurrentSnapshots: 1}, true},
		{"origins", ws.Config{Snapshot: &fakeSnapshot{}, AllowedOrigins: []string{"*", "https://a.example", "http://b.example:8080/"}}, true},
		{"an origin with a path", ws.Config{Snapshot: &fakeSnapshot{}, AllowedOrigins: []string{"https://a.example/app"}}, false},
		{"an origin without a scheme", ws.Config{Snapshot: &fakeSnapshot{}, AllowedOrigins: []string{"a.example"}}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ws.New(tc.cfg)
			if (err == nil) != tc.ok {
				t.Errorf("New: %v, want ok %v", err, tc.ok)
			}
		})
	}
	// Every problem is reported, not only the first.
	_, err := ws.New(ws.Config{MaxPendingBytes: 1, MaxFilterEntries: -1})
	if err == nil || !strings.Contains(err.Error(), "Snapshot") || !strings.Contains(err.Error(), "MaxPendingBytes") ||
		!strings.Contains(err.Error(), "MaxFilterEntries") {
		t.Errorf("New: %v, want every problem named", err)
	}
}
