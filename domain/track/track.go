// Package track measures how far a vehicle drove from its GPS fixes, with
// the noise taken out, and says what the noise was: what billing charges
// by distance, and what trips and reports sum, rest on it.
//
// GPS fixes are noisy in three ways that would add distance nobody drove:
// the same fix sent twice, a fix thrown far off and back (a jump: the
// implied speed is impossible), and the wander of a parked receiver
// (drift: a few metres this way and that, hour after hour). A Filter
// drops those and counts them: how many fixes it used, how many it
// dropped, and how much distance the dropped ones would have added.
//
// Distances are haversine on the sphere of domain/geo, summed between the
// fixes kept, in fix-time order: the straight line between two fixes is
// what is known of the road between them.
package track

import (
	"math"
	"slices"
	"time"

	"github.com/tmsfleet/tms/domain/geo"
)

// Fix is one position of a vehicle.
type Fix struct {
	Time  time.Time
	Point geo.Point
	// SpeedKmh is the speed the receiver reported; it tells a parked
	// vehicle's drift from slow driving.
	SpeedKmh float64
}

// Filter says what counts as noise.
type Filter struct {
	// MaxSpeedKmh is the fastest a vehicle can have moved between two
	// fixes; a fix that would take it faster from the last one kept, and
	// that the fix after it does not confirm, is a jump. Default 200.
	MaxSpeedKmh float64
	// ParkedSpeedKmh and DriftM: a fix reporting at most this speed within
	// this distance of the last fix kept is drift, and moves nothing.
	// Defaults 3 km/h and 30 m: a receiver's wander, not a vehicle's move.
	ParkedSpeedKmh float64
	DriftM         float64
}

// DefaultFilter is the filter tms measures with; docs/jobs.md states it.
var DefaultFilter = Filter{MaxSpeedKmh: 200, ParkedSpeedKmh: 3, DriftM: 30}

// Noise is what a filter dropped.
type Noise struct {
	FixesUsed        int     `json:"fixes_used"`
	FixesDropped     int     `json:"fixes_dropped"`
	DistanceDroppedM float64 `json:"distance_dropped_m"`
}

// Path is fixes measured: the fixes kept, each with the distance driven
// from the first one, and the noise dropped on the way.
type Path struct {
	times []time.Time
	cum   []float64
	Noise Noise
}

// Verdict is what a Filter makes of one fix.
type Verdict uint8

// The verdicts. Only a kept fix moves the vehicle; the others are noise.
const (
	// Kept: the fix counts; the distance from the last fix kept is driven.
	Kept Verdict = iota
	// Repeated: the fix is not after the last fix kept (the same fix again).
	Repeated
	// Jump: the fix is too far from the last fix kept to have been driven,
	// and the fix after it does not confirm it.
	Jump
	// Drift: a parked receiver's wander near the last fix kept.
	Drift
)

// Suspect reports whether fx, the fix after last (the last fix kept), is
// one whose verdict depends on the fix after it: too far from last to
// have been driven, it is a jump unless the next fix confirms it. Every
// other verdict is final without the next fix, which is what lets a
// consumer that reads fixes one at a time (domain/trip) judge each one
// as it comes and wait only for suspects.
func (f Filter) Suspect(last, fx Fix) bool {
	return fx.Time.After(last.Time) && geo.Haversine(last.Point, fx.Point) > f.MaxSpeedKmh/3.6*fx.Time.Sub(last.Time).Seconds()
}

// Judge returns the verdict on fx, the fix after last (the last fix
// kept), with next the fix after fx (nil when none is known: a suspect is
// then a jump, as the last fix of a Measure is). Measure is Judge applied
// to each fix in turn.
func (f Filter) Judge(last, fx Fix, next *Fix) Verdict {
	switch {
	case !fx.Time.After(last.Time):
		return Repeated
	case f.Suspect(last, fx) && !f.confirmed(fx, next):
		return Jump
	case fx.SpeedKmh <= f.ParkedSpeedKmh && geo.Haversine(last.Point, fx.Point) <= f.DriftM:
		return Drift
	}
	return Kept
}

// Measure filters fixes, which must be in time order, into a Path.
func (f Filter) Measure(fixes []Fix) Path {
	var p Path
	if len(fixes) == 0 {
		return p
	}
	last := fixes[0]
	p.keep(last.Time, 0)
	for i := 1; i < len(fixes); i++ {
		fx := fixes[i]
		var next *Fix
		if i+1 < len(fixes) {
			next = &fixes[i+1]
		}
		v := f.Judge(last, fx, next)
		if v != Kept {
			p.Noise.FixesDropped++
			p.Noise.DistanceDroppedM += f.Dropped(last, fx, next, v)
			continue
		}
		p.keep(fx.Time, p.cum[len(p.cum)-1]+geo.Haversine(last.Point, fx.Point))
		last = fx
	}
	return p
}

// Dropped is the distance a fix judged v (after last, before next) would
// have added had it been kept: for a jump, the detour to it and back; for
// drift, the wander; nothing for a repeat or a kept fix.
func (f Filter) Dropped(last, fx Fix, next *Fix, v Verdict) float64 {
	switch v {
	case Jump:
		d := geo.Haversine(last.Point, fx.Point)
		if next != nil {
			d += geo.Haversine(fx.Point, next.Point) - geo.Haversine(last.Point, next.Point)
		}
		return d
	case Drift:
		return geo.Haversine(last.Point, fx.Point)
	}
	return 0
}

// confirmed reports whether next is within reach of fx: two fixes that
// agree are a real move (after a silence, say), not a jump.
func (f Filter) confirmed(fx Fix, next *Fix) bool {
	if next == nil {
		return false
	}
	dt := next.Time.Sub(fx.Time).Seconds()
	return dt > 0 && geo.Haversine(fx.Point, next.Point) <= f.MaxSpeedKmh/3.6*dt
}

func (p *Path) keep(at time.Time, cum float64) {
	p.times = append(p.times, at)
	p.cum = append(p.cum, cum)
	p.Noise.FixesUsed++
}

// Total is the distance driven over the whole path, in metres.
func (p Path) Total() float64 {
	if len(p.cum) == 0 {
		return 0
	}
	return p.cum[len(p.cum)-1]
}

// At is the distance driven from the path's first fix to time t, in
// metres: between two fixes kept, the share of the segment that the time
// elapsed gives; before the first fix 0, after the last the total.
func (p Path) At(t time.Time) float64 {
	n := len(p.times)
	if n == 0 || !t.After(p.times[0]) {
		return 0
	}
	if !t.Before(p.times[n-1]) {
		return p.cum[n-1]
	}
	i, _ := slices.BinarySearchFunc(p.times, t, func(a, b time.Time) int { return a.Compare(b) })
	// times[i-1] < t <= times[i]
	span := p.times[i].Sub(p.times[i-1]).Seconds()
	frac := t.Sub(p.times[i-1]).Seconds() / span
	return p.cum[i-1] + frac*(p.cum[i]-p.cum[i-1])
}

// Between is the distance driven from time a to time b (0 if b is not
// after a).
func (p Path) Between(a, b time.Time) float64 { return math.Max(p.At(b)-p.At(a), 0) }
