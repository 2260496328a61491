package ws

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/tmsfleet/tms/projections/timeline"
)

func TestParseReplay(t *testing.T) {
	t.Parallel()
	at := func(s string) time.Time {
		v, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			t.Fatal(err)
		}
		return v.UTC()
	}
	const window = `"from": "2025-03-01T08:00:00Z", "to": "2025-03-01T09:00:00Z"`
	for _, tc := range []struct {
		name    string
		msg     string
		replay  *replayRequest
		control *replayControl
		field   string // of the refusal; "-" for a refusal without one
		id      string // the refusal's replay_id
	}{
		{name: "vehicle", msg: `{"replay": {"vehicle": " 沪a12345", ` + window + `, "speed": 60}}`,
			replay: &replayRequest{vehicle: "沪A12345", from: at("2025-03-01T08:00:00Z"), to: at("2025-03-01T09:00:00Z"), speed: 60}},
		{name: "speed defaults to real time", msg: `{"replay": {"vehicle": "A1", "from": "2025-03-01T16:00:00+08:00", "to": "2025-03-01T09:00:00.5Z"}}`,
			replay: &replayRequest{vehicle: "A1", from: at("2025-03-01T08:00:00Z"), to: at("2025-03-01T09:00:00.5Z"), speed: 1}},
		{name: "job with an id", msg: `{"replay": {"id": "mine-1", "job": "7f1c3e52-9a44-4c1e-8f0a-2b6d5e9c0a11", "speed": 2.5}}`,
			replay: &replayRequest{id: "mine-1", job: "7f1c3e52-9a44-4c1e-8f0a-2b6d5e9c0a11", speed: 2.5}},
		{name: "trip", msg: `{"replay": {"trip": "T:1", "speed": null}}`, replay: &replayRequest{trip: "T:1", speed: 1}},
		{name: "pause", msg: `{"pause": "r1"}`, control: &replayControl{op: opPause, id: "r1"}},
		{name: "resume", msg: `{"resume": "r1"}`, control: &replayControl{op: opResume, id: "r1"}},
		{name: "stop", msg: `{"stop": "r1"}`, control: &replayControl{op: opStop, id: "r1"}},
		{name: "seek", msg: `{"seek": {"id": "r1", "to": "2025-03-01T08:30:00Z"}}`,
			control: &replayControl{op: opSeek, id: "r1", to: at("2025-03-01T08:30:00Z")}},
		{name: "speed", msg: `{"speed": {"id": "r1", "speed": 1000}}`, control: &replayControl{op: opSpeed, id: "r1", speed: 1000}},

		{name: "replay not an object", msg: `{"replay": "沪A12345"}`, field: "replay"},
		{name: "nothing to replay", msg: `{"replay": {"speed": 2}}`, field: "replay"},
		{name: "two things to replay", msg: `{"replay": {"id": "x", "vehicle": "A1", "job": "j1"}}`, field: "job", id: "x"},
		{name: "unknown member", msg: `{"replay": {"vehicle": "A1", "since": "x"}}`, field: "since"},
		{name: "bad plate", msg: `{"replay": {"vehicle": "A#1", ` + window + `}}`, field: "vehicle"},
		{name: "plate not a string", msg: `{"replay": {"vehicle": 1, ` + window + `}}`, field: "vehicle"},
		{name: "no from", msg: `{"replay": {"vehicle": "A1", "to": "2025-03-01T09:00:00Z"}}`, field: "from"},
		{name: "from not a time", msg: `{"replay": {"vehicle": "A1", "from": "yesterday", "to": "2025-03-01T09:00:00Z"}}`, field: "from"},
		{name: "from as a number", msg: `{"replay": {"vehicle": "A1", "from": 1740816000, "to": "2025-03-01T09:00:00Z"}}`, field: "from"},
		{name: "empty window", msg: `{"replay": {"vehicle": "A1", "from": "2025-03-01T09:00:00Z", "to": "2025-03-01T09:00:00Z"}}`, field: "to"},
		{name: "window past the cap", msg: `{"replay": {"id": "y", "vehicle": "A1", "from": "2024-01-01T00:00:00Z", "to": "2025-03-01T00:00:00Z"}}`,
			field: "to", id: "y"},
		{name: "window across the ages", msg: `{"replay": {"vehicle": "A1", "from": "0001-01-01T00:00:00Z", "to": "9999-12-31T23:59:59Z"}}`, field: "to"},
		{name: "a job's window is its own", msg: `{"replay": {"job": "j1", "from": "2025-03-01T09:00:00Z"}}`, field: "from"},
		{name: "speed zero", msg: `{"replay": {"vehicle": "A1", ` + window + `, "speed": 0}}`, field: "speed"},
		{name: "speed past the cap", msg: `{"replay": {"vehicle": "A1", ` + window + `, "speed": 1000.5}}`, field: "speed"},
		{name: "speed not a number", msg: `{"replay": {"vehicle": "A1", ` + window + `, "speed": "fast"}}`, field: "speed"},
		{name: "speed out of range", msg: `{"replay": {"vehicle": "A1", ` + window + `, "speed": 1e400}}`, field: "speed"},
		{name: "id with a space", msg: `{"replay": {"id": "my replay", "vehicle": "A1", ` + window + `}}`, field: "id"},
		{name: "id too long", msg: `{"replay": {"id": "` + strings.Repeat("r", 65) + `", "vehicle": "A1", ` + window + `}}`, field: "id"},
		{name: "pause of nothing", msg: `{"pause": ""}`, field: "pause"},
		{name: "pause of an object", msg: `{"pause": {"id": "r1"}}`, field: "pause"},
		{name: "seek without id", msg: `{"seek": {"to": "2025-03-01T08:30:00Z"}}`, field: "id"},
		{name: "seek without to", msg: `{"seek": {"id": "r1"}}`, field: "to", id: "r1"},
		{name: "seek at", msg: `{"seek": {"id": "r1", "at": "2025-03-01T08:30:00Z"}}`, field: "at"},
		{name: "speed without speed", msg: `{"speed": {"id": "r1"}}`, field: "speed", id: "r1"},
		{name: "speed of a string", msg: `{"speed": "r1"}`, field: "speed"},
		{name: "two messages", msg: `{"pause": "r1", "resume": "r1"}`, field: "-"},
		{name: "a message and an unknown", msg: `{"pause": "r1", "play": "r1"}`, field: "-"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, rerr := parseMessage([]byte(tc.msg), testLimits(1000))
			if tc.field != "" {
				want := tc.field
				if want == "-" {
					want = ""
				}
				if rerr == nil || rerr.Field != want || rerr.ReplayID != tc.id || rerr.Detail == "" {
					t.Fatalf("parse: %+v, want a refusal of field %q, replay %q", rerr, want, tc.id)
				}
				var decoded map[string]any
				if err := json.Unmarshal(append([]byte(`{"seq":1`), rerr.body()...), &decoded); err != nil {
					t.Errorf("error frame body %s: %v", rerr.body(), err)
				}
				return
			}
			if rerr != nil {
				t.Fatalf("parse: %+v", rerr)
			}
			if !reflect.DeepEqual(m.replay, tc.replay) || !reflect.DeepEqual(m.control, tc.control) {
				t.Errorf("parsed %+v %+v, want %+v %+v", m.replay, m.control, tc.replay, tc.control)
			}
		})
	}
}

// TestReplayPacing checks the event-time to wall-time mapping through
// pause, speed and resume: nothing jumps, a pause holds the position.
func TestReplayPacing(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2025, 3, 1, 8, 0, 0, 0, time.UTC)
	w0 := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC) // wall clock
	r := &replay{speed: 60, start: t0, q: replayQuery(t0, t0.Add(time.Hour))}
	if got := r.position(w0); !got.Equal(t0) {
		t.Fatalf("before the first event: at %s, want the start", got)
	}
	r.anchored, r.anchorAt, r.anchorWall = true, t0, w0
	if got := r.due(t0.Add(10 * time.Minute)); !got.Equal(w0.Add(10 * time.Second)) {
		t.Errorf("10 min of history due after %s at speed 60", got.Sub(w0))
	}
	// Paused 5 s in: the position holds at 5 min.
	r.reanchor(w0.Add(5 * time.Second))
	r.paused = true
	if got := r.position(w0.Add(time.Hour)); !got.Equal(t0.Add(5 * time.Minute)) {
		t.Errorf("paused: at %s, want 5 min", got.Sub(t0))
	}
	// Speed 600 while paused, resumed at 100 s: 10 min of history later
	// is due a second after.
	r.reanchor(w0.Add(50 * time.Second))
	r.speed = 600
	r.paused, r.anchorWall = false, w0.Add(100*time.Second)
	if got := r.due(t0.Add(15 * time.Minute)); !got.Equal(w0.Add(101 * time.Second)) {
		t.Errorf("after resuming at 600: due at %s, want 101 s", got.Sub(w0))
	}
	if got := r.position(w0.Add(time.Hour)); !got.Equal(t0.Add(time.Hour)) {
		t.Errorf("long after: at %s, want the end", got.Sub(t0))
	}
}

func replayQuery(from, to time.Time) timeline.Query {
	return timeline.Query{Vehicle: "A1", From: from, To: to}
}
