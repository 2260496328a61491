package geofence

import (
	"fmt"
	"math"
	"time"

	"github.com/tmsfleet/tms/domain/geo"
)

// Station types. Hazard stations raise an alert when entered.
const (
	TypeLoading   = "loading"
	TypeQuality   = "quality"
	TypeUnloading = "unloading"
	TypeOil       = "oil"
	TypeGetOff    = "getoff"
	TypeHazard    = "hazard"
	TypeParking   = "parking"
	TypeRepair    = "repair"
	TypeWaypoint  = "waypoint"
)

// Station is what the geofence needs of a station: its id, type, version,
// area and detection settings.
type Station struct {
	ID      string
	Type    string
	Version int64
	Shape   Shape
	// Detection overrides the configured defaults where set.
	Detection DetectionOverrides
}

// Version is one station as it stood from From (inclusive) until Until
// (exclusive; zero while it is current). A station's versions never
// overlap.
type Version struct {
	Key     Key
	Station Station
	From    time.Time
	Until   time.Time
	// sid is the station's number in its catalogue (see Catalog.sid).
	sid int32
	// from and until are From and Until in Unix nanoseconds (until
	// math.MaxInt64 while current), for the fix-by-fix test.
	from, until int64
	// bounds is the shape's bounding rectangle, computed once.
	bounds geo.Rect
	// fence is the circle's fast distance test (nil for polygons).
	fence *fence
}

// ValidAt reports whether the version applies to a fix taken at t.
func (v *Version) ValidAt(t time.Time) bool {
	return !t.Before(v.From) && (v.Until.IsZero() || t.Before(v.Until))
}

// validAtNano is ValidAt for a time in Unix nanoseconds that nanos
// represented exactly.
func (v *Version) validAtNano(t int64) bool { return t >= v.from && t < v.until }

// setUntil ends the version at until.
func (v *Version) setUntil(until time.Time) {
	v.Until = until
	v.until, _ = nanos(until)
}

// The times Unix nanoseconds represent.
var (
	minNanos = time.Unix(0, math.MinInt64)
	maxNanos = time.Unix(0, math.MaxInt64)
)

// nanos returns t in Unix nanoseconds, and whether that is exact: times
// before 1678 or after 2262 are clamped to the extremes, which keeps
// validAtNano exact for every time that is.
func nanos(t time.Time) (int64, bool) {
	switch {
	case t.Before(minNanos):
		return math.MinInt64, false
	case t.After(maxNanos):
		return math.MaxInt64, false
	}
	return t.UnixNano(), true
}

// Catalog is the station catalogue over time: every version of every
// station, indexed, so that a fix is judged against the stations as they
// were when it was taken. A station change applies to fixes taken at or
// after its time, whenever they are processed: replay gives the same
// answers as the live run.
//
// A Catalog is not safe for concurrent use; the processor applies
// station events between batches of fixes.
type Catalog struct {
	index Index
	// versions holds each version at its key (keys are handed out in
	// order), nil where one left the index: ByKey runs for every candidate
	// shape of every fix, and a slice is cheaper to read than a map.
	versions []*Version
	// circles holds each key's circle (zero for a polygon) beside the
	// others: the crossing search reads it for dozens of candidates a fix,
	// most of them far, and a flat array keeps that to one cache line each.
	circles []fence
	// Stations are numbered in the order the catalogue first hears of
	// them: sids maps an id to its number, history holds each number's
	// versions in time order. The tracker compares and looks up stations
	// by number, millions of times a second, never by their string ids.
	sids    map[string]int32
	history [][]*Version
	nextKey Key
	// generation changes with every change to the index; cursors made
	// before it are stale.
	generation uint64
}

// NewCatalog returns an empty catalogue over idx.
func NewCatalog(idx Index) *Catalog {
	return &Catalog{index: idx, sids: map[string]int32{}}
}

// sid returns station id's number, numbering it if it is new. A number
// is never reused: a station deleted and defined again keeps its number.
func (c *Catalog) sid(id string) int32 {
	n, ok := c.sids[id]
	if !ok {
		n = int32(len(c.history))
		c.sids[id] = n
		c.history = append(c.history, nil)
	}
	return n
}

// Upsert makes s the station's version from at on. A change dated
// before the station's current version (clocks of two API instances
// disagreeing) takes effect at the current version's start instead, so
// versions stay ordered.
func (c *Catalog) Upsert(s Station, at time.Time) error {
	if err := s.Shape.Validate(); err != nil {
		return fmt.Errorf("station %s: %w", s.ID, err)
	}
	sid := c.sid(s.ID)
	at = c.close(sid, at)
	from, _ := nanos(at)
	v := &Version{Key: c.nextKey, Station: s, From: at, sid: sid, from: from, until: math.MaxInt64,
		bounds: s.Shape.Bounds(), fence: newFence(s.Shape)}
	if err := c.index.Add(v.Key, s.Shape); err != nil {
		return fmt.Errorf("station %s: %w", s.ID, err)
	}
	c.nextKey++
	c.versions = append(c.versions, v) // at index v.Key
	var fc fence
	if v.fence != nil && math.Abs(v.fence.lat) <= 70 && v.fence.r <= 20_000 {
		fc = *v.fence
	}
	c.circles = append(c.circles, fc)
	c.history[sid] = append(c.history[sid], v)
	c.generation++
	return nil
}

// Delete ends the station's current version at at.
func (c *Catalog) Delete(id string, at time.Time) {
	if sid, ok := c.sids[id]; ok {
		c.close(sid, at)
	}
}

// close ends id's open version at at (or at its start, if at is earlier)
// and returns the time the next version may start. A version that ends
// where it starts never applied to anything and leaves the index.
func (c *Catalog) close(sid int32, at time.Time) time.Time {
	h := c.history[sid]
	if len(h) == 0 {
		return at
	}
	last := h[len(h)-1]
	if !last.Until.IsZero() {
		if at.Before(last.Until) {
			at = last.Until
		}
		return at
	}
	if at.Before(last.From) {
		at = last.From
	}
	last.setUntil(at)
	if !last.Until.After(last.From) {
		c.index.Remove(last.Key)
		c.versions[last.Key] = nil
		c.history[sid] = h[:len(h)-1]
		c.generation++
	}
	return at
}

// At returns the version of station id valid at t, or nil.
func (c *Catalog) At(id string, t time.Time) *Version {
	sid, ok := c.sids[id]
	if !ok {
		return nil
	}
	return c.atSid(sid, t)
}

// lookup returns station id's number, -1 for a station the catalogue
// never heard of. Unlike sid it numbers nothing: trackers call it side by
// side.
func (c *Catalog) lookup(id string) int32 {
	if n, ok := c.sids[id]; ok {
		return n
	}
	return -1
}

// atSid returns the version of station number sid valid at t, or nil.
func (c *Catalog) atSid(sid int32, t time.Time) *Version {
	if sid < 0 {
		return nil
	}
	h := c.history[sid]
	for i := len(h) - 1; i >= 0; i-- {
		if h[i].ValidAt(t) {
			return h[i]
		}
		if h[i].From.Before(t) || h[i].From.Equal(t) {
			return nil
		}
	}
	return nil
}

// circleFar reports, cheaply, that the shape under key k is a circle no
// point of which is within half metres of mid: a segment whose points are
// all that close to mid cannot meet it. It measures in the flat frame at
// the centre, within 1% of the true distance within 20 km of a centre
// below 70° of latitude (see fence.farFromSegment); elsewhere, and for
// polygons, it says nothing.
func (c *Catalog) circleFar(k Key, mid geo.Point, half float64) bool {
	fc := &c.circles[k]
	if fc.kx == 0 {
		return false
	}
	const span = 20_000.0
	dx, dy := (mid.Lng-fc.lng)*fc.kx, (mid.Lat-fc.lat)*geo.MetresPerDegreeLat
	d2 := dx*dx + dy*dy
	limit := (fc.r+half)*1.02 + 1
	return d2 <= span*span && d2 > limit*limit
}

// ByKey returns the version indexed under k.
func (c *Catalog) ByKey(k Key) *Version {
	if k < 0 || int(k) >= len(c.versions) {
		return nil
	}
	return c.versions[k]
}

// Stations is the number of stations with a current version.
func (c *Catalog) Stations() int {
	n := 0
	for _, h := range c.history {
		if len(h) > 0 && h[len(h)-1].Until.IsZero() {
			n++
		}
	}
	return n
}

// Generation changes whenever the index does: a cursor made at another
// generation must be replaced.
func (c *Catalog) Generation() uint64 { return c.generation }

// NewCursor returns a cursor on the catalogue's index.
func (c *Catalog) NewCursor() Cursor { return c.index.NewCursor() }
