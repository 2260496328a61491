package station

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/tmsfleet/tms/domain/geo"
)

// The GeoJSON geometry types a station may have.
const (
	// GeometryPoint is a circle's centre; the station needs radius_m.
	GeometryPoint = "Point"
	// GeometryPolygon is one polygon: an outer ring and optional holes.
	GeometryPolygon = "Polygon"
	// GeometryMultiPolygon is several disjoint polygons.
	GeometryMultiPolygon = "MultiPolygon"
)

// Geometry is a station's GeoJSON (RFC 7946) geometry: a Point (a
// circle's centre), a Polygon or a MultiPolygon. Coordinates are [lng,
// lat] in JSON and a geo.Point in Go. A Geometry is valid by construction:
// it is only made by parsing, which validates it (see domain/geo).
type Geometry struct {
	typ      string
	point    geo.Point
	polygons geo.MultiPolygon // one polygon for a Polygon
}

// Type is GeometryPoint, GeometryPolygon or GeometryMultiPolygon; "" for
// the zero Geometry.
func (g Geometry) Type() string { return g.typ }

// Point is a Point geometry's position.
func (g Geometry) Point() geo.Point { return g.point }

// Polygons are a Polygon's (one) or a MultiPolygon's polygons.
func (g Geometry) Polygons() geo.MultiPolygon { return g.polygons }

// geoJSON is a geometry as encoded.
type geoJSON struct {
	Type        string `json:"type"`
	Coordinates any    `json:"coordinates"`
}

// MarshalJSON encodes g as GeoJSON. Coordinates are written in their
// shortest exact form, so decoding gives back the same float64s.
func (g Geometry) MarshalJSON() ([]byte, error) {
	pos := func(p geo.Point) [2]float64 { return [2]float64{p.Lng, p.Lat} }
	poly := func(pg geo.Polygon) [][][2]float64 {
		rings := make([][][2]float64, len(pg))
		for i, r := range pg {
			rings[i] = make([][2]float64, len(r))
			for j, p := range r {
				rings[i][j] = pos(p)
			}
		}
		return rings
	}
	switch g.typ {
	case GeometryPoint:
		return json.Marshal(geoJSON{g.typ, pos(g.point)})
	case GeometryPolygon:
		return json.Marshal(geoJSON{g.typ, poly(g.polygons[0])})
	case GeometryMultiPolygon:
		out := make([][][][2]float64, len(g.polygons))
		for i, pg := range g.polygons {
			out[i] = poly(pg)
		}
		return json.Marshal(geoJSON{g.typ, out})
	}
	return nil, errors.New("station: encoding an empty geometry")
}

// UnmarshalJSON decodes and validates a GeoJSON geometry. Unlike Parse,
// it is how stored events are read, so the error is a plain one.
func (g *Geometry) UnmarshalJSON(raw []byte) error {
	var e errs
	parsed, ok := parseGeometry(&e, "geometry", raw)
	if !ok {
		return e.err()
	}
	*g = parsed
	return nil
}

// parseGeometry reads a GeoJSON geometry from raw, validated, reporting
// problems to e under field. ok is false when it found any; the geometry
// then still has its type when that could be read, so that the fields
// that depend on it (radius_m) can be judged in the same answer.
func parseGeometry(e *errs, field string, raw []byte) (Geometry, bool) {
	bad := len(e.list)
	members, dups, err := objectMembers(raw)
	if err != nil {
		e.add(field, "%v", err)
		return Geometry{}, false
	}
	addDups(e, field, dups)
	var typ string
	var coords json.RawMessage
	typeGiven := false
	for _, m := range members {
		f := memberPath(field, m.name)
		switch m.name {
		case "type":
			typeGiven = true
			s, err := jsonString(m.value)
			switch {
			case err != nil:
				e.add(f, "%v", err)
			case s != GeometryPoint && s != GeometryPolygon && s != GeometryMultiPolygon:
				e.add(f, "%q is not a station geometry; want Point (with radius_m), Polygon or MultiPolygon", s)
			default:
				typ = s
			}
		case "coordinates":
			coords = m.value
		default:
			e.add(f, "unknown field; a geometry has type and coordinates")
		}
	}
	if !typeGiven {
		e.add(field+".type", "required: Point, Polygon or MultiPolygon")
	}
	if coords == nil {
		e.add(field+".coordinates", "required")
	}
	if len(e.list) > bad {
		return Geometry{typ: typ}, false
	}
	cf := field + ".coordinates"
	g := Geometry{typ: typ}
	p := &positions{}
	var ferr *FieldError
	switch typ {
	case GeometryPoint:
		g.point, ferr = p.position(cf, coords)
	case GeometryPolygon:
		var pg geo.Polygon
		pg, ferr = p.polygon(cf, coords)
		g.polygons = geo.MultiPolygon{pg}
	case GeometryMultiPolygon:
		g.polygons, ferr = p.multiPolygon(cf, coords)
	}
	if ferr != nil {
		e.list = append(e.list, *ferr)
		return Geometry{typ: typ}, false
	}
	if serr := g.validate(cf); serr != nil {
		e.add(serr.Field, "%s", serr.Detail)
		return Geometry{typ: typ}, false
	}
	return g, true
}

// validate checks g by the geometry contract (domain/geo); field names its
// coordinates.
func (g Geometry) validate(field string) *geo.ShapeError {
	switch g.typ {
	case GeometryPoint:
		return geo.ValidatePoint(field, g.point)
	case GeometryPolygon:
		return geo.ValidatePolygon(field, g.polygons[0])
	default:
		return geo.ValidateMultiPolygon(field, g.polygons)
	}
}

// convert returns g with every position mapped by f.
func (g Geometry) convert(f func(geo.Point) geo.Point) Geometry {
	out := Geometry{typ: g.typ, point: f(g.point)}
	if g.polygons == nil {
		return out
	}
	out.polygons = make(geo.MultiPolygon, len(g.polygons))
	for i, pg := range g.polygons {
		out.polygons[i] = make(geo.Polygon, len(pg))
		for j, r := range pg {
			out.polygons[i][j] = make(geo.Ring, len(r))
			for k, p := range r {
				out.polygons[i][j][k] = f(p)
			}
		}
	}
	return out
}

// positions reads GeoJSON coordinate arrays, counting positions so that
// an oversized shape is refused before it costs anything to validate.
type positions struct {
	n int
}

func fieldErr(field, format string, args ...any) *FieldError {
	return &FieldError{Field: field, Detail: fmt.Sprintf(format, args...)}
}

// arrayOf reads what (an array of elems) from raw.
func arrayOf(field, what, elems string, raw []byte) ([]json.RawMessage, *FieldError) {
	a, err := jsonArray(raw)
	if err != nil {
		return nil, fieldErr(field, "%s must be an array of %s, not %s", what, elems, kindOf(raw))
	}
	return a, nil
}

func (p *positions) position(field string, raw []byte) (geo.Point, *FieldError) {
	if p.n++; p.n > geo.MaxVertices {
		return geo.Point{}, fieldErr(field, "the geometry has more than %d positions", geo.MaxVertices)
	}
	a, ferr := arrayOf(field, "a position", "numbers", raw)
	if ferr != nil {
		return geo.Point{}, ferr
	}
	if len(a) != 2 {
		detail := "a position is [longitude, latitude]; got %d numbers"
		if len(a) == 3 {
			detail += " (altitude is not supported)"
		}
		return geo.Point{}, fieldErr(field, detail, len(a))
	}
	lng, err := jsonNumber(a[0])
	if err != nil {
		return geo.Point{}, fieldErr(field, "longitude %v", err)
	}
	lat, err := jsonNumber(a[1])
	if err != nil {
		return geo.Point{}, fieldErr(field, "latitude %v", err)
	}
	return geo.Point{Lat: lat, Lng: lng}, nil
}

func (p *positions) ring(field string, raw []byte) (geo.Ring, *FieldError) {
	a, ferr := arrayOf(field, "a ring", "positions", raw)
	if ferr != nil {
		return nil, ferr
	}
	if p.n+len(a) > geo.MaxVertices {
		return nil, fieldErr(field, "the geometry has more than %d positions", geo.MaxVertices)
	}
	r := make(geo.Ring, len(a))
	for i, v := range a {
		pt, ferr := p.position(fmt.Sprintf("%s[%d]", field, i), v)
		if ferr != nil {
			return nil, ferr
		}
		r[i] = pt
	}
	return r, nil
}

func (p *positions) polygon(field string, raw []byte) (geo.Polygon, *FieldError) {
	a, ferr := arrayOf(field, "a polygon", "rings", raw)
	if ferr != nil {
		return nil, ferr
	}
	if len(a) == 0 {
		return nil, fieldErr(field, "a polygon needs an outer ring")
	}
	pg := make(geo.Polygon, len(a))
	for i, v := range a {
		r, ferr := p.ring(fmt.Sprintf("%s[%d]", field, i), v)
		if ferr != nil {
			return nil, ferr
		}
		pg[i] = r
	}
	return pg, nil
}

func (p *positions) multiPolygon(field string, raw []byte) (geo.MultiPolygon, *FieldError) {
	a, ferr := arrayOf(field, "a MultiPolygon", "polygons", raw)
	if ferr != nil {
		return nil, ferr
	}
	if len(a) == 0 {
		return nil, fieldErr(field, "a MultiPolygon needs at least one polygon")
	}
	mp := make(geo.MultiPolygon, len(a))
	for i, v := range a {
		pg, ferr := p.polygon(fmt.Sprintf("%s[%d]", field, i), v)
		if ferr != nil {
			return nil, ferr
		}
		mp[i] = pg
	}
	return mp, nil
}
