package ws

import (
	"encoding/json"
	"math"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/tmsfleet/tms/projections/vehicles"
)

// fuzzMaxEntries is the filter-list cap the fuzz target parses with:
// small, so that the fuzzer reaches it.
const fuzzMaxEntries = 20

// FuzzProtocol feeds arbitrary client messages to parseMessage and
// encodes every reply the hub would send for them: the error frame of a
// refusal, or the subscribed frame of a filter, and a snapshot frame of
// vehicles made from the input. Nothing may panic; every frame is valid
// JSON of bounded size; an error frame repeats at most an excerpt of the
// input (no longer run of it than an excerpt); a subscribed frame
// repeats only short lists, and counts them all. Its corpus is in
// testdata/fuzz/FuzzProtocol; `make fuzz` runs it.
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
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, msg []byte) {
		if len(msg) > 64<<10 {
			return // the hub closes the connection before it parses
		}
		filt, rerr := parseMessage(msg, fuzzMaxEntries)
		if rerr != nil {
			frame := appendFrame(nil, kindError, math.MaxUint64, rerr.body())
			var got struct {
				Type   string `json:"type"`
				Field  string `json:"field"`
				Index  *int   `json:"index"`
				Detail string `json:"detail"`
			}
			decodeFrame(t, frame, &got)
			switch {
			case len(frame) > maxErrorFrameBytes:
				t.Fatalf("error frame of %d bytes, more than %d: %s", len(frame), maxErrorFrameBytes, frame)
			case got.Type != FrameError || got.Detail == "":
				t.Fatalf("error frame %s", frame)
			case len(got.Field) > maxFieldBytes || len(got.Detail) > maxDetailBytes:
				t.Fatalf("error frame members too long: %s", frame)
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
