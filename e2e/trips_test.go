package e2e

import (
	"fmt"
	"math"
	"math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/tmsfleet/tms/domain/event"
	"github.com/tmsfleet/tms/domain/geo"
	"github.com/tmsfleet/tms/domain/position"
	"github.com/tmsfleet/tms/internal/geoworkload"
	"github.com/tmsfleet/tms/internal/testenv"
	"github.com/tmsfleet/tms/internal/tmsproc"
	"github.com/tmsfleet/tms/pipeline/geofence"
	"github.com/tmsfleet/tms/simulator"
)

// apiTrip is a trip as the API answers it (what the test reads of it).
type apiTrip struct {
	ID       string  `json:"id"`
	Revision int     `json:"revision"`
	Open     bool    `json:"open"`
	Distance float64 `json:"distance_m"`
	Fixes    int     `json:"fixes"`
	Flags    []string
	Start    apiTripEnd `json:"start"`
	End      apiTripEnd `json:"end"`
}

type apiTripEnd struct {
	Time    time.Time `json:"time"`
	Station *struct {
		ID, Name, Type string
	} `json:"station"`
}

// TestTheSimulatorsFleetMakesItsTripsThroughTms: the simulator's fleet
// (deterministic for its seed) drives six hours between the sites of
// Shanghai, each site a station of 300 m, reporting every 10 s over MQTT
// to a running tms, with a parked truck whose receiver wanders beside it.
// From the API: every leg the simulator drove (its own journal, not tms's
// output) is a trip from the station it left to the one it reached, from
// the last fix before its departure to the first at its arrival, its
// distance within 1 % of the leg's length; the parked truck has no trip,
// only its stop; a trip's track holds its fixes.
func TestTheSimulatorsFleetMakesItsTripsThroughTms(t *testing.T) {
	t.Parallel()
	// The simulator's shortest dwell is 3 minutes (oil stations): a fix
	// every 10 s shows at least 2 min 40 s of it. The geofence applies a
	// station from its creation on, so the fleet's six hours start after
	// the stations were made: hours ahead of their receipt, which trips
	// accept here.
	d := newDeployment(t, "TMS_TRIPS_PARKING=2m", "TMS_TRIPS_MAX_AHEAD=7h")
	d.Start()
	area := simulator.Shanghai()
	stationOf := map[string]string{}
	for i, s := range area.Sites {
		id := fmt.Sprintf("SITE-%02d", i)
		stationOf[s.Name] = id
		body := fmt.Sprintf(`{"id":%q,"name":%q,"type":%q,"geometry":{"type":"Point","coordinates":[%.7f,%.7f]},"radius_m":300}`,
			id, s.Name, s.Kind, s.Lng, s.Lat)
		if status, out, _ := post(t, d, "/api/v1/stations", body); status != http.StatusCreated {
			t.Fatalf("station %s: %d %v", id, status, out)
		}
	}

	const every, vehicles = 10 * time.Second, 8
	start := time.Now().Add(time.Minute).Truncate(time.Second)
	end := start.Add(6 * time.Hour)
	fleet, err := simulator.NewFleet(7, vehicles, area)
	if err != nil {
		t.Fatal(err)
	}
	pub := paho.NewClient(paho.NewClientOptions().AddBroker(d.MQTTURL).SetClientID(testenv.Name("trips")))
	if tok := pub.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("publisher connect: %v", tok.Error())
	}
	t.Cleanup(func() { pub.Disconnect(0) })
	const parked = "沪D00001"
	yard := geo.Point{Lat: 31.30, Lng: 121.30}
	rng := rand.New(rand.NewPCG(3, 4))
	enc := simulator.Encoding{}
	var tokens []paho.Token
	published := 0
	for at := start; at.Before(end); at = at.Add(every) {
		fixes := fleet.Step(at)
		if at.Equal(start) {
			fleet.RecordLegs()
		}
		// The parked truck: metres of wander, now and then tens with a
		// speed, and rarely a fix thrown hundreds of metres off.
		p, kmh := geoworkload.Offset(yard, rng.NormFloat64()*5, rng.NormFloat64()*5), 0.0
		switch r := rng.Float64(); {
		case r < 0.003:
			p, kmh = geoworkload.Offset(yard, 300+rng.Float64()*200, rng.NormFloat64()*100), 25
		case r < 0.05:
			p, kmh = geoworkload.Offset(yard, rng.NormFloat64()*60, rng.NormFloat64()*60), 4+rng.Float64()*6
		}
		fixes = append(fixes, simulator.Fix{Plate: parked, Time: at, Lat: p.Lat, Lng: p.Lng, SpeedKmh: kmh})
		msg, _ := enc.Encode(nil, fixes, rng)
		tokens = append(tokens, pub.Publish(d.Topic, 1, false, msg))
		published += len(fixes)
	}
	for _, tok := range tokens {
		if !tok.WaitTimeout(60*time.Second) || tok.Error() != nil {
			t.Fatalf("publish: %v (a timed-out token is a failure)", tok.Error())
		}
	}
	tmsproc.Eventually(t, 180*time.Second, fmt.Sprintf("%d positions stored", published), func() bool {
		return d.Count(`SELECT count(*) FROM positions`) == int64(published)
	})
	// The geofence has read every position (the visits the stations come
	// from), and every projector has caught up.
	adm, err := d.Kafka.NewAdmin("e2e-admin")
	if err != nil {
		t.Fatal(err)
	}
	defer adm.Close()
	positions := d.Kafka.Topic(event.TopicPositions)
	tmsproc.Eventually(t, 180*time.Second, "the geofence at the end of tms.positions", func() bool {
		ends, err := adm.ListEndOffsets(t.Context(), positions)
		if err != nil {
			t.Fatal(err)
		}
		committed, err := adm.FetchOffsets(t.Context(), d.Kafka.Group(geofence.Group))
		if err != nil {
			return false
		}
		var end, at int64
		ends.Each(func(o kadm.ListedOffset) { end += o.Offset })
		committed.Each(func(o kadm.OffsetResponse) {
			if o.Topic == positions {
				at += o.At
			}
		})
		return at >= end
	})
	tmsproc.Eventually(t, 180*time.Second, "every projector at the end of its topics", func() bool {
		return d.ProjectorsBehind() == ""
	})

	window := "?" + url.Values{"from": {start.Add(-time.Hour).Format(time.RFC3339)}, "to": {end.Add(time.Hour).Format(time.RFC3339)},
		"limit": {"1000"}}.Encode()
	var list struct{ Trips []apiTrip }
	if status := d.Get("/api/v1/vehicles/"+url.PathEscape(parked)+"/trips"+window, &list); status != http.StatusOK || len(list.Trips) != 0 {
		t.Errorf("the parked truck with a wandering receiver: %d, trips %+v", status, list.Trips)
	}
	var stops struct{ Stops []struct{ Open bool } }
	if status := d.Get("/api/v1/vehicles/"+url.PathEscape(parked)+"/stops"+window, &stops); status != http.StatusOK ||
		len(stops.Stops) != 1 || !stops.Stops[0].Open {
		t.Errorf("the parked truck should have one stop, still going on: %d %+v", status, stops.Stops)
	}

	legs := fleet.Legs()
	settled := end.Add(-2*time.Minute - 2*every) // arrivals since have no stop yet
	matched, worst := 0, 0.0
	var sample apiTrip
	for _, plate := range fleet.Plates() {
		var got struct{ Trips []apiTrip }
		if status := d.Get("/api/v1/vehicles/"+url.PathEscape(plate)+"/trips"+window, &got); status != http.StatusOK {
			t.Fatalf("trips of %s: %d", plate, status)
		}
		for _, l := range legs {
			if l.Plate != plate || l.Arrived.IsZero() || l.Arrived.After(settled) || l.Departed.Before(start.Add(2*time.Minute)) {
				continue
			}
			var hit *apiTrip
			for i := range got.Trips {
				tr := &got.Trips[i]
				if !tr.Start.Time.Before(l.Departed.Add(-every)) && !tr.Start.Time.After(l.Departed.Add(2*time.Second)) &&
					!tr.End.Time.Before(l.Arrived.Add(-3*time.Second)) && !tr.End.Time.After(l.Arrived.Add(every+time.Second)) {
					hit = tr
				}
			}
			if hit == nil {
				t.Errorf("%s: the leg %s -> %s, %s to %s, is no trip", plate, l.From, l.To,
					l.Departed.UTC().Format(time.TimeOnly), l.Arrived.UTC().Format(time.TimeOnly))
				continue
			}
			matched++
			sample = *hit
			length := 0.0
			for i := 1; i < len(l.Path); i++ {
				length += geo.Haversine(geo.Point{Lat: l.Path[i-1][0], Lng: l.Path[i-1][1]}, geo.Point{Lat: l.Path[i][0], Lng: l.Path[i][1]})
			}
			off := math.Abs(hit.Distance-length) / length
			worst = math.Max(worst, off)
			if off > 0.01 {
				t.Errorf("%s: the leg %s -> %s is %.0f m, its trip %.0f m", plate, l.From, l.To, length, hit.Distance)
			}
			if hit.Start.Station == nil || hit.Start.Station.ID != stationOf[l.From] || hit.End.Station == nil ||
				hit.End.Station.ID != stationOf[l.To] || hit.End.Station.Name != l.To {
				t.Errorf("%s: the leg %s -> %s: its trip's stations %+v -> %+v, want %s -> %s", plate, l.From, l.To,
					hit.Start.Station, hit.End.Station, stationOf[l.From], stationOf[l.To])
			}
			if hit.Revision != 1 || hit.Open || len(hit.Flags) != 0 {
				t.Errorf("%s: trip %+v: revision 1, closed, no flags", plate, hit)
			}
		}
	}
	if matched < 20 {
		t.Fatalf("only %d legs to compare", matched)
	}
	t.Logf("%d legs, each a trip between its stations; the largest distance error %.3f %%", matched, 100*worst)

	var one apiTrip
	if status := d.Get("/api/v1/trips/"+sample.ID, &one); status != http.StatusOK || one.ID != sample.ID || one.Distance != sample.Distance {
		t.Errorf("GET the trip: %d %+v", status, one)
	}
	var track struct {
		TripID string `json:"trip_id"`
		Points []struct {
			FixTime time.Time `json:"fix_time"`
		}
	}
	if status := d.Get("/api/v1/trips/"+sample.ID+"/track?limit=10000", &track); status != http.StatusOK ||
		len(track.Points) != sample.Fixes+1 || !track.Points[0].FixTime.Equal(sample.Start.Time) ||
		!track.Points[len(track.Points)-1].FixTime.Equal(sample.End.Time) {
		t.Errorf("the trip's track: %d, %d points, want its %d fixes and the one it starts at", status, len(track.Points), sample.Fixes)
	}
}

// stopAndGo is a vehicle's fixes, a fix every 10 s from start, far from
// any station: parked, 3 km east, parked, back, parked; one fix of the
// first drive delivered after all the others, late. It gives the trips
// read model trips, stops and a revision to rebuild.
func stopAndGo(plate string, start time.Time) []position.Position {
	const every = 10 * time.Second
	home := geo.Point{Lat: 31.6, Lng: 121.8}
	var out []position.Position
	at := start
	add := func(p geo.Point, kmh float64) {
		out = append(out, position.Position{Plate: plate, FixTime: at, ReceivedAt: at.Add(time.Second), Lat: p.Lat, Lng: p.Lng, SpeedKmh: kmh})
		at = at.Add(every)
	}
	park := func(p geo.Point, d time.Duration) {
		for range int(d / every) {
			add(p, 0)
		}
	}
	drive := func(from float64, to float64) {
		for i := 1; i <= 30; i++ { // 3 km in 300 s
			x := from + (to-from)*float64(i)/30
			kmh := 36.0
			if i == 30 {
				kmh = 0
			}
			add(geoworkload.Offset(home, 0, x), kmh)
		}
	}
	park(home, 10*time.Minute)
	drive(0, 3000)
	park(geoworkload.Offset(home, 0, 3000), 10*time.Minute)
	drive(3000, 0)
	park(home, 5*time.Minute)
	late := out[75] // in the first drive
	return append(slices.Delete(out, 75, 76), late)
}
