package h3

import (
	"math"
	"slices"

	"github.com/tmsfleet/tms/domain/geo"
)

// nearIndex is what Near falls back to when the distance asked for does not
// fit in the cap of the cell a cursor knows: every shape is registered, by
// a rectangle that contains it, in the longitude/latitude buckets the
// rectangle overlaps (or in a global list when that would take too many).
//
// Near's contract mixes two notions of "within distance": the true
// distance on the sphere (circles, and the Index documentation's "any
// point within distance metres"), and the exit-margin distance of
// Shape.OutsideBy for polygons, measured in an equirectangular frame
// centred on the fix. Longitude/latitude rectangles make the second one
// simple: a polygon edge within frame distance D of p has a point in the
// rectangle p ± (D/MetresPerDegreeLat, D/(cos φp·MetresPerDegreeLat)).
type nearIndex struct {
	deg     float64
	buckets map[uint64][]int32
	global  []int32
}

// Buckets beyond these counts make a shape global, and a query scan every
// shape.
const (
	maxShapeBuckets = 1024
	maxQueryBuckets = 4096
)

func newNearIndex(deg float64) nearIndex {
	return nearIndex{deg: deg, buckets: map[uint64][]int32{}}
}

// shapeRects returns rectangles that contain every point of the shape.
func shapeRects(sh *shapeRec) ([2]rect, int) {
	if sh.circle {
		return capRects(sh.ct.clat, sh.ct.clng, sh.rr*(1+1e-9)+1e-12)
	}
	return [2]rect{sh.all}, 1
}

func (ni *nearIndex) span(r rect) (x0, x1, y0, y1 int64, n int64) {
	x0, x1 = int64(math.Floor(r.minLng/ni.deg)), int64(math.Floor(r.maxLng/ni.deg))
	y0, y1 = int64(math.Floor(r.minLat/ni.deg)), int64(math.Floor(r.maxLat/ni.deg))
	return x0, x1, y0, y1, (x1 - x0 + 1) * (y1 - y0 + 1)
}

func bucketKey(x, y int64) uint64 { return uint64(uint32(int32(y)))<<32 | uint64(uint32(int32(x))) }

func (ni *nearIndex) add(slot int32, sh *shapeRec) {
	rs, n := shapeRects(sh)
	total := int64(0)
	for i := range n {
		_, _, _, _, c := ni.span(rs[i])
		total += c
	}
	if total > maxShapeBuckets {
		sh.nearGlobal = true
		ni.global = append(ni.global, slot)
		return
	}
	for i := range n {
		x0, x1, y0, y1, _ := ni.span(rs[i])
		for y := y0; y <= y1; y++ {
			for x := x0; x <= x1; x++ {
				k := bucketKey(x, y)
				ni.buckets[k] = append(ni.buckets[k], slot)
			}
		}
	}
}

func (ni *nearIndex) remove(slot int32, sh *shapeRec) {
	if sh.nearGlobal {
		ni.global = slices.DeleteFunc(ni.global, func(s int32) bool { return s == slot })
		return
	}
	rs, n := shapeRects(sh)
	for i := range n {
		x0, x1, y0, y1, _ := ni.span(rs[i])
		for y := y0; y <= y1; y++ {
			for x := x0; x <= x1; x++ {
				k := bucketKey(x, y)
				l := slices.DeleteFunc(ni.buckets[k], func(s int32) bool { return s == slot })
				if len(l) == 0 {
					delete(ni.buckets, k)
				} else {
					ni.buckets[k] = l
				}
			}
		}
	}
}

// nearSlots appends to buf the slots of every shape that may have a point
// within true distance, or within OutsideBy's frame distance, d metres of
// p (p valid, d finite and ≥ 0), in no particular order and possibly
// repeated.
func (ix *Index) nearSlots(p geo.Point, d float64, buf []int32) []int32 {
	dr := d/earthR*(1+1e-9) + 1e-9
	q, n := capRects(p.Lat, p.Lng, dr)
	qs := q[:n]
	qs = append(qs, frameRect(p, d))
	ni := &ix.near
	total := int64(0)
	for _, r := range qs {
		_, _, _, _, c := ni.span(r)
		total += c
	}
	if total > maxQueryBuckets {
		for s, sh := range ix.slots {
			if sh != nil && sh.mayBeNear(p, dr, qs) {
				buf = append(buf, int32(s))
			}
		}
		return buf
	}
	add := func(s int32) {
		if ix.slots[s].mayBeNear(p, dr, qs) {
			buf = append(buf, s)
		}
	}
	for _, s := range ni.global {
		add(s)
	}
	for _, r := range qs {
		x0, x1, y0, y1, _ := ni.span(r)
		for y := y0; y <= y1; y++ {
			for x := x0; x <= x1; x++ {
				for _, s := range ni.buckets[bucketKey(x, y)] {
					add(s)
				}
			}
		}
	}
	return buf
}

// frameRect returns the rectangle of the points within frame distance d
// metres of p, in the equirectangular frame centred on p that
// MultiPolygon.BoundaryDistance measures in (no wrap at the antimeridian,
// as there), widened for rounding.
func frameRect(p geo.Point, d float64) rect {
	d = d*(1+1e-9) + 1e-6
	dLat := d / geo.MetresPerDegreeLat
	kx := math.Cos(p.Lat*radians) * geo.MetresPerDegreeLat
	if !(kx > 0) || d/kx >= 360 {
		return fullLng(p.Lat-dLat, p.Lat+dLat)
	}
	dLng := d / kx
	return rect{
		minLat: math.Max(p.Lat-dLat, -90), maxLat: math.Min(p.Lat+dLat, 90),
		minLng: math.Max(p.Lng-dLng, -180), maxLng: math.Min(p.Lng+dLng, 180),
	}
}

// mayBeNear is the final filter of the bucket path: a circle unless it is
// certainly farther than dr radians (widened) from p; polygons when the box
// of their rings overlaps one of the query rectangles.
func (sh *shapeRec) mayBeNear(p geo.Point, dr float64, qs []rect) bool {
	if sh.circle {
		d := havRad(sh.ct.clat, sh.ct.clng, p.Lat, p.Lng)
		return d <= (sh.rr+dr)*(1+1e-9)+1e-9
	}
	for _, r := range qs {
		if sh.all.overlaps(r) {
			return true
		}
	}
	return false
}
