package ws_test

// The hostile-input suite of the WebSocket hub (issue 7, section 3): each
// test plays a client that tries to make the hub buffer, echo or load
// without bound, or to take what other clients need.

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/tmsfleet/tms/adapters/postgres"
	"github.com/tmsfleet/tms/adapters/ws"
	"github.com/tmsfleet/tms/domain/event"
	"github.com/tmsfleet/tms/internal/testenv"
	"github.com/tmsfleet/tms/internal/tmsproc"
	"github.com/tmsfleet/tms/projections/vehicles"
)

// defaultFilterEntries is Config.MaxFilterEntries's default.
const defaultFilterEntries = 1000

// subscribeList is a subscribe of one filter list of the given entries.
func subscribeList(field string, entries []string) string {
	b, err := json.Marshal(map[string]any{"subscribe": map[string]any{field: entries}})
	if err != nil {
		panic(err)
	}
	return string(b)
}

// distinct makes n distinct entries of a filter list: plates, station
// ids or event types.
func distinct(field string, n int) []string {
	out := make([]string, n)
	for i := range out {
		switch field {
		case "vehicles":
			out[i] = fmt.Sprintf("沪A%05d", i)
		case "stations":
			out[i] = fmt.Sprintf("S%05d", i)
		case "types":
			out[i] = fmt.Sprintf("tms.t%05d.v1", i)
		}
	}
	return out
}

// TestHostileLongFilterLists sends filter lists longer than the cap: each
// is refused with an error frame naming the field and the limit, and the
// subscription in force stays. Two shapes: one entry past the cap, and
// the longest list a message of MaxMessageBytes can carry (64 KiB of
// `"A",` is 16,376 entries: more than 100,000 plates cannot reach the hub
// at all, the message limit closes the connection first).
func TestHostileLongFilterLists(t *testing.T) {
	t.Parallel()
	h := newHarness(t, ws.Config{})
	c := h.dial(t)
	c.subscribe(`{"vehicles": ["沪A12345"]}`, true)

	const maxMessage = 64 << 10 // the default MaxMessageBytes
	longest := func(entry string) []string {
		frame := len(subscribeList("vehicles", nil))
		return slices.Repeat([]string{entry}, (maxMessage-frame)/(len(entry)+3))
	}
	for _, tc := range []struct {
		name, field string
		entries     []string
	}{
		{"one vehicle too many", "vehicles", distinct("vehicles", defaultFilterEntries+1)},
		{"one station too many", "stations", distinct("stations", defaultFilterEntries+1)},
		{"one type too many", "types", distinct("types", defaultFilterEntries+1)},
		{"a message full of one plate", "vehicles", longest("A")},
		{"a message full of one station", "stations", longest("S")},
	} {
		msg := subscribeList(tc.field, tc.entries)
		if len(msg) > maxMessage {
			t.Fatalf("%s: the message has %d bytes, more than the hub reads", tc.name, len(msg))
		}
		c.send(msg)
		f, err := c.read()
		if err != nil {
			t.Fatalf("%s (%d entries, %d bytes): %v", tc.name, len(tc.entries), len(msg), err)
		}
		if f.Type != ws.FrameError || f.Field != tc.field || !strings.Contains(f.Detail, fmt.Sprint(defaultFilterEntries)) {
			t.Errorf("%s (%d entries): got %s, want an error frame naming %s and the limit %d",
				tc.name, len(tc.entries), clipped(f.raw), tc.field, defaultFilterEntries)
		}
	}

	// At the cap, with duplicates after normalisation: accepted, deduplicated.
	entries := append(distinct("vehicles", defaultFilterEntries-1), "沪a00000")
	sub, _ := c.subscribe(mustJSON(map[string]any{"vehicles": entries}), true)
	if sub.Counts == nil || sub.Counts.Vehicles != defaultFilterEntries-1 {
		t.Errorf("subscribed %s, want counts.vehicles %d (the duplicate dropped)", clipped(sub.raw), defaultFilterEntries-1)
	}
	mine := pos(t, "沪A00998", t0, 31, 121)
	h.hub.Publish(pos(t, "沪A12345", t0, 31, 121)) // the first filter's plate, no longer wanted
	h.hub.Publish(mine)
	if f := c.nextOf(ws.FrameEvent); f.Event.ID != mine.ID {
		t.Errorf("got %s, want the event of the filter at the cap", f.Event.Subject)
	}
}

// TestHostileSubscribedSummary subscribes to the longest lists allowed,
// of the longest entries: the subscribed frame summarises them (counts),
// repeating only short lists, so its size does not grow with the request.
func TestHostileSubscribedSummary(t *testing.T) {
	t.Parallel()
	h := newHarness(t, ws.Config{})
	c := h.dial(t)

	long := make([]string, defaultFilterEntries)
	for i := range long {
		long[i] = fmt.Sprintf("沪%015d", i) // 16 characters, the longest plate
	}
	msg := `{"vehicles": ` + mustJSON(long) + `, "types": ["tms.position.reported.v1"], "bbox": [121, 31, 122, 32]}`
	sub, _ := c.subscribe(msg, true)
	const summaryBound = 4 << 10
	if len(sub.raw) > summaryBound {
		t.Errorf("the subscribed frame has %d bytes for a %d-byte subscribe, want at most %d", len(sub.raw), len(msg), summaryBound)
	}
	if sub.Counts == nil || *sub.Counts != (ws.FilterCounts{Vehicles: defaultFilterEntries, Types: 1}) {
		t.Errorf("subscribed counts %+v, want %d vehicles and 1 type", sub.Counts, defaultFilterEntries)
	}
	if sub.Filter == nil || sub.Filter.Vehicles != nil || !slices.Equal(sub.Filter.Types, []string{event.TypePositionReported}) ||
		!slices.Equal(sub.Filter.BBox, []float64{121, 31, 122, 32}) {
		t.Errorf("subscribed filter %+v, want the bbox and the short types list, not the long vehicles list", sub.Filter)
	}
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// clipped shows at most the start of a frame in a failure message.
func clipped(b []byte) string {
	if len(b) > 300 {
		return fmt.Sprintf("%s... (%d bytes)", b[:300], len(b))
	}
	return string(b)
}

// TestHostileErrorFramesBounded sends subscribes whose bad value is huge,
// in every place a value can be wrong: the error frame names the field
// (and the entry's index) and quotes at most a short excerpt.
func TestHostileErrorFramesBounded(t *testing.T) {
	t.Parallel()
	h := newHarness(t, ws.Config{})
	c := h.dial(t)
	huge := strings.Repeat("<", 60<<10)
	manyKeys := map[string]int{}
	for i := range 3000 {
		manyKeys[fmt.Sprintf("k%s%05d", strings.Repeat("x", 10), i)] = 1
	}
	for _, tc := range []struct {
		name, msg, field string
		index            int // -1: none
	}{
		{"station id", `{"subscribe": {"stations": ["S1", "` + huge + `"]}}`, "stations", 1},
		{"event type", `{"subscribe": {"types": ["` + huge + `"]}}`, "types", 0},
		{"plate", `{"subscribe": {"vehicles": ["沪A12345", "沪A12346", "` + huge + `"]}}`, "vehicles", 2},
		{"plate of 16 odd characters", `{"subscribe": {"vehicles": ["` + strings.Repeat(`\u0001`, 16) + `"]}}`, "vehicles", 0},
		{"unknown filter", `{"subscribe": {"` + huge + `": 1}}`, "", -1},
		{"unknown message", `{"` + huge + `": 1}`, "", -1},
		{"many unknown messages", mustJSON(manyKeys), "", -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c.send(tc.msg)
			f := c.nextOf(ws.FrameError)
			const frameBound = 1 << 10
			if len(f.raw) > frameBound {
				t.Errorf("error frame of %d bytes, want at most %d: %s", len(f.raw), frameBound, clipped(f.raw))
			}
			// No more of the input than an excerpt: a run of 40 bytes of
			// the message in the frame's field or detail is too much.
			for _, s := range []string{f.Field, f.Detail} {
				if longestRunFrom(s, tc.msg) >= 40 {
					t.Errorf("the error frame repeats the input: %s", clipped(f.raw))
				}
			}
			if tc.field != "" && f.Field != tc.field {
				t.Errorf("error frame field %q, want %q", f.Field, tc.field)
			}
			if tc.index >= 0 && (f.Index == nil || *f.Index != tc.index) {
				t.Errorf("error frame index %v, want %d: %s", f.Index, tc.index, clipped(f.raw))
			}
		})
	}
}

// longestRunFrom is the length of the longest substring of s that is
// also in msg (s is short: quadratic in it is fine).
func longestRunFrom(s, msg string) int {
	best := 0
	for i := range len(s) {
		for j := i + best + 1; j <= len(s) && strings.Contains(msg, s[i:j]); j++ {
			best = j - i
		}
	}
	return best
}

// TestHostileSnapshotRowLimit fills the real read model with one vehicle
// more than a snapshot may carry and subscribes to everything: the
// snapshot carries the first MaxSnapshotRows by plate and says it is
// truncated; a filter that selects fewer gets them all, not truncated.
func TestHostileSnapshotRowLimit(t *testing.T) {
	t.Parallel()
	dbURL := testenv.FromEnv(os.LookupEnv).Postgres(t)
	pool, err := postgres.Open(t.Context(), dbURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	const rows = 10000 // the default MaxSnapshotRows
	_, err = pool.Exec(t.Context(), `
		INSERT INTO vehicles (plate, fix_time, received_at, lat, lng, speed_kmh, course_deg, flags,
		                      first_seen, last_seen, positions_count)
		SELECT 'ZZ' || lpad(i::text, 6, '0'), $1, $1, 31 + i / 100000.0, 121, 0, NULL, '{}', $1, $1, 1
		FROM generate_series(1, $2::int) AS i`, t0, rows+1)
	if err != nil {
		t.Fatal(err)
	}
	h := newHarness(t, ws.Config{Snapshot: vehicles.NewStore(pool)})
	c := h.dial(t)

	_, snap := c.subscribe(`{}`, true)
	if len(snap.Vehicles) != rows || !snap.Truncated || !strings.Contains(snap.Detail, fmt.Sprint(rows)) {
		t.Fatalf("snapshot of %d vehicles, truncated %v, detail %q; want the first %d, truncated, saying the limit",
			len(snap.Vehicles), snap.Truncated, snap.Detail, rows)
	}
	if first, last := snap.Vehicles[0].Plate, snap.Vehicles[rows-1].Plate; first != "ZZ000001" || last != fmt.Sprintf("ZZ%06d", rows) {
		t.Errorf("snapshot from %s to %s, want the first %d plates in order", first, last, rows)
	}

	// Fewer than the limit: all of them, and no truncation.
	_, snap = c.subscribe(`{"bbox": [120, 31, 122, 31.05]}`, true)
	if len(snap.Vehicles) != 5000 || snap.Truncated {
		t.Errorf("bbox snapshot of %d vehicles, truncated %v; want the 5000 inside, complete", len(snap.Vehicles), snap.Truncated)
	}
}

// TestHostileConnectionsPerToken opens one connection more than a token
// may hold: the last is refused with 429 before upgrading, while another
// token still connects, and the token may connect again once one of its
// connections has closed. Past the hub's total, 503.
func TestHostileConnectionsPerToken(t *testing.T) {
	t.Parallel()
	const perToken = 32 // the default MaxConnectionsPerCaller
	h := newHarness(t, ws.Config{}, byCallerHeader())
	as := func(caller string) http.Header { return http.Header{callerHeader: {caller}} }

	var mine []*wsClient
	for range perToken {
		mine = append(mine, h.dialAs(t, "greedy"))
	}
	status, p := h.tryDial(t, as("greedy"))
	if status != http.StatusTooManyRequests || !strings.Contains(p.Detail, fmt.Sprint(perToken)) {
		t.Fatalf("connection %d of one token: status %d %q, want 429 naming the limit %d", perToken+1, status, p.Detail, perToken)
	}
	if status, _ := h.tryDial(t, as("other")); status != http.StatusSwitchingProtocols {
		t.Errorf("another token's connection: status %d, want 101", status)
	}
	if got := h.metric(t, "tms_ws_upgrades_refused_total{reason=caller_connections}"); got != 1 {
		t.Errorf("tms_ws_upgrades_refused_total{reason=caller_connections} %v, want 1", got)
	}
	_ = mine[0].conn.Close()
	tmsproc.Eventually(t, readGuard, "the token may connect again after closing a connection", func() bool {
		status, _ := h.tryDial(t, as("greedy"))
		return status == http.StatusSwitchingProtocols
	})

	t.Run("total", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t, ws.Config{MaxConnections: 3}, byCallerHeader())
		for i := range 3 {
			h.dialAs(t, fmt.Sprint("caller", i))
		}
		if status, p := h.tryDial(t, as("caller9")); status != http.StatusServiceUnavailable || !strings.Contains(p.Detail, "3") {
			t.Errorf("connection past the hub's total: status %d %q, want 503 naming the limit", status, p.Detail)
		}
	})
}

// TestHostileSnapshotsPerToken has one token subscribe on as many
// connections as the hub has snapshot slots, while the database is slow
// (the loads are held): another token's snapshot must still start, since
// one token may hold only MaxSnapshotsPerCaller slots. The token's other
// snapshots wait for its own slots, and load once those are free.
func TestHostileSnapshotsPerToken(t *testing.T) {
	t.Parallel()
	const slots, perToken = 4, 2
	snap := &fakeSnapshot{
		table: []vehicles.Vehicle{{Plate: "沪B00001", FixTime: t0, ReceivedAt: t0, Lat: 31, Lng: 121}},
		calls: make(chan vehicles.ListQuery, 2*slots),
		gate:  make(chan struct{}),
	}
	h := newHarness(t, ws.Config{Snapshot: snap, MaxConcurrentSnapshots: slots, MaxSnapshotsPerCaller: perToken}, byCallerHeader())

	var greedy []*wsClient
	for range slots {
		c := h.dialAs(t, "greedy")
		c.send(`{"subscribe": {}}`)
		c.nextOf(ws.FrameSubscribed)
		greedy = append(greedy, c)
	}
	other := h.dialAs(t, "other")
	other.send(`{"subscribe": {"vehicles": ["沪B00001"]}}`)
	other.nextOf(ws.FrameSubscribed)

	started := 0 // the greedy token's loads seen before the other's
	guard := time.After(readGuard)
	for otherStarted := false; !otherStarted; {
		select {
		case q := <-snap.calls:
			if len(q.Plates) == 0 {
				started++
				continue
			}
			otherStarted = true
		case <-guard:
			t.Fatalf("the other token's snapshot did not start; the greedy token started %d of the %d slots", started, slots)
		}
	}
	if started > perToken {
		t.Errorf("the greedy token had %d snapshots loading at once, want at most %d", started, perToken)
	}
	close(snap.gate)
	if f := other.nextOf(ws.FrameSnapshot); len(f.Vehicles) != 1 {
		t.Errorf("other token's snapshot %+v", f.Vehicles)
	}
	for _, c := range greedy {
		c.nextOf(ws.FrameSnapshot) // each of its snapshots loads in turn
	}

	t.Run("a token that waits too long is told why", func(t *testing.T) {
		t.Parallel()
		// The first load hangs past its timeout, holding the token's one
		// slot; the second waits for it until its own time is up.
		snap := &fakeSnapshot{gate: make(chan struct{}), calls: make(chan vehicles.ListQuery, 1), stuck: true}
		defer close(snap.gate)
		h := newHarness(t, ws.Config{Snapshot: snap, MaxSnapshotsPerCaller: 1, SnapshotTimeout: time.Second}, byCallerHeader())
		holding := h.dialAs(t, "greedy")
		holding.send(`{"subscribe": {}}`)
		holding.nextOf(ws.FrameSubscribed)
		<-snap.calls
		waiting := h.dialAs(t, "greedy")
		waiting.send(`{"subscribe": {}}`)
		waiting.nextOf(ws.FrameSubscribed)
		if f := waiting.nextOf(ws.FrameError); !strings.Contains(f.Detail, "most one token may") {
			t.Errorf("the waiting connection's error %q does not name the per-token limit", f.Detail)
		}
	})
}

// TestHostileOrigin opens the socket from pages of other origins: refused
// with 403 before upgrading, unless allowed; the server's own origin and
// clients that are not browsers (no Origin) are always allowed.
func TestHostileOrigin(t *testing.T) {
	t.Parallel()
	origin := func(o string) http.Header { return http.Header{"Origin": {o}} }
	h := newHarness(t, ws.Config{})
	own := h.srv.URL // http://127.0.0.1:port, the Host the client sends
	for _, tc := range []struct {
		name   string
		header http.Header
		want   int
	}{
		{"not a browser", nil, http.StatusSwitchingProtocols},
		{"own origin", origin(own), http.StatusSwitchingProtocols},
		{"own origin, upper case", origin(strings.ToUpper(own)), http.StatusSwitchingProtocols},
		{"another site", origin("https://evil.example"), http.StatusForbidden},
		{"same host, other port", origin("http://127.0.0.1:1"), http.StatusForbidden},
		{"a sandboxed page", origin("null"), http.StatusForbidden},
		{"a huge origin", origin("https://" + strings.Repeat("a", 4000) + ".example"), http.StatusForbidden},
	} {
		status, p := h.tryDial(t, tc.header)
		if status != tc.want {
			t.Errorf("%s: status %d, want %d", tc.name, status, tc.want)
		}
		if status == http.StatusForbidden && len(p.Detail) > 300 {
			t.Errorf("%s: the refusal repeats the origin: %q", tc.name, p.Detail)
		}
	}

	allowed := newHarness(t, ws.Config{AllowedOrigins: []string{"https://dash.example.com", "HTTP://Ops.Example.com:8080/"}})
	for o, want := range map[string]int{
		"https://dash.example.com":     http.StatusSwitchingProtocols,
		"https://dash.example.com:443": http.StatusSwitchingProtocols,
		"http://ops.example.com:8080":  http.StatusSwitchingProtocols,
		"http://dash.example.com":      http.StatusForbidden,
		"https://evil.example":         http.StatusForbidden,
	} {
		if status, _ := allowed.tryDial(t, origin(o)); status != want {
			t.Errorf("allowed list, origin %s: status %d, want %d", o, status, want)
		}
	}
	anyOrigin := newHarness(t, ws.Config{AllowedOrigins: []string{"*"}})
	if status, _ := anyOrigin.tryDial(t, origin("https://evil.example")); status != http.StatusSwitchingProtocols {
		t.Errorf("with *: status %d, want 101", status)
	}
}

// floodPlates is how many invented plates TestHostileFloodOfPlates
// publishes (issue 7, section 5).
const floodPlates = 1_000_000

// TestHostileFloodOfPlates publishes a position of each of a million
// distinct plates while one client subscribed to everything does not
// read. Coalescing cannot help (no plate repeats), so the byte limit must:
// the hub closes that client with 1013 at MaxPendingBytes, having never
// held more for it (tms_ws_client_held_bytes_peak), and the flood goes on
// to a client that keeps up, which stays connected and current. After the
// flood, the process's heap has not grown by more than a few limits: no
// structure of the hub keeps the plates.
//
// Not parallel, so that the heap it measures is its own.
func TestHostileFloodOfPlates(t *testing.T) {
	const limit = 1 << 20
	// Long timeouts: the stalled client neither reads nor answers pings
	// while the flood runs (a minute under the race detector).
	h := newHarness(t, ws.Config{MaxPendingBytes: limit, WriteTimeout: 10 * time.Minute, PongTimeout: 10 * time.Minute},
		smallSocketBuffers())
	stalled := h.dial(t, smallReadBuffer())
	stalled.subscribe(`{}`, true)
	watcher := h.dial(t)
	watcher.subscribe(`{"vehicles": ["沪W00001"]}`, true)
	before := heapAfterGC()

	// The envelopes are built by hand and published as the Feed publishes
	// a record's bytes: a million position.Event ids and encodings would
	// take longer than the hub's own work.
	data := []byte(`{"lat":31.2,"lng":121.5}`)
	e := event.Envelope{SpecVersion: event.SpecVersion, Source: "/test", Type: event.TypePositionReported,
		Time: t0, DataContentType: event.ContentType, Data: data}
	var raw []byte
	for i := range floodPlates {
		plate := strconv.AppendInt([]byte("FL"), int64(i), 10)
		raw = append(raw[:0], `{"specversion":"1.0","id":"`...)
		raw = append(raw, plate...)
		raw = append(raw, `","source":"/test","type":"tms.position.reported.v1","subject":"`...)
		raw = append(raw, plate...)
		raw = append(raw, `","time":"2025-03-01T08:00:00Z","datacontenttype":"application/json","data":`...)
		raw = append(raw, data...)
		raw = append(raw, '}')
		e.ID, e.Subject = string(plate), string(plate)
		ws.PublishRaw(h.hub, &e, slices.Clone(raw))
	}
	last := pos(t, "沪W00001", t0.Add(time.Hour), 31, 121)
	h.hub.Publish(last)
	if f := watcher.nextOf(ws.FrameEvent); f.Event.ID != last.ID {
		t.Errorf("the watcher got %s, want its plate's event after the flood", f.Event.Subject)
	}
	grown := heapAfterGC() - before

	if got := h.metric(t, "tms_ws_clients_closed_slow_total"); got != 1 {
		t.Fatalf("tms_ws_clients_closed_slow_total %v after %d plates, want the stalled client closed", got, floodPlates)
	}
	peak := h.metric(t, "tms_ws_client_held_bytes_peak")
	if peak > limit {
		t.Errorf("the hub held %v bytes for one client, more than its limit of %d", peak, limit)
	}
	if peak < limit-8<<10 {
		t.Errorf("the hub held at most %v bytes for the stalled client: it was closed well before the limit of %d", peak, limit)
	}
	// The stalled client's frames in flight stay until it reads them;
	// everything else the flood made is garbage.
	if grown > 8*limit {
		t.Errorf("the heap grew by %d bytes over the flood, want at most %d (a few times the per-client limit)", grown, 8*limit)
	}
	if code, text, _ := stalled.closeCode(); code != websocket.CloseTryAgainLater || text != "too slow" {
		t.Errorf("stalled client closed with %d %q, want 1013 \"too slow\"", code, text)
	}
	if got := h.hub.Clients(); got != 1 {
		t.Errorf("%d clients after the flood, want the watcher only", got)
	}
	t.Logf("%d plates published; the stalled client was closed with %v bytes held (limit %d); the heap grew by %d bytes",
		floodPlates, peak, limit, grown)
}

// heapAfterGC is the live heap, after a collection.
func heapAfterGC() int64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapAlloc)
}
