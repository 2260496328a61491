// Package geo is tms's geometry contract: how a fix is judged inside or
// outside a station, written down so that anyone can recompute a
// billing-relevant decision.
//
//   - Coordinates are WGS84 degrees; a Point is (Lat, Lng).
//   - Distance between two points is the haversine distance on a sphere of
//     radius EarthRadiusM (6,371,008.8 m):
//     d = 2R·asin(√(sin²(Δφ/2) + cos φ1·cos φ2·sin²(Δλ/2))).
//   - A point is inside a circle iff its distance to the centre is at most
//     the radius.
//   - A polygon is a GeoJSON polygon: an outer ring and optional holes,
//     each ring closed (last point equals the first), its edges straight
//     lines in longitude/latitude (not great circles), coordinates taken
//     literally (a shape across the antimeridian must be split into a
//     MultiPolygon, as RFC 7946 asks). A point is inside iff it is inside
//     or on the outer ring and not strictly inside a hole: a point exactly
//     on any edge counts as inside. The test is exact: orientations (Orient)
//     are decided in floating point when its error bound allows, and in
//     exact arithmetic otherwise.
//   - A MultiPolygon contains a point iff one of its polygons does.
//   - The distance from a point to a polygon's boundary (for exit margins)
//     is measured in a local equirectangular frame centred on the point
//     (x = Δλ·cos φ·R, y = Δφ·R, radians), where the straight lng/lat edges
//     stay straight.
//
// The package also converts GCJ-02 ("Mars") coordinates, which Chinese
// maps use, to WGS84, and validates shapes given by users
// (ValidatePolygon: a sweep over the edges, O(n log n) for n positions,
// every decision exact), so that a station's definition costs little to
// check however it is drawn.
package geo
