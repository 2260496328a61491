package h3

import (
	"math"
	"sync"

	"github.com/tmsfleet/tms/domain/geo"
	"github.com/tmsfleet/tms/domain/geofence"
)

// A cursor compiles the shapes listed for its cell into a program that
// decides, for any fix in its disc, exactly what Shape.Contains decides.
// The program is one []uint64 read front to back, so that a fix touches
// one sequential run of memory: with thousands of vehicles interleaved, a
// cursor's data is never in cache when its next fix comes, and data
// scattered over shapes and slices would cost a cache miss each. Floats
// are stored as their bits.
//
// Every instruction starts with a header word: bits 60-63 the op, bits
// 32-55 the instruction's length in words (header included), bits 0-31
// the shape's key.
//
//	opSure    header: every point of the disc is inside the shape.
//	opCircle  header, clat, clng, (ccos, hmid as float32): see circleTest.
//	opShape   header, slot: the shape's own test (a disc across the
//	          antimeridian, a circle over 1000 km, a ring too large to encode).
//	opPoly    header, then for each ring of each member polygon whose outer
//	          box meets the disc's rectangle: a ring header (bits 0-15 the
//	          number of breakpoints, 16-31 of runs, bit 32 the parity, bit 33
//	          set on an outer ring, bits 40-63 the ring's length in words),
//	          its breakpoints, its runs (a run is a point count n ≥ 2 and n
//	          points lat, lng: the n-1 kept edges between them).
//
// Polygons keep, per ring, only what a fix in the disc's
// longitude/latitude rectangle Q can see. geo's Ring.locate answers
// "boundary" when p is on an edge, and otherwise counts the edges that
// straddle p's latitude (min ≤ p.Lat < max) with p strictly to their west,
// that is, the edges crossing the horizontal ray from p eastwards. For p in
// Q:
//   - an edge that may meet Q is kept and evaluated exactly, as geo does;
//   - an edge that does not meet Q cannot hold p. If it may straddle a
//     latitude of Q, the part of it within Q's latitudes lies entirely east
//     or entirely west of Q (it is connected and misses Q): an edge to the
//     west never counts; an edge to the east counts exactly when it
//     straddles p.Lat. The parity of the eastern edges that straddle p.Lat
//     is the parity of the number of their endpoint latitudes (min and max)
//     that are ≤ p.Lat, since every max ≤ p.Lat has its min ≤ p.Lat too.
//     Endpoints below Q's latitudes always count and fold into the ring's
//     parity bit; those within are kept as breakpoints. An edge whose side
//     cannot be told with a wide margin is kept.
const (
	opSure uint64 = iota
	opCircle
	opShape
	opPoly
)

const maxInstrWords = 1<<24 - 1

func header(op uint64, words int, key geofence.Key) uint64 {
	return op<<60 | uint64(words)<<32 | uint64(uint32(key))
}

func instrLen(h uint64) int          { return int(h >> 32 & 0xffffff) }
func instrKey(h uint64) geofence.Key { return geofence.Key(int32(uint32(h))) }
func f2u(f float64) uint64           { return math.Float64bits(f) }
func u2f(u uint64) float64           { return math.Float64frombits(u) }

// circleTest is a circle's fast exact test: its centre (degrees), the
// cosine of its latitude as the contract computes it but rounded to
// float32, and hmid = sin²(r/2R), the contract's threshold on
// h = sin²(d/2), rounded to float32.
//
// The contract decides 2R·asin(√h) ≤ r, with h computed from the same
// differences and cosines. The fast test computes h with a short series
// instead of sines (sin2half, relative error under 1e-10) and the float32
// cosine (relative error under 6e-8 on the longitude term; both terms are
// non-negative, so h is within a relative 1e-7 of the contract's), and
// answers only when h is below hmid·(1-w) or above hmid·(1+w), w = 1e-6:
// the contract's own rounding, hmid's, and the series' are all far inside
// that window. In between (a fix within about r/2,000,000 of the circle's
// edge), and beyond 0.1 rad of latitude or longitude (also across the
// antimeridian, where the contract's rounding grows), the contract itself
// answers, so that the result is the contract's bit for bit. Circles over
// 1000 km, and radii so small that hmid is not a normal float32, always
// use the contract.
type circleTest struct {
	clat, clng float64
	ccos, hmid float32
	fast       bool
}

const circleWindow = 1e-6

func newCircleTest(c geo.Circle) circleTest {
	ct := circleTest{clat: c.Center.Lat, clng: c.Center.Lng, ccos: float32(math.Cos(c.Center.Lat * radians))}
	h := hOf(c.RadiusM / earthR)
	if c.RadiusM <= 1e6 && h >= 1e-30 {
		ct.hmid = float32(h)
		ct.fast = true
	}
	return ct
}

// decide runs the fast test: +1 inside, -1 outside, 0 when only the
// contract can tell. cosp caches cos(p.Lat·radians) across the circles
// tested for one fix (NaN until computed).
func (ct *circleTest) decide(p geo.Point, cosp *float64) int {
	if !ct.fast {
		return 0
	}
	dphi := (p.Lat - ct.clat) * radians
	dl := (p.Lng - ct.clng) * radians
	if math.Abs(dphi) > 0.1 || math.Abs(dl) > 0.1 {
		return 0
	}
	if math.IsNaN(*cosp) {
		*cosp = math.Cos(p.Lat * radians)
	}
	h := sin2half(dphi) + float64(ct.ccos)**cosp*sin2half(dl)
	hm := float64(ct.hmid)
	switch {
	case h <= hm*(1-circleWindow):
		return 1
	case h >= hm*(1+circleWindow):
		return -1
	}
	return 0
}

// scratch is what building a program needs, pooled so that cursors do not
// each keep it.
type scratch struct {
	items []item
	prog  []uint64
	ring  []uint64
	bps   []uint64
	slots []int32
}

var scratchPool = sync.Pool{New: func() any { return new(scratch) }}

func emitCircle(s *scratch, key geofence.Key, ct *circleTest) {
	s.prog = append(s.prog, header(opCircle, 4, key),
		f2u(ct.clat), f2u(ct.clng),
		uint64(math.Float32bits(ct.ccos))<<32|uint64(math.Float32bits(ct.hmid)))
}

// circleAt runs the circle instruction at prog[i].
func (ix *Index) circleAt(prog []uint64, i int, p geo.Point, cosp *float64) bool {
	ct := circleTest{
		clat: u2f(prog[i+1]), clng: u2f(prog[i+2]),
		ccos: math.Float32frombits(uint32(prog[i+3] >> 32)), hmid: math.Float32frombits(uint32(prog[i+3])),
		fast: true,
	}
	switch ct.decide(p, cosp) {
	case 1:
		return true
	case -1:
		return false
	}
	return ix.slots[ix.byKey[instrKey(prog[i])]].shape.Contains(p)
}

// emitPolygons appends the program of polygon shape sh for rectangle q,
// which contains every fix it will be run for. It reports false when a
// count does not fit the encoding.
func emitPolygons(s *scratch, key geofence.Key, sh *shapeRec, q rect) bool {
	start := len(s.prog)
	s.prog = append(s.prog, 0)
	for m, pg := range sh.shape.Polygons {
		if len(pg) == 0 || !sh.outer[m].overlaps(q) {
			continue // no point of q is inside this member
		}
		for j, ring := range pg {
			if !emitRing(s, ring, q, j == 0) {
				return false
			}
		}
	}
	if len(s.prog)-start > maxInstrWords {
		return false
	}
	s.prog[start] = header(opPoly, len(s.prog)-start, key)
	return true
}

func emitRing(s *scratch, ring geo.Ring, q rect, outer bool) bool {
	s.bps, s.ring = s.bps[:0], s.ring[:0]
	parity := false
	runs, runStart := 0, -1 // runStart: index in s.ring of the open run's count
	for i := 0; i+1 < len(ring); i++ {
		a, b := ring[i], ring[i+1]
		lo, hi := math.Min(a.Lat, b.Lat), math.Max(a.Lat, b.Lat)
		keep := segMayMeet(a, b, q)
		if !keep && lo <= q.maxLat && hi > q.minLat && lo != hi {
			switch eastOf(a, b, q) {
			case 0:
				keep = true
			case 1:
				for _, y := range [2]float64{lo, hi} {
					switch {
					case y < q.minLat:
						parity = !parity
					case y <= q.maxLat:
						s.bps = append(s.bps, f2u(y))
					}
				}
			}
		}
		if !keep {
			runStart = -1
			continue
		}
		if runStart < 0 {
			runStart = len(s.ring)
			s.ring = append(s.ring, 1, f2u(a.Lat), f2u(a.Lng))
			runs++
		}
		s.ring = append(s.ring, f2u(b.Lat), f2u(b.Lng))
		s.ring[runStart]++
	}
	words := 1 + len(s.bps) + len(s.ring)
	if len(s.bps) > 0xffff || runs > 0xffff || words > maxInstrWords {
		return false
	}
	h := uint64(len(s.bps)) | uint64(runs)<<16 | uint64(words)<<40
	if parity {
		h |= 1 << 32
	}
	if outer {
		h |= 1 << 33
	}
	s.prog = append(s.prog, h)
	s.prog = append(s.prog, s.bps...)
	s.prog = append(s.prog, s.ring...)
	return true
}

// polyAt runs the polygon instruction at prog[i], with Polygon.Contains
// semantics (inside or on the outer ring, and not strictly inside a hole)
// for any member.
func polyAt(prog []uint64, i int, p geo.Point) bool {
	end := i + instrLen(prog[i])
	i++
	for i < end {
		// prog[i] is an outer ring; its holes follow until the next outer
		// ring or the end.
		member := ringAt(prog, i, p) != outside
		i += ringLen(prog[i])
		for i < end && prog[i]>>33&1 == 0 {
			if member && ringAt(prog, i, p) == inside {
				member = false
			}
			i += ringLen(prog[i])
		}
		if member {
			return true
		}
	}
	return false
}

func ringLen(h uint64) int { return int(h >> 40) }

type position int

const (
	outside position = iota
	onBoundary
	inside
)

// ringAt is geo's Ring.locate restricted to the ring's kept edges, plus
// the parity of its eastern ones.
func ringAt(prog []uint64, i int, p geo.Point) position {
	h := prog[i]
	nBps, runs := int(h&0xffff), int(h>>16&0xffff)
	in := h>>32&1 != 0
	i++
	for _, y := range prog[i : i+nBps] {
		if u2f(y) <= p.Lat {
			in = !in
		}
	}
	i += nBps
	for range runs {
		n := int(prog[i])
		pts := prog[i+1 : i+1+2*n]
		i += 1 + 2*n
		a := geo.Point{Lat: u2f(pts[0]), Lng: u2f(pts[1])}
		for k := 2; k+1 < len(pts); k += 2 {
			b := geo.Point{Lat: u2f(pts[k]), Lng: u2f(pts[k+1])}
			straddles := geo.Straddles(a, b, p)
			inBox := p.Lng >= math.Min(a.Lng, b.Lng) && p.Lng <= math.Max(a.Lng, b.Lng) &&
				p.Lat >= math.Min(a.Lat, b.Lat) && p.Lat <= math.Max(a.Lat, b.Lat)
			if straddles || inBox {
				o := geo.Orient(a, b, p)
				if inBox && o == 0 {
					return onBoundary
				}
				if straddles && geo.PassesEast(a, b, o) {
					in = !in
				}
			}
			a = b
		}
	}
	if in {
		return inside
	}
	return outside
}

// eastOf tells on which side of q lies the part of segment a-b within q's
// latitudes, for a segment that does not meet q: 1 east, -1 west, 0 when
// it cannot tell with a margin far above rounding (the interpolated
// longitude is off by about 1e-13° at most; the margin is 1e-9°).
func eastOf(a, b geo.Point, q rect) int {
	if math.Min(a.Lng, b.Lng) > q.maxLng {
		return 1
	}
	if math.Max(a.Lng, b.Lng) < q.minLng {
		return -1
	}
	lo := math.Max(math.Min(a.Lat, b.Lat), q.minLat)
	hi := math.Min(math.Max(a.Lat, b.Lat), q.maxLat)
	y := (lo + hi) / 2
	t := (y - a.Lat) / (b.Lat - a.Lat)
	x := a.Lng + t*(b.Lng-a.Lng)
	const tol = 1e-9
	switch {
	case x > q.maxLng+tol:
		return 1
	case x < q.minLng-tol:
		return -1
	}
	return 0
}
