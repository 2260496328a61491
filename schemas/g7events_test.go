package schemas

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/tmsfleet/tms/domain/event"
	"github.com/tmsfleet/tms/domain/g7event"
)

// g7Events encodes G7 event reports the way ingest does: a closed stop
// with everything G7 sends, an open idle without its optional parts, and
// an EMS event with coordinates given to more decimals than 7.
func g7Events(t *testing.T) []event.Envelope {
	t.Helper()
	at := time.Date(2026, 11, 27, 8, 0, 0, 0, time.UTC)
	end, push := at.Add(10*time.Minute+250*time.Millisecond), at.Add(11*time.Minute)
	secs, endLat, endLng := 600.0, 31.2305, 121.4738
	var out []event.Envelope
	for _, r := range []g7event.Report{
		{Plate: "沪A12345", Kind: g7event.KindStop, Start: at, End: &end, Seconds: &secs, StartLat: 31.2304, StartLng: 121.4737,
			EndLat: &endLat, EndLng: &endLng, PushTime: &push, ReceivedAt: push.Add(123456789)},
		{Plate: "苏B00001", Kind: g7event.KindIdle, Start: at, StartLat: -33.9, StartLng: 151.2, ReceivedAt: at},
		{Plate: "浙C1", Kind: g7event.KindEMS, Start: at, End: &at, StartLat: 30.1234567, StartLng: 120.1234567, ReceivedAt: at},
	} {
		if rej := r.Validate(g7event.DefaultMaxDuration); rej != nil {
			t.Fatal(rej)
		}
		e, err := r.Event("/tms/ingest/g7")
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, e)
	}
	return out
}

func TestG7EventsMatchTheirSchema(t *testing.T) {
	t.Parallel()
	s := compile(t, "tms.g7.event.reported.v1.json")
	events := g7Events(t)
	for _, e := range events {
		if err := validate(t, s, e); err != nil {
			t.Errorf("%s: %v", e.Data, err)
		}
	}
	// The schema refuses what the contract forbids.
	for name, mutate := range map[string]func(map[string]any){
		"unknown kind":       func(d map[string]any) { d["kind"] = "parking" },
		"missing end_time":   func(d map[string]any) { delete(d, "end_time") },
		"latitude too large": func(d map[string]any) { d["lat"] = 91.0 },
		"unknown field":      func(d map[string]any) { d["startLat"] = 31.0 },
		"negative seconds":   func(d map[string]any) { d["g7_seconds"] = -1 },
		"id not a uuid":      func(d map[string]any) { d["g7_event_id"] = "沪A12345/stop" },
	} {
		var data map[string]any
		_ = json.Unmarshal(events[0].Data, &data)
		mutate(data)
		bad := events[0]
		bad.Data, _ = json.Marshal(data)
		if validate(t, s, bad) == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
