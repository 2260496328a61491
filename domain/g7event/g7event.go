// Package g7event holds the events of G7's three event feeds (stop, idle
// and EMS): one vehicle's period of standing, idling or an EMS alarm, as
// G7 reported it, from its start to its end (none yet while it lasts). It
// validates reports, names the reason when one is rejected, and encodes
// accepted ones as tms.g7.event.reported.v1 events.
//
// G7 sends an event more than once: repeated as it was, and first open
// (no end) then closed. Every report of one event has the same identity,
// derived from the plate, the kind and the start time (Report.Key), so
// that the read model keeps one row per event; each distinct report of
// it (open, closed, corrected) has an envelope id of its own, so that a
// consumer that deduplicates by id drops repeats and keeps the close.
// Which report of an event stands is decided by Rank, never by arrival
// order: docs/g7.md states the rule.
//
// G7's events are an input to compare tms's own findings with (tms
// derives stops from the positions, projections/trips), not the truth.
package g7event

import (
	"encoding/json"
	"fmt"
	"math"
	"time"

	"github.com/tmsfleet/tms/domain/event"
	"github.com/tmsfleet/tms/domain/position"
)

// Kind is which of G7's feeds reported an event.
type Kind string

// The kinds, one per feed (G7_MQTT_STOP_TOPIC, G7_MQTT_IDLE_TOPIC,
// G7_MQTT_EMS_TOPIC).
const (
	KindStop Kind = "stop"
	KindIdle Kind = "idle"
	KindEMS  Kind = "ems"
)

// Kinds are the kinds, in the order the docs list them.
var Kinds = []Kind{KindStop, KindIdle, KindEMS}

// ParseKind reads a kind by its name.
func ParseKind(s string) (Kind, bool) {
	for _, k := range Kinds {
		if string(k) == s {
			return k, true
		}
	}
	return "", false
}

// Reason codes of a rejected event report, beside position's (plate,
// numbers, coordinates). They are a contract: dead-letter consumers and
// the rejected_total metric use them.
const (
	// ReasonInvalidEvent: the message is not {"data": {...}}.
	ReasonInvalidEvent = "invalid_event"
	// ReasonInvalidTime: startTime, endTime or pushTime missing (start)
	// or not a plausible epoch time.
	ReasonInvalidTime = "invalid_event_time"
	// ReasonFutureTime: a time more than position.MaxFutureSkew after
	// the message's receipt.
	ReasonFutureTime = "event_time_in_future"
	// ReasonEndBeforeStart: endTime is before startTime.
	ReasonEndBeforeStart = "end_before_start"
	// ReasonDurationTooLong: the event lasted longer than the limit
	// (TMS_G7_EVENT_MAX_DURATION).
	ReasonDurationTooLong = "duration_too_long"
	// ReasonSecondsOutOfRange: seconds is negative or longer than the
	// limit.
	ReasonSecondsOutOfRange = "seconds_out_of_range"
)

// DefaultMaxDuration is TMS_G7_EVENT_MAX_DURATION's default: a truck
// parked over a long holiday stops for weeks, none for a quarter.
const DefaultMaxDuration = 92 * 24 * time.Hour

// Report is one validated report of a G7 event.
type Report struct {
	// Plate is the vehicle's plate, normalised.
	Plate string
	// Kind is the feed it came from.
	Kind Kind
	// Start is when the event began (G7's startTime).
	Start time.Time
	// End is when it ended (endTime); nil while it lasts.
	End *time.Time
	// Seconds is G7's own duration (seconds), when it sent one.
	Seconds *float64
	// StartLat, StartLng are where it began (WGS84 degrees).
	StartLat, StartLng float64
	// EndLat, EndLng are where it ended, when G7 said; both or neither.
	EndLat, EndLng *float64
	// PushTime is when G7 pushed the message (pushTime), when it said.
	PushTime *time.Time
	// ReceivedAt is when tms received the message.
	ReceivedAt time.Time
}

// Open reports whether the event still lasts (G7 gave no end yet).
func (r *Report) Open() bool { return r.End == nil }

// Key is the event's identity: the same for every report of it. It is
// the read model's row id and the data's g7_event_id.
func (r *Report) Key() string {
	return event.ID(event.TypeG7EventReported, r.Plate, string(r.Kind), r.Start.UTC().Format(time.RFC3339Nano))
}

// Validate checks a report against what G7 can send, and bounds it:
// maxDuration is the longest event accepted. Field names in the
// rejection are G7's. Future times are judged against the receive time,
// not the clock, so that a replay judges the same way.
func (r *Report) Validate(maxDuration time.Duration) *position.Rejection {
	if _, ok := ParseKind(string(r.Kind)); !ok {
		return position.Reject(ReasonInvalidEvent, "", "unknown kind %q", r.Kind)
	}
	if rej := point("startLat", "startLng", r.StartLat, r.StartLng); rej != nil {
		return rej
	}
	if (r.EndLat == nil) != (r.EndLng == nil) {
		return position.Reject(position.ReasonMissingCoord, "endLat", "endLat and endLng come together or not at all")
	}
	if r.EndLat != nil {
		if rej := point("endLat", "endLng", *r.EndLat, *r.EndLng); rej != nil {
			return rej
		}
	}
	if r.Start.IsZero() {
		return position.Reject(ReasonInvalidTime, "startTime", "the start time is missing")
	}
	for _, t := range []struct {
		field string
		at    *time.Time
	}{{"startTime", &r.Start}, {"endTime", r.End}, {"pushTime", r.PushTime}} {
		if t.at != nil && t.at.Sub(r.ReceivedAt) > position.MaxFutureSkew {
			return position.Reject(ReasonFutureTime, t.field, "%s is more than %s after its receipt at %s",
				t.at.UTC().Format(time.RFC3339), position.MaxFutureSkew, r.ReceivedAt.UTC().Format(time.RFC3339))
		}
	}
	if r.End != nil {
		if r.End.Before(r.Start) {
			return position.Reject(ReasonEndBeforeStart, "endTime", "endTime %s is before startTime %s",
				r.End.UTC().Format(time.RFC3339Nano), r.Start.UTC().Format(time.RFC3339Nano))
		}
		if d := r.End.Sub(r.Start); d > maxDuration {
			return position.Reject(ReasonDurationTooLong, "endTime", "the event lasted %s, more than the %s accepted (TMS_G7_EVENT_MAX_DURATION)", d, maxDuration)
		}
	}
	if r.Seconds != nil {
		s := *r.Seconds
		if math.IsNaN(s) || math.IsInf(s, 0) {
			return position.Reject(position.ReasonNotFinite, "seconds", "%v is not a finite number", s)
		}
		if s < 0 || s > maxDuration.Seconds() {
			return position.Reject(ReasonSecondsOutOfRange, "seconds", "%v is outside [0, %v] (TMS_G7_EVENT_MAX_DURATION)", s, maxDuration.Seconds())
		}
	}
	return nil
}

// point checks a place as position.Validate checks a fix's.
func point(latField, lngField string, lat, lng float64) *position.Rejection {
	switch {
	case math.IsNaN(lat) || math.IsInf(lat, 0):
		return position.Reject(position.ReasonNotFinite, latField, "%v is not a finite number", lat)
	case math.IsNaN(lng) || math.IsInf(lng, 0):
		return position.Reject(position.ReasonNotFinite, lngField, "%v is not a finite number", lng)
	case lat < -90 || lat > 90:
		return position.Reject(position.ReasonLatOutOfRange, latField, "%v is outside [-90, 90]", lat)
	case lng < -180 || lng > 180:
		return position.Reject(position.ReasonLngOutOfRange, lngField, "%v is outside [-180, 180]", lng)
	case lat == 0 && lng == 0:
		return position.Reject(position.ReasonNullIsland, latField, "(0, 0) is what a receiver without a fix reports")
	}
	return nil
}

// Reported is the data of a tms.g7.event.reported.v1 event. Its JSON
// schema is schemas/tms.g7.event.reported.v1.json.
type Reported struct {
	// G7EventID is the event's identity (Report.Key): the same for
	// every report of one event.
	G7EventID string `json:"g7_event_id"`
	Vehicle   string `json:"vehicle"`
	Kind      Kind   `json:"kind"`
	// Open: G7 gave no end yet; EndTime is null.
	Open      bool       `json:"open"`
	StartTime time.Time  `json:"start_time"`
	EndTime   *time.Time `json:"end_time"`
	// G7Seconds is G7's own duration, as sent; null when it sent none.
	G7Seconds *float64 `json:"g7_seconds"`
	// Lat, Lng are where the event began (startLat, startLng), so that
	// a WebSocket bbox places it.
	Lat    float64  `json:"lat"`
	Lng    float64  `json:"lng"`
	EndLat *float64 `json:"end_lat"`
	EndLng *float64 `json:"end_lng"`
	// PushTime is G7's pushTime; null when it sent none.
	PushTime   *time.Time `json:"push_time"`
	ReceivedAt time.Time  `json:"received_at"`
}

// Event encodes r as a tms.g7.event.reported.v1 event from source. Its
// time is the event's end when it is closed, its start while it is open:
// when what the report says became true, from G7's data and never from
// the clock. Its id is derived from the identity and the end (or
// "open"), so that a repeat of a report has its id and the close of an
// open event has another; the g7_event_id in its data is the same for
// both.
func (r *Report) Event(source string) (event.Envelope, error) {
	at, end := r.Start, "open"
	if r.End != nil {
		at, end = *r.End, r.End.UTC().Format(time.RFC3339Nano)
	}
	data := Reported{
		G7EventID: r.Key(), Vehicle: r.Plate, Kind: r.Kind, Open: r.Open(),
		StartTime: r.Start.UTC(), EndTime: utc(r.End), G7Seconds: r.Seconds,
		Lat: r.StartLat, Lng: r.StartLng, EndLat: r.EndLat, EndLng: r.EndLng,
		PushTime: utc(r.PushTime), ReceivedAt: r.ReceivedAt.UTC().Truncate(time.Millisecond),
	}
	return event.New(event.TypeG7EventReported, source, r.Plate, at, data,
		r.Plate, string(r.Kind), r.Start.UTC().Format(time.RFC3339Nano), end)
}

func utc(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}

// MaxEventBytes bounds the JSON encoding of the event of any valid
// report from a source of at most 64 bytes: the plate (at most 64 bytes)
// appears twice, every other member is a number, a time or an id of
// bounded length.
const MaxEventBytes = 1024

// FromEvent decodes a tms.g7.event.reported.v1 event's data and checks
// what the read model relies on.
func FromEvent(e event.Envelope) (Reported, error) {
	if e.Type != event.TypeG7EventReported {
		return Reported{}, fmt.Errorf("%w: type %q is not %s", event.ErrMalformed, e.Type, event.TypeG7EventReported)
	}
	var d Reported
	if err := json.Unmarshal(e.Data, &d); err != nil {
		return Reported{}, fmt.Errorf("%w: %s data: %v", event.ErrMalformed, e.Type, err)
	}
	if _, ok := ParseKind(string(d.Kind)); !ok {
		return Reported{}, fmt.Errorf("%w: %s %s: unknown kind %q", event.ErrMalformed, e.Type, e.ID, d.Kind)
	}
	switch {
	case d.Vehicle == "" || d.G7EventID == "":
		return Reported{}, fmt.Errorf("%w: %s %s: vehicle and g7_event_id are required", event.ErrMalformed, e.Type, e.ID)
	case d.StartTime.IsZero():
		return Reported{}, fmt.Errorf("%w: %s %s: start_time is required", event.ErrMalformed, e.Type, e.ID)
	case d.Open != (d.EndTime == nil):
		return Reported{}, fmt.Errorf("%w: %s %s: open must say whether end_time is null", event.ErrMalformed, e.Type, e.ID)
	}
	return d, nil
}

// Rank orders the reports of one event: of two, the one of higher rank
// stands, whatever order they arrive in. A closed report outranks an
// open one (G7 closes an event once it ends, and an open repeat arriving
// late must not reopen it); then the later pushTime (G7's later word,
// a correction); then the later end; then the envelope id, so that two
// different reports of equal standing still give the same answer in
// every order. A repeat has the rank of the report it repeats, and
// changes nothing.
type Rank struct {
	Closed   bool
	PushTime time.Time // zero when G7 sent none
	End      time.Time // zero while open
	ID       string
}

// Less reports whether r ranks below o.
func (r Rank) Less(o Rank) bool {
	switch {
	case r.Closed != o.Closed:
		return !r.Closed
	case !r.PushTime.Equal(o.PushTime):
		return r.PushTime.Before(o.PushTime)
	case !r.End.Equal(o.End):
		return r.End.Before(o.End)
	}
	return r.ID < o.ID
}

// RankOf is the rank of the report e carries, d its data.
func RankOf(e event.Envelope, d Reported) Rank {
	r := Rank{Closed: !d.Open, ID: e.ID}
	if d.PushTime != nil {
		r.PushTime = *d.PushTime
	}
	if d.EndTime != nil {
		r.End = *d.EndTime
	}
	return r
}
