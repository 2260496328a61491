package station

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/tmsfleet/tms/domain/geo"
)

// body builds a station body from a valid circle, with fields replaced
// (a nil value removes the field). Values are raw JSON.
func body(replace map[string]any) []byte {
	fields := map[string]any{
		"id":       `"S001"`,
		"name":     `"Gate 3"`,
		"type":     `"loading"`,
		"geometry": `{"type": "Point", "coordinates": [121.4737, 31.2304]}`,
		"radius_m": `300`,
	}
	for k, v := range replace {
		fields[k] = v
	}
	var parts []string
	for _, k := range slices.Sorted(func(yield func(string) bool) {
		for k := range fields {
			if !yield(k) {
				return
			}
		}
	}) {
		if fields[k] == nil {
			continue
		}
		parts = append(parts, fmt.Sprintf("%q: %s", k, fields[k]))
	}
	return []byte("{" + strings.Join(parts, ", ") + "}")
}

func polygon(rings ...string) string {
	return `{"type": "Polygon", "coordinates": [` + strings.Join(rings, ", ") + `]}`
}

// square is a closed ring around (lng, lat) with half-side d degrees.
func square(lng, lat, d float64) string {
	return fmt.Sprintf("[[%v, %v], [%v, %v], [%v, %v], [%v, %v], [%v, %v]]",
		lng-d, lat-d, lng+d, lat-d, lng+d, lat+d, lng-d, lat+d, lng-d, lat-d)
}

func geometry(typ, coords string) string {
	return fmt.Sprintf(`{"type": %q, "coordinates": %s}`, typ, coords)
}

// TestParseNamesEveryBadField: each case makes one field bad and expects
// exactly that field to be named, with a detail saying what is wrong.
func TestParseNamesEveryBadField(t *testing.T) {
	t.Parallel()
	bigRing := func(n int) string {
		var b strings.Builder
		b.WriteString("[")
		for i := range n {
			a := 2 * math.Pi * float64(i) / float64(n)
			fmt.Fprintf(&b, "[%v, %v], ", 121+0.01*math.Cos(a), 31+0.01*math.Sin(a))
		}
		b.WriteString("[121.01, 31]]")
		return b.String()
	}
	cases := []struct {
		name   string
		body   []byte
		field  string
		detail string
	}{
		{"not UTF-8", []byte("{\"name\": \"\xff\"}"), "body", "UTF-8"},
		{"malformed JSON", []byte(`{"name": `), "body", "malformed JSON"},
		{"syntax error", []byte(`{"name" "x"}`), "body", "malformed JSON"},
		{"an array", []byte(`[1, 2]`), "body", "must be a JSON object, not an array"},
		{"null", []byte(`null`), "body", "not null"},
		{"empty", []byte(``), "body", "malformed JSON"},
		{"data after the object", []byte(`{} {}`), "body", "after the object"},
		{"a field twice", []byte(`{"name": "a", "name": "b", "type": "oil", "geometry": ` + polygon(square(121, 31, 0.01)) + `}`), "name", "more than once"},

		{"id not a string", body(map[string]any{"id": `7`}), "id", "must be a string"},
		{"id empty", body(map[string]any{"id": `""`}), "id", "empty"},
		{"id too long", body(map[string]any{"id": `"` + strings.Repeat("x", 65) + `"`}), "id", "longer than 64"},
		{"id with a space", body(map[string]any{"id": `"S 1"`}), "id", "only letters"},
		{"id with a slash", body(map[string]any{"id": `"a/b"`}), "id", "only letters"},
		{"id of dots", body(map[string]any{"id": `".."`}), "id", "cannot be addressed"},
		{"id not Latin", body(map[string]any{"id": `"站1"`}), "id", "only letters"},

		{"name missing", body(map[string]any{"name": nil}), "name", "required"},
		{"name null", body(map[string]any{"name": `null`}), "name", "must be a string, not null"},
		{"name blank", body(map[string]any{"name": `"   "`}), "name", "blank"},
		{"name too long", body(map[string]any{"name": `"` + strings.Repeat("站", 201) + `"`}), "name", "longer than 200"},
		{"name with a control character", body(map[string]any{"name": `"a\u0007b"`}), "name", "control"},

		{"type missing", body(map[string]any{"type": nil}), "type", "required"},
		{"type unknown", body(map[string]any{"type": `"depot"`}), "type", "one of loading,"},
		{"type as G7's number", body(map[string]any{"type": `0`}), "type", "must be a string"},

		{"coord_system unknown", body(map[string]any{"coord_system": `"bd09"`}), "coord_system", "wgs84 or gcj02"},
		{"coord_system in capitals", body(map[string]any{"coord_system": `"WGS84"`}), "coord_system", "wgs84 or gcj02"},

		{"geometry missing", body(map[string]any{"geometry": nil}), "geometry", "required"},
		{"geometry not an object", body(map[string]any{"geometry": `[121, 31]`}), "geometry", "must be a JSON object"},
		{"geometry without type", body(map[string]any{"geometry": `{"coordinates": [121, 31]}`}), "geometry.type", "required"},
		{"geometry of another type", body(map[string]any{"geometry": geometry("LineString", "[[121, 31], [122, 31]]")}), "geometry.type", "not a station geometry"},
		{"geometry type not a string", body(map[string]any{"geometry": `{"type": 1, "coordinates": [121, 31]}`}), "geometry.type", "must be a string"},
		{"geometry without coordinates", body(map[string]any{"geometry": `{"type": "Point"}`}), "geometry.coordinates", "required"},
		{"geometry with a bbox", body(map[string]any{"geometry": `{"type": "Point", "coordinates": [121, 31], "bbox": [121, 31, 121, 31]}`}), "geometry.bbox", "unknown field"},
		{"geometry field twice", body(map[string]any{"geometry": `{"type": "Point", "type": "Point", "coordinates": [121, 31]}`}), "geometry.type", "more than once"},

		{"point not an array", body(map[string]any{"geometry": geometry("Point", `"121,31"`)}), "geometry.coordinates", "must be an array of numbers, not a string"},
		{"point with altitude", body(map[string]any{"geometry": geometry("Point", `[121, 31, 5]`)}), "geometry.coordinates", "altitude"},
		{"point of one number", body(map[string]any{"geometry": geometry("Point", `[121]`)}), "geometry.coordinates", "[longitude, latitude]"},
		{"point longitude a string", body(map[string]any{"geometry": geometry("Point", `["121", 31]`)}), "geometry.coordinates", "longitude must be a number"},
		{"point latitude out of range", body(map[string]any{"geometry": geometry("Point", `[121, 91]`)}), "geometry.coordinates", "latitude 91 is outside"},
		{"point longitude out of range", body(map[string]any{"geometry": geometry("Point", `[181, 31]`)}), "geometry.coordinates", "longitude 181 is outside"},
		{"point number too large", body(map[string]any{"geometry": geometry("Point", `[1e999, 31]`)}), "geometry.coordinates", "not a representable number"},
		{"latitude and longitude swapped", body(map[string]any{"geometry": geometry("Point", `[31.2, 121.5]`)}), "geometry.coordinates", "latitude 121.5 is outside"},

		{"polygon without rings", body(map[string]any{"radius_m": nil, "geometry": geometry("Polygon", `[]`)}), "geometry.coordinates", "outer ring"},
		{"polygon ring not an array", body(map[string]any{"radius_m": nil, "geometry": geometry("Polygon", `[5]`)}), "geometry.coordinates[0]", "array of positions"},
		{"polygon ring not closed", body(map[string]any{"radius_m": nil, "geometry": polygon(`[[121, 31], [121.1, 31], [121.1, 31.1], [121, 31.1]]`)}), "geometry.coordinates[0]", "not closed"},
		{"polygon ring too short", body(map[string]any{"radius_m": nil, "geometry": polygon(`[[121, 31], [121.1, 31], [121, 31]]`)}), "geometry.coordinates[0]", "at least 4 positions"},
		{"polygon position bad", body(map[string]any{"radius_m": nil, "geometry": polygon(`[[121, 31], [121.1, 31], [121.1, true], [121, 31]]`)}), "geometry.coordinates[0][2]", "latitude must be a number"},
		{"polygon latitude out of range", body(map[string]any{"radius_m": nil, "geometry": polygon(`[[121, 31], [121.1, 31], [121.1, 91], [121, 31]]`)}), "geometry.coordinates[0][2]", "latitude 91"},
		{"polygon self-intersecting", body(map[string]any{"radius_m": nil, "geometry": polygon(`[[121, 31], [121.2, 31.2], [121.2, 31], [121, 31.1], [121, 31]]`)}), "geometry.coordinates[0][2]", "must not cross"},
		{"polygon without area", body(map[string]any{"radius_m": nil, "geometry": polygon(`[[121, 31], [121.1, 31], [121.2, 31], [121, 31]]`)}), "geometry.coordinates[0]", "no area"},
		{"polygon hole outside", body(map[string]any{"radius_m": nil, "geometry": polygon(square(121, 31, 0.01), square(122, 31, 0.001))}), "geometry.coordinates[1]", "not inside"},
		{"polygon across the antimeridian", body(map[string]any{"radius_m": nil, "geometry": polygon(`[[179.9, 0], [-179.9, 0], [-179.9, 1], [179.9, 1], [179.9, 0]]`)}), "geometry.coordinates[0][1]", "antimeridian"},
		{"polygon too many positions", body(map[string]any{"radius_m": nil, "geometry": polygon(bigRing(DefaultMaxPoints + 1))}), "geometry.coordinates[0]", "more than 2000 positions"},
		{"multipolygon empty", body(map[string]any{"radius_m": nil, "geometry": geometry("MultiPolygon", `[]`)}), "geometry.coordinates", "at least one polygon"},
		{"multipolygon overlapping", body(map[string]any{"radius_m": nil, "geometry": geometry("MultiPolygon", "[["+square(121, 31, 0.01)+"], ["+square(121.005, 31, 0.01)+"]]")}), "geometry.coordinates[1]", "overlaps"},
		{"multipolygon deep position", body(map[string]any{"radius_m": nil, "geometry": geometry("MultiPolygon", "[["+square(121, 31, 0.01)+"], [[[122, 31], [122.1, 31], [122.1, 31.1], [122, 95], [122, 31]]]]")}), "geometry.coordinates[1][0][3]", "latitude 95"},
		{"multipolygon many small polygons", body(map[string]any{"radius_m": nil, "geometry": geometry("MultiPolygon", manySquares(DefaultMaxPoints/5+1))}), "geometry.coordinates[400][0]", "more than 2000 positions"},
		{"polygon valid in GCJ-02 but not once converted", body(map[string]any{"coord_system": `"gcj02"`, "radius_m": nil,
			"geometry": polygon(`[[121, 31], [121.02, 31], [121.02, 31.01], [121.01, 31.0000001], [121, 31.01], [121, 31]]`)}),
			"geometry.coordinates[0][3]", "after conversion from GCJ-02 to WGS84: edge 3 of ring 0 meets edge 0"},

		{"point without radius", body(map[string]any{"radius_m": nil}), "radius_m", "required with a Point"},
		{"radius too small", body(map[string]any{"radius_m": `9.99`}), "radius_m", "outside [10, 50000]"},
		{"radius too large", body(map[string]any{"radius_m": `50000.5`}), "radius_m", "outside [10, 50000]"},
		{"radius a string", body(map[string]any{"radius_m": `"300"`}), "radius_m", "must be a number"},
		{"radius with a polygon", body(map[string]any{"geometry": polygon(square(121, 31, 0.01))}), "radius_m", "Point geometry only"},

		{"detection not an object", body(map[string]any{"detection": `[]`}), "detection", "must be a JSON object"},
		{"detection unknown", body(map[string]any{"detection": `{"enter_confirm": 3}`}), "detection.enter_confirm", "unknown field"},
		{"detection field twice", body(map[string]any{"detection": `{"exit_margin_m": 3, "exit_margin_m": 4}`}), "detection.exit_margin_m", "more than once"},
		{"enter fixes zero", body(map[string]any{"detection": `{"enter_confirm_fixes": 0}`}), "detection.enter_confirm_fixes", "outside [1, 100]"},
		{"enter fixes too many", body(map[string]any{"detection": `{"enter_confirm_fixes": 101}`}), "detection.enter_confirm_fixes", "outside [1, 100]"},
		{"enter fixes fractional", body(map[string]any{"detection": `{"enter_confirm_fixes": 1.5}`}), "detection.enter_confirm_fixes", "not an integer"},
		{"enter fixes a string", body(map[string]any{"detection": `{"enter_confirm_fixes": "2"}`}), "detection.enter_confirm_fixes", "must be an integer"},
		{"enter seconds negative", body(map[string]any{"detection": `{"enter_confirm_s": -1}`}), "detection.enter_confirm_s", "outside [0, 86400]"},
		{"enter seconds too long", body(map[string]any{"detection": `{"enter_confirm_s": 86401}`}), "detection.enter_confirm_s", "outside [0, 86400]"},
		{"exit margin too wide", body(map[string]any{"detection": `{"exit_margin_m": 5001}`}), "detection.exit_margin_m", "outside [0, 5000]"},
		{"exit margin a boolean", body(map[string]any{"detection": `{"exit_margin_m": true}`}), "detection.exit_margin_m", "must be a number, not a boolean"},
		{"exit fixes zero", body(map[string]any{"detection": `{"exit_confirm_fixes": 0}`}), "detection.exit_confirm_fixes", "outside [1, 100]"},
		{"exit seconds not representable", body(map[string]any{"detection": `{"exit_confirm_s": 1e999}`}), "detection.exit_confirm_s", "not a representable"},

		{"version is read-only", body(map[string]any{"version": `3`}), "version", "read-only"},
		{"original_geometry is read-only", body(map[string]any{"original_geometry": `{}`}), "original_geometry", "read-only"},
		{"inside is read-only", body(map[string]any{"inside": `[]`}), "inside", "read-only"},
		{"unknown field", body(map[string]any{"radius": `300`}), "radius", "unknown field"},
		{"unknown field with an odd name", body(map[string]any{"a.b": `1`}), `["a.b"]`, "unknown field"},
		{"unknown field without a name", body(map[string]any{"": `1`}), `[""]`, "unknown field"},
		{"unknown geometry field with an odd name", body(map[string]any{"geometry": `{"type": "Point", "coordinates": [1, 1], "x y": 1}`}), `geometry["x y"]`, "unknown field"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			s, err := Parse(c.body)
			if err == nil {
				t.Fatalf("accepted %s as %+v", c.body, s)
			}
			var verr *ValidationError
			if !errors.As(err, &verr) {
				t.Fatalf("error %T %v, want a *ValidationError", err, err)
			}
			if len(verr.Fields) != 1 {
				t.Fatalf("errors %v, want one on %s", verr.Fields, c.field)
			}
			f := verr.Fields[0]
			if f.Field != c.field || !strings.Contains(f.Detail, c.detail) {
				t.Errorf("error %s: %s\nwant      %s: ...%s...", f.Field, f.Detail, c.field, c.detail)
			}
		})
	}
}

// manySquares is n small disjoint squares as MultiPolygon coordinates.
func manySquares(n int) string {
	var parts []string
	for i := range n {
		parts = append(parts, "["+square(100+0.01*float64(i), 31, 0.001)+"]")
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

func TestParseReportsEveryBadFieldAtOnce(t *testing.T) {
	t.Parallel()
	_, err := Parse([]byte(`{"id": "a b", "name": "", "type": "x", "coord_system": "utm",
		"geometry": {"type": "Point", "coordinates": [0, 100]}, "radius_m": 1,
		"detection": {"exit_margin_m": -5, "enter_confirm_fixes": 0}, "colour": "red"}`))
	var verr *ValidationError
	if !errors.As(err, &verr) {
		t.Fatalf("%v", err)
	}
	var got []string
	for _, f := range verr.Fields {
		got = append(got, f.Field)
	}
	want := []string{"id", "name", "type", "coord_system", "detection.exit_margin_m", "detection.enter_confirm_fixes",
		"colour", "geometry.coordinates", "radius_m"}
	if !slices.Equal(got, want) {
		t.Errorf("fields %v, want %v", got, want)
	}
}

func TestParseAccepts(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		body []byte
		want func(*Station) string // what is wrong, or ""
	}{
		{"a circle with the smallest radius", body(map[string]any{"radius_m": `10`}), func(s *Station) string {
			if s.RadiusM() != 10 || s.Geometry().Point() != (geo.Point{Lat: 31.2304, Lng: 121.4737}) || s.CoordSystem() != WGS84 {
				return fmt.Sprintf("%+v", s)
			}
			return ""
		}},
		{"the largest radius", body(map[string]any{"radius_m": `5e4`}), nil},
		{"no id", body(map[string]any{"id": nil}), func(s *Station) string {
			if s.ID() != "" {
				return "id " + s.ID()
			}
			return ""
		}},
		{"null optional fields", body(map[string]any{"id": `null`, "coord_system": `null`, "detection": `null`}), nil},
		{"a polygon with a null radius", body(map[string]any{"radius_m": `null`, "geometry": polygon(square(121, 31, 0.01))}), nil},
		{"a polygon with a hole", body(map[string]any{"radius_m": nil, "geometry": polygon(square(121, 31, 0.01), square(121, 31, 0.001))}), func(s *Station) string {
			if len(s.Geometry().Polygons()) != 1 || len(s.Geometry().Polygons()[0]) != 2 || s.Shape().Circle != nil {
				return fmt.Sprintf("%+v", s.Geometry())
			}
			return ""
		}},
		{"a MultiPolygon", body(map[string]any{"radius_m": nil, "geometry": geometry("MultiPolygon", manySquares(3))}), nil},
		{"the whole detection, integers as 2.0", body(map[string]any{"detection": `{"enter_confirm_fixes": 2.0, "enter_confirm_s": 1.5,
			"exit_margin_m": 0, "exit_confirm_fixes": 100, "exit_confirm_s": 86400}`}), func(s *Station) string {
			o := s.Detection().Overrides()
			if *o.EnterConfirmFixes != 2 || *o.EnterConfirm != 1500e6 || *o.ExitMarginM != 0 || *o.ExitConfirmFixes != 100 || o.ExitConfirm.Hours() != 24 {
				return fmt.Sprintf("%+v", s.Detection())
			}
			return ""
		}},
		{"a GCJ-02 circle", body(map[string]any{"coord_system": `"gcj02"`}), func(s *Station) string {
			given := geo.Point{Lat: 31.2304, Lng: 121.4737}
			if s.OriginalGeometry() == nil || s.OriginalGeometry().Point() != given ||
				s.Geometry().Point() != FromGCJ02(given) || geo.Haversine(given, s.Geometry().Point()) < 100 {
				return fmt.Sprintf("geometry %+v, original %+v", s.Geometry(), s.OriginalGeometry())
			}
			return ""
		}},
		{"a GCJ-02 polygon", body(map[string]any{"coord_system": `"gcj02"`, "radius_m": nil, "geometry": polygon(square(121, 31, 0.01))}), func(s *Station) string {
			o, g := s.OriginalGeometry().Polygons()[0][0], s.Geometry().Polygons()[0][0]
			for i := range o {
				if g[i] != FromGCJ02(o[i]) {
					return fmt.Sprintf("position %d: %v is not the conversion of %v", i, g[i], o[i])
				}
			}
			return ""
		}},
		{"a Chinese name of 200 characters", body(map[string]any{"name": `"` + strings.Repeat("站", 200) + `"`}), nil},
		{"an id of every allowed kind", body(map[string]any{"id": `"` + strings.Repeat("aZ09_.:-", 8) + `"`}), nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			s, err := Parse(c.body)
			if err != nil {
				t.Fatalf("%s: %v", c.body, err)
			}
			if c.want != nil {
				if msg := c.want(s); msg != "" {
					t.Error(msg)
				}
			}
		})
	}
}

func TestWithID(t *testing.T) {
	t.Parallel()
	noID, err := Parse(body(map[string]any{"id": nil}))
	if err != nil {
		t.Fatal(err)
	}
	s, err := noID.WithID("S9")
	if err != nil || s.ID() != "S9" || noID.ID() != "" {
		t.Errorf("WithID: %v, %v (the original must stay as it was)", s, err)
	}
	withID, _ := Parse(body(nil))
	if _, err := withID.WithID("S001"); err != nil {
		t.Errorf("the same id: %v", err)
	}
	for _, id := range []string{"S002", "bad id"} {
		_, err := withID.WithID(id)
		var verr *ValidationError
		if !errors.As(err, &verr) || verr.Fields[0].Field != "id" {
			t.Errorf("WithID(%q) = %v, want an error on id", id, err)
		}
	}
}

// TestGeometryRoundTrip: encoding and decoding give back the same
// float64s, so what is stored is exactly what is tested against.
func TestGeometryRoundTrip(t *testing.T) {
	t.Parallel()
	s, err := Parse(body(map[string]any{"coord_system": `"gcj02"`, "radius_m": nil,
		"geometry": geometry("MultiPolygon", "[["+square(121.123456789, 31.987654321, 0.0123)+", "+square(121.123456789, 31.987654321, 0.001)+"]]")}))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := json.Marshal(s.Geometry())
	if err != nil {
		t.Fatal(err)
	}
	var back Geometry
	if err := json.Unmarshal(raw, &back); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(back) != fmt.Sprint(s.Geometry()) {
		t.Errorf("round trip changed the geometry:\n%v\n%v", back, s.Geometry())
	}
}

// TestRules: MaxPoints bounds what Parse reads and what CheckPoints
// admits; the settings are checked.
func TestRules(t *testing.T) {
	t.Parallel()
	for _, n := range []int{-1, 3, MaxPointsCeiling + 1} {
		if (Rules{MaxPoints: n}).Validate() == nil {
			t.Errorf("MaxPoints %d accepted", n)
		}
	}
	for _, n := range []int{0, 4, MaxPointsCeiling} {
		if err := (Rules{MaxPoints: n}).Validate(); err != nil {
			t.Errorf("MaxPoints %d: %v", n, err)
		}
	}
	three := body(map[string]any{"radius_m": nil, "geometry": geometry("MultiPolygon", manySquares(3))})
	s, err := Parse(three)
	if err != nil {
		t.Fatal(err)
	}
	strict := Rules{MaxPoints: 14}
	if _, err := strict.Parse(three); err == nil || !strings.Contains(err.Error(), "more than 14 positions") {
		t.Errorf("15 positions under MaxPoints 14: %v", err)
	}
	if err := strict.CheckPoints(s); err == nil || !strings.Contains(err.Error(), "15 positions, more than 14") {
		t.Errorf("CheckPoints: %v", err)
	}
	if err := (Rules{MaxPoints: 15}).CheckPoints(s); err != nil {
		t.Errorf("15 positions under MaxPoints 15: %v", err)
	}
}
