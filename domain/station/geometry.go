package station

import (
	"bytes"
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

// UnmarshalJSON decodes a GeoJSON geometry as stored in tms.stations.
// It trusts that the geometry was validated when its command was accepted
// (Rules.Parse) and does not validate it again: the sweep over every edge
// would run on every read of every station (the projector, each geofence
// start, each replay). It still bounds the geometry's size
// (MaxPointsCeiling positions) and checks, in linear time, what every
// computation on it needs (geo.CheckStoredPolygon), so that a malformed
// event is refused with an error, never a crash. Unlike Parse, it is how
// stored events are read, so the error is a plain one.
func (g *Geometry) UnmarshalJSON(raw []byte) error {
	var e errs
	parsed, ok := parseGeometry(&e, "geometry", raw, storedGeometry)
	if !ok {
		return e.err()
	}
	*g = parsed
	return nil
}

// geometryRules say how a geometry is read: its largest number of
// positions, and whether it is validated in full (a definition) or only
// checked (a stored geometry, validated when it was accepted).
type geometryRules struct {
	maxPoints int
	stored    bool
}

// storedGeometry is how stored geometries are read.
var storedGeometry = geometryRules{maxPoints: MaxPointsCeiling, stored: true}

// Points is the number of positions of the geometry: 1 for a Point, every
// position of every ring (closing ones included) for polygons.
func (g Geometry) Points() int {
	if g.typ == GeometryPoint {
		return 1
	}
	n := 0
	for _, pg := range g.polygons {
		for _, r := range pg {
			n += len(r)
		}
	}
	return n
}

// parseGeometry reads a GeoJSON geometry from raw, validated, reporting
// problems to e under field. ok is false when it found any; the geometry
// then still has its type when that could be read, so that the fields
// that depend on it (radius_m) can be judged in the same answer.
func parseGeometry(e *errs, field string, raw []byte, rules geometryRules) (Geometry, bool) {
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
	p := &positions{max: rules.maxPoints}
	var ferr *FieldError
	switch typ {
	case GeometryPoint:
		g.point, ferr = p.position(cf, coords)
	case GeometryPolygon:
		var pg geo.Polygon
		if pg = quickPolygon(coords, p.max); pg == nil {
			pg, ferr = p.polygon(cf, coords)
		}
		g.polygons = geo.MultiPolygon{pg}
	case GeometryMultiPolygon:
		if g.polygons = quickMultiPolygon(coords, p.max); g.polygons == nil {
			g.polygons, ferr = p.multiPolygon(cf, coords)
		}
	}
	if ferr != nil {
		e.list = append(e.list, *ferr)
		return Geometry{typ: typ}, false
	}
	check := g.validate
	if rules.stored {
		check = g.checkStored
	}
	if serr := check(cf); serr != nil {
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

// checkStored checks a stored geometry (see UnmarshalJSON); field names
// its coordinates.
func (g Geometry) checkStored(field string) *geo.ShapeError {
	switch g.typ {
	case GeometryPoint:
		return geo.ValidatePoint(field, g.point)
	case GeometryPolygon:
		return geo.CheckStoredPolygon(field, g.polygons[0])
	default:
		return geo.CheckStoredMultiPolygon(field, g.polygons)
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

// quickPolygon reads a Polygon's coordinates in one pass when they are
// plainly well-formed (arrays of rings of [longitude, latitude] numbers, at
// most max positions, none null): the common case, at a fraction of the
// cost of positions' element-by-element reading (which re-reads every
// array once per level of nesting). It returns nil for anything else, which
// positions then reads to name the first bad element.
func quickPolygon(raw []byte, max int) geo.Polygon {
	var rings [][][]float64
	if bytes.Contains(raw, []byte("null")) || json.Unmarshal(raw, &rings) != nil || len(rings) == 0 {
		return nil
	}
	return quickRings(rings, max)
}

// quickMultiPolygon is quickPolygon for a MultiPolygon's coordinates.
func quickMultiPolygon(raw []byte, max int) geo.MultiPolygon {
	var polys [][][][]float64
	if bytes.Contains(raw, []byte("null")) || json.Unmarshal(raw, &polys) != nil || len(polys) == 0 {
		return nil
	}
	mp := make(geo.MultiPolygon, len(polys))
	for i, rings := range polys {
		if mp[i] = quickRings(rings, max); mp[i] == nil {
			return nil
		}
		for _, r := range mp[i] {
			max -= len(r)
		}
	}
	return mp
}

func quickRings(rings [][][]float64, max int) geo.Polygon {
	if len(rings) == 0 {
		return nil
	}
	pg := make(geo.Polygon, len(rings))
	for i, ring := range rings {
		if max -= len(ring); max < 0 {
			return nil
		}
		pg[i] = make(geo.Ring, len(ring))
		for j, pos := range ring {
			if len(pos) != 2 {
				return nil
			}
			pg[i][j] = geo.Point{Lat: pos[1], Lng: pos[0]}
		}
	}
	return pg
}

// positions reads GeoJSON coordinate arrays, counting positions so that
// an oversized shape is refused before it costs anything to validate.
type positions struct {
	n, max int
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
	if p.n++; p.n > p.max {
		return geo.Point{}, fieldErr(field, "the geometry has more than %d positions", p.max)
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
	if p.n+len(a) > p.max {
		return nil, fieldErr(field, "the geometry has more than %d positions", p.max)
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
