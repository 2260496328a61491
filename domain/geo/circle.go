package geo

// Circle is a station shape: every point within RadiusM metres of Center.
type Circle struct {
	Center  Point
	RadiusM float64
}

// Contains reports whether p is inside the circle: Haversine(Center, p)
// <= RadiusM.
func (c Circle) Contains(p Point) bool { return Haversine(c.Center, p) <= c.RadiusM }

// BoundaryDistance returns how far p is from the circle's edge, in
// metres, whichever side it is on.
func (c Circle) BoundaryDistance(p Point) float64 {
	d := Haversine(c.Center, p) - c.RadiusM
	if d < 0 {
		return -d
	}
	return d
}
