package geofence

import (
	"fmt"
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
	// bounds is the shape's bounding rectangle, computed once.
	bounds geo.Rect
}

// ValidAt reports whether the version applies to a fix taken at t.
func (v *Version) ValidAt(t time.Time) bool {
	return !t.Before(v.From) && (v.Until.IsZero() || t.Before(v.Until))
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
	history  map[string][]*Version
	nextKey  Key
	// generation changes with every change to the index; cursors made
	// before it are stale.
	generation uint64
}

// NewCatalog returns an empty catalogue over idx.
func NewCatalog(idx Index) *Catalog {
	return &Catalog{index: idx, history: map[string][]*Version{}}
}

// Upsert makes s the station's version from at on. A change dated
// before the station's current version (clocks of two API instances
// disagreeing) takes effect at the current version's start instead, so
// versions stay ordered.
func (c *Catalog) Upsert(s Station, at time.Time) error {
	if err := s.Shape.Validate(); err != nil {
		return fmt.Errorf("station %s: %w", s.ID, err)
	}
	at = c.close(s.ID, at)
	v := &Version{Key: c.nextKey, Station: s, From: at, bounds: s.Shape.Bounds()}
	if err := c.index.Add(v.Key, s.Shape); err != nil {
		return fmt.Errorf("station %s: %w", s.ID, err)
	}
	c.nextKey++
	c.versions = append(c.versions, v) // at index v.Key
	c.history[s.ID] = append(c.history[s.ID], v)
	c.generation++
	return nil
}

// Delete ends the station's current version at at.
func (c *Catalog) Delete(id string, at time.Time) {
	c.close(id, at)
}

// close ends id's open version at at (or at its start, if at is earlier)
// and returns the time the next version may start. A version that ends
// where it starts never applied to anything and leaves the index.
func (c *Catalog) close(id string, at time.Time) time.Time {
	h := c.history[id]
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
	last.Until = at
	if !last.Until.After(last.From) {
		c.index.Remove(last.Key)
		c.versions[last.Key] = nil
		c.history[id] = h[:len(h)-1]
		c.generation++
	}
	return at
}

// At returns the version of station id valid at t, or nil.
func (c *Catalog) At(id string, t time.Time) *Version {
	h := c.history[id]
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
