// Package jobtest makes the records of tms.jobs for tests of the readers
// of jobs (the jobs read model, the API) without the job processor: a
// vehicle's create and cancel commands, as the API appends them, and the
// job events domain/job's rules make of those commands, the vehicle's
// fixes and its visits, as the processor would produce them. The events
// are therefore the contract's, not a test's idea of it.
package jobtest

import (
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tmsfleet/tms/adapters/kafka"
	"github.com/tmsfleet/tms/domain/event"
	"github.com/tmsfleet/tms/domain/geo"
	"github.com/tmsfleet/tms/domain/job"
	"github.com/tmsfleet/tms/domain/track"
)

// East is the point m metres east of (lat, lng).
func East(lat, lng, m float64) geo.Point {
	return geo.Point{Lat: lat, Lng: lng + m/(geo.MetresPerDegreeLat*math.Cos(lat*math.Pi/180))}
}

// Fix is a fix the vehicle reported, to seed the positions read model
// with.
type Fix struct {
	Time     time.Time
	Point    geo.Point
	SpeedKmh float64
}

// Vehicle is one vehicle's jobs, driven through domain/job's rules. Its
// methods take times in order; the watermark follows the fixes.
type Vehicle struct {
	t        testing.TB
	rules    job.Rules
	v        *job.Vehicle
	stations map[string]job.Station
	wm       time.Time
	seq      int64
	entries  map[string]int
	// Records are the command and event envelopes so far, in the order
	// the API and the processor would have appended them to tms.jobs.
	Records []event.Envelope
	// Fixes are the fixes reported so far.
	Fixes []Fix
}

// New starts a vehicle with plate among stations (the facts its creates
// are validated against).
func New(t testing.TB, plate string, stations map[string]job.Station) *Vehicle {
	return &Vehicle{t: t, rules: job.DefaultRules, v: &job.Vehicle{Plate: plate}, stations: stations, entries: map[string]int{}}
}

// Create appends a create command of a job with stops ("station:kind"),
// accepted at, and the events it makes. It returns the command.
func (w *Vehicle) Create(at time.Time, ref string, weightKg float64, stops ...string) job.Create {
	w.t.Helper()
	req := job.CreateRequest{Vehicle: w.v.Plate, ExternalRef: ref, Cargo: job.Cargo{WeightKg: weightKg}, NewVehicle: true}
	for _, s := range stops {
		id, kind, _ := strings.Cut(s, ":")
		req.Stops = append(req.Stops, job.StopRequest{StationID: id, Kind: kind})
	}
	c, err := job.NewCreate(req, job.Facts{Stations: w.stations}, at, event.ID("jobtest", w.v.Plate, at.String()))
	if err != nil {
		w.t.Fatal(err)
	}
	e, err := c.Event()
	if err != nil {
		w.t.Fatal(err)
	}
	w.Records = append(w.Records, e)
	w.rules.Create(w.v, c)
	w.Records = append(w.Records, w.rules.Advance(w.v, w.wm)...)
	return c
}

// Cancel appends a cancel command of job id at, and the events it makes.
func (w *Vehicle) Cancel(at time.Time, id, reason string) {
	w.t.Helper()
	c, err := job.NewCancel(id, w.v.Plate, reason, at)
	if err != nil {
		w.t.Fatal(err)
	}
	e, err := c.Event()
	if err != nil {
		w.t.Fatal(err)
	}
	w.Records = append(w.Records, e)
	w.rules.Cancel(w.v, c)
	w.Records = append(w.Records, w.rules.Advance(w.v, w.wm)...)
}

// Enter and Exit feed the geofence's entry into, and exit from, station
// at.
func (w *Vehicle) Enter(station string, at time.Time) { w.visit(false, station, at) }

// Exit: see Enter.
func (w *Vehicle) Exit(station string, at time.Time) { w.visit(true, station, at) }

func (w *Vehicle) visit(exit bool, station string, at time.Time) {
	if !exit {
		w.entries[station]++
	}
	vis := job.Visit{Exit: exit, StationID: station, VisitID: event.ID("jobtest-visit", w.v.Plate, station, fmt.Sprint(w.entries[station])),
		At: at, Point: w.stations[station].Point}
	w.rules.Visit(w.v, vis)
	w.Records = append(w.Records, w.rules.Advance(w.v, w.wm)...)
}

// Drive reports a fix every step from a to b (both included), moving
// evenly from p to q, each arriving as it is taken.
func (w *Vehicle) Drive(a, b time.Time, step time.Duration, p, q geo.Point) {
	n := int(b.Sub(a) / step)
	for i := 0; i <= n; i++ {
		f := float64(i) / math.Max(float64(n), 1)
		at := a.Add(time.Duration(i) * step)
		speed := 60.0
		if p == q {
			speed = 0
		}
		w.Fix(at, geo.Point{Lat: p.Lat + (q.Lat-p.Lat)*f, Lng: p.Lng + (q.Lng-p.Lng)*f}, speed)
	}
}

// Fix reports one fix, arriving as it is taken.
func (w *Vehicle) Fix(at time.Time, p geo.Point, speedKmh float64) {
	w.seq++
	if at.After(w.wm) {
		w.wm = at
	}
	w.Fixes = append(w.Fixes, Fix{Time: at, Point: p, SpeedKmh: speedKmh})
	w.Records = append(w.Records, w.rules.Fix(w.v, track.Fix{Time: at, Point: p, SpeedKmh: speedKmh}, w.wm, w.seq)...)
	w.Records = append(w.Records, w.rules.Advance(w.v, w.wm)...)
}

// Until moves the watermark to at, as other vehicles' fixes would.
func (w *Vehicle) Until(at time.Time) {
	if at.After(w.wm) {
		w.wm = at
	}
	w.Records = append(w.Records, w.rules.Advance(w.v, w.wm)...)
}

// Of returns the records of type typ.
func (w *Vehicle) Of(typ string) []event.Envelope {
	var out []event.Envelope
	for _, e := range w.Records {
		if e.Type == typ {
			out = append(out, e)
		}
	}
	return out
}

// KafkaRecords are envelopes as records of tms.jobs in kc's namespace,
// keyed by their subject (the plate).
func KafkaRecords(t testing.TB, kc *kafka.Config, envelopes ...event.Envelope) []*kgo.Record {
	t.Helper()
	out := make([]*kgo.Record, len(envelopes))
	for i, e := range envelopes {
		v, err := json.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		out[i] = &kgo.Record{Topic: kc.Topic(event.TopicJobs), Key: []byte(e.Subject), Value: v,
			Headers: []kgo.RecordHeader{{Key: "content-type", Value: []byte(event.StructuredContentType)}}}
	}
	return out
}

// Sample is a small history of a vehicle with plate, starting at t0, for
// tests that need tms.jobs to hold some of everything: a job (with
// external reference ref) from a loading station to an unloading one 10
// km east, completed, and a second job, cancelled while under way.
func Sample(t testing.TB, plate, ref string, t0 time.Time) *Vehicle {
	t.Helper()
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	l, u := East(31, 121, 0), East(31, 121, 10000)
	v := New(t, plate, map[string]job.Station{
		"L": {ID: "L", Name: "Quarry", Type: "loading", Point: job.Point{Lat: l.Lat, Lng: l.Lng}},
		"U": {ID: "U", Name: "Site", Type: "unloading", Point: job.Point{Lat: u.Lat, Lng: u.Lng}},
	})
	v.Drive(at(0), at(10), 5*time.Second, l, l)
	v.Create(at(10), ref, 20000, "L:loading", "U:unloading")
	v.Enter("L", at(10))
	v.Drive(at(15), at(300), 15*time.Second, l, l)
	v.Exit("L", at(300))
	v.Drive(at(301), at(900), 15*time.Second, l, u)
	v.Enter("U", at(900))
	v.Drive(at(901), at(1000), 15*time.Second, u, u)
	v.Exit("U", at(1000))
	v.Drive(at(1001), at(1100), 15*time.Second, u, u)
	second := v.Create(at(1100), "", 1000, "U:loading", "L:unloading")
	v.Drive(at(1101), at(1200), 15*time.Second, u, u)
	v.Cancel(at(1200), second.JobID, "no longer needed")
	v.Drive(at(1201), at(1300), 15*time.Second, u, u)
	return v
}
