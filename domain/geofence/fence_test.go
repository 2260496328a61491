package geofence

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/tmsfleet/tms/domain/geo"
)

// TestFarFromSegmentNeverMissesACircleTheSegmentMeets checks the error
// bounds farFromSegment relies on where they are tightest: segments that
// graze circles of 50 m to 20 km, at latitudes up to 70°, sampled densely
// with the haversine contract. A segment with a sample inside the circle
// must never be called far.
func TestFarFromSegmentNeverMissesACircleTheSegmentMeets(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(12, 6))
	// offset moves p by north and east metres on the sphere's local frame.
	offset := func(p geo.Point, north, east float64) geo.Point {
		return geo.Point{Lat: p.Lat + north/geo.MetresPerDegreeLat, Lng: p.Lng + east/(geo.MetresPerDegreeLat*math.Cos(p.Lat*math.Pi/180))}
	}
	const samples = 2000
	met := 0
	for range 20_000 {
		c := geo.Circle{Center: geo.Point{Lat: (rng.Float64()*2 - 1) * 70, Lng: (rng.Float64()*2 - 1) * 179}, RadiusM: 50 * math.Exp(rng.Float64()*math.Log(400))}
		// The segment's nearest point to the centre is about at the fence
		// (within 3%), its ends up to 5 km away on either side.
		bearing := rng.Float64() * 2 * math.Pi
		d := c.RadiusM * (0.97 + rng.Float64()*0.06)
		near := offset(c.Center, d*math.Cos(bearing), d*math.Sin(bearing))
		l1, l2 := rng.Float64()*5000, rng.Float64()*5000
		a := offset(near, -l1*math.Sin(bearing), l1*math.Cos(bearing))
		b := offset(near, l2*math.Sin(bearing), -l2*math.Cos(bearing))
		inside := false
		for i := 0; i <= samples && !inside; i++ {
			inside = c.Contains(lerp(a, b, float64(i)/samples))
		}
		if !inside {
			continue
		}
		met++
		if newFence(Shape{Circle: &c}).farFromSegment(a, b) {
			t.Fatalf("circle %+v, segment %v to %v: a sample is inside, but the segment is called far", c, a, b)
		}
	}
	if met < 5000 {
		t.Fatalf("only %d segments met their circle: the test exercises too little", met)
	}
}
