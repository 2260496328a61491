package g7

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/tmsfleet/tms/domain/position"
)

// Defaults of Config.
const (
	// DefaultMaxPayloadBytes is also the default of TMS_MQTT_MAX_PACKET_BYTES,
	// the limit of the MQTT packet that carries a message: ingest sets
	// MaxPayloadBytes from that setting.
	DefaultMaxPayloadBytes = 1 << 20
	// DefaultMaxItems is TMS_G7_MAX_ITEMS's default: ten times the
	// largest batch a G7 device or tms's simulator sends.
	DefaultMaxItems = 10_000
)

// Config bounds the work one message can make the parser do.
type Config struct {
	// MaxPayloadBytes bounds a message; a larger one is rejected whole
	// (reason too_large) without being read. Default
	// DefaultMaxPayloadBytes.
	MaxPayloadBytes int
	// MaxItems bounds the items read from one message. The items past it
	// are counted (Batch.Excess) but never read or kept, so that a
	// message of a million tiny items costs one pass over its bytes and
	// no more. Default DefaultMaxItems.
	MaxItems int
}

func (c *Config) setDefaults() {
	if c.MaxPayloadBytes == 0 {
		c.MaxPayloadBytes = DefaultMaxPayloadBytes
	}
	if c.MaxItems == 0 {
		c.MaxItems = DefaultMaxItems
	}
}

// Validate reports every limit that cannot work.
func (c *Config) Validate() error {
	var errs []error
	if c.MaxPayloadBytes < 1 {
		errs = append(errs, fmt.Errorf("g7: MaxPayloadBytes %d: must be at least 1", c.MaxPayloadBytes))
	}
	if c.MaxItems < 1 {
		errs = append(errs, fmt.Errorf("g7: MaxItems %d: must be at least 1", c.MaxItems))
	}
	return errors.Join(errs...)
}

// Parser reads messages within the limits of its Config. It is safe for
// concurrent use.
type Parser struct {
	cfg Config
}

// NewParser validates cfg (zero fields take their defaults) and builds a
// parser.
func NewParser(cfg Config) (*Parser, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Parser{cfg: cfg}, nil
}

// Item is one element of a batch: either an accepted Position or a
// Rejection, with the item's raw bytes as received.
type Item struct {
	// Raw is the item's JSON exactly as it arrived: a slice of the
	// message's payload.
	Raw []byte
	// Plate is the item's plate as given, when it could be read; it keys
	// a rejected item's dead-letter record (cut to a bound first: it is
	// the publisher's to choose, of any length).
	Plate string
	// Position is the accepted fix; valid only when Rejection is nil.
	Position position.Position
	// Rejection says why the item was not accepted.
	Rejection *position.Rejection
}

// Batch is a parsed message: its items, or, when the message as a whole
// could not be read, a Rejection that applies to all of its bytes.
type Batch struct {
	// Items are the first MaxItems items, in order.
	Items []Item
	// Excess counts the items past MaxItems, which were not read.
	Excess int
	// Rejection, when set, applies to the whole message: it has no items.
	Rejection *position.Rejection
}

var defaultParser = func() *Parser {
	p, err := NewParser(Config{})
	if err != nil {
		panic(err)
	}
	return p
}()

// Parse reads one message with the default limits; see Parser.Parse.
func Parse(payload []byte, receivedAt time.Time) Batch {
	return defaultParser.Parse(payload, receivedAt)
}

// Parse reads one MQTT message received at receivedAt. It never fails as a
// whole on a bad item. Besides G7's {"data": [...]}, a bare JSON array of
// items is accepted, as some brokers relay that way.
//
// The message is read as a stream of tokens: the batch array is never
// decoded whole, each item is a slice of payload, and past MaxItems items
// are only counted. Whatever the message, the work is one validating pass
// over its bytes plus the decoding of at most MaxItems items.
func (p *Parser) Parse(payload []byte, receivedAt time.Time) Batch {
	if len(payload) > p.cfg.MaxPayloadBytes {
		return Batch{Rejection: position.Reject(position.ReasonTooLarge, "",
			"the message has %d bytes, at most %d are accepted", len(payload), p.cfg.MaxPayloadBytes)}
	}
	trimmed := bytes.TrimSpace(payload)
	if !json.Valid(trimmed) {
		// Only now is the error's text worth its cost. The scanner stops
		// at the first error, so the text is short (and Reject bounds it).
		err := json.Unmarshal(trimmed, new(skipValue))
		return Batch{Rejection: position.Reject(position.ReasonInvalidJSON, "", "%v", err)}
	}
	dec := json.NewDecoder(bytes.NewReader(trimmed))
	tok, err := dec.Token()
	if err != nil {
		return Batch{Rejection: position.Reject(position.ReasonInvalidJSON, "", "%v", err)}
	}
	switch tok {
	case json.Delim('['):
		return p.items(dec, trimmed, receivedAt)
	case json.Delim('{'):
		var b *Batch
		for dec.More() {
			key, err := dec.Token()
			if err != nil {
				return Batch{Rejection: position.Reject(position.ReasonInvalidJSON, "", "%v", err)}
			}
			if key != "data" {
				if err := dec.Decode(new(skipValue)); err != nil {
					return Batch{Rejection: position.Reject(position.ReasonInvalidJSON, "", "%v", err)}
				}
				continue
			}
			if b != nil {
				// Readers disagree on which of two "data" to take: take
				// neither.
				return Batch{Rejection: position.Reject(position.ReasonInvalidBatch, "data", "the data array appears more than once")}
			}
			tok, err := dec.Token()
			switch {
			case err != nil:
				return Batch{Rejection: position.Reject(position.ReasonInvalidJSON, "", "%v", err)}
			case tok == nil:
				return Batch{Rejection: position.Reject(position.ReasonInvalidBatch, "data", "the data array is missing")}
			case tok != json.Delim('['):
				return Batch{Rejection: position.Reject(position.ReasonInvalidBatch, "data", "data must be an array of items")}
			}
			items := p.items(dec, trimmed, receivedAt)
			if items.Rejection != nil {
				return items
			}
			b = &items
			if _, err := dec.Token(); err != nil { // the array's end
				return Batch{Rejection: position.Reject(position.ReasonInvalidJSON, "", "%v", err)}
			}
		}
		if b == nil {
			return Batch{Rejection: position.Reject(position.ReasonInvalidBatch, "data", "the data array is missing")}
		}
		return *b
	}
	return Batch{Rejection: position.Reject(position.ReasonInvalidBatch, "", "expected an object {\"data\": [...]} or an array of items")}
}

// items reads the elements of the array dec has just entered; payload is
// what dec reads, so that each item's raw bytes are a slice of it.
func (p *Parser) items(dec *json.Decoder, payload []byte, receivedAt time.Time) Batch {
	var b Batch
	for dec.More() {
		start := dec.InputOffset()
		if err := dec.Decode(new(skipValue)); err != nil {
			return Batch{Rejection: position.Reject(position.ReasonInvalidJSON, "", "%v", err)}
		}
		if len(b.Items) == p.cfg.MaxItems {
			b.Excess++
			continue
		}
		// The offset before an element is the end of the one before it:
		// the separator and white space come first.
		raw := bytes.TrimLeft(payload[start:dec.InputOffset()], ", \t\r\n")
		b.Items = append(b.Items, parseItem(raw, receivedAt))
	}
	return b
}

// skipValue takes any JSON value and keeps nothing of it: decoding into
// it only moves past the value.
type skipValue struct{}

func (*skipValue) UnmarshalJSON([]byte) error { return nil }

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
		c, rej := Number(name, v)
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
	return Number(name, v)
}

// Number reads a JSON number or a string holding one ("31.2"), as G7
// sends both in every API: a value that is neither, or not finite, is
// a rejection of field name saying why.
func Number(name string, v json.RawMessage) (float64, *position.Rejection) {
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
			return 0, position.Reject(position.ReasonNotFinite, name, "%q overflows a float64", truncate(text, 40))
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
	f, rej := Number(name, v)
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

// truncate cuts s to at most n bytes, on a rune boundary, marking the cut.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}
