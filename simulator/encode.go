package simulator

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"strconv"
	"unicode/utf8"

	"github.com/tmsfleet/tms/domain/position"
)

// MaxBatchSize bounds the items of one message. A thousand items are about
// 110 KB, well under what tms accepts in one message by default
// (g7.DefaultMaxPayloadBytes, 1 MiB), whatever the share of string-typed
// numbers, and a tenth of the items it reads from one (g7.DefaultMaxItems).
const MaxBatchSize = 1000

// FaultMarker is the field that marks a deliberately faulty item. Its value
// is the reason code tms is expected to reject the item with (for example
// "latitude_out_of_range"), so a dead letter shows at a glance that it was
// made on purpose, and a test can check that the reason is the right one.
const FaultMarker = "_fault"

// Encoding says how fixes are written as G7 messages.
type Encoding struct {
	// StringShare is the share of items, in [0, 1], whose lng, lat and
	// speed are JSON strings ("121.473700") rather than numbers, as some
	// G7 devices send them.
	StringShare float64
	// FaultRate is the share of items, in [0, 1], made deliberately
	// invalid (see FaultMarker).
	FaultRate float64
}

// faults are the kinds of faulty item, each with the reason tms gives it.
var faults = [...]string{
	faultLat:     position.ReasonLatOutOfRange,
	faultNoPlate: position.ReasonMissingPlate,
	faultSpeed:   position.ReasonSpeedOutOfRange,
	faultLng:     position.ReasonInvalidNumber,
}

// faultNone marks an item written as it is.
const faultNone = -1

// Faults an item can be given; indexes into faults.
const (
	faultLat     = iota // "lat": 95
	faultNoPlate        // no plateNum
	faultSpeed          // "speed": -5
	faultLng            // "lng": "abc"
)

// Encode appends to dst the G7 message {"data":[...]} carrying batch, one
// item per fix, and returns it with the number of items it made faulty.
// rnd decides which items carry strings and which are faulty; it is not
// drawn from (and may be nil) when StringShare and FaultRate are 0. The fix time is written
// as gps_time in epoch milliseconds, the course in whole degrees, lng and
// lat with six decimals (about 0.1 m), speed with one.
func (e Encoding) Encode(dst []byte, batch []Fix, rnd *rand.Rand) ([]byte, int) {
	dst = append(dst, `{"data":[`...)
	faulty := 0
	for i := range batch {
		if i > 0 {
			dst = append(dst, ',')
		}
		fault := faultNone
		if e.FaultRate > 0 && rnd.Float64() < e.FaultRate {
			fault = rnd.IntN(len(faults))
			faulty++
		}
		strs := e.StringShare > 0 && rnd.Float64() < e.StringShare
		dst = appendItem(dst, &batch[i], strs, fault)
	}
	return append(dst, "]}"...), faulty
}

// appendItem writes one item; fault is faultNone or the fault to build in.
func appendItem(dst []byte, f *Fix, strs bool, fault int) []byte {
	dst = append(dst, '{')
	if fault != faultNoPlate {
		dst = append(dst, `"plateNum":`...)
		dst = appendJSONString(dst, f.Plate)
		dst = append(dst, ',')
	}
	dst = append(dst, `"lng":`...)
	if fault == faultLng {
		dst = append(dst, `"abc"`...)
	} else {
		dst = appendNumber(dst, f.Lng, 6, strs)
	}
	dst = append(dst, `,"lat":`...)
	lat := f.Lat
	if fault == faultLat {
		lat = 95
	}
	dst = appendNumber(dst, lat, 6, strs)
	dst = append(dst, `,"speed":`...)
	speed := f.SpeedKmh
	if fault == faultSpeed {
		speed = -5
	}
	dst = appendNumber(dst, speed, 1, strs)
	dst = append(dst, `,"course":`...)
	course := math.Round(f.Course)
	if course >= 360 {
		course = 0
	}
	dst = strconv.AppendInt(dst, int64(course), 10)
	dst = append(dst, `,"gps_time":`...)
	dst = strconv.AppendInt(dst, f.Time.UnixMilli(), 10)
	if fault != faultNone {
		dst = append(dst, `,"`+FaultMarker+`":"`...)
		dst = append(dst, faults[fault]...)
		dst = append(dst, '"')
	}
	return append(dst, '}')
}

func appendNumber(dst []byte, v float64, decimals int, quoted bool) []byte {
	if quoted {
		dst = append(dst, '"')
	}
	dst = strconv.AppendFloat(dst, v, 'f', decimals, 64)
	if quoted {
		dst = append(dst, '"')
	}
	return dst
}

// appendJSONString writes s as a JSON string. Generated plates need no
// escaping and take the fast path; anything else goes through
// encoding/json.
func appendJSONString(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == '"' || c == '\\' {
			return appendJSONSlow(dst, s)
		}
	}
	if !utf8.ValidString(s) {
		return appendJSONSlow(dst, s)
	}
	dst = append(dst, '"')
	dst = append(dst, s...)
	return append(dst, '"')
}

func appendJSONSlow(dst []byte, s string) []byte {
	b, _ := json.Marshal(s) // a string always marshals
	return append(dst, b...)
}
