package schemas

import (
	"bytes"
	"encoding/json"
	"io/fs"
	"strings"
	"testing"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/tmsfleet/tms/domain/deadletter"
	"github.com/tmsfleet/tms/domain/event"
	"github.com/tmsfleet/tms/domain/position"
)

func compile(t *testing.T, name string) *jsonschema.Schema {
	t.Helper()
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	err := fs.WalkDir(FS, ".", func(path string, _ fs.DirEntry, err error) error {
		if err != nil || path == "." {
			return err
		}
		raw, err := FS.ReadFile(path)
		if err != nil {
			return err
		}
		doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
		if err != nil {
			return err
		}
		return c.AddResource("https://tms.example/schemas/"+path, doc)
	})
	if err != nil {
		t.Fatal(err)
	}
	s, err := c.Compile("https://tms.example/schemas/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func validate(t *testing.T, s *jsonschema.Schema, e event.Envelope) error {
	t.Helper()
	raw, err := json.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	return s.Validate(doc)
}

// positionEvents encodes fixes the way ingest does: one with a course
// and a receive time from a clock (nanoseconds), one without a fix time.
func positionEvents(t *testing.T) []event.Envelope {
	t.Helper()
	at := time.Date(2026, 11, 27, 8, 0, 0, 0, time.UTC)
	course := 90.0
	withCourse := position.Position{Plate: "沪A12345", FixTime: at.Add(250 * time.Millisecond), ReceivedAt: at.Add(time.Second + 123456789),
		Lat: 31.2304567, Lng: 121.407, SpeedKmh: 42.5, Course: &course}
	noTime := position.Position{Plate: "沪A12345", FixTime: at, ReceivedAt: at, Lat: -33.9, Lng: 151.2, Flags: []string{position.FlagNoFixTime}}
	var out []event.Envelope
	for _, p := range []position.Position{withCourse, noTime} {
		e, err := p.Event("/tms/ingest/g7")
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, e)
	}
	return out
}

// letterEvents encodes dead letters of every kind.
func letterEvents(t *testing.T) []event.Envelope {
	t.Helper()
	at := time.Date(2026, 11, 27, 8, 0, 0, 0, time.UTC)
	var out []event.Envelope
	for _, l := range []deadletter.Letter{
		deadletter.New("ingest", "mqtt:g7", position.ReasonLatOutOfRange, "lat", "95 is outside", []byte(`{"lat":95}`), at.Add(987654321)).InBatch(3, deadletter.Hash([]byte("batch"))),
		deadletter.New("ingest", "mqtt:g7", position.ReasonInvalidJSON, "", "not JSON", []byte{0xff}, at),
		deadletter.New("geofence", "kafka:tms.positions/3@42", "malformed_event", "", "not a CloudEvent", []byte("{}"), at),
		deadletter.New("ingest", "mqtt:g7", position.ReasonInvalidPlate, "plateNum", "too long", []byte(strings.Repeat("<", 10_000)), at).
			WithVehicle(strings.Repeat("<", 300)).InBatch(0, deadletter.Hash([]byte("batch"))),
		deadletter.Summary("ingest", "mqtt:g7", deadletter.ReasonTooManyRejections, "4,900 more", 4900,
			map[string]int{position.ReasonLatOutOfRange: 4900}, []byte("[1,1]"), at),
		deadletter.Summary("ingest", "mqtt:g7", deadletter.ReasonTooManyItems, "252,144 more", 252_144, nil, []byte("[1,1]"), at).
			InBatch(10_000, deadletter.Hash([]byte("[1,1]"))),
		deadletter.Refusal("ingest", "mqtt:g7", "tms.positions", []byte("沪A12345"), []byte("{}"), "MESSAGE_TOO_LARGE", at),
		deadletter.Discarded("ingest", "mqtt:g7", position.ReasonTooLarge, "10 MB", deadletter.Hash(nil), at),
	} {
		e, err := l.Event("/tms/ingest/g7")
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, e)
	}
	return out
}

func TestEncodedEventsMatchTheirSchemas(t *testing.T) {
	t.Parallel()
	reported := compile(t, "tms.position.reported.v1.json")
	for _, e := range positionEvents(t) {
		if err := validate(t, reported, e); err != nil {
			t.Errorf("%s: %v", e.Data, err)
		}
	}
	rejected := compile(t, "tms.input.rejected.v1.json")
	for _, e := range letterEvents(t) {
		if err := validate(t, rejected, e); err != nil {
			t.Errorf("%s: %v", e.Data, err)
		}
	}
}

// TestSchemasRejectWhatTheContractForbids guards the schemas themselves: a
// schema that accepted anything would make the test above meaningless.
func TestSchemasRejectWhatTheContractForbids(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 11, 27, 8, 0, 0, 0, time.UTC)
	reported := compile(t, "tms.position.reported.v1.json")
	p := position.Position{Plate: "沪A12345", FixTime: at, ReceivedAt: at, Lat: 31.2, Lng: 121.4}
	e, _ := p.Event("/x")
	for name, mutate := range map[string]func(map[string]any){
		"latitude out of range": func(d map[string]any) { d["lat"] = 91.0 },
		"unknown field":         func(d map[string]any) { d["plateNum"] = "x" },
		"missing flags":         func(d map[string]any) { delete(d, "flags") },
		"unknown flag":          func(d map[string]any) { d["flags"] = []string{"made_up"} },
	} {
		var data map[string]any
		_ = json.Unmarshal(e.Data, &data)
		mutate(data)
		bad := e
		bad.Data, _ = json.Marshal(data)
		if validate(t, reported, bad) == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	wrongType := e
	wrongType.Type = "tms.position.reported.v2"
	if validate(t, reported, wrongType) == nil {
		t.Error("wrong type accepted")
	}
}
