package geofence

import (
	"errors"
	"fmt"
	"time"
)

// Detection is how a station decides that a vehicle entered or left it.
type Detection struct {
	// EnterConfirmFixes and EnterConfirm: a vehicle has entered once it
	// has been inside for at least this many consecutive fixes spanning
	// at least this long. The visit starts at the first of those fixes.
	EnterConfirmFixes int
	EnterConfirm      time.Duration
	// ExitMarginM: a vehicle inside counts as leaving only when it is
	// outside the station by more than this many metres, so that GPS noise
	// at the fence does not make it flap.
	ExitMarginM float64
	// ExitConfirmFixes and ExitConfirm: a vehicle has left once it has
	// been outside by the margin for at least this many consecutive fixes
	// spanning at least this long. The visit ends at the first of them.
	ExitConfirmFixes int
	ExitConfirm      time.Duration
}

// DefaultDetection is what a station uses where neither it nor the
// configuration says otherwise: enter on the first fix inside, leave on
// the first fix 30 m outside (typical GPS error is 5 to 15 m; 30 m keeps
// a parked vehicle's jitter from flapping).
var DefaultDetection = Detection{EnterConfirmFixes: 1, ExitMarginM: 30, ExitConfirmFixes: 1}

// Validate reports settings that cannot work.
func (d Detection) Validate() error {
	switch {
	case d.EnterConfirmFixes < 1 || d.ExitConfirmFixes < 1:
		return errors.New("confirmation needs at least 1 fix")
	case d.EnterConfirm < 0 || d.ExitConfirm < 0:
		return errors.New("confirmation times cannot be negative")
	case d.ExitMarginM < 0 || d.ExitMarginM > 5000:
		return fmt.Errorf("exit margin %v m is outside [0, 5000]", d.ExitMarginM)
	}
	return nil
}

// DetectionOverrides are a station's own settings; nil fields take the
// defaults.
type DetectionOverrides struct {
	EnterConfirmFixes *int
	EnterConfirm      *time.Duration
	ExitMarginM       *float64
	ExitConfirmFixes  *int
	ExitConfirm       *time.Duration
}

// Apply returns defaults with o's settings in place.
func (o DetectionOverrides) Apply(defaults Detection) Detection {
	d := defaults
	if o.EnterConfirmFixes != nil {
		d.EnterConfirmFixes = *o.EnterConfirmFixes
	}
	if o.EnterConfirm != nil {
		d.EnterConfirm = *o.EnterConfirm
	}
	if o.ExitMarginM != nil {
		d.ExitMarginM = *o.ExitMarginM
	}
	if o.ExitConfirmFixes != nil {
		d.ExitConfirmFixes = *o.ExitConfirmFixes
	}
	if o.ExitConfirm != nil {
		d.ExitConfirm = *o.ExitConfirm
	}
	return d
}
