package ws

import (
	"encoding/json"
	"math"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/tmsfleet/tms/projections/timeline"
	"github.com/tmsfleet/tms/projections/vehicles"
)

// fuzzMaxEntries is the filter-list cap the fuzz target parses with:
// small, so that the fuzzer reaches it.
const fuzzMaxEntries = 20

// FuzzProtocol feeds arbitrary client messages to parseMessage and
// encodes every reply the hub would send for them: the error frame of a
// refusal; for a subscribe, the subscribed frame of its filter and a
// snapshot frame of vehicles made from the input; for a replay, its
// replay_started frame and a replay and a replay_ended frame of it; for
// a replay's control, its replay_state frame. Nothing may panic; every
// frame is valid JSON of bounded size; an error frame repeats at most an
// excerpt of the input (no longer run of it than an excerpt); a
// subscribed frame repeats only short lists, and counts them all; a
// replay is within the limits (speed, window) and names only ids of the
// id pattern. Its corpus is in testdata/fuzz/FuzzProtocol; `make fuzz`
// runs it.
func FuzzProtocol(f *testing.F) {
	for _, seed := range []string{
		`{"subscribe": {}}`,
		`{"subscribe": {"vehicles": ["沪a12345", "沪A12345"], "bbox": [170, -50, -170, -30],
			"types": ["tms.position.reported.v1"], "stations": ["S1", " S2 "]}}`,
		`{"subscribe": {"vehicles": ["` + strings.Repeat("<", 200) + `"]}}`,
		`{"subscribe": {"stations": ["` + strings.Repeat("\\u0000", 100) + `"]}}`,
		`{"subscribe": {"` + strings.Repeat("k", 100) + `": 1}}`,
		`{"a": 1, "b": 2, "c": 3}`,
		`{"subscribe": {"types": [1, null, "x"]}}`,
		`{"subscribe": {"vehicles": [` + strings.Repeat(`"A",`, 30) + `"B"]}}`,
		`{"subscribe": {"bbox": [1e308, -1e308, 0, 0]}}`,
		"{\"subscribe\": {\"stations\": [\"\xff\xfe\"]}}",
		`[]`, `null`, `{`, ``,
		`{"replay": {"vehicle": "沪a12345", "from": "2025-03-01T08:00:00Z", "to": "2025-03-01T09:00:00+08:00", "speed": 60}}`,
		`{"replay": {"id": "mine", "job": "0b6f2a8e-3c57-4d8e-9a5e-2f0d9c1b7a10", "speed": 1000}}`,
		`{"replay": {"trip": "t:1", "from": "2025-03-01T08:00:00Z"}}`,
		`{"replay": {"vehicle": "A1", "trip": "t1", "job": "j1"}}`,
		`{"replay": {"vehicle": "A1", "from": "0001-01-01T00:00:00Z", "to": "9999-12-31T23:59:59Z", "speed": 1e309}}`,
		`{"replay": {"vehicle": "A1", "from": "2025-03-01T09:00:00Z", "to": "2025-03-01T08:00:00Z", "speed": 0.5}}`,
		`{"replay": {"id": "` + strings.Repeat("r", 65) + `", "vehicle": "A1"}}`,
		`{"pause": "r1"}`, `{"resume": "r1"}`, `{"stop": 1}`, `{"pause": "r 1"}`,
		`{"seek": {"id": "r1", "to": "2025-03-01T08:30:00.123456789Z"}}`, `{"seek": {"id": "r1", "at": "x"}}`,
		`{"speed": {"id": "r1", "speed": 30}}`, `{"speed": {"id": "r1", "speed": "fast"}}`, `{"speed": {"speed": 2}}`,
		`{"pause": "r1", "resume": "r1"}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, msg []byte) {
		if len(msg) > 64<<10 {
			return // the hub closes the connection before it parses
		}
		lim := limits{maxEntries: fuzzMaxEntries, maxSpeed: fuzzMaxSpeed, maxRange: fuzzMaxRange}
		m, rerr := parseMessage(msg, lim)
		if rerr != nil {
			frame := appendFrame(nil, kindError, math.MaxUint64, rerr.body())
			var got struct {
				Type     string `json:"type"`
				Field    string `json:"field"`
				Index    *int   `json:"index"`
				ReplayID string `json:"replay_id"`
				Detail   string `json:"detail"`
			}
			decodeFrame(t, frame, &got)
			switch {
			case len(frame) > maxErrorFrameBytes:
				t.Fatalf("error frame of %d bytes, more than %d: %s", len(frame), maxErrorFrameBytes, frame)
			case got.Type != FrameError || got.Detail == "":
				t.Fatalf("error frame %s", frame)
			case len(got.Field) > maxFieldBytes || len(got.Detail) > maxDetailBytes:
				t.Fatalf("error frame members too long: %s", frame)
			case got.ReplayID != "" && !idPattern.MatchString(got.ReplayID):
				t.Fatalf("error frame names a replay id that is not one: %s", frame)
			}
			// An excerpt may happen to match the input a little further,
			// through the quote before it and the entry's name.
			for _, s := range []string{got.Field, got.Detail} {
				if n := longestRun(s, string(msg)); n > maxExcerptBytes+16 {
					t.Fatalf("error frame repeats %d bytes of the input: %s", n, frame)
				}
			}
			return
		}
		switch {
		case m.replay != nil:
			fuzzReplay(t, m.replay, lim)
			return
		case m.control != nil:
			fuzzControl(t, m.control, lim)
			return
		}
		filt := m.subscribe
		frame := appendFrame(nil, kindSubscribed, math.MaxUint64, subscribedBody(&filt.spec))
		var got struct {
			Type   string       `json:"type"`
			Filter Filter       `json:"filter"`
			Counts FilterCounts `json:"counts"`
		}
		decodeFrame(t, frame, &got)
		if len(frame) > maxSubscribedFrameBytes {
			t.Fatalf("subscribed frame of %d bytes, more than %d", len(frame), maxSubscribedFrameBytes)
		}
		for _, l := range []struct {
			name         string
			spec, echoed []string
			count        int
		}{
			{"vehicles", filt.spec.Vehicles, got.Filter.Vehicles, got.Counts.Vehicles},
			{"stations", filt.spec.Stations, got.Filter.Stations, got.Counts.Stations},
			{"types", filt.spec.Types, got.Filter.Types, got.Counts.Types},
		} {
			if len(l.spec) > fuzzMaxEntries || l.count != len(l.spec) ||
				(len(l.spec) <= maxEchoedEntries) != (len(l.echoed) == len(l.spec)) {
				t.Fatalf("%s: %d entries, counted %d, echoed %d: %s", l.name, len(l.spec), l.count, len(l.echoed), frame)
			}
		}

		// A snapshot of vehicles named by the plates given, and by the
		// message cut into pieces (a read model holds any string).
		var vs []vehicles.Vehicle
		for _, p := range append(filt.spec.Vehicles, strings.SplitN(string(msg), ",", 50)...) {
			vs = append(vs, vehicles.Vehicle{Plate: p, FixTime: time.Unix(int64(len(p)), 0), Lat: 1, Lng: 2, Flags: []string{p}})
		}
		const rows, budget = 30, 8 << 10
		frame = appendFrame(nil, kindSnapshot, 1, snapshotBody(vs, rows, budget))
		var snap struct {
			Vehicles  []SnapshotVehicle `json:"vehicles"`
			Truncated bool              `json:"truncated"`
		}
		decodeFrame(t, frame, &snap)
		if len(frame) > budget+64 || len(snap.Vehicles) > rows || snap.Truncated != (len(snap.Vehicles) < len(vs)) {
			t.Fatalf("snapshot of %d bytes, %d of %d vehicles, truncated %v", len(frame), len(snap.Vehicles), len(vs), snap.Truncated)
		}
	})
}

// The replay limits the fuzz target parses with.
const (
	fuzzMaxSpeed = 500
	fuzzMaxRange = 48 * time.Hour
)

// maxReplayControlFrameBytes bounds replay_started and replay_state
// frames: ids, a plate and times, each bounded.
const maxReplayControlFrameBytes = 512

// fuzzReplay checks a parsed replay against the limits and encodes the
// frames the hub would send for it.
func fuzzReplay(t *testing.T, req *replayRequest, lim limits) {
	t.Helper()
	sources := 0
	for _, s := range []string{req.vehicle, req.trip, req.job} {
		if s != "" {
			sources++
		}
	}
	switch {
	case sources != 1:
		t.Fatalf("replay of %d sources: %+v", sources, req)
	case req.speed < 1 || req.speed > lim.maxSpeed:
		t.Fatalf("replay at speed %v, outside [1, %v]", req.speed, lim.maxSpeed)
	case req.vehicle != "" && (!req.to.After(req.from) || req.to.Sub(req.from) > lim.maxRange):
		t.Fatalf("replay of [%s, %s), outside (0, %s]", req.from, req.to, lim.maxRange)
	case req.vehicle == "" && !(req.from.IsZero() && req.to.IsZero()):
		t.Fatalf("replay of a trip or job with a window of its own: %+v", req)
	}
	for _, id := range []string{req.id, req.trip, req.job} {
		if id != "" && !idPattern.MatchString(id) {
			t.Fatalf("replay names %q, not an id", id)
		}
	}
	id := req.id
	if id == "" {
		id = "r18446744073709551615"
	}
	q := timeline.Query{Vehicle: req.vehicle, From: req.from, To: req.to}
	if q.Vehicle == "" {
		q = timeline.Query{Vehicle: strings.Repeat("沪", 16), From: time.Unix(0, 0), To: time.Unix(1, 0)}
	}
	r := &replay{id: id, q: q, trip: req.trip, job: req.job, speed: req.speed}
	checkReplayFrame(t, kindReplayStarted, replayStartedBody(r), FrameReplayStarted, id)
	env := []byte(`{"specversion":"1.0","id":"x","type":"tms.position.reported.v1","data":{"lat":1}}`)
	checkReplayFrame(t, kindReplay, replayFrameBody(kindReplay, id, math.MaxUint64, env), FrameReplay, id)
	checkReplayFrame(t, kindReplayEnded, replayFrameBody(kindReplayEnded, id, math.MaxUint64,
		replayEndedTail(endFailed, "the history could not be read")), FrameReplayEnded, id)
}

// fuzzControl checks a parsed control and encodes its replay_state.
func fuzzControl(t *testing.T, ctl *replayControl, lim limits) {
	t.Helper()
	switch {
	case !slices.Contains([]string{opPause, opResume, opSeek, opSpeed, opStop}, ctl.op):
		t.Fatalf("control %q", ctl.op)
	case !idPattern.MatchString(ctl.id):
		t.Fatalf("control of %q, not an id", ctl.id)
	case ctl.op == opSpeed && (ctl.speed < 1 || ctl.speed > lim.maxSpeed):
		t.Fatalf("speed %v, outside [1, %v]", ctl.speed, lim.maxSpeed)
	}
	r := &replay{id: ctl.id, speed: max(ctl.speed, 1), paused: ctl.op == opPause}
	checkReplayFrame(t, kindReplayState, replayStateBody(r, ctl.to), FrameReplayState, ctl.id)
}

func checkReplayFrame(t *testing.T, k frameKind, body []byte, typ, id string) {
	t.Helper()
	frame := appendFrame(nil, k, math.MaxUint64, body)
	var got struct {
		Type     string `json:"type"`
		ReplayID string `json:"replay_id"`
	}
	decodeFrame(t, frame, &got)
	if got.Type != typ || got.ReplayID != id {
		t.Fatalf("frame %s, want a %s of replay %s", frame, typ, id)
	}
	if k != kindReplay && len(frame) > maxReplayControlFrameBytes {
		t.Fatalf("%s frame of %d bytes, more than %d: %s", typ, len(frame), maxReplayControlFrameBytes, frame)
	}
}

func decodeFrame(t *testing.T, frame []byte, into any) {
	t.Helper()
	if !utf8.Valid(frame) || !json.Valid(frame) {
		t.Fatalf("frame is not valid JSON text: %q", frame)
	}
	if err := json.Unmarshal(frame, into); err != nil {
		t.Fatalf("frame %s: %v", frame, err)
	}
}

// longestRun is the length of the longest substring of s (short) that is
// also in msg.
func longestRun(s, msg string) int {
	best := 0
	for i := range len(s) {
		for j := i + best + 1; j <= len(s) && strings.Contains(msg, s[i:j]); j++ {
			best = j - i
		}
	}
	return best
}
