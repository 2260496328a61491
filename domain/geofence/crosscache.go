package geofence

import (
	"math"

	"github.com/tmsfleet/tms/domain/geo"
)

// The crossing search needs, for the segment between a vehicle's two
// last fixes, every station the segment may pass through. Asking the
// index for them fix by fix costs more than everything else the tracker
// does where stations are dense. So the tracker lays a grid of
// crossCellDeg cells over the world and asks the index once per cell, for
// every shape within crossReachM of any point of the cell; the answer
// serves every segment of every vehicle whose middle falls in the cell
// and whose half-length is within crossReachM. Longer segments, rare,
// take the index's answer directly (alongSegment).
const (
	crossCellDeg = 0.008 // about 900 m of latitude
	crossReachM  = 250.0
	// crossCacheKeys bounds the keys the cache holds (4 bytes each); past
	// it, the cache starts over.
	crossCacheKeys = 1 << 20
)

// crossCache is a tracker's cells, valid for one catalogue generation.
type crossCache struct {
	generation uint64
	cells      map[uint64][]Key
	keys       int
}

// cellOf returns the grid cell holding p, and its bounds.
func cellOf(p geo.Point) (key uint64, minLat, minLng, maxLat, maxLng float64) {
	y, x := math.Floor(p.Lat/crossCellDeg), math.Floor(p.Lng/crossCellDeg)
	key = uint64(uint32(int32(y)))<<32 | uint64(uint32(int32(x)))
	minLat, maxLat = math.Max(y*crossCellDeg, -90), math.Min((y+1)*crossCellDeg, 90)
	minLng, maxLng = math.Max(x*crossCellDeg, -180), math.Min((x+1)*crossCellDeg, 180)
	return key, minLat, minLng, maxLat, maxLng
}

// candidates returns the keys of every shape that may meet a straight
// segment whose middle is mid and whose points are all within half
// metres of it (and others), ascending, or false when the segment is too
// long for the grid. c is a cursor of the vehicle, for the index's
// answer.
func (cc *crossCache) candidates(catalog *Catalog, c Cursor, mid geo.Point, half float64) ([]Key, bool) {
	if half > crossReachM {
		return nil, false
	}
	key, minLat, minLng, maxLat, maxLng := cellOf(mid)
	if cc.cells == nil || cc.generation != catalog.Generation() || cc.keys > crossCacheKeys {
		cc.cells, cc.generation, cc.keys = map[uint64][]Key{}, catalog.Generation(), 0
	}
	keys, ok := cc.cells[key]
	if !ok {
		// Every point of the cell is within toCorner of its centre: the
		// straight path there is at most as long as pathBound says of the
		// widest case, half the cell's height and width at the latitude
		// nearest the equator. Any point of a segment is then within
		// toCorner + half of the centre.
		centre := geo.Point{Lat: (minLat + maxLat) / 2, Lng: (minLng + maxLng) / 2}
		nearest := math.Min(math.Abs(minLat), math.Abs(maxLat))
		if minLat < 0 && maxLat > 0 {
			nearest = 0
		}
		dLat := (maxLat - minLat) / 2 * math.Pi / 180
		dLng := (maxLng - minLng) / 2 * math.Pi / 180 * math.Cos(nearest*math.Pi/180)
		toCorner := geo.EarthRadiusM * math.Hypot(dLat, dLng) * 1.000001
		keys = c.Near(centre, toCorner+crossReachM, []Key{})
		cc.cells[key] = keys
		cc.keys += len(keys)
	}
	return keys, true
}
