package job

import (
	"errors"
	"time"

	"github.com/tmsfleet/tms/domain/track"
)

// Rules is how jobs are advanced and settled. The zero value is not
// usable: start from DefaultRules.
type Rules struct {
	// DecisionDelay is how far the event-time watermark must have passed
	// a command or a visit before it is applied: a vehicle's inputs come
	// from three topics, each late in its own way (the geofence decides a
	// fix only after its reorder window), and applying them in event-time
	// order once all of them are in is what makes a replay decide as the
	// live run did. The geofence's reorder window plus a margin; default
	// 8 s (3 s + 5 s).
	DecisionDelay time.Duration
	// Settle is how far the event-time watermark must have passed a job's
	// last departure before its completion is final and published: at
	// least the decision delay, plus a margin for fixes that arrive a
	// little late. Default 38 s (8 s + 30 s).
	Settle time.Duration
	// AmendHorizon is how long after a completion late fixes of its time
	// window still amend it; after that the job's fixes are let go.
	// Default 2 h.
	AmendHorizon time.Duration
	// History is how long a vehicle's entries and exits are remembered
	// for a job that is created, or starts, after them. Default 10 min.
	History time.Duration
	// MaxVisits bounds the entries and exits remembered. Default 64.
	MaxVisits int
	// MaxTrackFixes bounds the fixes a vehicle with jobs keeps for their
	// distances (about 40 bytes each); past it the oldest go. Default
	// 100,000: more than a day at a fix every second.
	MaxTrackFixes int
	// Filter takes the GPS noise out of the distances.
	Filter track.Filter
}

// DefaultRules are the rules tms runs with; docs/jobs.md states them.
var DefaultRules = Rules{
	DecisionDelay: 8 * time.Second, Settle: 38 * time.Second, AmendHorizon: 2 * time.Hour, History: 10 * time.Minute,
	MaxVisits: 64, MaxTrackFixes: 100_000, Filter: track.DefaultFilter,
}

// Validate reports rules that cannot work.
func (r Rules) Validate() error {
	var errs []error
	if r.DecisionDelay < 0 || r.Settle < r.DecisionDelay || r.AmendHorizon < r.Settle || r.History <= 0 {
		errs = append(errs, errors.New("job rules: the decision delay must not be negative, the settle window at least the delay, the amend horizon at least the settle window, the history positive"))
	}
	if r.MaxVisits < 2 || r.MaxTrackFixes < 2 {
		errs = append(errs, errors.New("job rules: at least 2 visits and 2 fixes must be kept"))
	}
	if r.Filter.MaxSpeedKmh <= 0 || r.Filter.DriftM < 0 || r.Filter.ParkedSpeedKmh < 0 {
		errs = append(errs, errors.New("job rules: the noise filter needs a positive maximum speed"))
	}
	return errors.Join(errs...)
}
