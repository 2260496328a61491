package h3

import (
	"errors"
	"fmt"
	"math"
	"sync"

	h3 "github.com/uber/h3-go/v4"

	"github.com/tmsfleet/tms/domain/geofence"
)

// ErrTooLarge is returned (wrapped, with ErrShape) by Add and
// Config.Indexable for a shape whose cover bound exceeds
// Config.MaxCoverCells.
var ErrTooLarge = errors.New("the shape is too large to index")

// Indexable reports whether an Index built with c accepts s: nil if Add
// would index it, else the error Add would return (wrapping ErrShape, and
// ErrTooLarge for a shape too large). It is what Add checks before any
// work, computed from the shape's coordinates alone in time linear in
// their number, without H3: the station commands call it to refuse, when a
// station is defined, a shape the geofence would not index.
func (c Config) Indexable(s geofence.Shape) error {
	if err := c.Validate(); err != nil {
		return err
	}
	c.setDefaults()
	sh, err := newShapeRec(0, s)
	if err != nil {
		return err
	}
	if b := coverBound(c, sh); b > float64(c.MaxCoverCells) {
		return tooLarge(c, b)
	}
	return nil
}

func tooLarge(c Config, bound float64) error {
	return &tooLargeError{res: c.Resolution, bound: math.Ceil(bound), limit: c.MaxCoverCells}
}

// tooLargeError says how large a shape is: it is ErrTooLarge and
// ErrShape.
type tooLargeError struct {
	res   int
	bound float64
	limit int
}

func (e *tooLargeError) Error() string {
	return fmt.Sprintf("%v: at H3 resolution %d its cover may take up to %.0f cells, more than the %d allowed",
		ErrTooLarge, e.res, e.bound, e.limit)
}

func (e *tooLargeError) Is(target error) bool { return target == ErrTooLarge || target == ErrShape }

// cellStats are what the cover bound needs to know of the cells of one
// resolution, on the unit sphere.
type cellStats struct {
	// avgArea is H3's average hexagon area (steradians).
	avgArea float64
	// minArea is at most the area of any cell.
	minArea float64
	// maxCap is at least the radius of any cell's cap (radians), as
	// computeGeo widens it.
	maxCap float64
}

// The ratios behind cellStats, from H3's tables of cell statistics and
// checked by TestCellStats on every cell of resolutions 0-3 and, at each
// finer one, on 30,000 random cells and the neighbourhoods of the 12
// pentagons, where cells are most distorted.
const (
	// minAreaRatio: pentagons, the smallest cells, have 0.5046 of the
	// average hexagon's area from resolution 8 on (0.588 at 0, 0.5176 at
	// 2); hexagons at least 0.60 of it.
	minAreaRatio = 0.49
	// maxCapRatio: a cell's circumradius is at most 0.6816 times the
	// square root of the average hexagon area at any resolution (0.6625 at
	// 0); capSlackRel is added below, and capSlackAbs separately.
	maxCapRatio = 0.72
)

// cellTable returns the cell statistics of every resolution.
var cellTable = sync.OnceValue(func() (t [maxRes + 1]cellStats) {
	for l := range t {
		avg := h3.HexagonAreaAvgM2(l) / (earthR * earthR)
		t[l] = cellStats{
			avgArea: avg,
			minArea: minAreaRatio * avg,
			maxCap:  maxCapRatio*math.Sqrt(avg)*(1+capSlackRel) + 2*capSlackAbs,
		}
	}
	return t
})

// coverBound returns an upper bound of the number of cells cover
// classifies for sh (the work of Add, and about the memory it takes
// meanwhile), from the shape's coordinates alone.
//
// The argument, resolution by resolution (the cover's rules are in
// cover.go): let R be the largest cap radius there and ρ the distance from
// a cap's centre within which whatever the cell's class depends on lies:
// the cap itself for a circle (R, plus the classification margin), the
// cap's longitude/latitude rectangle for polygons (at most (1 + π/2)·R
// from the centre away from the poles, and 3R where it reaches one; 3.01R
// is used).
//
//   - At the coarsest resolution L, the search classifies the cells whose
//     class is not "out" (their centre is within ρ of the shape) and their
//     neighbours (centres within 2R more): every such cell lies within
//     ρ + 3R of the shape.
//   - At each finer resolution l, the search classifies the neighbours of
//     boundary cells (within ρ + 3R of the shape's boundary), the cells
//     around its seeds (a circle's centre: 7 cells; ring vertices and rim
//     points are on the boundary), and the children of the boundary cells
//     of l - 1 (a child's centre lies in its parent, so within
//     ρ(l-1) + R(l-1) + R of the boundary).
//
// Cells of one resolution are disjoint and none is smaller than minArea,
// so at most area(X ⊕ d) / minArea of them lie within d of X. The area of
// the d-neighbourhood is bounded from above: for a circle, exactly (a cap,
// or an annulus around the rim); for polygons, by the longitude/latitude
// rectangle around the shape's box widened by d, and for the boundary
// also by covering each ring with arcs of length d (its length bounded by
// |Δφ| + |Δλ|·cos φ along each edge), each arc's neighbourhood lying in a
// cap of radius 1.5d. TestCoverBound checks the bound against the real
// count on circles and polygons of every size, at the poles and across
// the antimeridian, at several resolutions.
func coverBound(cfg Config, sh *shapeRec) float64 {
	st := cellTable()
	lowest := coarsestRes(cfg, sh)
	rho := func(l int) float64 {
		if sh.circle {
			return st[l].maxCap*(1+1e-6) + 1e-8
		}
		return 3.01*st[l].maxCap + 1e-8
	}
	var lengths []float64 // of the rings, for polygons
	if !sh.circle {
		lengths = ringLengths(sh)
	}
	total := 0.0
	for l := lowest; l <= cfg.Resolution; l++ {
		r := st[l].maxCap
		var area float64
		if l == lowest {
			area = sh.nearArea(rho(l) + 3*r)
		} else {
			d := math.Max(rho(l)+3*r, rho(l-1)+st[l-1].maxCap+r)
			area = sh.nearBoundaryArea(d, lengths)
			if sh.circle {
				total += 7 // around the centre, a seed
			}
		}
		total += area / st[l].minArea
	}
	return total*1.01 + 64 // rounding, with room to spare
}

// capArea is the area of a spherical cap of radius x (radians).
func capArea(x float64) float64 {
	return 2 * math.Pi * (1 - math.Cos(math.Min(x, math.Pi)))
}

// nearArea bounds the area of the points within d of the shape.
func (sh *shapeRec) nearArea(d float64) float64 {
	if sh.circle {
		return capArea(sh.rr + d)
	}
	return boxArea(sh.all, d)
}

// nearBoundaryArea bounds the area of the points within d of the shape's
// boundary; lengths are the lengths of a polygon's rings.
func (sh *shapeRec) nearBoundaryArea(d float64, lengths []float64) float64 {
	if sh.circle {
		return capArea(sh.rr+d) - capArea(math.Max(0, sh.rr-d))
	}
	arcs := 0.0
	for _, l := range lengths {
		arcs += math.Max(1, math.Ceil(l/d))
	}
	return math.Min(boxArea(sh.all, d), arcs*capArea(1.5*d))
}

// boxArea bounds the area of the points within d (radians) of the
// longitude/latitude rectangle r (degrees): the rectangle widened by d in
// latitude and by the widest longitude extent of a cap of radius d over
// r's latitudes, or a whole band of latitudes where such a cap could reach
// a pole.
func boxArea(r rect, d float64) float64 {
	lo, hi := r.minLat*radians-d, r.maxLat*radians+d
	width := 2 * math.Pi
	if lo > -math.Pi/2 && hi < math.Pi/2 {
		phi := math.Max(math.Abs(r.minLat), math.Abs(r.maxLat)) * radians
		if s := math.Sin(d) / math.Cos(phi); s < 1 {
			width = math.Min(width, (r.maxLng-r.minLng)*radians+2*math.Asin(s))
		}
	}
	lo, hi = math.Max(lo, -math.Pi/2), math.Min(hi, math.Pi/2)
	return width * (math.Sin(hi) - math.Sin(lo))
}

// ringLengths bounds the length (radians) of each ring of a polygon shape:
// along an edge straight in longitude and latitude, ds ≤ |dφ| + cos φ·|dλ|.
func ringLengths(sh *shapeRec) []float64 {
	var out []float64
	for _, pg := range sh.shape.Polygons {
		for _, ring := range pg {
			total := 0.0
			for i := 0; i+1 < len(ring); i++ {
				a, b := ring[i], ring[i+1]
				cosMax := 1.0
				if (a.Lat > 0) == (b.Lat > 0) && a.Lat != 0 && b.Lat != 0 {
					cosMax = math.Cos(math.Min(math.Abs(a.Lat), math.Abs(b.Lat)) * radians)
				}
				total += (math.Abs(b.Lat-a.Lat) + math.Abs(b.Lng-a.Lng)*cosMax) * radians
			}
			out = append(out, total)
		}
	}
	return out
}
