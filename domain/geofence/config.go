package geofence

import (
	"errors"
	"fmt"
	"time"
)

// Config is the geofence's behaviour where stations do not say otherwise.
type Config struct {
	// ReorderWindow is how far, in event time, a fix may arrive behind a
	// newer fix of the same vehicle and still be put in its place: fixes
	// wait until the vehicle has reported one this much newer, then are
	// decided in fix-time order. A fix arriving later than that is late
	// (see Tracker). Zero decides every fix as it arrives; the service
	// runs with DefaultReorderWindow.
	ReorderWindow time.Duration
	// SilenceGap is how long a vehicle may go without a fix before it is
	// considered to have been silent: no crossing is inferred across a
	// silence, and the first event after it carries the gap. Default 10 min.
	SilenceGap time.Duration
	// Detection is every station's detection where it has no setting of
	// its own. Default DefaultDetection.
	Detection Detection
	// LateHorizon is how long a closed visit is remembered, to judge late
	// fixes against. Default 10 min: long past the reorder window, and it
	// bounds what a vehicle driving through many stations keeps.
	LateHorizon time.Duration
	// RecentFixes is how many of a vehicle's latest fix times are
	// remembered to recognise duplicates. A repeat of an older fix is
	// treated as a late fix, which changes nothing either and reports
	// nothing when the vehicle's remembered visits cover it, as they do
	// a fix already decided. Default 8.
	RecentFixes int
}

// DefaultReorderWindow is the reorder window the service runs with:
// several fixes' worth at G7's usual one-second interval.
const DefaultReorderWindow = 3 * time.Second

// SetDefaults fills in unset fields (ReorderWindow stays as given).
func (c *Config) SetDefaults() {
	if c.SilenceGap == 0 {
		c.SilenceGap = 10 * time.Minute
	}
	if c.Detection == (Detection{}) {
		c.Detection = DefaultDetection
	}
	if c.LateHorizon == 0 {
		c.LateHorizon = 10 * time.Minute
	}
	if c.RecentFixes == 0 {
		c.RecentFixes = 8
	}
}

// Validate reports a configuration that cannot work.
func (c *Config) Validate() error {
	switch {
	case c.ReorderWindow < 0:
		return errors.New("geofence: the reorder window cannot be negative")
	case c.SilenceGap <= 0:
		return errors.New("geofence: the silence gap must be positive")
	case c.LateHorizon < 0:
		return errors.New("geofence: the late horizon cannot be negative")
	case c.RecentFixes < 1:
		return errors.New("geofence: at least one recent fix must be remembered")
	}
	if err := c.Detection.Validate(); err != nil {
		return fmt.Errorf("geofence: default detection: %w", err)
	}
	return nil
}
