package position

import (
	"encoding/json"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/tmsfleet/tms/domain/event"
)

func TestNormalizePlate(t *testing.T) {
	t.Parallel()
	cases := []struct {
		in, want, reason string
	}{
		{"沪A12345", "沪A12345", ""},
		{" 沪a12345\t", "沪A12345", ""},
		{"WA-1234", "WA-1234", ""},
		{"", "", ReasonMissingPlate},
		{"   ", "", ReasonMissingPlate},
		{"沪A 12345", "", ReasonInvalidPlate},
		{"沪A12345'--", "", ReasonInvalidPlate},
		{"ABCDEFGHIJKLMNOPQ", "", ReasonInvalidPlate},
		{"\xff\xfe", "", ReasonInvalidPlate},
	}
	for _, c := range cases {
		got, rej := NormalizePlate("plateNum", c.in)
		switch {
		case c.reason == "" && (rej != nil || got != c.want):
			t.Errorf("NormalizePlate(%q) = %q, %v; want %q", c.in, got, rej, c.want)
		case c.reason != "" && (rej == nil || rej.Reason != c.reason || rej.Field != "plateNum"):
			t.Errorf("NormalizePlate(%q) rejection = %v; want %s on plateNum", c.in, rej, c.reason)
		}
	}
}

func TestValidateJudgesTheFutureByTheReceiveTime(t *testing.T) {
	t.Parallel()
	received := time.Date(2026, 11, 27, 8, 0, 0, 0, time.UTC)
	p := Position{Plate: "沪A1", Lat: 31, Lng: 121, ReceivedAt: received}
	for _, c := range []struct {
		ahead time.Duration
		ok    bool
	}{{-48 * time.Hour, true}, {0, true}, {24 * time.Hour, true}, {24*time.Hour + time.Millisecond, false}} {
		p.FixTime = received.Add(c.ahead)
		if rej := p.Validate(); (rej == nil) != c.ok {
			t.Errorf("fix %s after receipt: rejection %v", c.ahead, rej)
		}
	}
}

func TestValidateRejectsNonFiniteCourse(t *testing.T) {
	t.Parallel()
	nan := math.NaN()
	p := Position{Plate: "沪A1", Lat: 31, Lng: 121, FixTime: time.Unix(1, 0), ReceivedAt: time.Unix(1, 0), Course: &nan}
	if rej := p.Validate(); rej == nil || rej.Reason != ReasonNotFinite || rej.Field != "course" {
		t.Errorf("rejection = %v", rej)
	}
}

func TestEventRoundTripsAndIDsAreDeterministic(t *testing.T) {
	t.Parallel()
	course := 12.5
	p := Position{Plate: "沪A1", Lat: 31.5, Lng: 121.25, SpeedKmh: 3, Course: &course,
		FixTime: time.UnixMilli(1764230000123).UTC(), ReceivedAt: time.UnixMilli(1764230001000).UTC(), Flags: []string{FlagNoFixTime}}
	e1, err := p.Event("/a")
	if err != nil {
		t.Fatal(err)
	}
	// Received again later, through another source: the same fix.
	again := p
	again.ReceivedAt = again.ReceivedAt.Add(time.Hour)
	e2, _ := again.Event("/b")
	if e1.ID != e2.ID {
		t.Errorf("ids differ for the same plate and fix time: %s, %s", e1.ID, e2.ID)
	}
	other := p
	other.FixTime = other.FixTime.Add(time.Millisecond)
	if e3, _ := other.Event("/a"); e3.ID == e1.ID {
		t.Error("different fix times share an id")
	}
	if !e1.Time.Equal(p.FixTime) {
		t.Errorf("event time %v is not the fix time %v", e1.Time, p.FixTime)
	}
	raw, _ := json.Marshal(e1)
	decoded, err := event.Decode(raw)
	if err != nil {
		t.Fatal(err)
	}
	back, err := FromEvent(decoded)
	if err != nil {
		t.Fatal(err)
	}
	if back.Plate != p.Plate || !back.FixTime.Equal(p.FixTime) || !back.ReceivedAt.Equal(p.ReceivedAt) ||
		back.Lat != p.Lat || back.Lng != p.Lng || back.SpeedKmh != p.SpeedKmh || *back.Course != course ||
		len(back.Flags) != 1 || back.Flags[0] != FlagNoFixTime {
		t.Errorf("round trip gave %+v, want %+v", back, p)
	}
}

func TestDecodeEventReadsWhatEventWrites(t *testing.T) {
	t.Parallel()
	course := 12.5
	p := Position{Plate: "沪A1", Lat: 31.5, Lng: 121.25, SpeedKmh: 3, Course: &course,
		FixTime: time.UnixMilli(1764230000123).UTC(), ReceivedAt: time.UnixMilli(1764230001000).UTC(), Flags: []string{FlagNoFixTime}}
	e, _ := p.Event("/a")
	raw, _ := json.Marshal(e)
	got, id, ok, err := DecodeEvent(raw)
	if err != nil || !ok || id != e.ID {
		t.Fatalf("DecodeEvent: %v %v %s", err, ok, id)
	}
	if got.Plate != p.Plate || !got.FixTime.Equal(p.FixTime) || !got.ReceivedAt.Equal(p.ReceivedAt) || got.Lat != p.Lat ||
		got.Lng != p.Lng || got.SpeedKmh != p.SpeedKmh || *got.Course != course || len(got.Flags) != 1 {
		t.Errorf("got %+v, want %+v", got, p)
	}
	other := e
	other.Type = "tms.station.upserted.v1"
	raw, _ = json.Marshal(other)
	if _, _, ok, err := DecodeEvent(raw); ok || err != nil {
		t.Errorf("another type: ok %v err %v", ok, err)
	}
	for _, bad := range []string{`not json`, `{"specversion":"0.3","id":"x","type":"tms.position.reported.v1"}`,
		`{"specversion":"1.0","id":"x","type":"tms.position.reported.v1","data":{"lat":1}}`} {
		if _, _, _, err := DecodeEvent([]byte(bad)); err == nil {
			t.Errorf("%s: no error", bad)
		}
	}
}

// TestLargestValidFixEncodesWithinMaxEventBytes encodes the largest
// fix Validate and NormalizePlate let through: sixteen 4-byte letters,
// numbers with the longest decimal forms, a course and a flag.
func TestLargestValidFixEncodesWithinMaxEventBytes(t *testing.T) {
	t.Parallel()
	plate, rej := NormalizePlate("plateNum", strings.Repeat("𠀀", 16))
	if rej != nil {
		t.Fatal(rej)
	}
	course := 359.99999999999994
	at := time.Date(2026, 11, 27, 8, 0, 0, 123456789, time.FixedZone("x", 5*3600+1800))
	p := Position{Plate: plate, FixTime: at, ReceivedAt: at.Add(time.Nanosecond), Lat: -89.99999999999997,
		Lng: -179.99999999999997, SpeedKmh: 299.99999999999994, Course: &course, Flags: []string{FlagNoFixTime}}
	if rej := p.Validate(); rej != nil {
		t.Fatal(rej)
	}
	e, err := p.Event(strings.Repeat("s", 64))
	if err != nil {
		t.Fatal(err)
	}
	value, _ := json.Marshal(e)
	if len(value) > MaxEventBytes {
		t.Errorf("%d bytes, bound %d: %s", len(value), MaxEventBytes, value)
	}
	t.Logf("largest position event: %d bytes of %d", len(value), MaxEventBytes)
}
