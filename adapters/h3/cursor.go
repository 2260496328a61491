package h3

import (
	"cmp"
	"math"
	"slices"

	h3 "github.com/uber/h3-go/v4"

	"github.com/tmsfleet/tms/domain/geo"
	"github.com/tmsfleet/tms/domain/geofence"
)

// Cursor implements geofence.Cursor for one moving object. It remembers
// the base cell of its last H3 lookup, a disc around that cell's centre in
// which everything the index lists for the cell holds, and the shapes
// listed for it compiled into a program (see program.go). While fixes stay
// in the disc, a Locate costs a few multiplications plus the exact tests
// of the cell's boundary shapes: no cgo, no map lookup, no allocation.
//
// A Cursor stays valid when the Index changes: it notices and starts over.
// It is for one goroutine.
type Cursor struct {
	ix     *Index
	prog   []uint64 // shared.words when the program is shared
	shared *program
	// The disc: centre (degrees), the cosine of its latitude, its radius
	// (radians), and the threshold hUpper is compared with.
	lat0, lng0, cos0 float64
	hReuse, rho      float64
	gen              uint64
	cell             uint64
	valid            bool
	listed           bool // cell has an entry in the index
	refreshes        int  // H3 lookups, for tests and benchmarks
}

// item is one shape listed for the cursor's cell while its program is
// built: sure when every point of the disc is inside the shape.
type item struct {
	key  geofence.Key
	slot int32
	sure bool
}

var _ geofence.Cursor = (*Cursor)(nil)

// Locate implements geofence.Cursor. A point that is not geo.Point.Valid
// (NaN, or out of range) is in no shape.
func (c *Cursor) Locate(p geo.Point, dst []geofence.Key) []geofence.Key {
	if !p.Valid() {
		return dst
	}
	ix := c.ix
	if !c.valid || c.gen != ix.gen || hUpper(c.lat0, c.lng0, c.cos0, p) > c.hReuse {
		if !c.refresh(p) {
			return ix.bruteLocate(p, dst)
		}
	}
	cosp := math.NaN()
	prog := c.prog
	for i := 0; i < len(prog); {
		h := prog[i]
		var ok bool
		switch h >> 60 {
		case opSure:
			ok = true
		case opCircle:
			ok = ix.circleAt(prog, i, p, &cosp)
		case opPoly:
			ok = polyAt(prog, i, p)
		default:
			ok = ix.slots[prog[i+1]].contains(p, &cosp)
		}
		if ok {
			dst = append(dst, instrKey(h))
		}
		i += instrLen(h)
	}
	return dst
}

// refresh looks p up in H3 and rebuilds the cursor's cell, disc and
// program. It returns false, leaving the cursor empty, in the cases the
// index does not answer from its cells (then Locate tests every shape).
func (c *Cursor) refresh(p geo.Point) bool {
	ix := c.ix
	c.refreshes++
	x := uint64(h3.LatLngToCell(h3.LatLng{Lat: p.Lat, Lng: p.Lng}, ix.cfg.Resolution))
	if x == 0 {
		c.valid = false
		ix.fallbacks.Add(1)
		return false
	}
	var lat0, lng0, rho float64
	e, listed := ix.cells[x]
	if listed {
		// Everything listed holds in the cap of the cell, the disc of
		// radius e.r. H3 put p in the cell, so p is in its cap; should it
		// not be (never seen), the shapes are tested one by one.
		lat0, lng0, rho = e.lat, e.lng, float64(e.r)
		if havRad(lat0, lng0, p.Lat, p.Lng) > rho {
			c.valid = false
			ix.fallbacks.Add(1)
			return false
		}
	} else {
		// An unlisted cell: no shape meets its cap (or those that do are
		// listed at an ancestor). Its cap radius is not known without
		// another 2 µs of cgo, but p is in the cell, so the disc through p
		// around the centre is inside the cap. It grows as later fixes
		// fall in the same cell.
		if c.valid && c.gen == ix.gen && c.cell == x && !c.listed {
			lat0, lng0, rho = c.lat0, c.lng0, c.rho
		} else {
			ll := h3.CellToLatLng(h3.Cell(x))
			lat0, lng0 = ll.Lat, ll.Lng
		}
		rho = math.Max(rho, havRad(lat0, lng0, p.Lat, p.Lng))
	}
	c.valid, c.gen, c.cell, c.listed = true, ix.gen, x, listed
	c.lat0, c.lng0, c.rho = lat0, lng0, rho
	c.cos0 = math.Cos(lat0 * radians)
	c.hReuse = hOf(rho) * (1 - 1e-9)
	if listed {
		// A listed cell's disc is its cap, so its program is the same for
		// every cursor: shared.
		if sp := ix.progs.get(x); sp != nil {
			c.prog, c.shared = sp.words, sp
			return true
		}
	}

	s := scratchPool.Get().(*scratch)
	defer scratchPool.Put(s)
	s.items = s.items[:0]
	if listed {
		list := ix.arena[e.off : e.off+e.n]
		s.items = ix.mergeParts(s.items, list[:e.nIn], list[e.nIn:])
	}
	merged := false
	for _, l := range ix.coarse {
		ea, ok := ix.cells[cellParent(x, l)]
		if !ok {
			continue
		}
		// Ancestors list interior shapes: inside the ancestor's cap. A
		// cell's descendants by index digits are not all inside their
		// ancestors (H3 children stick out of their parent), so an
		// ancestor's "inside" is sure only if the whole disc is in the
		// ancestor's cap; otherwise it is tested.
		sure := havRad(lat0, lng0, ea.lat, ea.lng)+rho <= float64(ea.r)
		for _, sl := range ix.arena[ea.off : ea.off+ea.n] {
			s.items = append(s.items, item{key: ix.slots[sl].key, slot: sl, sure: sure})
		}
		merged = true
	}
	if merged {
		// By key, a sure item before a tested one of the same key; keep
		// the first of each key.
		slices.SortFunc(s.items, func(a, b item) int {
			if r := cmp.Compare(a.key, b.key); r != 0 {
				return r
			}
			switch {
			case a.sure == b.sure:
				return 0
			case a.sure:
				return -1
			}
			return 1
		})
		s.items = slices.CompactFunc(s.items, func(a, b item) bool { return a.key == b.key })
	}
	c.prog, c.shared = c.compile(s), nil
	if listed {
		c.shared = &program{words: c.prog}
		ix.progs.put(x, c.shared)
	}
	return true
}

// mergeParts appends the key-ordered union of a cell's interior and
// boundary slots (disjoint, each in key order) to items.
func (ix *Index) mergeParts(items []item, ins, bnd []int32) []item {
	slots := ix.slots
	i, j := 0, 0
	for i < len(ins) || j < len(bnd) {
		if j == len(bnd) || (i < len(ins) && slots[ins[i]].key < slots[bnd[j]].key) {
			items = append(items, item{key: slots[ins[i]].key, slot: ins[i], sure: true})
			i++
		} else {
			items = append(items, item{key: slots[bnd[j]].key, slot: bnd[j]})
			j++
		}
	}
	return items
}

// compile turns the items into the program, in a scratch buffer first,
// and returns a copy sized to fit (programs are shared, and never written
// once built).
func (c *Cursor) compile(s *scratch) []uint64 {
	s.prog = s.prog[:0]
	q, n := capRects(c.lat0, c.lng0, c.rho)
	for _, it := range s.items {
		if it.sure {
			s.prog = append(s.prog, header(opSure, 1, it.key))
			continue
		}
		sh := c.ix.slots[it.slot]
		start := len(s.prog)
		switch {
		case sh.circle && sh.ct.fast:
			emitCircle(s, it.key, &sh.ct)
			continue
		case !sh.circle && n == 1: // q does not cross the antimeridian
			if emitPolygons(s, it.key, sh, q[0]) {
				continue
			}
			s.prog = s.prog[:start]
		}
		s.prog = append(s.prog, header(opShape, 2, it.key), uint64(it.slot))
	}
	if len(s.prog) == 0 {
		return nil
	}
	return slices.Clone(s.prog)
}

// Near implements geofence.Cursor. For an invalid point or a distance that
// is NaN or infinite it returns every key; a negative distance counts as
// zero.
func (c *Cursor) Near(p geo.Point, distance float64, dst []geofence.Key) []geofence.Key {
	ix := c.ix
	if !p.Valid() || math.IsNaN(distance) || math.IsInf(distance, 0) {
		return ix.allKeys(dst)
	}
	distance = math.Max(distance, 0)
	// When every point within the distance is in the disc the cursor
	// knows, the shapes listed for its cell are a superset: every shape
	// with a point in the cell's cap is listed there or at an ancestor.
	if c.valid && c.gen == ix.gen {
		if dt, ok := reach(p, distance); ok {
			if hu := hUpper(c.lat0, c.lng0, c.cos0, p); hu < 0.25 {
				du := 2 * math.Asin(math.Sqrt(hu))
				if du+dt <= c.rho*(1-1e-9)-1e-12 {
					for i := 0; i < len(c.prog); i += instrLen(c.prog[i]) {
						dst = append(dst, instrKey(c.prog[i]))
					}
					return dst
				}
			}
		}
	}
	s := scratchPool.Get().(*scratch)
	defer scratchPool.Put(s)
	buf := ix.nearSlots(p, distance, s.slots[:0])
	slices.SortFunc(buf, func(a, b int32) int { return cmp.Compare(ix.slots[a].key, ix.slots[b].key) })
	buf = slices.Compact(buf)
	for _, sl := range buf {
		dst = append(dst, ix.slots[sl].key)
	}
	s.slots = buf
	return dst
}

// reach returns, in radians, a true distance on the sphere that covers
// both notions of "within d metres of p" that Near serves: the true
// distance d, and the equirectangular frame distance d of
// Shape.OutsideBy. A point at frame offsets x = Δλ·cos φp·R, y = Δφ·R with
// x² + y² ≤ d² has, since cos φq ≤ cos φp + |Δφ| and sin² t ≤ t²,
//
//	sin²(dist/2) ≤ (d/2R)²·(1 + (d/R)/cos φp).
//
// It reports false near a pole or for distances the bound does not cover.
func reach(p geo.Point, d float64) (float64, bool) {
	cosp := math.Cos(p.Lat * radians)
	if cosp < 1e-6 {
		return 0, false
	}
	x := d / earthR
	v := x / 2 * math.Sqrt(1+x/cosp)
	if v >= 0.5 {
		return 0, false
	}
	return 2*math.Asin(v)*(1+1e-9) + 1e-12, true
}

// bruteLocate tests every shape: the answer when H3 gives no usable cell.
func (ix *Index) bruteLocate(p geo.Point, dst []geofence.Key) []geofence.Key {
	start := len(dst)
	for _, sh := range ix.slots {
		if sh != nil && sh.shape.Contains(p) {
			dst = append(dst, sh.key)
		}
	}
	slices.Sort(dst[start:])
	return dst
}

// allKeys appends every key, in ascending order.
func (ix *Index) allKeys(dst []geofence.Key) []geofence.Key {
	start := len(dst)
	for k := range ix.byKey {
		dst = append(dst, k)
	}
	slices.Sort(dst[start:])
	return dst
}
