package g7

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/tmsfleet/tms/domain/deadletter"
	"github.com/tmsfleet/tms/domain/event"
	"github.com/tmsfleet/tms/domain/g7event"
	"github.com/tmsfleet/tms/domain/position"
)

func eventParser(t testing.TB) *EventParser {
	t.Helper()
	p, err := NewEventParser(EventConfig{})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestParseEventAcceptsWhatG7Sends(t *testing.T) {
	t.Parallel()
	p := eventParser(t)
	start := received.Add(-20 * time.Minute)
	end := received.Add(-5 * time.Minute)
	push := received.Add(-time.Second)
	closed := []byte(`{"pushTime":` + itoa(push.UnixMilli()) + `,"data":{"plateNum":"沪a12345 ","startTime":` + itoa(start.UnixMilli()) +
		`,"endTime":"` + itoa(end.UnixMilli()) + `","seconds":"900","startLng":121.4737,"startLat":"31.2304","endLng":121.4738,"endLat":31.2305}}`)
	it := p.Parse(g7event.KindStop, closed, received)
	if it.Rejection != nil {
		t.Fatalf("rejected: %v", it.Rejection)
	}
	r := it.Report
	if r.Plate != "沪A12345" || r.Kind != g7event.KindStop || !r.Start.Equal(start.Truncate(time.Millisecond)) ||
		r.End == nil || !r.End.Equal(end.Truncate(time.Millisecond)) || r.Seconds == nil || *r.Seconds != 900 ||
		r.StartLat != 31.2304 || r.StartLng != 121.4737 || r.EndLat == nil || *r.EndLat != 31.2305 || r.EndLng == nil ||
		*r.EndLng != 121.4738 || r.PushTime == nil || !r.PushTime.Equal(push.Truncate(time.Millisecond)) || r.Open() {
		t.Errorf("report = %+v", r)
	}
	if it.Plate != "沪a12345 " {
		t.Errorf("plate as given = %q", it.Plate)
	}

	// The lower-case spellings, and an open event: endTime null, no end
	// coordinates, no pushTime, no seconds.
	for _, open := range []string{`null`, `0`, `""`} {
		lower := []byte(`{"data":{"plateNum":"沪A12345","startTime":` + itoa(start.UnixMilli()) + `,"endTime":` + open +
			`,"startLng":121.4737,"startLat":31.2304,"endlng":null,"endlat":null}}`)
		it = p.Parse(g7event.KindIdle, lower, received)
		if it.Rejection != nil || !it.Report.Open() || it.Report.EndLat != nil || it.Report.PushTime != nil || it.Report.Seconds != nil {
			t.Errorf("open event (endTime %s): %+v %v", open, it.Report, it.Rejection)
		}
	}
	lower := []byte(`{"pushTime":1,"data":{"plateNum":"沪A12345","startTime":` + itoa(start.UnixMilli()) + `,"endTime":` + itoa(end.UnixMilli()) +
		`,"startLng":121.4737,"startLat":31.2304,"endlng":"121.5","endlat":"31.3"}}`)
	it = p.Parse(g7event.KindEMS, lower, received)
	if it.Rejection != nil || it.Report.EndLat == nil || *it.Report.EndLat != 31.3 || *it.Report.EndLng != 121.5 {
		t.Errorf("endlat/endlng: %+v %v", it.Report, it.Rejection)
	}
}

func TestParseEventRejectsWhatCannotBeAnEvent(t *testing.T) {
	t.Parallel()
	p := eventParser(t)
	start := itoa(received.Add(-time.Hour).UnixMilli())
	before := itoa(received.Add(-2 * time.Hour).UnixMilli())
	future := itoa(received.Add(25 * time.Hour).UnixMilli())
	long := itoa(received.Add(-93 * 24 * time.Hour).UnixMilli())
	data := func(fields string) string { return `{"pushTime":1764230000000,"data":{` + fields + `}}` }
	good := `"plateNum":"沪A1","startTime":` + start + `,"startLng":121.4,"startLat":31.2`
	cases := []struct {
		name, payload, reason, field string
	}{
		{"not JSON", `{"data":{`, position.ReasonInvalidJSON, ""},
		{"an array", `[{"plateNum":"沪A1"}]`, g7event.ReasonInvalidEvent, ""},
		{"no data", `{"pushTime":1}`, g7event.ReasonInvalidEvent, "data"},
		{"data null", `{"data":null}`, g7event.ReasonInvalidEvent, "data"},
		{"data an array", `{"data":[{}]}`, g7event.ReasonInvalidEvent, "data"},
		{"data twice", `{"data":{"plateNum":"沪A1"},"data":` + `{}}`, g7event.ReasonInvalidEvent, "data"},
		{"too large", `{"data":{` + strings.Repeat(" ", DefaultMaxEventBytes) + `}}`, position.ReasonTooLarge, ""},
		{"missing plate", data(`"startTime":` + start + `,"startLng":121.4,"startLat":31.2`), position.ReasonMissingPlate, "plateNum"},
		{"plate too long", data(`"plateNum":"沪A123456789012345678","startTime":` + start + `,"startLng":121.4,"startLat":31.2`), position.ReasonInvalidPlate, "plateNum"},
		{"plate with punctuation", data(`"plateNum":"沪A;1","startTime":` + start + `,"startLng":121.4,"startLat":31.2`), position.ReasonInvalidPlate, "plateNum"},
		{"missing start time", data(`"plateNum":"沪A1","startLng":121.4,"startLat":31.2`), g7event.ReasonInvalidTime, "startTime"},
		{"start time garbage", data(`"plateNum":"沪A1","startTime":"soon","startLng":121.4,"startLat":31.2`), g7event.ReasonInvalidTime, "startTime"},
		{"start time in the future", data(`"plateNum":"沪A1","startTime":` + future + `,"startLng":121.4,"startLat":31.2`), g7event.ReasonFutureTime, "startTime"},
		{"end before start", data(good + `,"endTime":` + before), g7event.ReasonEndBeforeStart, "endTime"},
		{"end garbage", data(good + `,"endTime":true`), g7event.ReasonInvalidTime, "endTime"},
		{"push time garbage", `{"pushTime":"x","data":{` + good + `}}`, g7event.ReasonInvalidTime, "pushTime"},
		{"too long", data(`"plateNum":"沪A1","startTime":` + long + `,"endTime":` + start + `,"startLng":121.4,"startLat":31.2`), g7event.ReasonDurationTooLong, "endTime"},
		{"negative seconds", data(good + `,"seconds":-1`), g7event.ReasonSecondsOutOfRange, "seconds"},
		{"seconds not a number", data(good + `,"seconds":"many"`), position.ReasonInvalidNumber, "seconds"},
		{"missing start latitude", data(`"plateNum":"沪A1","startTime":` + start + `,"startLng":121.4`), position.ReasonMissingCoord, "startLat"},
		{"latitude out of range", data(`"plateNum":"沪A1","startTime":` + start + `,"startLng":121.4,"startLat":91`), position.ReasonLatOutOfRange, "startLat"},
		{"longitude out of range", data(`"plateNum":"沪A1","startTime":` + start + `,"startLng":"-180.5","startLat":31`), position.ReasonLngOutOfRange, "startLng"},
		{"null island", data(`"plateNum":"沪A1","startTime":` + start + `,"startLng":0,"startLat":0`), position.ReasonNullIsland, "startLat"},
		{"NaN", data(`"plateNum":"沪A1","startTime":` + start + `,"startLng":"NaN","startLat":31`), position.ReasonNotFinite, "startLng"},
		{"end latitude out of range", data(good + `,"endLat":-95,"endLng":121`), position.ReasonLatOutOfRange, "endLat"},
		{"end latitude alone", data(good + `,"endlat":31.2`), position.ReasonMissingCoord, "endLat"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			it := p.Parse(g7event.KindStop, []byte(c.payload), received)
			if it.Rejection == nil {
				t.Fatalf("accepted %s as %+v", c.payload, it.Report)
			}
			if it.Rejection.Reason != c.reason || it.Rejection.Field != c.field || it.Rejection.Detail == "" {
				t.Errorf("rejection = %v, want reason %s field %q", it.Rejection, c.reason, c.field)
			}
		})
	}
}

// TestEventIdentity: every report of one event (a repeat, the close of
// an open one) carries one g7_event_id, and the envelope ids tell the
// open report from the closed one but not a repeat from its original.
// The event's time is G7's, never the receive time.
func TestEventIdentity(t *testing.T) {
	t.Parallel()
	p := eventParser(t)
	start := itoa(received.Add(-time.Hour).UnixMilli())
	end := received.Add(-10 * time.Minute)
	open := `{"pushTime":1764230000000,"data":{"plateNum":"沪A1","startTime":` + start + `,"endTime":null,"startLng":121.4,"startLat":31.2}}`
	closed := `{"pushTime":1764230060000,"data":{"plateNum":"沪A1","startTime":` + start + `,"endTime":` + itoa(end.UnixMilli()) + `,"startLng":121.4,"startLat":31.2}}`
	var envs []event.Envelope
	for i, payload := range []string{open, open, closed, closed} {
		it := p.Parse(g7event.KindStop, []byte(payload), received.Add(time.Duration(i)*time.Minute))
		if it.Rejection != nil {
			t.Fatal(it.Rejection)
		}
		e, err := it.Report.Event("/test")
		if err != nil {
			t.Fatal(err)
		}
		envs = append(envs, e)
	}
	keys := map[string]bool{}
	for _, e := range envs {
		d, err := g7event.FromEvent(e)
		if err != nil {
			t.Fatal(err)
		}
		keys[d.G7EventID] = true
	}
	if len(keys) != 1 {
		t.Errorf("g7_event_ids %v, want one", keys)
	}
	if envs[0].ID != envs[1].ID || envs[2].ID != envs[3].ID || envs[0].ID == envs[2].ID {
		t.Errorf("envelope ids %s %s %s %s: repeats must share theirs, open and closed differ", envs[0].ID, envs[1].ID, envs[2].ID, envs[3].ID)
	}
	if !envs[0].Time.Equal(received.Add(-time.Hour)) || !envs[2].Time.Equal(end.Truncate(time.Millisecond)) {
		t.Errorf("event times %s, %s: want the start, then the end", envs[0].Time, envs[2].Time)
	}
	// Another kind at the same start is another event.
	idle, stop := p.Parse(g7event.KindIdle, []byte(open), received), p.Parse(g7event.KindStop, []byte(open), received)
	if idle.Report.Key() == stop.Report.Key() {
		t.Error("an idle and a stop event share their identity")
	}
}

// FuzzParseEvent checks that no input panics the event parser, that a
// rejection always names a reason and a bounded detail and makes a dead
// letter of bounded size, and that an accepted report is valid, encodes
// to an event of bounded size with G7's time, and decodes back.
func FuzzParseEvent(f *testing.F) {
	f.Add([]byte(`{"pushTime":1764230000000,"data":{"plateNum":"沪A12345","startTime":1764229000000,"endTime":1764229900000,"seconds":900,"startLng":121.47,"startLat":31.23,"endLng":121.48,"endLat":31.24}}`))
	f.Add([]byte(`{"pushTime":"1764230000000","data":{"plateNum":"沪A12345","startTime":"1764229000000","endTime":null,"startLng":"121.47","startLat":"31.23","endlng":null,"endlat":null}}`))
	f.Add([]byte(`{"data":{"plateNum":"x","startTime":5,"endTime":4,"startLng":1e999,"startLat":"NaN","seconds":-1}}`))
	f.Add([]byte(`{"data":[]}`))
	f.Add([]byte(`{"data":{"plateNum":"沪A1","startTime":"2026-11-27T08:00:00Z","endTime":"2026-11-27T07:00:00Z","startLng":121,"startLat":31}}`))
	p := eventParser(f)
	f.Fuzz(func(t *testing.T, payload []byte) {
		for _, kind := range g7event.Kinds {
			it := p.Parse(kind, payload, received)
			if it.Rejection != nil {
				if it.Rejection.Reason == "" || it.Rejection.Detail == "" || len(it.Rejection.Detail) > position.MaxDetailBytes {
					t.Fatalf("rejection without reason or detail, or too long: %+v", it.Rejection)
				}
				checkLetter(t, deadletter.New("ingest", "mqtt:g7/stop", it.Rejection.Reason, it.Rejection.Field,
					it.Rejection.Detail, payload, received).WithVehicle(it.Plate))
				continue
			}
			r := it.Report
			if rej := r.Validate(g7event.DefaultMaxDuration); rej != nil {
				t.Fatalf("accepted but invalid: %v", rej)
			}
			e, err := r.Event("/tms/ingest/g7")
			if err != nil {
				t.Fatalf("accepted report does not encode: %v", err)
			}
			value, _ := json.Marshal(e)
			if len(value) > g7event.MaxEventBytes {
				t.Fatalf("event of %d bytes: %s", len(value), value)
			}
			if want := r.Start; r.End != nil {
				want = *r.End
				if !e.Time.Equal(want) {
					t.Fatalf("event time %s, want the end %s", e.Time, want)
				}
			} else if !e.Time.Equal(want) {
				t.Fatalf("event time %s, want the start %s", e.Time, want)
			}
			back, err := event.Decode(value)
			if err != nil {
				t.Fatal(err)
			}
			d, err := g7event.FromEvent(back)
			if err != nil || d.Vehicle != r.Plate || d.Kind != kind || d.G7EventID != r.Key() || d.Open != r.Open() {
				t.Fatalf("decoded %+v, %v from %s", d, err, value)
			}
			if !bytes.Contains(value, []byte(`"kind":"`+string(kind)+`"`)) {
				t.Fatalf("no kind in %s", value)
			}
		}
	})
}

// BenchmarkParseEvent reads one closed stop report and encodes its event,
// as ingest does for every message of an event feed.
func BenchmarkParseEvent(b *testing.B) {
	p := eventParser(b)
	payload := []byte(`{"pushTime":1764229900000,"data":{"plateNum":"沪A12345","startTime":1764229000000,"endTime":1764229600000,
		"seconds":600,"startLng":"121.4737","startLat":"31.2304","endlng":121.4738,"endlat":31.2305}}`)
	b.SetBytes(int64(len(payload)))
	b.ReportAllocs()
	for b.Loop() {
		it := p.Parse(g7event.KindStop, payload, received)
		if it.Rejection != nil {
			b.Fatal(it.Rejection)
		}
		if _, err := it.Report.Event("/tms/ingest/g7"); err != nil {
			b.Fatal(err)
		}
	}
}
