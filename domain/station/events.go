package station

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/tmsfleet/tms/domain/event"
	"github.com/tmsfleet/tms/domain/geofence"
)

// Upserted is the data of a tms.station.upserted.v1 event: the station as
// stored (schemas/tms.station.upserted.v1.json).
type Upserted struct {
	ID   string `json:"id"`
	Name string `json:"name"`
	Type string `json:"type"`
	// CoordSystem is the system the definition was given in.
	CoordSystem string `json:"coord_system"`
	// Geometry is in WGS84: what tms compares fixes against.
	Geometry Geometry `json:"geometry"`
	// OriginalGeometry is the geometry as given, for GCJ-02 definitions.
	OriginalGeometry *Geometry `json:"original_geometry,omitempty"`
	// RadiusM is a circle's radius (Point geometries only).
	RadiusM *float64 `json:"radius_m,omitempty"`
	// Detection holds the settings the definition gave, and only those.
	Detection Detection `json:"detection"`
	Version   int64     `json:"version"`
}

// Deleted is the data of a tms.station.deleted.v1 event
// (schemas/tms.station.deleted.v1.json).
type Deleted struct {
	ID      string `json:"id"`
	Version int64  `json:"version"`
}

// Data returns s at version as event data.
func (s *Station) Data(version int64) Upserted {
	d := Upserted{
		ID: s.id, Name: s.name, Type: s.typ, CoordSystem: s.coordSystem,
		Geometry: s.geometry, OriginalGeometry: s.original, Detection: s.detection, Version: version,
	}
	if s.geometry.typ == GeometryPoint {
		r := s.radiusM
		d.RadiusM = &r
	}
	return d
}

// Upserted encodes s at version as a tms.station.upserted.v1 event from
// source, dated at, the command's time: the definition applies to fixes
// taken from then on.
func (s *Station) Upserted(source string, version int64, at time.Time) (event.Envelope, error) {
	if s.id == "" || version < 1 {
		return event.Envelope{}, fmt.Errorf("station: an upsert needs an id and a version of at least 1 (got %q, %d)", s.id, version)
	}
	return event.New(event.TypeStationUpserted, source, s.id, at, s.Data(version), idParts(s.id, version)...)
}

// DeletedEvent encodes the deletion of station id, as its version, as a
// tms.station.deleted.v1 event from source, dated at.
func DeletedEvent(source, id string, version int64, at time.Time) (event.Envelope, error) {
	if checkID(id) != "" || version < 1 {
		return event.Envelope{}, fmt.Errorf("station: a deletion needs a valid id and a version of at least 1 (got %q, %d)", id, version)
	}
	return event.New(event.TypeStationDeleted, source, id, at, Deleted{ID: id, Version: version}, idParts(id, version)...)
}

// idParts identify a station event: a station's versions are never
// reused, so its id and version name one change.
func idParts(id string, version int64) []string {
	return []string{id, strconv.FormatInt(version, 10)}
}

// Kind says what a Change does.
type Kind int

// The kinds of changes.
const (
	Upsert Kind = iota + 1
	Delete
)

func (k Kind) String() string {
	if k == Upsert {
		return "upsert"
	}
	return "delete"
}

// Change is one event of tms.stations, decoded.
type Change struct {
	Kind    Kind
	EventID string
	ID      string
	Version int64
	// At is when the change applies from: the command's time.
	At time.Time
	// Station is the station as upserted; nil for a deletion.
	Station *Station
}

// Geofence returns an upsert's station as the geofence needs it.
func (c Change) Geofence() geofence.Station {
	if c.Station == nil {
		return geofence.Station{ID: c.ID, Version: c.Version}
	}
	return c.Station.Geofence(c.Version)
}

// ApplyTo applies the change to a geofence catalogue: an upsert becomes
// the station's version from At on, a deletion ends it at At.
func (c Change) ApplyTo(cat *geofence.Catalog) error {
	if c.Kind == Delete {
		cat.Delete(c.ID, c.At)
		return nil
	}
	return cat.Upsert(c.Geofence(), c.At)
}

// ErrNotStationEvent is returned by FromEvent for an event of another
// type; a reader of tms.stations skips such events.
var ErrNotStationEvent = errors.New("not a station event")

// FromEvent decodes a tms.station.upserted.v1 or tms.station.deleted.v1
// event. Its fields are checked as Parse checks a definition, except the
// geometry, which was validated when its command was accepted and is only
// checked for what every computation on it needs (see
// Geometry.UnmarshalJSON): a malformed event is an error, never a crash,
// and reading a station costs time linear in its size. Fields it does not
// know are ignored, so that additions to a v1 schema do not break it.
// Errors wrap event.ErrMalformed, or ErrNotStationEvent for other types.
func FromEvent(e event.Envelope) (Change, error) {
	switch e.Type {
	case event.TypeStationUpserted:
		return upsertFromEvent(e)
	case event.TypeStationDeleted:
		var d Deleted
		if err := json.Unmarshal(e.Data, &d); err != nil {
			return Change{}, malformed(e, err)
		}
		if checkID(d.ID) != "" || d.Version < 1 {
			return Change{}, malformed(e, fmt.Errorf("id %q, version %d", d.ID, d.Version))
		}
		if e.Subject != "" && e.Subject != d.ID {
			return Change{}, malformed(e, fmt.Errorf("subject %q is not the station id %q", e.Subject, d.ID))
		}
		return Change{Kind: Delete, EventID: e.ID, ID: d.ID, Version: d.Version, At: e.Time}, nil
	}
	return Change{}, fmt.Errorf("%w: %s", ErrNotStationEvent, e.Type)
}

func upsertFromEvent(e event.Envelope) (Change, error) {
	var d Upserted
	if err := json.Unmarshal(e.Data, &d); err != nil {
		return Change{}, malformed(e, err)
	}
	var v errs
	check := func(field string, detail string) {
		if detail != "" {
			v.add(field, "%s", detail)
		}
	}
	check("id", checkID(d.ID))
	check("name", checkName(d.Name))
	check("type", checkType(d.Type))
	check("coord_system", checkCoordSystem(d.CoordSystem))
	if d.Geometry.typ == "" {
		v.add("geometry", "required")
	}
	isPoint := d.Geometry.typ == GeometryPoint
	switch {
	case isPoint && (d.RadiusM == nil || *d.RadiusM < MinRadiusM || *d.RadiusM > MaxRadiusM):
		v.add("radius_m", "a Point needs a radius in [%d, %d] m", MinRadiusM, MaxRadiusM)
	case !isPoint && d.RadiusM != nil:
		v.add("radius_m", "applies to a Point geometry only")
	}
	if (d.OriginalGeometry != nil) != (d.CoordSystem == GCJ02) {
		v.add("original_geometry", "is present exactly when coord_system is gcj02")
	}
	d.Detection.check(&v)
	if d.Version < 1 {
		v.add("version", "must be at least 1")
	}
	if e.Subject != "" && e.Subject != d.ID {
		v.add("id", "%q is not the event's subject %q", d.ID, e.Subject)
	}
	if err := v.err(); err != nil {
		return Change{}, malformed(e, err)
	}
	s := &Station{
		id: d.ID, name: d.Name, typ: d.Type, coordSystem: d.CoordSystem,
		geometry: d.Geometry, original: d.OriginalGeometry, detection: d.Detection,
	}
	if isPoint {
		s.radiusM = *d.RadiusM
	}
	return Change{Kind: Upsert, EventID: e.ID, ID: d.ID, Version: d.Version, At: e.Time, Station: s}, nil
}

func malformed(e event.Envelope, err error) error {
	return fmt.Errorf("%w: %s %s: %v", event.ErrMalformed, e.Type, e.ID, err)
}
