// Package position holds the position fix, the unit of tms's input: one
// vehicle at one place at one moment, as a telematics feed reported it. It
// validates fixes and names the reason when one is rejected, and encodes
// accepted fixes as tms.position.reported.v1 events.
package position

import (
	"fmt"
	"math"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Flags describe how a fix was obtained. They travel in the event's data.
const (
	// FlagNoFixTime marks a fix whose feed gave no fix time: the receive
	// time stands in for it, so its event time is only approximate and a
	// redelivery of it is not recognised as a duplicate.
	FlagNoFixTime = "no_fix_time"
)

// Limits of a plausible fix.
const (
	// MaxSpeedKmh is the fastest speed a road vehicle is believed to report.
	MaxSpeedKmh = 300
	// MaxFutureSkew is how far ahead of its receipt a fix time may be
	// before it is rejected as a clock fault.
	MaxFutureSkew = 24 * time.Hour
	// maxPlateRunes bounds a plate's length; real plates have 7 or 8.
	maxPlateRunes = 16
)

// Position is one validated GPS fix of one vehicle.
type Position struct {
	// Plate is the vehicle's plate number, its only identifier.
	Plate string
	// FixTime is when the GPS receiver took the fix: the event time.
	FixTime time.Time
	// ReceivedAt is when tms received the message that carried the fix.
	ReceivedAt time.Time
	// Lat and Lng are WGS84 degrees.
	Lat, Lng float64
	// SpeedKmh is the reported ground speed.
	SpeedKmh float64
	// Course is the heading in degrees clockwise from north, when reported.
	Course *float64
	// Flags say how the fix was obtained (see the Flag constants).
	Flags []string
}

// Reason codes for a rejected fix. They are a contract: dead-letter
// consumers and the rejected_total metric use them.
const (
	ReasonInvalidJSON      = "invalid_json"
	ReasonInvalidBatch     = "invalid_batch"
	ReasonTooLarge         = "too_large"
	ReasonMissingPlate     = "missing_plate"
	ReasonInvalidPlate     = "invalid_plate"
	ReasonMissingCoord     = "missing_coordinate"
	ReasonInvalidNumber    = "invalid_number"
	ReasonNotFinite        = "not_finite"
	ReasonLatOutOfRange    = "latitude_out_of_range"
	ReasonLngOutOfRange    = "longitude_out_of_range"
	ReasonNullIsland       = "null_island"
	ReasonSpeedOutOfRange  = "speed_out_of_range"
	ReasonCourseOutOfRange = "course_out_of_range"
	ReasonInvalidTime      = "invalid_fix_time"
	ReasonFutureFixTime    = "fix_time_in_future"
)

// Rejection says why a fix was not accepted: a reason code, the field at
// fault (in the feed's own naming) and a human-readable detail.
type Rejection struct {
	Reason string
	Field  string
	Detail string
}

func (r *Rejection) Error() string {
	if r.Field == "" {
		return r.Reason + ": " + r.Detail
	}
	return fmt.Sprintf("%s: %s: %s", r.Reason, r.Field, r.Detail)
}

// MaxDetailBytes bounds a rejection's detail. A detail may quote the
// input, which is the publisher's to choose: whatever it quotes, the
// detail is cut to this many bytes (on a rune boundary, ending in "…").
const MaxDetailBytes = 256

// Reject builds a Rejection; its detail is at most MaxDetailBytes.
func Reject(reason, field, format string, args ...any) *Rejection {
	detail := fmt.Sprintf(format, args...)
	if len(detail) > MaxDetailBytes {
		const ellipsis = "…"
		cut := MaxDetailBytes - len(ellipsis)
		for cut > 0 && !utf8.RuneStart(detail[cut]) {
			cut--
		}
		detail = strings.ToValidUTF8(detail[:cut], "") + ellipsis
	}
	return &Rejection{Reason: reason, Field: field, Detail: detail}
}

// NormalizePlate trims a plate and upper-cases its Latin letters, so that
// "沪a12345 " and "沪A12345" are the same vehicle. It rejects empty plates
// and plates with characters other than letters (of any script), digits
// and hyphens.
func NormalizePlate(field, plate string) (string, *Rejection) {
	plate = strings.TrimSpace(plate)
	if plate == "" {
		return "", Reject(ReasonMissingPlate, field, "the plate is missing or empty")
	}
	if !utf8.ValidString(plate) {
		return "", Reject(ReasonInvalidPlate, field, "the plate is not valid UTF-8")
	}
	if n := utf8.RuneCountInString(plate); n > maxPlateRunes {
		return "", Reject(ReasonInvalidPlate, field, "the plate has %d characters, at most %d are allowed", n, maxPlateRunes)
	}
	var b strings.Builder
	b.Grow(len(plate))
	for _, r := range plate {
		switch {
		case r >= 'a' && r <= 'z':
			b.WriteRune(r - 'a' + 'A')
		case r == '-' || unicode.IsDigit(r) || unicode.IsLetter(r):
			b.WriteRune(r)
		default:
			return "", Reject(ReasonInvalidPlate, field, "the plate %q contains %q; only letters, digits and '-' are allowed", plate, r)
		}
	}
	return b.String(), nil
}

// Validate checks a fix's values against what a real vehicle can report.
// Field names in the rejection are the feed's (lat, lng, speed, course,
// time). The comparison for future fix times uses the fix's own receive
// time, not the clock, so a replay judges the same way.
func (p *Position) Validate() *Rejection {
	for _, c := range []struct {
		field string
		v     float64
	}{{"lat", p.Lat}, {"lng", p.Lng}, {"speed", p.SpeedKmh}} {
		if math.IsNaN(c.v) || math.IsInf(c.v, 0) {
			return Reject(ReasonNotFinite, c.field, "%v is not a finite number", c.v)
		}
	}
	switch {
	case p.Lat < -90 || p.Lat > 90:
		return Reject(ReasonLatOutOfRange, "lat", "%v is outside [-90, 90]", p.Lat)
	case p.Lng < -180 || p.Lng > 180:
		return Reject(ReasonLngOutOfRange, "lng", "%v is outside [-180, 180]", p.Lng)
	case p.Lat == 0 && p.Lng == 0:
		// (0, 0) is in the Gulf of Guinea: a receiver without a fix, not a truck.
		return Reject(ReasonNullIsland, "lat", "(0, 0) is what a receiver without a fix reports")
	case p.SpeedKmh < 0 || p.SpeedKmh > MaxSpeedKmh:
		return Reject(ReasonSpeedOutOfRange, "speed", "%v km/h is outside [0, %d]", p.SpeedKmh, MaxSpeedKmh)
	}
	if p.Course != nil {
		c := *p.Course
		if math.IsNaN(c) || math.IsInf(c, 0) {
			return Reject(ReasonNotFinite, "course", "%v is not a finite number", c)
		}
		if c < 0 || c > 360 {
			return Reject(ReasonCourseOutOfRange, "course", "%v is outside [0, 360]", c)
		}
	}
	if p.FixTime.IsZero() {
		return Reject(ReasonInvalidTime, "time", "the fix time is missing")
	}
	if p.FixTime.Sub(p.ReceivedAt) > MaxFutureSkew {
		return Reject(ReasonFutureFixTime, "time", "fix time %s is more than %s after its receipt at %s",
			p.FixTime.UTC().Format(time.RFC3339), MaxFutureSkew, p.ReceivedAt.UTC().Format(time.RFC3339))
	}
	return nil
}
