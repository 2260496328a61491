package trip

import (
	"errors"
	"fmt"
	"time"

	"github.com/tmsfleet/tms/domain/track"
)

// Rules say what a trip is. The zero value is not usable: start from
// DefaultRules.
type Rules struct {
	// RadiusM is how far a vehicle may wander from where it stands and
	// still be standing: GPS drift and manoeuvring in a yard stay within
	// it, a departure leaves it. Default 200 m, Traccar's distance.
	RadiusM float64
	// Parking is how long a vehicle must stay within the radius for its
	// trip to end: shorter halts (lights, queues) are part of the trip, as
	// idle time. Default 180 s.
	Parking time.Duration
	// Gap is the longest silence a trip spans: a longer one ends it.
	// Default 1 h.
	Gap time.Duration
	// MoveFixes is how many fixes in a row must lie outside the radius
	// for the vehicle to have moved: 2 by default, so that one fix thrown
	// a few hundred metres off (too slow to be a jump) makes no trip. 1 to
	// 10.
	MoveFixes int
	// Filter takes the GPS noise out of the distances; its parked speed is
	// also what standing means (a fix reporting at most that speed).
	Filter track.Filter
}

// DefaultRules are the rules tms runs with; docs/history.md states them.
var DefaultRules = Rules{
	RadiusM: 200, Parking: 180 * time.Second, Gap: time.Hour, MoveFixes: 2, Filter: track.DefaultFilter,
}

// MaxMoveFixes bounds Rules.MoveFixes: the fixes outside the radius are
// held in the state until they decide.
const MaxMoveFixes = 10

// Validate reports rules that cannot work, every problem at once.
func (r Rules) Validate() error {
	var errs []error
	if !(r.RadiusM > 0) {
		errs = append(errs, fmt.Errorf("trip rules: the radius (%v m) must be positive", r.RadiusM))
	}
	if r.Parking <= 0 {
		errs = append(errs, fmt.Errorf("trip rules: the parking time (%s) must be positive", r.Parking))
	}
	if r.Gap < r.Parking {
		errs = append(errs, fmt.Errorf("trip rules: the gap (%s) must be at least the parking time (%s): a silence that ends a trip is a stop", r.Gap, r.Parking))
	}
	if r.MoveFixes < 1 || r.MoveFixes > MaxMoveFixes {
		errs = append(errs, fmt.Errorf("trip rules: move fixes (%d) must be 1 to %d", r.MoveFixes, MaxMoveFixes))
	}
	if !(r.Filter.MaxSpeedKmh > 0) || r.Filter.DriftM < 0 || r.Filter.ParkedSpeedKmh < 0 {
		errs = append(errs, errors.New("trip rules: the noise filter needs a positive maximum speed"))
	}
	return errors.Join(errs...)
}
