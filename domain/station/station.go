package station

import (
	"regexp"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/tmsfleet/tms/domain/geo"
	"github.com/tmsfleet/tms/domain/geofence"
)

// Types lists the station types, in G7's order (0 loading ... 8 waypoint).
// A hazard station raises an alert when entered.
var Types = []string{
	geofence.TypeLoading, geofence.TypeQuality, geofence.TypeUnloading, geofence.TypeOil, geofence.TypeGetOff,
	geofence.TypeHazard, geofence.TypeParking, geofence.TypeRepair, geofence.TypeWaypoint,
}

// Coordinate systems a station's coordinates may be given in.
const (
	// WGS84 is GPS's datum, the one fixes are in: coordinates are used as
	// given.
	WGS84 = "wgs84"
	// GCJ02 is the obfuscated datum of Chinese maps: coordinates are
	// converted to WGS84, and the originals kept.
	GCJ02 = "gcj02"
)

// Limits of a station's definition.
const (
	MaxIDLen   = 64
	MaxNameLen = 200 // characters, not bytes
	MinRadiusM = 10
	MaxRadiusM = 50000
)

// idPattern is what an id may hold: letters, digits and _ . : -, which
// need no escaping in a URL path, a Kafka key or a log line.
var idPattern = regexp.MustCompile(`^[A-Za-z0-9_.:-]+$`)

// Station is a validated station definition: what the catalogue holds for
// one station between two changes. Its fields are only set by Parse and
// FromEvent, which validate them.
type Station struct {
	id          string
	name        string
	typ         string
	coordSystem string
	// geometry is in WGS84, what fixes are compared against.
	geometry Geometry
	// original is the geometry as given, for GCJ-02 definitions.
	original  *Geometry
	radiusM   float64 // circles only
	detection Detection
}

// ID is the station's id; empty for a definition without one, which the
// caller gives one with WithID before creating it.
func (s *Station) ID() string { return s.id }

// Name is the station's display name.
func (s *Station) Name() string { return s.name }

// Type is one of Types.
func (s *Station) Type() string { return s.typ }

// CoordSystem is the coordinate system the definition was given in: WGS84
// or GCJ02.
func (s *Station) CoordSystem() string { return s.coordSystem }

// Geometry is the station's shape in WGS84.
func (s *Station) Geometry() Geometry { return s.geometry }

// OriginalGeometry is the geometry as given, when it was given in GCJ-02;
// nil for WGS84.
func (s *Station) OriginalGeometry() *Geometry { return s.original }

// RadiusM is a circle's radius in metres; 0 for polygons.
func (s *Station) RadiusM() float64 { return s.radiusM }

// Detection is the station's own detection settings.
func (s *Station) Detection() Detection { return s.detection }

// WithID returns a copy of s with id, which must be valid and must equal
// the id s already has, if any: a body naming another station than its
// URL is an error on "id".
func (s *Station) WithID(id string) (*Station, error) {
	var e errs
	if detail := checkID(id); detail != "" {
		e.add("id", "%s", detail)
	} else if s.id != "" && s.id != id {
		e.add("id", "the body's id %q differs from the station's id %q in the URL", s.id, id)
	}
	if err := e.err(); err != nil {
		return nil, err
	}
	c := *s
	c.id = id
	return &c, nil
}

// ValidateID checks a station id given outside a body (a URL path):
// the error is a *ValidationError on field.
func ValidateID(field, id string) error {
	if detail := checkID(id); detail != "" {
		return &ValidationError{Fields: []FieldError{{Field: field, Detail: detail}}}
	}
	return nil
}

// checkID returns what is wrong with id, or "".
func checkID(id string) string {
	switch {
	case id == "":
		return "must not be empty"
	case len(id) > MaxIDLen:
		return "longer than 64 characters"
	case !idPattern.MatchString(id):
		return "may hold only letters A-Z and a-z, digits and _ . : -"
	case strings.Trim(id, ".") == "":
		return `"." and ".." cannot be addressed in a URL`
	}
	return ""
}

// checkName returns what is wrong with a station name, or "".
func checkName(name string) string {
	switch {
	case strings.TrimSpace(name) == "":
		return "must not be blank"
	case utf8.RuneCountInString(name) > MaxNameLen:
		return "longer than 200 characters"
	case strings.ContainsFunc(name, unicode.IsControl):
		return "must not contain control characters"
	}
	return ""
}

// checkType returns what is wrong with a station type, or "".
func checkType(typ string) string {
	if !slices.Contains(Types, typ) {
		return "must be one of " + strings.Join(Types, ", ")
	}
	return ""
}

// Shape is the station's area as the geofence tests fixes against it.
func (s *Station) Shape() geofence.Shape {
	if s.geometry.typ == GeometryPoint {
		return geofence.Shape{Circle: &geo.Circle{Center: s.geometry.point, RadiusM: s.radiusM}}
	}
	return geofence.Shape{Polygons: s.geometry.polygons}
}

// Geofence returns the station, at version, as the geofence needs it.
func (s *Station) Geofence(version int64) geofence.Station {
	return geofence.Station{
		ID: s.id, Type: s.typ, Version: version, Shape: s.Shape(), Detection: s.detection.Overrides(),
	}
}
