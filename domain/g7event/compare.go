package g7event

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/tmsfleet/tms/domain/geo"
)

// Defaults of MatchRules: the query parameters of the comparison
// endpoint default to them (docs/g7.md, "Comparing stops").
const (
	// DefaultMatchDistanceM is how far apart two stops' places may be
	// and still be one stop: G7 takes the place where the vehicle came to
	// rest, tms where its trip ended (the first fix of the stop), and
	// GPS noise around a parked truck is tens of metres.
	DefaultMatchDistanceM = 200
	// DefaultMatchSlack is how far apart in time two stops may be and
	// still overlap: G7 and tms see the stop from different fixes, and a
	// stop tms cuts at a fix a minute late must still meet G7's.
	DefaultMatchSlack = 2 * time.Minute
	// MaxMatchDistanceM and MaxMatchSlack bound what a query may ask: a
	// wider rule pairs stops that are not the same.
	MaxMatchDistanceM = 5000
	MaxMatchSlack     = time.Hour
)

// MatchRules say when a G7 stop and a tms stop are the same stop.
type MatchRules struct {
	// MaxDistanceM: their places (G7's start point, tms's stop point) are
	// at most this far apart, in metres.
	MaxDistanceM float64
	// Slack: their time intervals, each widened by Slack at both ends,
	// overlap.
	Slack time.Duration
}

// Validate reports rules outside their bounds.
func (r MatchRules) Validate() error {
	var errs []error
	if math.IsNaN(r.MaxDistanceM) || r.MaxDistanceM < 0 || r.MaxDistanceM > MaxMatchDistanceM {
		errs = append(errs, fmt.Errorf("max_distance_m %v is outside [0, %d]", r.MaxDistanceM, MaxMatchDistanceM))
	}
	if r.Slack < 0 || r.Slack > MaxMatchSlack {
		errs = append(errs, fmt.Errorf("slack %s is outside [0, %s]", r.Slack, MaxMatchSlack))
	}
	return errors.Join(errs...)
}

// Stop is a stop as the comparison sees it, from either side. An open
// stop (still going on) has End set by the caller to where its knowledge
// ends (the window's end, or the last fix).
type Stop struct {
	Start, End time.Time
	Open       bool
	At         geo.Point
}

// Pair is a G7 stop and a tms stop found to be the same stop: indexes
// into the inputs, and how they differ.
type Pair struct {
	G7, TMS int
	// StartDiff is the G7 start minus the tms start.
	StartDiff time.Duration
	// EndDiff is the G7 end minus the tms end; nil when either is open.
	EndDiff *time.Duration
	// DistanceM is the distance between their places.
	DistanceM float64
	// Overlap is how long both lasted (without the slack); zero when
	// they met only within it.
	Overlap time.Duration
}

// Comparison is what two views of one vehicle's stops agree on: the
// pairs, and the stops each saw alone (indexes, in input order).
type Comparison struct {
	Pairs   []Pair
	OnlyG7  []int
	OnlyTMS []int
}

// Compare pairs G7's stops with tms's: two stops are candidates when
// their intervals, widened by the slack, overlap and their places are
// within the distance. Pairs are one to one, chosen greedily from the
// candidates with the longest overlap first (then the nearest, then the
// earliest G7 stop, then the earliest tms stop), so that a long stop one
// side cut in two pairs with the part that overlaps it most and the rest
// shows as seen by one side only. Neither side is taken as the truth.
// The result depends on the inputs alone, not on their order within a
// side beyond the indexes it reports.
func Compare(g7, tms []Stop, r MatchRules) Comparison {
	type cand struct {
		g, t    int
		overlap time.Duration
		dist    float64
	}
	var cands []cand
	for gi, g := range g7 {
		for ti, t := range tms {
			if g.Start.Add(-r.Slack).After(t.End.Add(r.Slack)) || t.Start.Add(-r.Slack).After(g.End.Add(r.Slack)) {
				continue
			}
			d := geo.Haversine(g.At, t.At)
			if d > r.MaxDistanceM {
				continue
			}
			overlap := max(minTime(g.End, t.End).Sub(maxTime(g.Start, t.Start)), 0)
			cands = append(cands, cand{gi, ti, overlap, d})
		}
	}
	slices.SortFunc(cands, func(a, b cand) int {
		return cmp.Or(cmp.Compare(b.overlap, a.overlap), cmp.Compare(a.dist, b.dist),
			g7[a.g].Start.Compare(g7[b.g].Start), tms[a.t].Start.Compare(tms[b.t].Start), cmp.Compare(a.g, b.g), cmp.Compare(a.t, b.t))
	})
	usedG, usedT := make([]bool, len(g7)), make([]bool, len(tms))
	var out Comparison
	for _, c := range cands {
		if usedG[c.g] || usedT[c.t] {
			continue
		}
		usedG[c.g], usedT[c.t] = true, true
		g, t := g7[c.g], tms[c.t]
		p := Pair{G7: c.g, TMS: c.t, StartDiff: g.Start.Sub(t.Start), DistanceM: c.dist, Overlap: c.overlap}
		if !g.Open && !t.Open {
			d := g.End.Sub(t.End)
			p.EndDiff = &d
		}
		out.Pairs = append(out.Pairs, p)
	}
	slices.SortFunc(out.Pairs, func(a, b Pair) int {
		return cmp.Or(g7[a.G7].Start.Compare(g7[b.G7].Start), cmp.Compare(a.G7, b.G7))
	})
	for i, u := range usedG {
		if !u {
			out.OnlyG7 = append(out.OnlyG7, i)
		}
	}
	for i, u := range usedT {
		if !u {
			out.OnlyTMS = append(out.OnlyTMS, i)
		}
	}
	return out
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
