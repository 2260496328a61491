package ws

import (
	"encoding/json"
	"strconv"
	"strings"
	"time"

	"github.com/tmsfleet/tms/domain/event"
	"github.com/tmsfleet/tms/projections/vehicles"
)

// filter is a Filter compiled for matching: sets instead of lists. It is
// immutable once built, so Publish reads it without a lock.
type filter struct {
	spec     Filter
	vehicles set
	stations set
	types    set
	bbox     *vehicles.BBox
}

// set is nil when its filter field is absent, and then admits everything.
type set map[string]struct{}

func newSet(items []string) set {
	if items == nil {
		return nil
	}
	s := make(set, len(items))
	for _, it := range items {
		s[it] = struct{}{}
	}
	return s
}

func (s set) admits(v string) bool {
	if s == nil {
		return true
	}
	_, ok := s[v]
	return ok
}

func compile(spec Filter) *filter {
	f := &filter{
		spec:     spec,
		vehicles: newSet(spec.Vehicles),
		stations: newSet(spec.Stations),
		types:    newSet(spec.Types),
	}
	if b := spec.BBox; b != nil {
		f.bbox = &vehicles.BBox{MinLng: b[0], MinLat: b[1], MaxLng: b[2], MaxLat: b[3]}
	}
	return f
}

// admitsPositions reports whether position events can pass f, which is
// when a subscribe gets a snapshot.
func (f *filter) admitsPositions() bool {
	return f.stations == nil && f.types.admits(event.TypePositionReported)
}

// snapshotQuery is the read-model query for f's snapshot.
func (f *filter) snapshotQuery() vehicles.ListQuery {
	return vehicles.ListQuery{Plates: f.spec.Vehicles, BBox: f.bbox}
}

// match reports whether ev passes f. It is the only per-client work
// Publish does for an event that a client does not want.
func (f *filter) match(ev *published) bool {
	if !f.types.admits(ev.typ) || !f.vehicles.admits(ev.subject) {
		return false
	}
	if f.stations != nil && (ev.station == "" || !f.stations.admits(ev.station)) {
		return false
	}
	if f.bbox != nil {
		switch ev.coords {
		case coordsNone:
		case coordsBad:
			return false
		default:
			if !f.bbox.Contains(ev.lat, ev.lng) {
				return false
			}
		}
	}
	return true
}

// coords says what an event's data holds for the bbox filter.
type coords uint8

const (
	// coordsNone: neither lat nor lng; passes any bbox.
	coordsNone coords = iota
	// coordsOK: both, as numbers; passes a bbox it lies in.
	coordsOK
	// coordsBad: one without the other, or not numbers; passes no bbox,
	// since it cannot be placed.
	coordsBad
)

// published is an event as the hub fans it out: everything a filter
// looks at, worked out once, and its frame body, encoded once and shared
// by every client's frame.
type published struct {
	typ     string
	subject string
	station string
	coords  coords
	lat     float64
	lng     float64
	// position marks a coalescable event: a position report of a
	// vehicle (its subject).
	position bool
	// fixTime orders a vehicle's positions: of two pending, the later
	// fix wins.
	fixTime time.Time
	// origin is when tms received the event (see Hub.Publish), the start
	// of the push latency.
	origin time.Time
	// body is the event frame after its seq.
	body []byte
}

// inspect builds the published form of e; envelope is e's JSON.
// fallbackOrigin is used when the data carries no received_at.
func inspect(e *event.Envelope, envelope []byte, fallbackOrigin time.Time) *published {
	p := &published{
		typ:      e.Type,
		subject:  e.Subject,
		position: e.Type == event.TypePositionReported && e.Subject != "",
		fixTime:  e.Time,
		origin:   fallbackOrigin,
		body:     eventBody(envelope),
	}
	// One decode of the members any filter or metric needs. Data that is
	// not an object has none of them.
	var d struct {
		Lat        json.RawMessage `json:"lat"`
		Lng        json.RawMessage `json:"lng"`
		StationID  json.RawMessage `json:"station_id"`
		ReceivedAt json.RawMessage `json:"received_at"`
	}
	_ = json.Unmarshal(e.Data, &d)

	hasLat, hasLng := !isNull(d.Lat), !isNull(d.Lng)
	switch {
	case !hasLat && !hasLng:
		p.coords = coordsNone
	case hasLat && hasLng:
		lat, errLat := strconv.ParseFloat(string(d.Lat), 64)
		lng, errLng := strconv.ParseFloat(string(d.Lng), 64)
		if errLat == nil && errLng == nil {
			p.coords, p.lat, p.lng = coordsOK, lat, lng
		} else {
			p.coords = coordsBad
		}
	default:
		p.coords = coordsBad
	}

	if strings.HasPrefix(e.Type, "tms.station.") {
		p.station = e.Subject
	} else if !isNull(d.StationID) {
		_ = json.Unmarshal(d.StationID, &p.station)
	}

	if !isNull(d.ReceivedAt) {
		var t time.Time
		if json.Unmarshal(d.ReceivedAt, &t) == nil && !t.IsZero() {
			p.origin = t
		}
	}
	return p
}
