// Package jobsim drives one vehicle through jobs for tests, the way the
// job processor would see it: commands dated by the vehicle's clock, the
// geofence's entries and exits as the vehicle reaches and leaves stations,
// and its fixes, each fed to domain/job's Rules with a watermark that
// follows the fixes. What comes out (the command records the API would
// append and the job events the processor would produce, in the order
// they would reach tms.jobs) is real output of the rules, not JSON written
// by hand, so tests that check schemas or consumers check what tms
// encodes.
//
// Fixes can be held back and delivered later (Hold, Release), as a device
// that buffered while out of coverage would: delivered after a completion
// settled, they amend it.
package jobsim

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/tmsfleet/tms/domain/event"
	"github.com/tmsfleet/tms/domain/geo"
	"github.com/tmsfleet/tms/domain/job"
	"github.com/tmsfleet/tms/domain/track"
)

// Driver is one vehicle with its jobs. Create it with New.
type Driver struct {
	// Records are the command records and job events, in topic order.
	Records []event.Envelope

	plate    string
	rules    job.Rules
	stations map[string]job.Station
	v        job.Vehicle
	now      time.Time // the time of the vehicle's last fix
	at       geo.Point
	wm       time.Time
	seq      int64
	holding  bool
	held     []track.Fix
	open     map[string]string // station id → visit id of the visit in progress
	visits   int
}

// New returns a driver of the vehicle plate, at p at time start, with
// the stations its jobs may name.
func New(plate string, rules job.Rules, stations map[string]job.Station, start time.Time, p geo.Point) *Driver {
	return &Driver{plate: plate, rules: rules, stations: stations, v: job.Vehicle{Plate: plate},
		now: start, at: p, wm: start, open: map[string]string{}}
}

// Now is the vehicle's clock: the time of its last fix.
func (d *Driver) Now() time.Time { return d.now }

// Create asks for a job now (at the vehicle's clock) and returns the
// command. id is the job's id when ref is empty. Each stop is
// "STATION:kind".
func (d *Driver) Create(ref, id string, cargo job.Cargo, stops ...string) (job.Create, error) {
	req := job.CreateRequest{Vehicle: d.plate, ExternalRef: ref, Cargo: cargo}
	for _, s := range stops {
		st, kind, ok := cut(s)
		if !ok {
			return job.Create{}, fmt.Errorf("jobsim: stop %q is not STATION:kind", s)
		}
		req.Stops = append(req.Stops, job.StopRequest{StationID: st, Kind: kind})
	}
	return d.CreateRequest(req, id)
}

// CreateRequest asks for the job req describes now, as Create does.
func (d *Driver) CreateRequest(req job.CreateRequest, id string) (job.Create, error) {
	c, err := job.NewCreate(req, job.Facts{Stations: d.stations, VehicleKnown: true}, d.now, id)
	if err != nil {
		return job.Create{}, err
	}
	e, err := c.Event()
	if err != nil {
		return job.Create{}, err
	}
	d.Records = append(d.Records, e)
	d.rules.Create(&d.v, c)
	d.advance()
	return c, nil
}

// Cancel asks, now, for job id to be cancelled.
func (d *Driver) Cancel(id, reason string) error {
	c, err := job.NewCancel(id, d.plate, reason, d.now)
	if err != nil {
		return err
	}
	e, err := c.Event()
	if err != nil {
		return err
	}
	d.Records = append(d.Records, e)
	d.rules.Cancel(&d.v, c)
	d.advance()
	return nil
}

// Enter has the geofence report, now, that the vehicle entered station,
// with the geofence's flags.
func (d *Driver) Enter(station string, flags ...string) {
	d.visits++
	id := event.ID("jobsim.visit", d.plate, station, strconv.Itoa(d.visits))
	d.open[station] = id
	d.visit(job.Visit{StationID: station, VisitID: id, Flags: flags})
}

// Exit has the geofence report, now, that the vehicle left station.
func (d *Driver) Exit(station string, flags ...string) {
	id := d.open[station]
	delete(d.open, station)
	d.visit(job.Visit{Exit: true, StationID: station, VisitID: id, Flags: flags})
}

func (d *Driver) visit(v job.Visit) {
	v.At, v.Point = d.now, job.Point{Lat: d.at.Lat, Lng: d.at.Lng}
	d.rules.Visit(&d.v, v)
	d.advance()
}

// Drive drives in a straight line to p at kmh, with a fix every every
// (the last one at p).
func (d *Driver) Drive(p geo.Point, kmh float64, every time.Duration) {
	from, start := d.at, d.now
	dur := time.Duration(geo.Haversine(from, p) / (kmh / 3.6) * float64(time.Second))
	n := max(int(math.Ceil(float64(dur)/float64(every))), 1)
	for i := 1; i <= n; i++ {
		f := float64(i) / float64(n)
		d.fix(start.Add(time.Duration(f*float64(dur))), geo.Point{Lat: from.Lat + f*(p.Lat-from.Lat), Lng: from.Lng + f*(p.Lng-from.Lng)}, kmh)
	}
}

// Park stays put for dur, with a fix every every.
func (d *Driver) Park(dur, every time.Duration) {
	for t := every; t <= dur; t += every {
		d.fix(d.now.Add(every), d.at, 0)
	}
}

// Hold holds the fixes taken from now on back, until Release.
func (d *Driver) Hold() { d.holding = true }

// Resume delivers the fixes taken from now on again; those held stay
// held.
func (d *Driver) Resume() { d.holding = false }

// Release delivers the fixes held back, now.
func (d *Driver) Release() {
	d.holding = false
	held := d.held
	d.held = nil
	for _, f := range held {
		d.deliver(f)
	}
	d.advance()
}

// fix is one fix taken at t at p: delivered as it is taken, moving the
// watermark, or held.
func (d *Driver) fix(t time.Time, p geo.Point, kmh float64) {
	d.now, d.at = t.UTC().Truncate(time.Millisecond), p
	f := track.Fix{Time: d.now, Point: p, SpeedKmh: kmh}
	if d.holding {
		d.held = append(d.held, f)
		return
	}
	if d.now.After(d.wm) {
		d.wm = d.now
	}
	d.deliver(f)
	d.advance()
}

// advance brings the vehicle's jobs up to the watermark, as the processor
// does after each input.
func (d *Driver) advance() { d.Records = append(d.Records, d.rules.Advance(&d.v, d.wm)...) }

func (d *Driver) deliver(f track.Fix) {
	d.seq++
	d.Records = append(d.Records, d.rules.Fix(&d.v, f, d.wm, d.seq)...)
}

// cut splits "STATION:kind" at its last colon (station ids may hold
// colons).
func cut(s string) (station, kind string, ok bool) {
	i := strings.LastIndexByte(s, ':')
	if i < 0 {
		return "", "", false
	}
	return s[:i], s[i+1:], true
}
