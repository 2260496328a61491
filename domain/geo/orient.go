package geo

import (
	"math"
	"math/big"
)

// Orient returns the sign of the cross product (b-a)×(p-a) in the lng/lat
// plane (x = Lng, y = Lat): +1 when p is left of the directed line a→b, -1
// when right, 0 when exactly on it (and for non-finite coordinates). It is
// exact for every finite input,
// and it is the only orientation predicate of tms: polygon membership,
// validation and the H3 index all decide with it.
//
// It is evaluated in three stages, each taken only when the one before
// cannot decide, as in Shewchuk's adaptive orient2d ("Adaptive Precision
// Floating-Point Arithmetic and Fast Robust Geometric Predicates", 1997):
//
//  1. Floating point, with Shewchuk's error bound (3 + 16ε)ε·(|l| + |r|)
//     on the determinant l - r. Almost every call ends here.
//  2. Exact floating-point expansions: each coordinate difference is split
//     into its rounded value and its rounding error (TwoDiff), the products
//     are formed exactly with fused multiply-adds (TwoProduct), and their
//     sum is accumulated exactly as a nonoverlapping expansion, whose
//     largest component has the sign of the determinant. This is where
//     exactly collinear points (a comb's teeth, axis-parallel edges) and
//     nearly collinear ones end: a few hundred flops, no allocation.
//  3. Rational arithmetic (math/big), only when stage 2 could underflow or
//     overflow: coordinates whose differences span more than about 2^900
//     (a difference of 1e-140° beside one of 1°), or that are beyond
//     ±2^400. No valid station or GPS fix gets there except by design.
func Orient(a, b, p Point) int {
	// float64() conversions keep the compiler from fusing a product into
	// the subtraction: the error bound is for separately rounded steps.
	l := float64((b.Lng - a.Lng) * (p.Lat - a.Lat))
	r := float64((b.Lat - a.Lat) * (p.Lng - a.Lng))
	det := l - r
	sum := math.Abs(l) + math.Abs(r)
	// Below minFilterSum, products may have underflowed, and the relative
	// bound no longer covers their (absolute) error.
	if sum >= minFilterSum {
		bound := errBoundA * sum
		if det > bound {
			return 1
		}
		if det < -bound {
			return -1
		}
	}
	return orientAdapt(a, b, p)
}

// epsilon is half the distance between 1 and the next float64: the
// relative rounding error of one operation.
const epsilon = 0x1p-53

// errBoundA is Shewchuk's ccwerrboundA: |det - exact| ≤ errBoundA·sum,
// rounding of the bound's own computation included.
const errBoundA = (3 + 16*epsilon) * epsilon

// minFilterSum is the smallest |l| + |r| the floating-point filter trusts:
// above it, the absolute error of a product that underflowed (at most
// 2^-1075 each) is far below the slack in errBoundA (16ε²·sum ≥ 2^-1062).
const minFilterSum = 0x1p-960

// orientAdapt is stages 2 and 3 of Orient. Non-finite coordinates, which
// no caller passes (they are in no polygon, and no shape has them), are
// answered 0 rather than taken to rational arithmetic, which cannot hold
// them.
func orientAdapt(a, b, p Point) int {
	if !a.finite() || !b.finite() || !p.finite() {
		return 0
	}
	if s, ok := orientExpansion(a, b, p); ok {
		return s
	}
	return orientRational(a, b, p)
}

// orientExpansion computes the sign of the determinant exactly with
// floating-point expansions; ok is false when it cannot guarantee that no
// step underflowed or overflowed (then the caller uses rationals).
func orientExpansion(a, b, p Point) (sign int, ok bool) {
	// The differences, each as hi + lo exactly.
	var x1, y2, y1, x2 [2]float64
	x1[0], x1[1] = twoDiff(b.Lng, a.Lng)
	y2[0], y2[1] = twoDiff(p.Lat, a.Lat)
	y1[0], y1[1] = twoDiff(b.Lat, a.Lat)
	x2[0], x2[1] = twoDiff(p.Lng, a.Lng)
	for _, v := range [...]float64{x1[0], y2[0], y1[0], x2[0]} {
		if math.IsInf(v, 0) || math.IsNaN(v) {
			return 0, false
		}
	}
	// The determinant x1·y2 - y1·x2 has one x difference and one y
	// difference in each product, so scaling all x parts by 2^kx and all y
	// parts by 2^ky scales it by 2^(kx+ky) and keeps its sign. Parts below
	// 1/2 are scaled up (exact: by a power of two, never below the smallest
	// float), so that the parts of a tiny shape multiply without underflow.
	kx := scaleExp(math.Max(math.Abs(x1[0]), math.Abs(x2[0])))
	ky := scaleExp(math.Max(math.Abs(y1[0]), math.Abs(y2[0])))
	if kx == noScale || ky == noScale {
		return 0, false
	}
	for i := range 2 {
		x1[i], x2[i] = math.Ldexp(x1[i], kx), math.Ldexp(x2[i], kx)
		y1[i], y2[i] = math.Ldexp(y1[i], ky), math.Ldexp(y2[i], ky)
	}
	// A product u·v is split exactly by TwoProduct (hi = fl(u·v), lo =
	// fma(u, v, -hi)) when none of its bits is below 2^-1074, which holds
	// when |u·v| ≥ 2^-960: its 106 bits then end above 2^-1066. Parts are
	// at most 2^400, so products stay below 2^800 and sums of 16 of them
	// cannot overflow.
	var e expansion
	for _, t := range [...]struct {
		u, v *[2]float64
		neg  bool
	}{{&x1, &y2, false}, {&y1, &x2, true}} {
		for _, u := range t.u {
			if u == 0 {
				continue
			}
			for _, v := range t.v {
				if v == 0 {
					continue
				}
				hi := float64(u * v)
				if math.Abs(hi) < 0x1p-960 {
					return 0, false
				}
				lo := math.FMA(u, v, -hi)
				if t.neg {
					hi, lo = -hi, -lo
				}
				e.grow(lo)
				e.grow(hi)
			}
		}
	}
	return e.sign(), true
}

// noScale is scaleExp's answer for a magnitude it will not scale.
const noScale = math.MinInt

// scaleExp returns the power of two that brings m (≥ 0) below 1 into
// [0.5, 1), 0 for m = 0 or m ≥ 0.5 (scaling down could lose the low bits
// of the parts), and noScale when m is beyond 2^400, where the rational
// stage takes over rather than risk overflow.
func scaleExp(m float64) int {
	if m == 0 {
		return 0
	}
	_, e := math.Frexp(m)
	switch {
	case e > 400:
		return noScale
	case e > 0:
		return 0
	}
	return -e
}

// twoDiff returns x = fl(a - b) and the rounding error y, so that
// a - b = x + y exactly (Knuth's TwoSum, for a difference).
func twoDiff(a, b float64) (x, y float64) {
	x = a - b
	bv := a - x
	av := x + bv
	return x, (a - av) + (bv - b)
}

// twoSum returns x = fl(a + b) and the rounding error y, so that a + b =
// x + y exactly.
func twoSum(a, b float64) (x, y float64) {
	x = a + b
	bv := x - a
	av := x - bv
	return x, (a - av) + (b - bv)
}

// expansion is an exact sum of floating-point numbers kept as
// nonoverlapping components in increasing order of magnitude, zeros
// dropped (Shewchuk's GROW-EXPANSION with zero elimination). Orient's
// determinant needs at most 16 components.
type expansion struct {
	c [16]float64
	n int
}

// grow adds v to the sum exactly.
func (e *expansion) grow(v float64) {
	if v == 0 {
		return
	}
	q, m := v, 0
	for i := 0; i < e.n; i++ {
		var h float64
		q, h = twoSum(q, e.c[i])
		if h != 0 {
			e.c[m] = h
			m++
		}
	}
	if q != 0 {
		e.c[m] = q
		m++
	}
	e.n = m
}

// sign is the sign of the sum: that of its largest component.
func (e *expansion) sign() int {
	switch {
	case e.n == 0:
		return 0
	case e.c[e.n-1] > 0:
		return 1
	}
	return -1
}

// orientRational is Orient in rational arithmetic: slow and always right.
func orientRational(a, b, p Point) int {
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
	return Orient(a, b, p) == 0
}
