package ws

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/tmsfleet/tms/domain/event"
	"github.com/tmsfleet/tms/projections/vehicles"
)

func TestParseSubscribe(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		msg   string
		want  Filter
		field string // of the refusal; "-" for a refusal without one
	}{
		{name: "everything", msg: `{"subscribe": {}}`, want: Filter{}},
		{name: "nulls are absent", msg: `{"subscribe": {"vehicles": null, "bbox": null, "types": null, "stations": null}}`, want: Filter{}},
		{
			name: "normalised",
			msg: `{"subscribe": {"vehicles": [" 沪a12345", "沪A12345", "京b-1"], "bbox": [170, -50, -170, -30],
				"types": ["tms.position.reported.v1", "tms.position.reported.v1"], "stations": [" S1 ", "S1", "S2"]}}`,
			want: Filter{Vehicles: []string{"沪A12345", "京B-1"}, BBox: []float64{170, -50, -170, -30},
				Types: []string{"tms.position.reported.v1"}, Stations: []string{"S1", "S2"}},
		},
		{name: "not json", msg: `{`, field: "-"},
		{name: "not an object", msg: `[]`, field: "-"},
		{name: "null", msg: `null`, field: "-"},
		{name: "unknown message", msg: `{"ping": 1}`, field: "-"},
		{name: "subscribe and more", msg: `{"subscribe": {}, "ping": 1}`, field: "-"},
		{name: "subscribe null", msg: `{"subscribe": null}`, field: "subscribe"},
		{name: "subscribe string", msg: `{"subscribe": "all"}`, field: "subscribe"},
		{name: "unknown filter", msg: `{"subscribe": {"plates": ["沪A12345"]}}`, field: "plates"},
		{name: "empty vehicles", msg: `{"subscribe": {"vehicles": []}}`, field: "vehicles"},
		{name: "bad plate", msg: `{"subscribe": {"vehicles": ["沪A12345", "沪A#1"]}}`, field: "vehicles"},
		{name: "blank plate", msg: `{"subscribe": {"vehicles": ["  "]}}`, field: "vehicles"},
		{name: "plates not strings", msg: `{"subscribe": {"vehicles": [1]}}`, field: "vehicles"},
		{name: "bbox of three", msg: `{"subscribe": {"bbox": [1, 2, 3]}}`, field: "bbox"},
		{name: "bbox of strings", msg: `{"subscribe": {"bbox": ["1", "2", "3", "4"]}}`, field: "bbox"},
		{name: "bbox lng", msg: `{"subscribe": {"bbox": [-180.5, 0, 10, 10]}}`, field: "bbox"},
		{name: "bbox lat", msg: `{"subscribe": {"bbox": [0, -91, 10, 10]}}`, field: "bbox"},
		{name: "bbox upside down", msg: `{"subscribe": {"bbox": [0, 10, 10, 0]}}`, field: "bbox"},
		{name: "empty types", msg: `{"subscribe": {"types": []}}`, field: "types"},
		{name: "type without version", msg: `{"subscribe": {"types": ["tms.position.reported"]}}`, field: "types"},
		{name: "type with space", msg: `{"subscribe": {"types": ["tms.position reported.v1"]}}`, field: "types"},
		{name: "empty station", msg: `{"subscribe": {"stations": [""]}}`, field: "stations"},
		{name: "station id not as the API makes them", msg: `{"subscribe": {"stations": ["S 1"]}}`, field: "stations"},
		{name: "null entry", msg: `{"subscribe": {"types": ["tms.position.reported.v1", null]}}`, field: "types"},
		{name: "list past the cap", msg: `{"subscribe": {"stations": [` + strings.Repeat(`"S1",`, 1000) + `"S1"]}}`, field: "stations"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, rerr := parseMessage([]byte(tc.msg), testLimits(1000))
			if tc.field != "" {
				want := tc.field
				if want == "-" {
					want = ""
				}
				if rerr == nil || rerr.Field != want || rerr.Detail == "" {
					t.Fatalf("parse: %+v, want a refusal of field %q", rerr, want)
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
			if m.subscribe == nil || !reflect.DeepEqual(m.subscribe.spec, tc.want) {
				t.Errorf("message %+v, want the filter %+v", m, tc.want)
			}
		})
	}
}

func TestMatch(t *testing.T) {
	t.Parallel()
	at := time.Date(2025, 3, 1, 8, 0, 0, 0, time.UTC)
	ev := func(typ, subject, data string) *published {
		e := event.Envelope{SpecVersion: event.SpecVersion, ID: "x", Source: "/test", Type: typ, Subject: subject,
			Time: at, DataContentType: event.ContentType, Data: json.RawMessage(data)}
		raw, err := json.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		return inspect(&e, raw, at)
	}
	position := func(subject string, lat, lng float64) *published {
		b, _ := json.Marshal(map[string]any{"vehicle": subject, "lat": lat, "lng": lng})
		return ev(event.TypePositionReported, subject, string(b))
	}
	sub := func(body string) *filter {
		m, rerr := parseMessage([]byte(`{"subscribe": `+body+`}`), testLimits(1000))
		if rerr != nil {
			t.Fatalf("%s: %+v", body, rerr)
		}
		return m.subscribe
	}
	for _, tc := range []struct {
		name   string
		filter string
		ev     *published
		want   bool
	}{
		{"no filter", `{}`, position("A1", 31, 121), true},
		{"vehicle in", `{"vehicles": ["a1"]}`, position("A1", 31, 121), true},
		{"vehicle out", `{"vehicles": ["A2"]}`, position("A1", 31, 121), false},
		{"vehicle: station event", `{"vehicles": ["A1"]}`, ev(event.TypeStationDeleted, "S1", `{"id":"S1"}`), false},
		{"type in", `{"types": ["tms.position.reported.v1"]}`, position("A1", 31, 121), true},
		{"type out", `{"types": ["tms.alert.raised.v1"]}`, position("A1", 31, 121), false},
		{"bbox in", `{"bbox": [120, 30, 122, 32]}`, position("A1", 31, 121), true},
		{"bbox min corner", `{"bbox": [120, 30, 122, 32]}`, position("A1", 30, 120), true},
		{"bbox north of", `{"bbox": [120, 30, 122, 32]}`, position("A1", 32.0001, 121), false},
		{"bbox east of", `{"bbox": [120, 30, 122, 32]}`, position("A1", 31, 122.0001), false},
		{"antimeridian east side", `{"bbox": [170, -50, -170, -30]}`, position("A1", -40, 179.9), true},
		{"antimeridian west side", `{"bbox": [170, -50, -170, -30]}`, position("A1", -40, -179.9), true},
		{"antimeridian outside", `{"bbox": [170, -50, -170, -30]}`, position("A1", -40, 160), false},
		{"antimeridian far side", `{"bbox": [170, -50, -170, -30]}`, position("A1", -40, -160), false},
		{"bbox: no coordinates pass", `{"bbox": [120, 30, 122, 32]}`, ev(event.TypeJobCreated, "A1", `{"job_id":"J1"}`), true},
		{"bbox: null coordinates pass", `{"bbox": [120, 30, 122, 32]}`, ev(event.TypeAlertRaised, "A1", `{"lat":null,"lng":null}`), true},
		{"bbox: data not an object passes", `{"bbox": [120, 30, 122, 32]}`, ev(event.TypeJobCancelled, "A1", `"x"`), true},
		{"bbox: lat only", `{"bbox": [120, 30, 122, 32]}`, ev(event.TypeAlertRaised, "A1", `{"lat":31}`), false},
		{"bbox: string coordinates", `{"bbox": [120, 30, 122, 32]}`, ev(event.TypeAlertRaised, "A1", `{"lat":"31","lng":"121"}`), false},
		{"station in", `{"stations": ["S1"]}`, ev(event.TypeEnteredStation, "A1", `{"station_id":"S1","lat":31,"lng":121}`), true},
		{"station out", `{"stations": ["S2"]}`, ev(event.TypeEnteredStation, "A1", `{"station_id":"S1"}`), false},
		{"station event in", `{"stations": ["S1"]}`, ev(event.TypeStationUpserted, "S1", `{"id":"S1"}`), true},
		{"station: positions never", `{"stations": ["S1"]}`, position("A1", 31, 121), false},
		{"all of them", `{"vehicles": ["A1"], "types": ["tms.vehicle.entered_station.v1"], "stations": ["S1"], "bbox": [120, 30, 122, 32]}`,
			ev(event.TypeEnteredStation, "A1", `{"station_id":"S1","lat":31,"lng":121}`), true},
		{"all but one", `{"vehicles": ["A1"], "types": ["tms.vehicle.entered_station.v1"], "stations": ["S1"], "bbox": [120, 30, 122, 32]}`,
			ev(event.TypeEnteredStation, "A1", `{"station_id":"S1","lat":35,"lng":121}`), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := sub(tc.filter).match(tc.ev); got != tc.want {
				t.Errorf("match = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestInspectOrigin(t *testing.T) {
	t.Parallel()
	fallback := time.Date(2025, 3, 1, 9, 0, 0, 0, time.UTC)
	received := time.Date(2025, 3, 1, 8, 0, 1, 500, time.UTC)
	for _, tc := range []struct {
		data string
		want time.Time
	}{
		{`{"received_at":"` + received.Format(time.RFC3339Nano) + `"}`, received},
		{`{"received_at":"yesterday"}`, fallback},
		{`{}`, fallback},
	} {
		e := event.Envelope{Type: event.TypePositionReported, Subject: "A1", Data: json.RawMessage(tc.data)}
		if got := inspect(&e, []byte(`{}`), fallback).origin; !got.Equal(tc.want) {
			t.Errorf("%s: origin %s, want %s", tc.data, got, tc.want)
		}
	}
}

func TestFrameEncoding(t *testing.T) {
	t.Parallel()
	envelope := []byte(`{"specversion":"1.0","id":"x"}`)
	got := string(appendFrame(nil, kindEvent, 42, eventBody(envelope)))
	if want := `{"type":"event","seq":42,"event":{"specversion":"1.0","id":"x"}}`; got != want {
		t.Errorf("event frame %s, want %s", got, want)
	}
	got = string(appendFrame(nil, kindSubscribed, 1, subscribedBody(&Filter{Vehicles: []string{"沪A12345"}})))
	if want := `{"type":"subscribed","seq":1,"filter":{"vehicles":["沪A12345"]},"counts":{"vehicles":1}}`; got != want {
		t.Errorf("subscribed frame %s, want %s", got, want)
	}
	got = string(appendFrame(nil, kindError, 7, refuse("bbox", "bad").body()))
	if want := `{"type":"error","seq":7,"field":"bbox","detail":"bad"}`; got != want {
		t.Errorf("error frame %s, want %s", got, want)
	}
	got = string(appendFrame(nil, kindSnapshot, 2, snapshotBody(nil, 10, 1<<20)))
	if want := `{"type":"snapshot","seq":2,"vehicles":[]}`; got != want {
		t.Errorf("empty snapshot frame %s, want %s", got, want)
	}
}

func TestSnapshotCut(t *testing.T) {
	t.Parallel()
	at := time.Date(2025, 3, 1, 8, 0, 0, 0, time.UTC)
	fleet := make([]vehicles.Vehicle, 100)
	for i := range fleet {
		fleet[i] = vehicles.Vehicle{Plate: fmt.Sprintf("沪A%05d", i), FixTime: at, ReceivedAt: at, Lat: 31, Lng: 121}
	}
	type snapshot struct {
		Vehicles  []SnapshotVehicle `json:"vehicles"`
		Truncated bool              `json:"truncated"`
		Detail    string            `json:"detail"`
	}
	decode := func(body []byte) snapshot {
		t.Helper()
		var s snapshot
		if err := json.Unmarshal(appendFrame(nil, kindSnapshot, 1, body), &s); err != nil {
			t.Fatalf("%s: %v", body, err)
		}
		return s
	}
	if s := decode(snapshotBody(fleet, 100, 1<<20)); len(s.Vehicles) != 100 || s.Truncated || s.Detail != "" {
		t.Errorf("at the row limit: %d vehicles, truncated %v %q; want all, complete", len(s.Vehicles), s.Truncated, s.Detail)
	}
	if s := decode(snapshotBody(fleet, 10, 1<<20)); len(s.Vehicles) != 10 || !s.Truncated || !strings.Contains(s.Detail, "more than 10 vehicles") ||
		s.Vehicles[9].Plate != "沪A00009" {
		t.Errorf("past the row limit: %d vehicles, truncated %v %q; want the first 10, truncated", len(s.Vehicles), s.Truncated, s.Detail)
	}
	const budget = 4 << 10
	body := snapshotBody(fleet, 100, budget)
	s := decode(body)
	if len(body) > budget || len(s.Vehicles) == 0 || len(s.Vehicles) >= 100 || !s.Truncated || !strings.Contains(s.Detail, "size limit") {
		t.Errorf("past the byte budget: %d bytes, %d vehicles, truncated %v %q; want at most %d bytes, cut",
			len(body), len(s.Vehicles), s.Truncated, s.Detail, budget)
	}
}

func TestExcerptAndClip(t *testing.T) {
	t.Parallel()
	for _, in := range []string{"", "S1", strings.Repeat("<", 1000), strings.Repeat("\x00", 100), strings.Repeat("沪", 100), "\xff\xfe\xfd" + strings.Repeat("a", 50)} {
		e := excerpt(in)
		quoted, _, _ := strings.Cut(e, "… (")
		if len(quoted) > maxExcerptBytes || !utf8.ValidString(e) {
			t.Errorf("excerpt of %d bytes: %q (%d bytes quoted)", len(in), e, len(quoted))
		}
		if len(strconv.Quote(in)) <= maxExcerptBytes && e != strconv.Quote(in) {
			t.Errorf("excerpt of a short %q: %s, want it whole", in, e)
		}
		if c := clip(in, 20); len(c) > 20 || !utf8.ValidString(c) {
			t.Errorf("clip of %d bytes to 20: %q", len(in), c)
		}
	}
}

// BenchmarkParseLongList parses subscribes with lists of n distinct
// plates (the cap raised to let them through): the time per entry must
// not grow with n, as it did when duplicates were found by a linear scan.
func BenchmarkParseLongList(b *testing.B) {
	for _, n := range []int{1000, 10000, 100000} {
		plates := make([]string, n)
		for i := range plates {
			plates[i] = fmt.Sprintf("沪A%06d", i)
		}
		msg, err := json.Marshal(map[string]any{"subscribe": map[string]any{"vehicles": plates}})
		if err != nil {
			b.Fatal(err)
		}
		b.Run(fmt.Sprintf("entries=%d", n), func(b *testing.B) {
			for b.Loop() {
				if _, rerr := parseMessage(msg, testLimits(n)); rerr != nil {
					b.Fatal(rerr)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/entry")
		})
	}
}

// testLimits are the hub's default limits with filter lists capped at
// maxEntries.
func testLimits(maxEntries int) limits {
	return limits{maxEntries: maxEntries, maxSpeed: 1000, maxRange: 366 * 24 * time.Hour}
}
