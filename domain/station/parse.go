package station

import (
	"encoding/json"
	"fmt"
	"math"
	"unicode/utf8"

	"github.com/tmsfleet/tms/domain/geo"
)

// readOnly are the fields of a station as shown that a client cannot set:
// naming them in a definition is an error that says so, rather than
// "unknown field", since a client that read a station and sends it back
// will meet them.
var readOnly = map[string]string{
	"version":           "read-only: the server sets it; send the version you read as If-Match instead",
	"original_geometry": "read-only: the server keeps the geometry as given; send geometry with coord_system gcj02",
	"updated_at":        "read-only: the server sets it",
	"inside":            "read-only: the vehicles inside are not part of a station's definition",
}

// Rules are what a definition may cost to accept, beyond what makes it
// valid: the settings of an installation. The zero value takes the
// defaults.
type Rules struct {
	// MaxPoints bounds the positions of a station's geometry (every
	// position of every ring of every polygon, closing ones included).
	// Validating a polygon takes O(n log n) time, and the geofence keeps
	// and tests every edge: real sites need tens to hundreds of points.
	// Default DefaultMaxPoints; at most MaxPointsCeiling.
	MaxPoints int
}

// Limits of Rules.MaxPoints.
const (
	// DefaultMaxPoints is the default Rules.MaxPoints.
	DefaultMaxPoints = 2000
	// MaxPointsCeiling is the most Rules.MaxPoints may be, and what a
	// stored station may have (see Geometry.UnmarshalJSON), so that a
	// station accepted under a larger setting than today's is still read:
	// a station's event of this many positions, with its GCJ-02 original,
	// is about 800 KB, within Kafka's default 1 MB record.
	MaxPointsCeiling = 10000
)

// Validate reports rules that cannot work.
func (r Rules) Validate() error {
	if r.MaxPoints != 0 && (r.MaxPoints < 4 || r.MaxPoints > MaxPointsCeiling) {
		return fmt.Errorf("station: MaxPoints %d is outside [4, %d]", r.MaxPoints, MaxPointsCeiling)
	}
	return nil
}

// maxPoints is MaxPoints or its default.
func (r Rules) maxPoints() int {
	if r.MaxPoints == 0 {
		return DefaultMaxPoints
	}
	return r.MaxPoints
}

// Parse reads a station definition under the default Rules.
func Parse(body []byte) (*Station, error) { return Rules{}.Parse(body) }

// CheckPoints reports a station whose geometry has more positions than the
// rules allow, as a *ValidationError on its geometry: a station parsed
// under other rules, before it is accepted under these.
func (r Rules) CheckPoints(s *Station) error {
	if n := s.geometry.Points(); n > r.maxPoints() {
		return &ValidationError{Fields: []FieldError{{
			Field:  "geometry.coordinates",
			Detail: fmt.Sprintf("the geometry has %d positions, more than %d", n, r.maxPoints()),
		}}}
	}
	return nil
}

// Parse reads a station definition from a request body and validates it:
// every bad field is reported at once, in a *ValidationError whose fields
// are JSON paths. The id is optional (the caller gives one with WithID);
// coord_system defaults to WGS84. A GCJ-02 geometry is converted to WGS84,
// the converted shape validated again, and the original kept. A null
// optional field counts as absent. A geometry of more than r's MaxPoints
// positions is refused as it is read, before it is validated.
func (r Rules) Parse(body []byte) (*Station, error) {
	var e errs
	if !utf8.Valid(body) {
		e.add("body", "is not valid UTF-8")
		return nil, e.err()
	}
	members, dups, err := objectMembers(body)
	if err != nil {
		e.add("body", "%v", err)
		return nil, e.err()
	}
	addDups(&e, "", dups)
	s := &Station{coordSystem: WGS84}
	var geometry, radius json.RawMessage
	given := map[string]bool{}
	for _, m := range members {
		given[m.name] = true
		str := func(check func(string) string) (string, bool) {
			v, err := jsonString(m.value)
			if err != nil {
				e.add(m.name, "%v", err)
				return "", false
			}
			if detail := check(v); detail != "" {
				e.add(m.name, "%s", detail)
				return "", false
			}
			return v, true
		}
		switch m.name {
		case "id":
			if !isNull(m.value) {
				s.id, _ = str(checkID)
			}
		case "name":
			s.name, _ = str(checkName)
		case "type":
			s.typ, _ = str(checkType)
		case "coord_system":
			if isNull(m.value) {
				continue
			}
			if v, ok := str(checkCoordSystem); ok {
				s.coordSystem = v
			}
		case "geometry":
			geometry = m.value
		case "radius_m":
			if !isNull(m.value) {
				radius = m.value
			}
		case "detection":
			if !isNull(m.value) {
				s.detection = parseDetection(&e, m.value)
			}
		default:
			if detail, ok := readOnly[m.name]; ok {
				e.add(m.name, "%s", detail)
			} else {
				e.add(memberPath("", m.name), "unknown field; a station has id, name, type, coord_system, geometry, radius_m and detection")
			}
		}
	}
	for _, f := range []string{"name", "type", "geometry"} {
		if !given[f] {
			e.add(f, "required")
		}
	}
	var g Geometry
	geometryOK := false
	if geometry != nil {
		g, geometryOK = parseGeometry(&e, "geometry", geometry, geometryRules{maxPoints: r.maxPoints()})
	}
	s.radiusM = parseRadius(&e, radius, g)
	if geometryOK {
		s.geometry = g
		if s.coordSystem == GCJ02 {
			s.original = &g
			s.geometry = g.convert(FromGCJ02)
			// The transform bends space a little differently at each
			// position, so a shape valid as given may not be once
			// converted (a ring that nearly touches itself).
			if serr := s.geometry.validate("geometry.coordinates"); serr != nil {
				e.add(serr.Field, "after conversion from GCJ-02 to WGS84: %s", serr.Detail)
			}
		}
	}
	if err := e.err(); err != nil {
		return nil, err
	}
	return s, nil
}

// parseRadius reads radius_m, which a Point needs and polygons must not
// have. g's type is known even when its coordinates are bad; when it is
// not known, a given radius is still checked, so that its problems are
// reported in the same answer.
func parseRadius(e *errs, raw json.RawMessage, g Geometry) float64 {
	switch {
	case raw == nil && g.typ == GeometryPoint:
		e.add("radius_m", "required with a Point geometry: the circle's radius in metres, %d to %d", MinRadiusM, MaxRadiusM)
		return 0
	case raw == nil:
		return 0
	case g.typ != "" && g.typ != GeometryPoint:
		e.add("radius_m", "applies to a Point geometry only; a %s has no radius", g.typ)
		return 0
	}
	r, err := jsonNumber(raw)
	switch {
	case err != nil:
		e.add("radius_m", "%v", err)
	case r < MinRadiusM || r > MaxRadiusM:
		e.add("radius_m", "%v m is outside [%d, %d] m", r, MinRadiusM, MaxRadiusM)
	default:
		return r
	}
	return 0
}

// checkCoordSystem returns what is wrong with a coordinate system, or "".
func checkCoordSystem(cs string) string {
	if cs != WGS84 && cs != GCJ02 {
		return "must be wgs84 or gcj02"
	}
	return ""
}

// FromGCJ02 is the WGS84 position a GCJ-02 one is stored as: converted,
// then rounded to 7 decimals (1 cm, far finer than GCJ-02's own accuracy),
// so that the station's events carry coordinates, not the float noise of
// the conversion's last digits.
func FromGCJ02(p geo.Point) geo.Point {
	w := geo.GCJ02ToWGS84(p)
	return geo.Point{Lat: math.Round(w.Lat*1e7) / 1e7, Lng: math.Round(w.Lng*1e7) / 1e7}
}
