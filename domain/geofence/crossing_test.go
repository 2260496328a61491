package geofence_test

import (
	"math/rand/v2"
	"testing"

	"github.com/tmsfleet/tms/domain/geo"
	"github.com/tmsfleet/tms/domain/geofence"
	"github.com/tmsfleet/tms/internal/geoworkload"
)

// TestSegmentCrossingAgreesWithDenseSampling checks the estimate behind
// interpolated transitions (which the geofence processor's oracle shares)
// against the membership contract itself: for random circles and
// polygons, and random segments with both ends outside, a crossing is
// reported exactly when points sampled densely along the segment are
// inside (or, between two samples, over less than a sample's spacing),
// and it enters and leaves within one sample of the first and the last
// sample inside.
func TestSegmentCrossingAgreesWithDenseSampling(t *testing.T) {
	t.Parallel()
	const samples = 4000
	step := 1.0 / samples
	rng := rand.New(rand.NewPCG(5, 8))
	centre := geo.Point{Lat: 31.2, Lng: 121.5}
	around := func() geo.Point {
		return geoworkload.Offset(centre, (rng.Float64()*2-1)*3000, (rng.Float64()*2-1)*3000)
	}
	crossings, misses := 0, 0
	for range 3000 {
		shape := geoworkload.RandomStation(rng, centre)
		a, b := around(), around()
		if shape.Contains(a) || shape.Contains(b) {
			continue
		}
		first, last := -1, -1
		for i := 0; i <= samples; i++ {
			if shape.Contains(geofence.Lerp(a, b, float64(i)*step)) {
				if first < 0 {
					first = i
				}
				last = i
			}
		}
		in, out, ok := geofence.SegmentCrossing(shape, a, b)
		switch {
		case first >= 0 && !ok:
			t.Errorf("%+v from %v to %v: samples %d to %d are inside, but no crossing is reported", shape, a, b, first, last)
		case first >= 0:
			crossings++
			sFirst, sLast := float64(first)*step, float64(last)*step
			if in > sFirst+1e-9 || in < sFirst-step-1e-9 {
				t.Errorf("%+v from %v to %v: enters at %.6f, first sample inside %.6f", shape, a, b, in, sFirst)
			}
			if out < sLast-1e-9 || out > sLast+step+1e-9 {
				t.Errorf("%+v from %v to %v: leaves at %.6f, last sample inside %.6f", shape, a, b, out, sLast)
			}
		case ok && out-in > step+1e-9:
			t.Errorf("%+v from %v to %v: a crossing from %.6f to %.6f that no sample is inside", shape, a, b, in, out)
		default:
			misses++
		}
	}
	t.Logf("%d crossings, %d misses", crossings, misses)
	if crossings < 300 || misses < 300 {
		t.Fatalf("%d crossings and %d misses: the test exercises too little", crossings, misses)
	}
}
