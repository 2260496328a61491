package g7

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/tmsfleet/tms/domain/g7event"
	"github.com/tmsfleet/tms/domain/position"
)

// DefaultMaxEventBytes is TMS_G7_EVENT_MAX_BYTES's default: a G7 event
// message is about 300 bytes; sixteen times that leaves room for fields
// G7 may add, and no more.
const DefaultMaxEventBytes = 4 << 10

// EventConfig bounds the work one event message can make the parser do.
type EventConfig struct {
	// MaxPayloadBytes bounds a message; a larger one is rejected whole
	// (reason too_large) without being read (TMS_G7_EVENT_MAX_BYTES).
	// Default DefaultMaxEventBytes.
	MaxPayloadBytes int
	// MaxDuration is the longest event accepted
	// (TMS_G7_EVENT_MAX_DURATION). Default g7event.DefaultMaxDuration.
	MaxDuration time.Duration
}

func (c *EventConfig) setDefaults() {
	if c.MaxPayloadBytes == 0 {
		c.MaxPayloadBytes = DefaultMaxEventBytes
	}
	if c.MaxDuration == 0 {
		c.MaxDuration = g7event.DefaultMaxDuration
	}
}

// Validate reports every limit that cannot work.
func (c *EventConfig) Validate() error {
	var errs []error
	if c.MaxPayloadBytes < 1 {
		errs = append(errs, fmt.Errorf("g7: event MaxPayloadBytes %d: must be at least 1", c.MaxPayloadBytes))
	}
	if c.MaxDuration < time.Second {
		errs = append(errs, fmt.Errorf("g7: event MaxDuration %s: must be at least 1s", c.MaxDuration))
	}
	return errors.Join(errs...)
}

// EventParser reads the messages of G7's event feeds (stop, idle, EMS)
// within the limits of its EventConfig. It is safe for concurrent use.
type EventParser struct {
	cfg EventConfig
}

// NewEventParser validates cfg (zero fields take their defaults) and
// builds a parser.
func NewEventParser(cfg EventConfig) (*EventParser, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &EventParser{cfg: cfg}, nil
}

// EventItem is a parsed event message: an accepted Report, or a
// Rejection with the plate when it could be read.
type EventItem struct {
	// Plate is the plate as given, when it could be read; it keys a
	// rejected message's dead letter.
	Plate string
	// Report is valid only when Rejection is nil.
	Report g7event.Report
	// Rejection says why the message was not accepted.
	Rejection *position.Rejection
}

// Field names accepted, G7's own first. One of the original system's
// scripts read endlng and endlat in lower case: both spellings are G7's.
var (
	endLngFields = []string{"endLng", "endlng"}
	endLatFields = []string{"endLat", "endlat"}
)

// Parse reads one message of the kind's feed, received at receivedAt:
// {"pushTime": <epoch ms>, "data": {"plateNum", "startTime", "endTime",
// "seconds", "startLng", "startLat", "endLng", "endLat"}}. Numbers may be
// JSON numbers or numeric strings; times are epoch milliseconds (or
// seconds, or RFC 3339), as for positions. An endTime that is null,
// absent, 0 or "" means the event still lasts, and so do end
// coordinates that are null or absent.
func (p *EventParser) Parse(kind g7event.Kind, payload []byte, receivedAt time.Time) EventItem {
	if len(payload) > p.cfg.MaxPayloadBytes {
		return EventItem{Rejection: position.Reject(position.ReasonTooLarge, "",
			"the message has %d bytes, at most %d are accepted (TMS_G7_EVENT_MAX_BYTES)", len(payload), p.cfg.MaxPayloadBytes)}
	}
	trimmed := bytes.TrimSpace(payload)
	if !json.Valid(trimmed) {
		err := json.Unmarshal(trimmed, new(skipValue))
		return EventItem{Rejection: position.Reject(position.ReasonInvalidJSON, "", "%v", err)}
	}
	var envelope map[string]json.RawMessage
	if err := json.Unmarshal(trimmed, &envelope); err != nil || envelope == nil {
		return EventItem{Rejection: position.Reject(g7event.ReasonInvalidEvent, "", "expected an object {\"pushTime\": ..., \"data\": {...}}")}
	}
	if name := repeatedKey(trimmed); name != "" {
		// Readers disagree on which of two to take: take neither.
		return EventItem{Rejection: position.Reject(g7event.ReasonInvalidEvent, name, "%s appears more than once", name)}
	}
	var fields map[string]json.RawMessage
	if raw, ok := envelope["data"]; !ok || string(raw) == "null" {
		return EventItem{Rejection: position.Reject(g7event.ReasonInvalidEvent, "data", "the data object is missing")}
	} else if err := json.Unmarshal(raw, &fields); err != nil || fields == nil {
		return EventItem{Rejection: position.Reject(g7event.ReasonInvalidEvent, "data", "data must be an object")}
	}
	r := g7event.Report{Kind: kind, ReceivedAt: receivedAt}
	it := EventItem{}
	var rej *position.Rejection
	r.Plate, it.Plate, rej = plateOf(fields)
	if rej == nil {
		rej = p.decode(&r, envelope, fields)
	}
	if rej == nil {
		rej = r.Validate(p.cfg.MaxDuration)
	}
	if rej != nil {
		it.Rejection = rej
		return it
	}
	it.Report = r
	return it
}

// plateOf reads and normalises the plate: the normalised plate, the plate
// as given, or why it cannot be one.
func plateOf(fields map[string]json.RawMessage) (string, string, *position.Rejection) {
	field, raw := first(fields, plateFields)
	var plate string
	if raw != nil {
		if err := json.Unmarshal(raw, &plate); err != nil {
			return "", "", position.Reject(position.ReasonInvalidPlate, field, "the plate must be a string")
		}
	}
	if field == "" {
		field = plateFields[0]
	}
	norm, rej := position.NormalizePlate(field, plate)
	return norm, plate, rej
}

func (p *EventParser) decode(r *g7event.Report, envelope, fields map[string]json.RawMessage) *position.Rejection {
	var rej *position.Rejection
	if r.StartLat, rej = requiredNumber(fields, "startLat"); rej != nil {
		return rej
	}
	if r.StartLng, rej = requiredNumber(fields, "startLng"); rej != nil {
		return rej
	}
	if r.EndLat, rej = optionalNumber(fields, endLatFields); rej != nil {
		return rej
	}
	if r.EndLng, rej = optionalNumber(fields, endLngFields); rej != nil {
		return rej
	}
	if r.Seconds, rej = optionalNumber(fields, []string{"seconds"}); rej != nil {
		return rej
	}
	v, ok := fields["startTime"]
	if !ok || string(v) == "null" {
		return position.Reject(g7event.ReasonInvalidTime, "startTime", "startTime is missing")
	}
	start, rej := eventTime("startTime", v)
	if rej != nil {
		return rej
	}
	r.Start = start
	if r.End, rej = optionalTime(fields, "endTime"); rej != nil {
		return rej
	}
	if r.PushTime, rej = optionalTime(envelope, "pushTime"); rej != nil {
		return rej
	}
	return nil
}

// optionalNumber reads the first of names present and not null.
func optionalNumber(fields map[string]json.RawMessage, names []string) (*float64, *position.Rejection) {
	name, v := first(fields, names)
	if v == nil {
		return nil, nil
	}
	f, rej := Number(name, v)
	if rej != nil {
		return nil, rej
	}
	return &f, nil
}

// optionalTime reads a time that may be absent: null, absent, 0 and ""
// are none (G7 sends an open event's endTime so).
func optionalTime(fields map[string]json.RawMessage, name string) (*time.Time, *position.Rejection) {
	v, ok := fields[name]
	if !ok {
		return nil, nil
	}
	switch string(bytes.TrimSpace(v)) {
	case "null", "0", `""`, `"0"`:
		return nil, nil
	}
	t, rej := eventTime(name, v)
	if rej != nil {
		return nil, rej
	}
	return &t, nil
}

// eventTime reads a time as a fix time is read, with the event's reason
// codes.
func eventTime(name string, v json.RawMessage) (time.Time, *position.Rejection) {
	t, rej := fixTime(name, v)
	if rej != nil {
		return time.Time{}, position.Reject(g7event.ReasonInvalidTime, name, "%s", rej.Detail)
	}
	return t, nil
}

// repeatedKey returns "data" or "pushTime" when the object (valid JSON)
// has it more than once at its top level, "" otherwise.
func repeatedKey(object []byte) string {
	dec := json.NewDecoder(bytes.NewReader(object))
	if _, err := dec.Token(); err != nil { // {
		return ""
	}
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return ""
		}
		key, _ := tok.(string)
		if (key == "data" || key == "pushTime") && seen[key] {
			return key
		}
		seen[key] = true
		if err := dec.Decode(new(skipValue)); err != nil {
			return ""
		}
	}
	return ""
}
