package track

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/tmsfleet/tms/domain/geo"
)

var t0 = time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC)

// east returns the point m metres east of (31, 121).
func east(m float64) geo.Point {
	return geo.Point{Lat: 31, Lng: 121 + m/(geo.MetresPerDegreeLat*math.Cos(31*math.Pi/180))}
}

func TestNoiseIsTakenOutOfADrive(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(1, 2))
	var fixes []Fix
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	// Parked for 10 minutes, wandering a few metres.
	for s := range 600 {
		fixes = append(fixes, Fix{Time: at(s), Point: east(rng.NormFloat64() * 4), SpeedKmh: 0})
	}
	// Then 10 km east at 20 m/s, a fix a second, with a jump and a repeat.
	for s := 1; s <= 500; s++ {
		f := Fix{Time: at(600 + s), Point: east(float64(s) * 20), SpeedKmh: 72}
		if s == 250 {
			f.Point = geo.Point{Lat: 31.05, Lng: f.Point.Lng} // 5.5 km north and back
		}
		fixes = append(fixes, f)
		if s == 100 {
			fixes = append(fixes, f) // sent twice
		}
	}
	p := DefaultFilter.Measure(fixes)
	if got := p.Total(); math.Abs(got-10000) > 100 {
		t.Errorf("total %.1f m, want 10,000 within 1 %%", got)
	}
	if p.Noise.FixesUsed+p.Noise.FixesDropped != len(fixes) {
		t.Errorf("noise %+v does not account for %d fixes", p.Noise, len(fixes))
	}
	// The jump, the repeat and most of the parked wander are dropped;
	// the jump alone would have added about 11 km.
	if p.Noise.FixesDropped < 550 || p.Noise.DistanceDroppedM < 11000 {
		t.Errorf("noise %+v: the jump, the repeat and the drift should be dropped", p.Noise)
	}
	if d := p.Between(at(600), at(850)); math.Abs(d-5000) > 60 {
		t.Errorf("driven between the start and 250 s later: %.1f m, want 5,000", d)
	}
	if p.At(t0.Add(-time.Hour)) != 0 || p.At(at(2000)) != p.Total() {
		t.Error("before the first fix the distance is 0, after the last the total")
	}
}

// TestARealMoveAfterASilenceIsKept: two fixes far from the last one that
// agree with each other are a move, not a jump.
func TestARealMoveAfterASilenceIsKept(t *testing.T) {
	t.Parallel()
	fixes := []Fix{
		{Time: t0, Point: east(0), SpeedKmh: 50},
		{Time: t0.Add(10 * time.Second), Point: east(5000), SpeedKmh: 50}, // 1,800 km/h from the first
		{Time: t0.Add(11 * time.Second), Point: east(5015), SpeedKmh: 50},
	}
	p := DefaultFilter.Measure(fixes)
	if p.Noise.FixesDropped != 0 || math.Abs(p.Total()-5015) > 1 {
		t.Errorf("total %.1f, noise %+v", p.Total(), p.Noise)
	}
}

func TestCrawlingIsNotDrift(t *testing.T) {
	t.Parallel()
	var fixes []Fix
	for s := range 100 { // 1 m a second at a reported 2 km/h: 99 m
		fixes = append(fixes, Fix{Time: t0.Add(time.Duration(s) * time.Second), Point: east(float64(s)), SpeedKmh: 2})
	}
	p := DefaultFilter.Measure(fixes)
	// Drift is held at the last fix kept until the vehicle is farther than
	// DriftM from it: the distance comes in steps, but all of it comes.
	if got := p.Total(); got < 90 || got > 99.5 {
		t.Errorf("total %.1f m, want about 99", got)
	}
}
