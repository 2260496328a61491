package g7

import (
	"bytes"
	"encoding/json"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/tmsfleet/tms/domain/position"
)

// MaxPayloadBytes bounds one MQTT message. A larger one is rejected whole
// (reason too_large) rather than risk a dead-letter record Kafka refuses.
const MaxPayloadBytes = 512 << 10

// Item is one element of a batch: either an accepted Position or a
// Rejection, with the item's raw bytes as received.
type Item struct {
	// Raw is the item's JSON exactly as it arrived.
	Raw []byte
	// Plate is the item's plate as given, when it could be read; it keys
	// a rejected item's dead-letter record.
	Plate string
	// Position is the accepted fix; valid only when Rejection is nil.
	Position position.Position
	// Rejection says why the item was not accepted.
	Rejection *position.Rejection
}

// Batch is a parsed message: its items, or, when the message as a whole
// could not be read, a Rejection that applies to all of its bytes.
type Batch struct {
	Items     []Item
	Rejection *position.Rejection
}

// Parse reads one MQTT message received at receivedAt. It never fails as a
// whole on a bad item. Besides G7's {"data": [...]}, a bare JSON array of
// items is accepted, as some brokers relay that way.
func Parse(payload []byte, receivedAt time.Time) Batch {
	if len(payload) > MaxPayloadBytes {
		return Batch{Rejection: position.Reject(position.ReasonTooLarge, "",
			"the message has %d bytes, at most %d are accepted", len(payload), MaxPayloadBytes)}
	}
	items, rej := splitBatch(payload)
	if rej != nil {
		return Batch{Rejection: rej}
	}
	b := Batch{Items: make([]Item, len(items))}
	for i, raw := range items {
		b.Items[i] = parseItem(raw, receivedAt)
	}
	return b
}

func splitBatch(payload []byte) ([]json.RawMessage, *position.Rejection) {
	trimmed := bytes.TrimSpace(payload)
	if len(trimmed) > 0 && trimmed[0] == '[' {
		var items []json.RawMessage
		if err := json.Unmarshal(trimmed, &items); err != nil {
			return nil, position.Reject(position.ReasonInvalidJSON, "", "%v", err)
		}
		return items, nil
	}
	var envelope struct {
		Data json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(trimmed, &envelope); err != nil {
		if !json.Valid(trimmed) {
			return nil, position.Reject(position.ReasonInvalidJSON, "", "%v", err)
		}
		return nil, position.Reject(position.ReasonInvalidBatch, "", "expected an object {\"data\": [...]} or an array of items")
	}
	if len(envelope.Data) == 0 || string(envelope.Data) == "null" {
		return nil, position.Reject(position.ReasonInvalidBatch, "data", "the data array is missing")
	}
	var items []json.RawMessage
	if err := json.Unmarshal(envelope.Data, &items); err != nil {
		return nil, position.Reject(position.ReasonInvalidBatch, "data", "data must be an array of items")
	}
	return items, nil
}

// Field names accepted for each value, G7's own first. G7's APIs name
// the fix time time or gps_time.
var (
	plateFields  = []string{"plateNum", "plate_num", "plate"}
	timeFields   = []string{"time", "gps_time", "gpsTime"}
	courseFields = []string{"course", "direction"}
)

func parseItem(raw json.RawMessage, receivedAt time.Time) Item {
	it := Item{Raw: raw}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(raw, &fields); err != nil || fields == nil {
		it.Rejection = position.Reject(position.ReasonInvalidJSON, "", "an item must be a JSON object")
		return it
	}
	p, plate, rej := decodeFields(fields, receivedAt)
	it.Plate = plate
	if rej == nil {
		rej = p.Validate()
	}
	if rej != nil {
		it.Rejection = rej
		return it
	}
	it.Position = p
	return it
}

func decodeFields(fields map[string]json.RawMessage, receivedAt time.Time) (position.Position, string, *position.Rejection) {
	p := position.Position{ReceivedAt: receivedAt}
	plateField, plateRaw := first(fields, plateFields)
	var plate string
	if plateRaw != nil {
		if err := json.Unmarshal(plateRaw, &plate); err != nil {
			return p, "", position.Reject(position.ReasonInvalidPlate, plateField, "the plate must be a string")
		}
	}
	if plateField == "" {
		plateField = plateFields[0]
	}
	norm, rej := position.NormalizePlate(plateField, plate)
	if rej != nil {
		return p, plate, rej
	}
	p.Plate = norm

	var err *position.Rejection
	if p.Lat, err = requiredNumber(fields, "lat"); err != nil {
		return p, plate, err
	}
	if p.Lng, err = requiredNumber(fields, "lng"); err != nil {
		return p, plate, err
	}
	if p.SpeedKmh, err = requiredNumber(fields, "speed"); err != nil {
		return p, plate, err
	}
	if name, v := first(fields, courseFields); v != nil {
		c, rej := number(name, v)
		if rej != nil {
			return p, plate, rej
		}
		p.Course = &c
	}
	if name, v := first(fields, timeFields); v != nil {
		t, rej := fixTime(name, v)
		if rej != nil {
			return p, plate, rej
		}
		p.FixTime = t
	} else {
		// The original feed carried no fix time: the receive time stands
		// in, and the event says so.
		p.FixTime = receivedAt.Truncate(time.Millisecond)
		p.Flags = []string{position.FlagNoFixTime}
	}
	return p, plate, nil
}

// first returns the first of names present with a non-null value.
func first(fields map[string]json.RawMessage, names []string) (string, json.RawMessage) {
	for _, n := range names {
		if v, ok := fields[n]; ok && string(v) != "null" {
			return n, v
		}
	}
	return "", nil
}

func requiredNumber(fields map[string]json.RawMessage, name string) (float64, *position.Rejection) {
	v, ok := fields[name]
	if !ok || string(v) == "null" {
		return 0, position.Reject(position.ReasonMissingCoord, name, "%s is missing", name)
	}
	return number(name, v)
}

// number reads a JSON number or a string holding one ("31.2"), as G7
// sends both.
func number(name string, v json.RawMessage) (float64, *position.Rejection) {
	text := string(v)
	if len(v) > 0 && v[0] == '"' {
		var s string
		if err := json.Unmarshal(v, &s); err != nil {
			return 0, position.Reject(position.ReasonInvalidNumber, name, "%s is not a number", name)
		}
		text = strings.TrimSpace(s)
	}
	f, err := strconv.ParseFloat(text, 64)
	if err != nil {
		if ne, ok := err.(*strconv.NumError); ok && ne.Err == strconv.ErrRange {
			return 0, position.Reject(position.ReasonNotFinite, name, "%q overflows a float64", text)
		}
		return 0, position.Reject(position.ReasonInvalidNumber, name, "%q is not a number", truncate(text, 40))
	}
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, position.Reject(position.ReasonNotFinite, name, "%q is not a finite number", truncate(text, 40))
	}
	return f, nil
}

// epochSecondsBelow separates epoch seconds from epoch milliseconds: no
// millisecond timestamp of a real fix is below it (it is 1973 in ms, and
// the year 5138 in seconds).
const epochSecondsBelow = 1e11

// fixTime reads epoch milliseconds (number or numeric string; values small
// enough to be epoch seconds are taken as seconds) or an RFC 3339 string.
// Fix times keep millisecond precision, G7's own.
func fixTime(name string, v json.RawMessage) (time.Time, *position.Rejection) {
	if len(v) > 0 && v[0] == '"' {
		var s string
		if err := json.Unmarshal(v, &s); err == nil {
			if t, err := time.Parse(time.RFC3339Nano, strings.TrimSpace(s)); err == nil {
				return t.UTC().Truncate(time.Millisecond), nil
			}
		}
	}
	f, rej := number(name, v)
	if rej != nil {
		return time.Time{}, position.Reject(position.ReasonInvalidTime, name,
			"expected epoch milliseconds or an RFC 3339 time, got %s", truncate(string(v), 40))
	}
	if f <= 0 || f >= 1e15 {
		return time.Time{}, position.Reject(position.ReasonInvalidTime, name, "%v is not a plausible epoch time", f)
	}
	if f < epochSecondsBelow {
		f *= 1000
	}
	return time.UnixMilli(int64(math.Round(f))).UTC(), nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
