package h3

import (
	"errors"
	"fmt"
	"math"
)

// Config configures an Index. The zero value is valid: every field left at
// zero takes its default.
type Config struct {
	// Resolution is the H3 resolution at which fixes are looked up and
	// boundary cells are listed, 1-15. Default 8: hexagons with an edge of
	// about 530 m (0.7 km²), a good fit for stations of tens of metres to a
	// few kilometres; larger stations list their interior at coarser
	// resolutions (see CoarseCells), so 50 km hazard zones cost about as
	// much as their perimeter. A finer resolution means fewer exact tests
	// per fix near station edges but more cells per station (memory, Add
	// time) and more H3 lookups per vehicle, as vehicles leave small cells
	// sooner; a coarser one the reverse. Resolution 9 was the default
	// until the dense station maps of issue 12: at 8, the index of 100,000
	// stations takes 119 MB instead of 186, vehicles reporting every 10 s
	// look H3 up half as often, and the tracker decides 10-45 % more fixes
	// a second (docs/performance.md, "Dense station maps").
	Resolution int

	// CoarseCells is about how many cells a shape's area may cover at the
	// coarsest resolution it is classified at. A shape is classified at
	// Resolution if its bounding disc covers no more than CoarseCells
	// average cells there; otherwise at the finest coarser resolution
	// where it does, and its interior is listed at the coarsest
	// resolution possible. Default 64.
	CoarseCells int

	// NearBucketDegrees is the size, in degrees of latitude and longitude,
	// of the buckets Near falls back to when the distance asked for does
	// not fit in the cell the cursor knows. Default 0.05 (about 5 km).
	NearBucketDegrees float64

	// MaxCoverCells bounds the work of indexing one shape: the cells its
	// cover may classify, over all resolutions, as bounded from its
	// coordinates before any work (see Indexable). A shape whose bound is
	// larger is refused with ErrTooLarge, by Add and by Indexable alike.
	// The bound is conservative (2.5 to about 18 times the real count);
	// each cell classified costs about 3 µs and 100 bytes while the shape
	// is added. Default DefaultMaxCoverCells (1,048,576): at resolution 8,
	// about 45 cells per kilometre of polygon edge, so polygons of up to
	// about 23,000 km of edges; a 50 km circle is bounded at about 10,700
	// (29,000 at resolution 9, 540,000 at 12). At least 1,000.
	MaxCoverCells int

	// GeometryCache bounds how many cell geometries (centre and radius,
	// about 3 µs of cgo each) Add keeps between calls, so that stations
	// added near each other share the work. It is cleared when full.
	// Default 65536 (about 4 MB); a negative value disables it.
	GeometryCache int
}

// Defaults.
const (
	DefaultResolution        = 8
	DefaultCoarseCells       = 64
	DefaultNearBucketDegrees = 0.05
	DefaultGeometryCache     = 1 << 16
	DefaultMaxCoverCells     = 1 << 20
)

func (c *Config) setDefaults() {
	if c.Resolution == 0 {
		c.Resolution = DefaultResolution
	}
	if c.CoarseCells == 0 {
		c.CoarseCells = DefaultCoarseCells
	}
	if c.NearBucketDegrees == 0 {
		c.NearBucketDegrees = DefaultNearBucketDegrees
	}
	if c.GeometryCache == 0 {
		c.GeometryCache = DefaultGeometryCache
	}
	if c.MaxCoverCells == 0 {
		c.MaxCoverCells = DefaultMaxCoverCells
	}
}

// Validate reports what is wrong with c, after defaults.
func (c Config) Validate() error {
	c.setDefaults()
	var errs []error
	if c.Resolution < 1 || c.Resolution > maxRes {
		errs = append(errs, fmt.Errorf("h3: Resolution %d is outside 1-15", c.Resolution))
	}
	if c.CoarseCells < 1 {
		errs = append(errs, fmt.Errorf("h3: CoarseCells %d must be positive", c.CoarseCells))
	}
	if c.MaxCoverCells < 1000 {
		errs = append(errs, fmt.Errorf("h3: MaxCoverCells %d must be at least 1000", c.MaxCoverCells))
	}
	if math.IsNaN(c.NearBucketDegrees) || c.NearBucketDegrees < 1e-4 || c.NearBucketDegrees > 90 {
		errs = append(errs, fmt.Errorf("h3: NearBucketDegrees %v is outside [0.0001, 90]", c.NearBucketDegrees))
	}
	return errors.Join(errs...)
}
