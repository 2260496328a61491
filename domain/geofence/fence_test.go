package geofence

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"testing"
	"time"

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

// TestMembershipJSONIsTheSnapshotForm checks that a membership, stored to
// the millisecond in a few bytes, reads and writes the JSON the
// processor's snapshots have always held.
func TestMembershipJSONIsTheSnapshotForm(t *testing.T) {
	t.Parallel()
	const form = `[{"station":"S1","version":2,"inside":true,"visit":"8d3f0c3e-5b8f-5f0e-9d5e-0a1b2c3d4e5f","entered_at":"2026-12-06T08:00:01.234Z",` +
		`"run":{"start":{"t":"2026-12-06T08:05:00Z","p":{"Lat":31.2,"Lng":121.4}},"count":1},` +
		`"last_from":"2026-12-06T07:00:00Z","last_until":"2026-12-06T07:10:00.5Z"},` +
		`{"station":"S2","version":1,"inside":false}]`
	var ms []Membership
	if err := json.Unmarshal([]byte(form), &ms); err != nil {
		t.Fatal(err)
	}
	from, until := ms[0].LastVisit()
	if !ms[0].EnteredAt().Equal(time.Date(2026, 12, 6, 8, 0, 1, 234e6, time.UTC)) || !from.Equal(time.Date(2026, 12, 6, 7, 0, 0, 0, time.UTC)) ||
		!until.Equal(time.Date(2026, 12, 6, 7, 10, 0, 5e8, time.UTC)) || !ms[1].EnteredAt().IsZero() {
		t.Errorf("read %+v", ms)
	}
	b, err := json.Marshal(ms)
	if err != nil || string(b) != form {
		t.Errorf("written\n%s\nwant\n%s (%v)", b, form, err)
	}
	if err := json.Unmarshal([]byte(`[{"station":"S1","visit":"not a uuid"}]`), &ms); err == nil {
		t.Error("a visit id that is no UUID is read")
	}
}
