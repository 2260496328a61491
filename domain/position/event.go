package position

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/tmsfleet/tms/domain/event"
)

// Reported is the data of a tms.position.reported.v1 event. Its JSON
// schema is schemas/tms.position.reported.v1.json.
type Reported struct {
	Vehicle    string    `json:"vehicle"`
	FixTime    time.Time `json:"fix_time"`
	ReceivedAt time.Time `json:"received_at"`
	Lat        float64   `json:"lat"`
	Lng        float64   `json:"lng"`
	SpeedKmh   float64   `json:"speed_kmh"`
	CourseDeg  *float64  `json:"course_deg,omitempty"`
	Flags      []string  `json:"flags"`
}

// MaxEventBytes bounds the JSON encoding of the event of any valid fix
// from a source of at most 64 bytes: the plate (at most 16 letters,
// digits or hyphens, none of which JSON escapes, so at most 64 bytes)
// appears twice, the numbers and times have bounded lengths, and the one
// flag is a constant. A position record is never refused for its size.
const MaxEventBytes = 1024

// Event encodes p as a tms.position.reported.v1 event from source. Its id
// is derived from the plate and the fix time, so a fix delivered twice
// (a redelivered MQTT message, a device resending) has one id. Times are
// to the millisecond: the fix time is (G7's precision), and the receive
// time, from a clock, is cut to it.
func (p *Position) Event(source string) (event.Envelope, error) {
	flags := p.Flags
	if flags == nil {
		flags = []string{}
	}
	data := Reported{
		Vehicle:    p.Plate,
		FixTime:    p.FixTime.UTC(),
		ReceivedAt: p.ReceivedAt.UTC().Truncate(time.Millisecond),
		Lat:        p.Lat,
		Lng:        p.Lng,
		SpeedKmh:   p.SpeedKmh,
		CourseDeg:  p.Course,
		Flags:      flags,
	}
	return event.New(event.TypePositionReported, source, p.Plate, p.FixTime, data, p.Plate, p.FixTime.UTC().Format(time.RFC3339Nano))
}

// FromEvent decodes a tms.position.reported.v1 event.
func FromEvent(e event.Envelope) (Position, error) {
	if e.Type != event.TypePositionReported {
		return Position{}, fmt.Errorf("%w: type %q is not %s", event.ErrMalformed, e.Type, event.TypePositionReported)
	}
	var d Reported
	if err := json.Unmarshal(e.Data, &d); err != nil {
		return Position{}, fmt.Errorf("%w: %s data: %v", event.ErrMalformed, e.Type, err)
	}
	p := Position{
		Plate:      d.Vehicle,
		FixTime:    d.FixTime,
		ReceivedAt: d.ReceivedAt,
		Lat:        d.Lat,
		Lng:        d.Lng,
		SpeedKmh:   d.SpeedKmh,
		Course:     d.CourseDeg,
		Flags:      d.Flags,
	}
	if p.Plate == "" {
		return Position{}, fmt.Errorf("%w: %s without vehicle", event.ErrMalformed, e.Type)
	}
	return p, nil
}
