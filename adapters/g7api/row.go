package g7api

import (
	"encoding/json"
	"math"
	"time"
	"unicode/utf8"

	"github.com/tmsfleet/tms/adapters/g7"
	"github.com/tmsfleet/tms/domain/position"
)

// Item is one row of a history page: an accepted fix, or a Rejection
// with the row's raw bytes, for the dead letter.
type Item struct {
	// Raw is the row's JSON exactly as G7 sent it.
	Raw json.RawMessage
	// ReceivedAt is when its page was asked for.
	ReceivedAt time.Time
	// Position is the fix; valid only when Rejection is nil.
	Position position.Position
	// Rejection says why the row was not accepted.
	Rejection *position.Rejection
}

// row is a history_location row as G7 documents it: lng and lat as
// strings, speed (km/h) and course (degrees) as numbers, time in epoch
// milliseconds, distance (metres since the previous row, unused: tms
// measures its own). Numbers may come as strings and strings as numbers.
type row struct {
	Lng    json.RawMessage `json:"lng"`
	Lat    json.RawMessage `json:"lat"`
	Speed  json.RawMessage `json:"speed"`
	Course json.RawMessage `json:"course"`
	Time   json.RawMessage `json:"time"`
}

// ParseRow reads one history row of plate (normalised already), fetched
// at receivedAt, into a validated fix. A row without a usable time is
// rejected: unlike the live feed, history has no receive time to stand in
// for it. It never panics, whatever raw holds.
func ParseRow(raw json.RawMessage, plate string, receivedAt time.Time) Item {
	it := Item{Raw: raw, ReceivedAt: receivedAt}
	var r row
	if err := json.Unmarshal(raw, &r); err != nil {
		it.Rejection = position.Reject(position.ReasonInvalidJSON, "", "a row must be a JSON object")
		return it
	}
	p := position.Position{Plate: plate, ReceivedAt: receivedAt}
	var rej *position.Rejection
	if p.Lat, rej = required("lat", r.Lat); rej != nil {
		it.Rejection = rej
		return it
	}
	if p.Lng, rej = required("lng", r.Lng); rej != nil {
		it.Rejection = rej
		return it
	}
	if present(r.Speed) {
		if p.SpeedKmh, rej = g7.Number("speed", r.Speed); rej != nil {
			it.Rejection = rej
			return it
		}
	}
	if present(r.Course) {
		c, rej := g7.Number("course", r.Course)
		if rej != nil {
			it.Rejection = rej
			return it
		}
		p.Course = &c
	}
	t, rej := rowTime(r.Time)
	if rej != nil {
		it.Rejection = rej
		return it
	}
	p.FixTime = t
	if rej := p.Validate(); rej != nil {
		it.Rejection = rej
		return it
	}
	it.Position = p
	return it
}

// timeOf returns a row's fix time when it has a usable one: what places
// the row in its window and page, valid fix or not.
func timeOf(raw json.RawMessage) (time.Time, bool) {
	var r struct {
		Time json.RawMessage `json:"time"`
	}
	if json.Unmarshal(raw, &r) != nil {
		return time.Time{}, false
	}
	t, rej := rowTime(r.Time)
	return t, rej == nil
}

func present(v json.RawMessage) bool { return len(v) > 0 && string(v) != "null" }

func required(name string, v json.RawMessage) (float64, *position.Rejection) {
	if !present(v) {
		return 0, position.Reject(position.ReasonMissingCoord, name, "%s is missing", name)
	}
	return g7.Number(name, v)
}

// rowTime reads epoch milliseconds (a number or a numeric string).
func rowTime(v json.RawMessage) (time.Time, *position.Rejection) {
	if !present(v) {
		return time.Time{}, position.Reject(position.ReasonInvalidTime, "time", "the row has no time")
	}
	f, rej := g7.Number("time", v)
	if rej != nil {
		return time.Time{}, position.Reject(position.ReasonInvalidTime, "time", "expected epoch milliseconds, got %s", cut(string(v), 40))
	}
	// 1e11 ms is 1973; 1e15 ms is the year 33658.
	if f < 1e11 || f >= 1e15 {
		return time.Time{}, position.Reject(position.ReasonInvalidTime, "time", "%v is not a plausible epoch time in milliseconds", f)
	}
	return time.UnixMilli(int64(math.Round(f))).UTC(), nil
}

// cut shortens s to at most n bytes on a rune boundary, marking the cut.
func cut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}
