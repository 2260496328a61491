package job

import (
	"cmp"
	"encoding/json"
	"slices"
	"strconv"
	"time"

	"github.com/tmsfleet/tms/domain/event"
	"github.com/tmsfleet/tms/domain/geo"
	"github.com/tmsfleet/tms/domain/track"
)

// Visit is a geofence entry or exit as a job sees it.
type Visit struct {
	Exit      bool      `json:"exit,omitempty"`
	StationID string    `json:"station"`
	VisitID   string    `json:"visit"`
	At        time.Time `json:"at"`
	Point     Point     `json:"p"`
	Flags     []string  `json:"flags,omitempty"`
}

// Geofence flags that decide what a visit does to a job.
const (
	geofenceLate         = "late"
	geofenceInterpolated = "interpolated"
)

// serves reports whether the visit can serve a stop: a late correction (a
// single fix, after its time was decided) and a crossing inferred between
// two fixes outside (the vehicle drove through without a fix inside, so
// without stopping) cannot.
func (v Visit) serves() bool {
	return !slices.Contains(v.Flags, geofenceLate) && !slices.Contains(v.Flags, geofenceInterpolated)
}

// Fix is a fix kept for jobs' distances: when it was taken, where, at
// what reported speed, the event-time watermark when it arrived, and its
// place in the input (the partition offset). The last two decide which
// fixes a completion counts and in which order late ones amend it.
type Fix struct {
	Time     time.Time
	Point    geo.Point
	SpeedKmh float64
	Arrived  time.Time
	Seq      int64
}

// fixJSON is a Fix as snapshots carry it: an array, for size.
type fixJSON [6]float64

// MarshalJSON encodes a fix as [time ms, lat, lng, speed, arrived ms, seq].
func (f Fix) MarshalJSON() ([]byte, error) {
	return json.Marshal(fixJSON{float64(f.Time.UnixMilli()), f.Point.Lat, f.Point.Lng, f.SpeedKmh,
		float64(f.Arrived.UnixMilli()), float64(f.Seq)})
}

// UnmarshalJSON decodes what MarshalJSON encodes.
func (f *Fix) UnmarshalJSON(b []byte) error {
	var a fixJSON
	if err := json.Unmarshal(b, &a); err != nil {
		return err
	}
	*f = Fix{Time: time.UnixMilli(int64(a[0])).UTC(), Point: geo.Point{Lat: a[1], Lng: a[2]}, SpeedKmh: a[3],
		Arrived: time.UnixMilli(int64(a[4])).UTC(), Seq: int64(a[5])}
	return nil
}

// Job is one job of a vehicle and how far it has come.
type Job struct {
	Create Create `json:"create"`
	Status string `json:"status"`
	// StartedAt is set once the job is the vehicle's active one.
	StartedAt *time.Time     `json:"started_at,omitempty"`
	Stops     []StopProgress `json:"stops"`
	// EndedAt is the last departure, once every stop has departed.
	EndedAt *time.Time `json:"ended_at,omitempty"`
	// Published is the last completion published (nil before the first).
	Published *Completion `json:"published,omitempty"`
	// From and Until bound the fixes the published completion measured:
	// only a fix arriving between them can change it.
	From  time.Time `json:"from,omitzero"`
	Until time.Time `json:"until,omitzero"`
	// LateFrom is when the first late fix not yet in an amendment
	// arrived (the watermark then); zero when there is none.
	LateFrom time.Time `json:"late_from,omitzero"`
}

// Vehicle is one vehicle's jobs and what they need to be decided: the
// entries and exits of the last while, for a job that starts after them,
// and, while the vehicle has jobs, its fixes, for their distances. It is
// plain data, persisted between inputs (in the processor's snapshots).
type Vehicle struct {
	Plate string `json:"plate"`
	// Jobs are the vehicle's jobs not yet let go, in creation order.
	Jobs []*Job `json:"jobs,omitempty"`
	// Visits are the entries and exits remembered, in time order.
	Visits []Visit `json:"visits,omitempty"`
	// Fixes are kept while the vehicle has jobs, in time order.
	Fixes []Fix `json:"fixes,omitempty"`
	// Last is the vehicle's latest fix, which starts a new job's track.
	Last *Fix `json:"last,omitempty"`
	// Pending are the inputs not applied yet, in the order they will be.
	Pending []Input `json:"pending,omitempty"`
}

// HasJobs reports whether the vehicle has jobs to decide or amend, or
// commands waiting; one without may be forgotten and made again from
// nothing.
func (v *Vehicle) HasJobs() bool {
	return len(v.Jobs) > 0 || slices.ContainsFunc(v.Pending, Input.isCommand)
}

// Input is a command or a visit waiting to be applied: a vehicle's inputs
// are applied in event-time order, once the watermark has passed them by
// the decision delay, whatever order they arrived in (see Rules).
type Input struct {
	Create *Create `json:"create,omitempty"`
	Cancel *Cancel `json:"cancel,omitempty"`
	Visit  *Visit  `json:"visit,omitempty"`
}

func (in Input) isCommand() bool { return in.Create != nil || in.Cancel != nil }

// at is the input's event time.
func (in Input) at() time.Time {
	switch {
	case in.Create != nil:
		return in.Create.RequestedAt
	case in.Cancel != nil:
		return in.Cancel.RequestedAt
	}
	return in.Visit.At
}

// compare orders inputs by time, then a creation before a visit before a
// cancellation of the same moment (a departure at the moment of a
// cancellation came first), then by what they are about: an order that
// depends on nothing but the inputs themselves.
func (in Input) compare(o Input) int {
	rank := func(i Input) int {
		switch {
		case i.Create != nil:
			return 0
		case i.Visit != nil:
			return 1
		}
		return 2
	}
	key := func(i Input) string {
		switch {
		case i.Create != nil:
			return i.Create.JobID
		case i.Cancel != nil:
			return i.Cancel.JobID
		case i.Visit.Exit:
			return i.Visit.VisitID + "/exit"
		}
		return i.Visit.VisitID
	}
	return cmp.Or(in.at().Compare(o.at()), cmp.Compare(rank(in), rank(o)), cmp.Compare(key(in), key(o)))
}

// Create takes a create command, to apply in its turn (see Advance): the
// job is then queued behind the vehicle's other jobs, or starts at once.
// From now on the vehicle's fixes are kept, starting with its latest.
func (r Rules) Create(v *Vehicle, c Create) {
	if !v.HasJobs() {
		v.Fixes = v.Fixes[:0]
		if v.Last != nil {
			v.Fixes = append(v.Fixes, *v.Last)
		}
	}
	v.take(Input{Create: &c})
}

// Cancel takes a cancel command, to apply in its turn.
func (r Rules) Cancel(v *Vehicle, c Cancel) { v.take(Input{Cancel: &c}) }

// Visit takes an entry or exit of the vehicle, to apply in its turn. A
// vehicle without jobs remembers it at once: there is nothing it could
// be applied out of order with, and so nothing waits in memory for the
// watermark.
func (r Rules) Visit(v *Vehicle, vis Visit) {
	if !v.HasJobs() {
		v.Visits = append(v.Visits, vis)
		r.forgetVisits(v, vis.At)
		return
	}
	v.take(Input{Visit: &vis})
}

func (v *Vehicle) take(in Input) {
	i, _ := slices.BinarySearchFunc(v.Pending, in, Input.compare)
	v.Pending = slices.Insert(v.Pending, i, in)
}

// apply applies one input, in event-time order.
func (r Rules) apply(v *Vehicle, in Input, out []event.Envelope) []event.Envelope {
	switch {
	case in.Create != nil:
		return r.create(v, *in.Create, out)
	case in.Cancel != nil:
		return r.cancel(v, *in.Cancel, out)
	}
	vis := *in.Visit
	v.Visits = append(v.Visits, vis)
	r.forgetVisits(v, vis.At)
	if j := v.active(); j != nil {
		out = r.serve(v, j, vis, out)
	}
	return out
}

// create queues a job behind the vehicle's other jobs (it starts when they
// have ended; see Advance) and returns its created event. A job already
// known is a repeat and changes nothing.
func (r Rules) create(v *Vehicle, c Create, out []event.Envelope) []event.Envelope {
	if v.job(c.JobID) != nil {
		return out
	}
	j := &Job{Create: c, Status: StatusQueued, Stops: make([]StopProgress, len(c.Stops))}
	for i, s := range c.Stops {
		j.Stops[i] = StopProgress{Index: i, PlannedStop: s, Status: StopPending, Flags: []string{}}
	}
	v.Jobs = append(v.Jobs, j)
	status := StatusQueued
	if r.startable(v, j) {
		status = StatusActive
	}
	return append(out, newEvent(event.TypeJobCreated, v.Plate, c.RequestedAt, Created{
		JobID: c.JobID, Vehicle: v.Plate, ExternalRef: c.ExternalRef, Status: status, Cargo: c.Cargo,
		Stops: cloneStops(j.Stops), CreatedAt: c.RequestedAt,
	}, c.JobID))
}

// cancel cancels a job at the command's time X. A queued job is cancelled.
// So is an active one, unless every stop had departed by X: then its
// completion stands. A completed or unknown job is not changed.
func (r Rules) cancel(v *Vehicle, c Cancel, out []event.Envelope) []event.Envelope {
	j := v.job(c.JobID)
	if j == nil || j.Status == StatusCompleted || j.Status == StatusCancelled {
		return out
	}
	if j.EndedAt != nil && !c.RequestedAt.Before(*j.EndedAt) {
		return out // done before it was cancelled
	}
	was := j.Status
	j.Status = StatusCancelled
	ended := c.RequestedAt
	j.EndedAt = &ended
	return append(out, newEvent(event.TypeJobCancelled, v.Plate, c.RequestedAt, Cancelled{
		JobID: j.Create.JobID, Vehicle: v.Plate, ExternalRef: j.Create.ExternalRef, Reason: c.Reason,
		CancelledAt: c.RequestedAt, WasStatus: was, Stops: cloneStops(j.Stops),
	}, j.Create.JobID))
}

// Fix takes a fix of the vehicle, arrived at watermark arrived as input
// number seq. While the vehicle has jobs it is kept for their distances,
// and a fix in the time window of a published completion amends it when
// it changes what billing would charge.
func (r Rules) Fix(v *Vehicle, f track.Fix, arrived time.Time, seq int64) []event.Envelope {
	fx := Fix{Time: ms(f.Time), Point: f.Point, SpeedKmh: f.SpeedKmh, Arrived: ms(arrived), Seq: seq}
	if v.Last == nil || fx.Time.After(v.Last.Time) {
		last := fx
		v.Last = &last
	}
	if !v.HasJobs() {
		return nil
	}
	i, found := slices.BinarySearchFunc(v.Fixes, fx.Time, func(a Fix, t time.Time) int { return a.Time.Compare(t) })
	if found {
		return nil // the same fix again
	}
	v.Fixes = slices.Insert(v.Fixes, i, fx)
	if len(v.Fixes) > r.MaxTrackFixes {
		v.Fixes = slices.Delete(v.Fixes, 0, len(v.Fixes)-r.MaxTrackFixes)
	}
	var out []event.Envelope
	for _, j := range v.Jobs {
		if j.Published != nil && !fx.Time.Before(j.From) && !fx.Time.After(j.Until) && j.LateFrom.IsZero() {
			j.LateFrom = fx.Arrived
		}
		out = r.amendDue(v, j, fx.Arrived, out)
	}
	return out
}

// Advance brings the vehicle's jobs up to the event-time watermark wm:
// a job whose last departure is Settle behind wm is completed, the next
// job starts once the one before it has ended for good, and jobs past
// their amend horizon, with the fixes and visits nothing needs any more,
// are let go.
func (r Rules) Advance(v *Vehicle, wm time.Time) []event.Envelope {
	var out []event.Envelope
	due := wm.Add(-r.DecisionDelay)
	for len(v.Pending) > 0 && !v.Pending[0].at().After(due) {
		in := v.Pending[0]
		v.Pending = slices.Delete(v.Pending, 0, 1)
		// Whatever the input, the jobs before it are settled first: a job
		// that ended long enough before it is complete, and the next one
		// started, before the input is looked at.
		out = r.settle(v, in.at(), out)
		out = r.apply(v, in, out)
	}
	out = r.settle(v, wm, out)
	for _, j := range v.Jobs {
		out = r.amendDue(v, j, wm, out)
	}
	r.letGo(v, wm)
	return out
}

// settle completes the active job once the watermark wm has passed its
// last departure by Settle, and starts the next job once the one before
// it has ended for good.
func (r Rules) settle(v *Vehicle, wm time.Time, out []event.Envelope) []event.Envelope {
	for i := 0; i < len(v.Jobs); i++ {
		j := v.Jobs[i]
		if j.Status == StatusQueued {
			if !r.startable(v, j) {
				break // waits for the job before it
			}
			out = r.start(v, j, out)
		}
		if j.Status == StatusActive {
			if j.EndedAt == nil || wm.Before(j.EndedAt.Add(r.Settle)) {
				break // the vehicle is busy with it
			}
			out = r.complete(v, j, wm, out)
		}
	}
	return out
}

// Deadline is the event time at which Advance next has something to do
// for the vehicle without any other input: an input to apply, a
// completion to settle, or a job to let go. ok is false when nothing
// waits on the watermark.
func (r Rules) Deadline(v *Vehicle) (at time.Time, ok bool) {
	if len(v.Pending) > 0 {
		at, ok = v.Pending[0].at().Add(r.DecisionDelay), true
	}
	for _, j := range v.Jobs {
		var d time.Time
		switch {
		case j.EndedAt == nil:
			continue
		case j.Status == StatusActive:
			d = j.EndedAt.Add(r.Settle)
		case !j.LateFrom.IsZero():
			d = j.LateFrom.Add(r.DecisionDelay)
		default:
			d = j.EndedAt.Add(r.AmendHorizon)
		}
		if !ok || d.Before(at) {
			at, ok = d, true
		}
	}
	return at, ok
}

func (v *Vehicle) job(id string) *Job {
	for _, j := range v.Jobs {
		if j.Create.JobID == id {
			return j
		}
	}
	return nil
}

// active is the vehicle's started, unfinished job, if any.
func (v *Vehicle) active() *Job {
	for _, j := range v.Jobs {
		if j.Status == StatusActive {
			return j
		}
	}
	return nil
}

// startable reports whether queued job j can start: every job created
// before it has ended for good (completed or cancelled).
func (r Rules) startable(v *Vehicle, j *Job) bool {
	for _, o := range v.Jobs {
		if o == j {
			return true
		}
		if o.Status == StatusQueued || o.Status == StatusActive {
			return false
		}
	}
	return false
}

// start makes j the active job, dated when it was created or when the job
// before it ended, whichever is later, and lets the visits remembered
// since then serve it.
func (r Rules) start(v *Vehicle, j *Job, out []event.Envelope) []event.Envelope {
	at := j.Create.RequestedAt
	for _, o := range v.Jobs {
		if o == j {
			break // the jobs before j, in the order they were created
		}
		if o.EndedAt != nil && o.EndedAt.After(at) {
			at = *o.EndedAt
		}
	}
	at = ms(at)
	j.Status, j.StartedAt = StatusActive, &at
	out = append(out, newEvent(event.TypeJobStarted, v.Plate, at, Started{
		JobID: j.Create.JobID, Vehicle: v.Plate, ExternalRef: j.Create.ExternalRef, StartedAt: at,
	}, j.Create.JobID))
	// A visit open when the job starts serves it from the start.
	open := map[string]Visit{}
	for _, vis := range v.Visits {
		if vis.At.After(at) {
			break
		}
		if vis.Exit {
			delete(open, vis.VisitID)
		} else {
			open[vis.VisitID] = vis
		}
	}
	var opened []Visit
	for _, vis := range open {
		opened = append(opened, vis)
	}
	slices.SortFunc(opened, func(a, b Visit) int { return cmp.Or(a.At.Compare(b.At), cmp.Compare(a.VisitID, b.VisitID)) })
	for _, vis := range opened {
		out = r.serve(v, j, vis, out)
	}
	for _, vis := range v.Visits {
		if vis.At.After(at) {
			out = r.serve(v, j, vis, out)
		}
	}
	return out
}

// serve applies one visit to active job j.
func (r Rules) serve(v *Vehicle, j *Job, vis Visit, out []event.Envelope) []event.Envelope {
	if !vis.serves() || j.EndedAt != nil {
		return out
	}
	if vis.Exit {
		for i := range j.Stops {
			s := &j.Stops[i]
			if s.Status != StopArrived || s.VisitID != vis.VisitID {
				continue
			}
			at := ms(vis.At)
			if at.Before(*s.ArrivedAt) {
				// A visit that ended before the job started, applied late:
				// the stop was served from the start, and left at once.
				at = *s.ArrivedAt
			}
			s.Status, s.DepartedAt = StopDeparted, &at
			s.DwellS = floatPtr(round1(at.Sub(*s.ArrivedAt).Seconds()))
			departure := passedOn(vis.Flags)
			s.Flags = appendNew(s.Flags, departure...)
			out = append(out, r.stopEvent(v, j, *s, event.TypeJobStopDeparted, vis.Point))
		}
		r.checkEnded(j)
		return out
	}
	i := r.servable(j, vis.StationID)
	if i < 0 {
		return out
	}
	at, flags := ms(vis.At), passedOn(vis.Flags)
	if at.Before(*j.StartedAt) {
		at, flags = *j.StartedAt, append(flags, FlagInsideAtStart)
	}
	// Consecutive stops at the same station are served by the one visit
	// (a loading and a quality check at the same site).
	for k := i; k < len(j.Stops) && j.Stops[k].StationID == vis.StationID && j.Stops[k].Status == StopPending; k++ {
		if k > i && j.Stops[k].Kind == KindUnloading && !r.eligible(j, k) {
			break
		}
		s := &j.Stops[k]
		arrived := at
		s.Status, s.ArrivedAt, s.VisitID, s.Flags = StopArrived, &arrived, vis.VisitID, slices.Clone(flags)
		out = append(out, r.stopEvent(v, j, *s, event.TypeJobStopArrived, vis.Point))
	}
	return out
}

// servable returns the stop of j a visit to station serves: the first
// eligible pending stop there, or -1.
func (r Rules) servable(j *Job, station string) int {
	for i, s := range j.Stops {
		if s.Status == StopPending && s.StationID == station && r.eligible(j, i) {
			return i
		}
	}
	return -1
}

// eligible reports whether stop i of j can be served now. A loading or
// quality stop waits for every stop before it to have departed: pick-ups
// and checks happen in the planned order. An unloading stop waits only for
// the loading and quality stops before it: the drops after one loading
// are served in whatever order the vehicle reaches them. (Consecutive
// stops at one station are served together by the visit that serves the
// first; see serve.)
func (r Rules) eligible(j *Job, i int) bool {
	unloading := j.Stops[i].Kind == KindUnloading
	for _, s := range j.Stops[:i] {
		if s.Status != StopDeparted && (!unloading || s.Kind != KindUnloading) {
			return false
		}
	}
	return true
}

// checkEnded dates j's end once every stop has departed.
func (r Rules) checkEnded(j *Job) {
	var end time.Time
	for _, s := range j.Stops {
		if s.Status != StopDeparted {
			return
		}
		if s.DepartedAt.After(end) {
			end = *s.DepartedAt
		}
	}
	j.EndedAt = &end
}

func (r Rules) stopEvent(v *Vehicle, j *Job, s StopProgress, typ string, at Point) event.Envelope {
	s.PlannedStop.Point = j.Create.Stops[s.Index].Point
	t := *s.ArrivedAt
	if typ == event.TypeJobStopDeparted {
		t = *s.DepartedAt
	}
	return newEvent(typ, v.Plate, t, StopEvent{
		JobID: j.Create.JobID, Vehicle: v.Plate, ExternalRef: j.Create.ExternalRef,
		StopProgress: s, At: Point{Lat: round7(at.Lat), Lng: round7(at.Lng)},
	}, j.Create.JobID, strconv.Itoa(s.Index))
}

// complete publishes j's first completion, counting the fixes that
// arrived before it settled, then the amendments its window's fixes that
// arrived later make (possible when the last exit came late).
func (r Rules) complete(v *Vehicle, j *Job, wm time.Time, out []event.Envelope) []event.Envelope {
	settled := j.EndedAt.Add(r.Settle)
	c := r.completion(v, j, func(f Fix) bool { return f.Arrived.Before(settled) })
	c.Revision = 1
	j.Status, j.Published = StatusCompleted, &c.Completion
	j.From, j.Until = c.from, c.until
	out = append(out, newEvent(event.TypeJobCompleted, v.Plate, c.CompletedAt, c.Completion, j.Create.JobID, strconv.Itoa(1)))
	j.LateFrom = r.nextLate(v, j, settled)
	return r.amendDue(v, j, wm, out)
}

// nextLate is when the first fix of j's window that arrived at or after
// since arrived, or zero.
func (r Rules) nextLate(v *Vehicle, j *Job, since time.Time) time.Time {
	var first time.Time
	for _, f := range v.Fixes {
		if !f.Arrived.Before(since) && !f.Time.Before(j.From) && !f.Time.After(j.Until) && (first.IsZero() || f.Arrived.Before(first)) {
			first = f.Arrived
		}
	}
	return first
}

// amendDue publishes the amendments of j that are due at watermark wm.
// Late fixes are gathered: those that arrived within the decision delay
// of the first make one amendment, published once the watermark has
// passed that delay, so that a device that sends a buffered hour at once
// makes one revision, not one for each fix. What an amendment holds
// depends only on when its fixes arrived, never on when it is published.
func (r Rules) amendDue(v *Vehicle, j *Job, wm time.Time, out []event.Envelope) []event.Envelope {
	for j.Published != nil && !j.LateFrom.IsZero() && !wm.Before(j.LateFrom.Add(r.DecisionDelay)) {
		cutoff := j.LateFrom.Add(r.DecisionDelay)
		out = r.amend(v, j, cutoff, out)
		j.LateFrom = r.nextLate(v, j, cutoff)
	}
	return out
}

// amend publishes the next revision of j's completion if the fixes that
// arrived before cutoff change it.
func (r Rules) amend(v *Vehicle, j *Job, cutoff time.Time, out []event.Envelope) []event.Envelope {
	c := r.completion(v, j, func(f Fix) bool { return f.Arrived.Before(cutoff) })
	j.From, j.Until = c.from, c.until
	if sameFacts(c.Completion, *j.Published) {
		return out
	}
	c.Revision, c.AmendedBecause = j.Published.Revision+1, AmendedLateFixes
	j.Published = &c.Completion
	return append(out, newEvent(event.TypeJobAmended, v.Plate, c.CompletedAt, c.Completion, j.Create.JobID, strconv.Itoa(c.Revision)))
}

// measured is a completion with the times of the first and last fixes it
// measured.
type measured struct {
	Completion
	from, until time.Time
}

// completion computes j's completion from the fixes kept that count.
func (r Rules) completion(v *Vehicle, j *Job, counts func(Fix) bool) measured {
	start, end := *j.StartedAt, *j.EndedAt
	// The window's fixes, and the one before and after it, so that the
	// distance at its ends is interpolated between real fixes.
	var fixes []track.Fix
	var before, after *Fix
	for i := range v.Fixes {
		f := &v.Fixes[i]
		if !counts(*f) {
			continue
		}
		switch {
		case f.Time.Before(start):
			before = f
		case f.Time.After(end):
			if after == nil {
				after = f
			}
		default:
			fixes = append(fixes, track.Fix{Time: f.Time, Point: f.Point, SpeedKmh: f.SpeedKmh})
		}
	}
	if before != nil {
		fixes = append([]track.Fix{{Time: before.Time, Point: before.Point, SpeedKmh: before.SpeedKmh}}, fixes...)
	}
	if after != nil {
		fixes = append(fixes, track.Fix{Time: after.Time, Point: after.Point, SpeedKmh: after.SpeedKmh})
	}
	path := r.Filter.Measure(fixes)
	m := measured{from: start, until: end}
	if before != nil {
		m.from = before.Time
	}
	if after != nil {
		m.until = after.Time
	}
	firstLoading := end
	for _, s := range j.Stops {
		if s.Kind == KindLoading && s.ArrivedAt != nil && s.ArrivedAt.Before(firstLoading) {
			firstLoading = *s.ArrivedAt
		}
	}
	empty, loaded := round1(path.Between(start, firstLoading)), round1(path.Between(firstLoading, end))
	c := &m.Completion
	*c = Completion{
		JobID: j.Create.JobID, Vehicle: v.Plate, ExternalRef: j.Create.ExternalRef,
		StartedAt: start, CompletedAt: end, DurationS: round1(end.Sub(start).Seconds()),
		Stops: cloneStops(j.Stops), Cargo: j.Create.Cargo, Legs: []Leg{},
		DistanceM: Distances{Empty: empty, Loaded: loaded, Total: round1(empty + loaded)},
		Noise: track.Noise{FixesUsed: path.Noise.FixesUsed, FixesDropped: path.Noise.FixesDropped,
			DistanceDroppedM: round1(path.Noise.DistanceDroppedM)},
	}
	from := -1
	for i, s := range j.Stops {
		switch s.Kind {
		case KindLoading:
			from = i
		case KindUnloading:
			if from < 0 {
				continue
			}
			l := j.Stops[from]
			c.Legs = append(c.Legs, Leg{
				FromStop: from, ToStop: i, FromStationID: l.StationID, ToStationID: s.StationID,
				StraightLineM: round1(geo.Haversine(l.Point.geo(), s.Point.geo())),
				DrivenM:       round1(path.Between(*l.DepartedAt, *s.ArrivedAt)),
			})
		}
	}
	return m
}

// sameFacts reports whether two completions charge the same: equal in
// everything but their revision.
func sameFacts(a, b Completion) bool {
	a.Revision, b.Revision = 0, 0
	a.AmendedBecause, b.AmendedBecause = "", ""
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return string(ja) == string(jb)
}

// letGo drops the jobs past their amend horizon (and cancelled ones),
// then the fixes no job needs and the visits no job can use.
func (r Rules) letGo(v *Vehicle, wm time.Time) {
	v.Jobs = slices.DeleteFunc(v.Jobs, func(j *Job) bool {
		return j.Status == StatusCancelled && !r.holdsBack(v, j) ||
			j.Status == StatusCompleted && !wm.Before(j.EndedAt.Add(r.AmendHorizon))
	})
	if !v.HasJobs() {
		v.Fixes = nil
		return
	}
	// The earliest time a job, or a job still to be created, measures
	// from.
	keep := time.Time{}
	earliest := func(t time.Time) {
		if keep.IsZero() || t.Before(keep) {
			keep = t
		}
	}
	for _, j := range v.Jobs {
		if j.StartedAt != nil {
			earliest(*j.StartedAt)
		} else {
			earliest(j.Create.RequestedAt)
		}
	}
	for _, in := range v.Pending {
		if in.Create != nil {
			earliest(in.Create.RequestedAt)
		}
	}
	// One fix before it, to interpolate from.
	i, _ := slices.BinarySearchFunc(v.Fixes, keep, func(a Fix, t time.Time) int { return a.Time.Compare(t) })
	if i > 1 {
		v.Fixes = slices.Delete(v.Fixes, 0, i-1)
	}
}

// holdsBack reports whether cancelled job j is still needed to date the
// start of a job after it.
func (r Rules) holdsBack(v *Vehicle, j *Job) bool {
	after := false
	for _, o := range v.Jobs {
		if o == j {
			after = true
			continue
		}
		if after && o.Status == StatusQueued {
			return true
		}
	}
	return false
}

// forgetVisits keeps the visits that a job starting now could still use:
// those of the last History before now, those still open, and at most
// MaxVisits.
func (r Rules) forgetVisits(v *Vehicle, now time.Time) {
	exited := map[string]bool{}
	for _, vis := range v.Visits {
		if vis.Exit {
			exited[vis.VisitID] = true
		}
	}
	horizon := now.Add(-r.History)
	v.Visits = slices.DeleteFunc(v.Visits, func(vis Visit) bool {
		return vis.At.Before(horizon) && (vis.Exit || exited[vis.VisitID])
	})
	if n := len(v.Visits) - r.MaxVisits; n > 0 {
		v.Visits = slices.Delete(v.Visits, 0, n)
	}
}

// passedOn are the geofence flags a stop's arrival or departure carries.
func passedOn(flags []string) []string {
	out := []string{}
	for _, f := range flags {
		if f != geofenceLate && f != geofenceInterpolated {
			out = append(out, f)
		}
	}
	return out
}

func appendNew(list []string, more ...string) []string {
	for _, m := range more {
		if !slices.Contains(list, m) {
			list = append(list, m)
		}
	}
	return list
}

func cloneStops(s []StopProgress) []StopProgress {
	out := slices.Clone(s)
	for i := range out {
		out[i].Flags = slices.Clone(out[i].Flags)
		if out[i].Flags == nil {
			out[i].Flags = []string{}
		}
	}
	return out
}
