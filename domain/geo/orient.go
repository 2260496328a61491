package geo

import (
	"math"
	"math/big"
)

// orient returns the sign of the cross product (b-a)×(p-a) in the
// lng/lat plane (x = Lng, y = Lat): +1 when p is left of the directed line
// a→b, -1 when right, 0 when exactly on it. It is exact: when the
// floating-point result is too close to zero to trust, the sign is
// recomputed with rational arithmetic, so that "exactly on an edge" means
// exactly.
func orient(a, b, p Point) int {
	l := (b.Lng - a.Lng) * (p.Lat - a.Lat)
	r := (b.Lat - a.Lat) * (p.Lng - a.Lng)
	det := l - r
	// Bound on the rounding error of det (Shewchuk's orient2d filter,
	// widened for the subtractions that form its operands).
	bound := 8 * epsilon * (math.Abs(l) + math.Abs(r))
	switch {
	case det > bound:
		return 1
	case det < -bound:
		return -1
	}
	return orientExact(a, b, p)
}

// epsilon is half the distance between 1 and the next float64.
const epsilon = 1.1102230246251565e-16

func orientExact(a, b, p Point) int {
	r := func(f float64) *big.Rat { return new(big.Rat).SetFloat64(f) }
	sub := func(x, y float64) *big.Rat { return new(big.Rat).Sub(r(x), r(y)) }
	l := new(big.Rat).Mul(sub(b.Lng, a.Lng), sub(p.Lat, a.Lat))
	rr := new(big.Rat).Mul(sub(b.Lat, a.Lat), sub(p.Lng, a.Lng))
	return l.Cmp(rr)
}

// onSegment reports whether p lies on the closed segment a-b, exactly.
func onSegment(a, b, p Point) bool {
	if p.Lng < math.Min(a.Lng, b.Lng) || p.Lng > math.Max(a.Lng, b.Lng) ||
		p.Lat < math.Min(a.Lat, b.Lat) || p.Lat > math.Max(a.Lat, b.Lat) {
		return false
	}
	return orient(a, b, p) == 0
}
