package geofence

import (
	"encoding/json"
	"math"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/tmsfleet/tms/domain/event"
)

// AppendEvents appends the JSON encoding of each of t's events to dst
// and hands each one's bytes (a slice of the result, which later appends
// leave alone) to emit. The bytes are exactly those of encoding/json
// over what Events returns, but made in one pass without reflection or
// intermediate values: the geofence encodes an event for about one fix
// in ten. A transition encoding/json would refuse (a time past year
// 9999, a coordinate that is not a number) goes through Events and
// encoding/json, and gets their error.
func (t *Transition) AppendEvents(dst []byte, source string, emit func(value []byte)) ([]byte, error) {
	if !t.plainEncodable() {
		events, err := t.Events(source)
		if err != nil {
			return dst, err
		}
		for _, e := range events {
			value, err := json.Marshal(e)
			if err != nil {
				return dst, err
			}
			start := len(dst)
			dst = append(dst, value...)
			emit(dst[start:len(dst):len(dst)])
		}
		return dst, nil
	}
	typ := event.TypeEnteredStation
	if t.Kind == Exited {
		typ = event.TypeExitedStation
	}
	start := len(dst)
	dst = t.appendEnvelope(dst, typ, source, t.VisitID)
	dst = t.appendCommon(dst, "")
	if t.InitialCause != "" {
		dst = append(dst, `,"initial_cause":`...)
		dst = appendString(dst, t.InitialCause)
	}
	if t.Kind == Exited {
		dst = append(dst, `,"entered_at":`...)
		dst = appendTime(dst, t.EnteredAt)
		dst = append(dst, `,"dwell_s":`...)
		dst = appendFloat(dst, seconds(t.Dwell))
	}
	if t.Gap > 0 {
		dst = append(dst, `,"gap_s":`...)
		dst = appendFloat(dst, seconds(t.Gap))
	}
	dst = append(dst, "}}"...)
	emit(dst[start:len(dst):len(dst)])
	if t.Kind == Entered && t.StationType == TypeHazard {
		start = len(dst)
		dst = t.appendEnvelope(dst, event.TypeAlertRaised, source, AlertHazardEntered, t.VisitID)
		dst = t.appendCommon(dst, AlertHazardEntered)
		dst = append(dst, "}}"...)
		emit(dst[start:len(dst):len(dst)])
	}
	return dst, nil
}

// plainEncodable reports whether every time of t is one encoding/json
// writes (years 0 to 9999) and every coordinate a finite number.
func (t *Transition) plainEncodable() bool {
	ok := func(at time.Time) bool { y := at.UTC().Year(); return y >= 0 && y <= 9999 }
	finite := func(f float64) bool { return !math.IsNaN(f) && !math.IsInf(f, 0) }
	return ok(t.At) && (t.Kind != Exited || ok(t.EnteredAt)) && finite(t.Point.Lat) && finite(t.Point.Lng)
}

// appendEnvelope appends an event.Envelope's attributes up to the data's
// opening brace.
func (t *Transition) appendEnvelope(dst []byte, typ, source string, idParts ...string) []byte {
	dst = append(dst, `{"specversion":"`+event.SpecVersion+`","id":"`...)
	dst = event.AppendID(dst, typ, idParts...)
	dst = append(dst, `","source":`...)
	dst = appendString(dst, source)
	dst = append(dst, `,"type":`...)
	dst = appendString(dst, typ)
	if t.Vehicle != "" {
		dst = append(dst, `,"subject":`...)
		dst = appendString(dst, t.Vehicle)
	}
	dst = append(dst, `,"time":`...)
	dst = appendTime(dst, t.At)
	dst = append(dst, `,"datacontenttype":"`+event.ContentType+`","data":{`...)
	return dst
}

// appendCommon appends the data fields a Visit and an Alert (alert
// non-empty) share, in their structs' order, without the closing brace.
func (t *Transition) appendCommon(dst []byte, alert string) []byte {
	dst = append(dst, `"vehicle":`...)
	dst = appendString(dst, t.Vehicle)
	if alert != "" {
		dst = append(dst, `,"alert":`...)
		dst = appendString(dst, alert)
	}
	dst = append(dst, `,"station_id":`...)
	dst = appendString(dst, t.StationID)
	dst = append(dst, `,"station_type":`...)
	dst = appendString(dst, t.StationType)
	if alert == "" {
		dst = append(dst, `,"station_version":`...)
		dst = strconv.AppendInt(dst, t.StationVersion, 10)
	}
	dst = append(dst, `,"visit_id":`...)
	dst = appendString(dst, t.VisitID)
	dst = append(dst, `,"fix_time":`...)
	dst = appendTime(dst, t.At)
	dst = append(dst, `,"lat":`...)
	dst = appendFloat(dst, round7(t.Point.Lat))
	dst = append(dst, `,"lng":`...)
	dst = appendFloat(dst, round7(t.Point.Lng))
	dst = append(dst, `,"flags":[`...)
	for i, f := range t.Flags {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendString(dst, f)
	}
	return append(dst, ']')
}

// appendTime appends at in UTC as time.Time's MarshalJSON does (the
// caller has checked the year is in its range).
func appendTime(dst []byte, at time.Time) []byte {
	dst = append(dst, '"')
	dst = at.UTC().AppendFormat(dst, time.RFC3339Nano)
	return append(dst, '"')
}

// appendFloat appends a finite f as encoding/json writes a float64.
func appendFloat(dst []byte, f float64) []byte {
	format := byte('f')
	if abs := math.Abs(f); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	dst = strconv.AppendFloat(dst, f, format, -1, 64)
	if format == 'e' {
		// e-09 becomes e-9, as encoding/json writes it.
		if n := len(dst); n >= 4 && dst[n-4] == 'e' && dst[n-3] == '-' && dst[n-2] == '0' {
			dst[n-2] = dst[n-1]
			dst = dst[:n-1]
		}
	}
	return dst
}

const hexDigits = "0123456789abcdef"

// appendString appends s as a JSON string as encoding/json writes it
// (HTML-safe: <, > and & escaped; invalid UTF-8 as U+FFFD; U+2028 and
// U+2029 escaped).
func appendString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		if b := s[i]; b < utf8.RuneSelf {
			if b >= 0x20 && b != '"' && b != '\\' && b != '<' && b != '>' && b != '&' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch b {
			case '\\', '"':
				dst = append(dst, '\\', b)
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[b>>4], hexDigits[b&0xF])
			}
			i++
			start = i
			continue
		}
		c, size := utf8.DecodeRuneInString(s[i:])
		if c == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if c == '\u2028' || c == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[c&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
