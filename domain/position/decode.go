package position

import (
	"encoding/json"
	"fmt"
	"strconv"
	"time"
	"unicode/utf8"
	"unsafe"

	"github.com/tmsfleet/tms/domain/event"
)

// reportedEnvelope is a tms.position.reported.v1 event with its data
// typed, so that a record is decoded in one pass.
type reportedEnvelope struct {
	SpecVersion string   `json:"specversion"`
	ID          string   `json:"id"`
	Source      string   `json:"source"`
	Type        string   `json:"type"`
	Data        Reported `json:"data"`
}

// DecodeEvent reads a record value holding a tms.position.reported.v1
// event in one pass and returns the fix and the event id. ok is false,
// with a nil error, for an event of another type. It reads as
// encoding/json would read the value into the event's types, rejections
// included (see Decoder); consumers of tms.positions that decode many
// records keep a Decoder instead, which allocates less.
func DecodeEvent(value []byte) (p Position, id string, ok bool, err error) {
	p, id, _, ok, err = DecodeEventSource(value)
	return p, id, ok, err
}

// BackfillSource is the source of the position events `tms backfill g7`
// appends to tms.positions: the same events as live fixes' (same data,
// same ids) but for it. Consumers that must treat history arriving late
// by nature apart from a live late fix (replays, trips) look for it.
const BackfillSource = "/tms/backfill/g7"

// DecodeEventSource is DecodeEvent that also returns the event's source:
// for those consumers that treat a backfilled fix (source
// /tms/backfill/g7) apart from a live one, which is otherwise the same
// event with the same id.
func DecodeEventSource(value []byte) (p Position, id, source string, ok bool, err error) {
	var d Decoder
	var e reportedEnvelope
	if !d.fast(value, &e, true) {
		if e, err = slowDecode(value); err != nil {
			return Position{}, "", "", false, err
		}
	}
	p, ok, err = e.position()
	if !ok {
		return Position{}, "", e.Source, ok, err
	}
	return p, e.ID, e.Source, true, nil
}

// position checks a decoded event and returns its fix.
func (e *reportedEnvelope) position() (Position, bool, error) {
	if e.SpecVersion != event.SpecVersion || e.ID == "" {
		return Position{}, false, fmt.Errorf("%w: not a CloudEvents %s event with an id", event.ErrMalformed, event.SpecVersion)
	}
	if e.Type != event.TypePositionReported {
		return Position{}, false, nil
	}
	d := &e.Data
	if d.Vehicle == "" || d.FixTime.IsZero() {
		return Position{}, false, fmt.Errorf("%w: %s without vehicle or fix time", event.ErrMalformed, e.Type)
	}
	return Position{
		Plate: d.Vehicle, FixTime: d.FixTime, ReceivedAt: d.ReceivedAt,
		Lat: d.Lat, Lng: d.Lng, SpeedKmh: d.SpeedKmh, Course: d.CourseDeg, Flags: d.Flags,
	}, true, nil
}

// internSource returns the source s names, without allocating for the two
// that write positions.
func internSource(s []byte) string {
	switch string(s) {
	case ingestSource:
		return ingestSource
	case BackfillSource:
		return BackfillSource
	}
	return string(s)
}

// ingestSource is ingest's source (pipeline/ingest.Source, which this
// package cannot import).
const ingestSource = "/tms/ingest/g7"

// maxPlates bounds the plates a Decoder remembers: past it, it starts
// over, so a stream of ever new plates costs at most this many strings.
const maxPlates = 1 << 16

// Decoder reads tms.position.reported.v1 record values, the hot path of
// every consumer of tms.positions. A value in the shape tms writes (the
// envelope's eight attributes and the data's fields, each once, strings
// without escapes) is read in one pass over the bytes, without copying
// them and, for a vehicle seen before, without allocating: the plate is
// the string the decoder already holds. Anything else (escapes, other or
// repeated keys, other value types, invalid JSON) is read by
// encoding/json, which also words the rejection; the fuzz test
// FuzzDecoderAgreesWithEncodingJSON holds the one-pass reader to the same
// result as encoding/json on every input.
//
// A Decoder is not safe for concurrent use; its zero value is ready.
type Decoder struct {
	plates map[string]string
}

// Decode returns the fix of a tms.position.reported.v1 event; ok is
// false, with a nil error, for an event of another type. The error wraps
// event.ErrMalformed.
func (d *Decoder) Decode(value []byte) (p Position, ok bool, err error) {
	var e reportedEnvelope
	if !d.fast(value, &e, false) {
		if e, err = slowDecode(value); err != nil {
			return Position{}, false, err
		}
	}
	return e.position()
}

// slowDecode reads value with encoding/json: what the one-pass reader
// leaves. (Its own variable, which escapes, so that the fast path
// allocates none.)
func slowDecode(value []byte) (reportedEnvelope, error) {
	var e reportedEnvelope
	if err := json.Unmarshal(value, &e); err != nil {
		return reportedEnvelope{}, fmt.Errorf("%w: %v", event.ErrMalformed, err)
	}
	return e, nil
}

// plate returns b as a string, the one held from an earlier fix when
// there was one.
func (d *Decoder) plate(b []byte) string {
	if s, ok := d.plates[string(b)]; ok {
		return s
	}
	if d.plates == nil || len(d.plates) >= maxPlates {
		d.plates = make(map[string]string)
	}
	s := string(b)
	d.plates[s] = s
	return s
}

// The keys the one-pass reader knows; a bit each, to catch repeats.
const (
	keySpecVersion = 1 << iota
	keyID
	keyType
	keyData
	keySource
	keySubject
	keyTime
	keyContentType
	keyVehicle
	keyFixTime
	keyReceivedAt
	keyLat
	keyLng
	keySpeed
	keyCourse
	keyFlags
)

// reader is the one-pass reader's position in a value.
type reader struct {
	b    []byte
	i    int
	seen int
}

// fast reads value into e in one pass, and reports whether it could:
// false leaves e to be read by encoding/json (e may be partly filled).
// withID says whether e.ID is wanted; without it, e.ID is only made
// non-empty when the event has one.
func (d *Decoder) fast(value []byte, e *reportedEnvelope, withID bool) bool {
	r := reader{b: value}
	r.space()
	if !r.byte('{') {
		return false
	}
	r.space()
	if r.byte('}') {
		return r.end()
	}
	for {
		key, ok := r.plain()
		if !ok || !r.colon() {
			return false
		}
		switch string(key) {
		case "specversion":
			s, ok := r.str(keySpecVersion)
			if !ok {
				return false
			}
			if string(s) == event.SpecVersion {
				e.SpecVersion = event.SpecVersion
			} else {
				e.SpecVersion = string(s)
			}
		case "id":
			s, ok := r.str(keyID)
			if !ok {
				return false
			}
			switch {
			case withID:
				e.ID = string(s)
			case len(s) > 0:
				e.ID = "-" // present; its value is not wanted
			default:
				e.ID = ""
			}
		case "type":
			s, ok := r.str(keyType)
			if !ok {
				return false
			}
			if string(s) == event.TypePositionReported {
				e.Type = event.TypePositionReported
			} else {
				e.Type = string(s)
			}
		case "data":
			if !r.once(keyData) || !d.data(&r, &e.Data) {
				return false
			}
		case "source":
			s, ok := r.str(keySource)
			if !ok {
				return false
			}
			e.Source = internSource(s)
		case "subject":
			if _, ok := r.str(keySubject); !ok {
				return false
			}
		case "time":
			if _, ok := r.str(keyTime); !ok {
				return false
			}
		case "datacontenttype":
			if _, ok := r.str(keyContentType); !ok {
				return false
			}
		default:
			return false
		}
		if more, ok := r.next(); !ok {
			return false
		} else if !more {
			return r.end()
		}
	}
}

// data reads the event's data object into rep.
func (d *Decoder) data(r *reader, rep *Reported) bool {
	r.space()
	if !r.byte('{') {
		return false
	}
	r.space()
	if r.byte('}') {
		return true
	}
	for {
		key, ok := r.plain()
		if !ok || !r.colon() {
			return false
		}
		switch string(key) {
		case "vehicle":
			s, ok := r.str(keyVehicle)
			if !ok {
				return false
			}
			rep.Vehicle = d.plate(s)
		case "fix_time":
			if !r.time(keyFixTime, &rep.FixTime) {
				return false
			}
		case "received_at":
			if !r.time(keyReceivedAt, &rep.ReceivedAt) {
				return false
			}
		case "lat":
			if !r.float(keyLat, &rep.Lat) {
				return false
			}
		case "lng":
			if !r.float(keyLng, &rep.Lng) {
				return false
			}
		case "speed_kmh":
			if !r.float(keySpeed, &rep.SpeedKmh) {
				return false
			}
		case "course_deg":
			if !r.once(keyCourse) {
				return false
			}
			r.space()
			if r.literal("null") {
				rep.CourseDeg = nil
				break
			}
			var c float64
			if !r.float(0, &c) {
				return false
			}
			rep.CourseDeg = &c
		case "flags":
			if !r.once(keyFlags) || !r.flags(&rep.Flags) {
				return false
			}
		default:
			return false
		}
		if more, ok := r.next(); !ok || !more {
			return ok
		}
	}
}

// space skips JSON whitespace.
func (r *reader) space() {
	i := r.i
	for i < len(r.b) && r.b[i] <= ' ' && (r.b[i] == ' ' || r.b[i] == '\t' || r.b[i] == '\n' || r.b[i] == '\r') {
		i++
	}
	r.i = i
}

// byte consumes c if it comes next.
func (r *reader) byte(c byte) bool {
	if r.i < len(r.b) && r.b[r.i] == c {
		r.i++
		return true
	}
	return false
}

func (r *reader) literal(s string) bool {
	if len(r.b)-r.i >= len(s) && string(r.b[r.i:r.i+len(s)]) == s {
		r.i += len(s)
		return true
	}
	return false
}

// colon consumes the colon after a key, with the whitespace around it.
func (r *reader) colon() bool {
	r.space()
	return r.byte(':')
}

// next consumes what follows an object's member: a comma and the
// whitespace around it (more), or the closing brace (!more); !ok for
// anything else.
func (r *reader) next() (more, ok bool) {
	r.space()
	if r.byte(',') {
		r.space()
		return true, true
	}
	return false, r.byte('}')
}

// end reports whether only whitespace follows.
func (r *reader) end() bool {
	r.space()
	return r.i == len(r.b)
}

// once marks key seen; false when it was seen before.
func (r *reader) once(key int) bool {
	if key != 0 && r.seen&key != 0 {
		return false
	}
	r.seen |= key
	return true
}

// plain reads a string without escapes whose bytes are valid UTF-8 and
// returns its contents, or false for anything else.
func (r *reader) plain() ([]byte, bool) {
	b, i := r.b, r.i
	if i >= len(b) || b[i] != '"' {
		return nil, false
	}
	i++
	start, high := i, byte(0)
	for ; i < len(b); i++ {
		c := b[i]
		if stringStop[c] {
			if c != '"' {
				return nil, false // an escape or a control character
			}
			s := b[start:i]
			r.i = i + 1
			return s, high < utf8.RuneSelf || utf8.Valid(s)
		}
		high |= c
	}
	return nil, false
}

// stringStop marks the bytes that end the plain part of a JSON string:
// the closing quote, a backslash and the control characters.
var stringStop = func() (t [256]bool) {
	for c := range 0x20 {
		t[c] = true
	}
	t['"'], t['\\'] = true, true
	return t
}()

// str reads the string value of key, marking it seen.
func (r *reader) str(key int) ([]byte, bool) {
	if !r.once(key) {
		return nil, false
	}
	r.space()
	return r.plain()
}

// time reads the time value of key as time.Time's UnmarshalJSON reads
// it, which is what encoding/json calls with the same bytes.
func (r *reader) time(key int, t *time.Time) bool {
	if !r.once(key) {
		return false
	}
	r.space()
	start := r.i
	if _, ok := r.plain(); !ok {
		return false
	}
	return t.UnmarshalJSON(r.b[start:r.i]) == nil
}

// float reads a JSON number into f, as encoding/json reads one into a
// float64: the number's grammar, then strconv.ParseFloat (a number out
// of float64's range is left to encoding/json to reject).
func (r *reader) float(key int, f *float64) bool {
	if !r.once(key) {
		return false
	}
	r.space()
	b, start := r.b, r.i
	i := start
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && b[i] >= '1' && b[i] <= '9':
		for i++; i < len(b) && b[i] >= '0' && b[i] <= '9'; i++ {
		}
	default:
		return false
	}
	if i < len(b) && b[i] == '.' {
		i++
		if i >= len(b) || b[i] < '0' || b[i] > '9' {
			return false
		}
		for ; i < len(b) && b[i] >= '0' && b[i] <= '9'; i++ {
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if i >= len(b) || b[i] < '0' || b[i] > '9' {
			return false
		}
		for ; i < len(b) && b[i] >= '0' && b[i] <= '9'; i++ {
		}
	}
	// The bytes are only read during the call: no copy needed.
	v, err := strconv.ParseFloat(unsafe.String(&b[start], i-start), 64)
	if err != nil {
		return false
	}
	r.i, *f = i, v
	return true
}

// flags reads an array of strings into flags, as encoding/json does into
// a []string: null leaves nil, [] an empty slice.
func (r *reader) flags(flags *[]string) bool {
	r.space()
	if r.literal("null") {
		*flags = nil
		return true
	}
	if !r.byte('[') {
		return false
	}
	out := []string{}
	r.space()
	if r.byte(']') {
		*flags = out
		return true
	}
	for {
		s, ok := r.plain()
		if !ok {
			return false
		}
		if string(s) == FlagNoFixTime {
			out = append(out, FlagNoFixTime)
		} else {
			out = append(out, string(s))
		}
		r.space()
		if r.byte(']') {
			*flags = out
			return true
		}
		if !r.byte(',') {
			return false
		}
		r.space()
	}
}
