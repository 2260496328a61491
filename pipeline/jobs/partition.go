package jobs

import (
	"cmp"
	"container/list"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	gojson "github.com/goccy/go-json"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tmsfleet/tms/domain/event"
	"github.com/tmsfleet/tms/domain/geo"
	"github.com/tmsfleet/tms/domain/geofence"
	"github.com/tmsfleet/tms/domain/job"
	"github.com/tmsfleet/tms/domain/position"
	"github.com/tmsfleet/tms/domain/track"
)

// The processor's inputs, in the order a step takes them.
const (
	inJobs = iota
	inGeofence
	inPositions
	numInputs
)

// step is one batch of a partition's inputs as the processor took it: how
// far it read each input, the geofence's progress it went by, and the
// watermark it applied inputs and settled jobs at. Steps are logged in the
// state topic in the transactions that took them, so that a takeover
// replays exactly the steps its predecessor took (see doc.go).
type step struct {
	N       int64            `json:"n"`
	Next    [numInputs]int64 `json:"next"`
	Barrier int64            `json:"barrier"`
	Applied int64            `json:"applied"` // the applied watermark, Unix ms
}

// mark is a position beyond the geofence's progress: its offset and the
// positions watermark once it was read.
type mark struct {
	Offset int64 `json:"o"`
	WM     int64 `json:"w"`
}

// entry is a vehicle of a partition, and its place among the idle ones.
type entry struct {
	v    *job.Vehicle
	idle *list.Element // nil while the vehicle has jobs or inputs waiting
}

// partitionState is everything the processor keeps for one partition.
type partitionState struct {
	rules    job.Rules
	capacity int // idle vehicles held at most
	vehicles map[string]*entry
	idle     *list.List // of *entry, least recently seen first
	// waiting are the vehicles with something due at a watermark.
	waiting map[string]bool
	// positions is the watermark of the positions read: the newest fix
	// time, each capped at its receive time.
	positions time.Time
	// applied is the watermark inputs are applied at: positions's as of
	// the last position the geofence has decided.
	applied time.Time
	ahead   []mark
	// barrier is the geofence's progress the last step went by.
	barrier int64
	next    [numInputs]int64
	steps   int64
	// stepsSince are the steps logged since the last snapshot, whose log
	// records the next snapshot removes.
	stepsSince    []int64
	sinceSnapshot int
	snapshotAt    time.Time
}

func newPartitionState(rules job.Rules, capacity int) *partitionState {
	return &partitionState{rules: rules, capacity: max(capacity, 1), vehicles: map[string]*entry{},
		idle: list.New(), waiting: map[string]bool{}}
}

// outputs collects what a step emits.
type outputs struct {
	events      []event.Envelope
	deadLetters []*kgo.Record // inputs that cannot be read, as they came
	late        int           // inputs taken after their time was due
	forgotten   int           // idle vehicles forgotten to stay in bounds
}

// take runs one step over records (per input, in offset order) with the
// geofence's progress barrier (the offset of the first position it has
// not decided), puts what it emits in out, and returns the step as it is
// logged. Replaying the logged steps over the same records arrives at the
// same state: the step depends on nothing else.
//
// quiet, when not zero, is the time the step was taken, for a partition
// whose inputs have all been read and decided (see Processor.quiet): no
// input can come with an earlier time than a new one, so the applied
// watermark may stand at the clock. It moves nothing but when inputs are
// applied and jobs settle, never what they make.
func (ps *partitionState) take(records [numInputs][]*kgo.Record, barrier int64, quiet time.Time, out *outputs) step {
	touched := map[string]bool{}
	for _, r := range records[inJobs] {
		if !r.Attrs.IsControl() {
			ps.takeCommand(r, touched, out)
		}
	}
	for _, r := range records[inGeofence] {
		if !r.Attrs.IsControl() {
			ps.takeVisit(r, touched, out)
		}
	}
	for _, r := range records[inPositions] {
		if !r.Attrs.IsControl() {
			ps.takePosition(r, touched, out)
		}
	}
	for i, rs := range records {
		if n := len(rs); n > 0 {
			ps.next[i] = rs[n-1].Offset + 1
		}
	}
	ps.advanceApplied(barrier)
	ps.barrier = barrier
	if quiet.After(ps.applied) {
		ps.applied = quiet.UTC().Truncate(time.Millisecond)
	}
	ps.advance(touched, out)
	ps.steps++
	ps.sinceSnapshot += len(records[inJobs]) + len(records[inGeofence]) + len(records[inPositions])
	return step{N: ps.steps, Next: ps.next, Barrier: barrier, Applied: ps.applied.UnixMilli()}
}

// vehicle returns plate's vehicle, made if new (forgetting the idle
// vehicle seen least recently when there are too many), and notes it was
// seen.
func (ps *partitionState) vehicle(plate string, touched map[string]bool, out *outputs) *entry {
	e := ps.vehicles[plate]
	if e == nil {
		for ps.idle.Len() >= ps.capacity {
			old := ps.idle.Remove(ps.idle.Front()).(*entry)
			delete(ps.vehicles, old.v.Plate)
			delete(ps.waiting, old.v.Plate)
			out.forgotten++
		}
		e = &entry{v: &job.Vehicle{Plate: plate}}
		ps.vehicles[plate] = e
		e.idle = ps.idle.PushBack(e)
	} else if e.idle != nil {
		ps.idle.MoveToBack(e.idle)
	}
	touched[plate] = true
	return e
}

func (ps *partitionState) takeCommand(r *kgo.Record, touched map[string]bool, out *outputs) {
	e, err := event.Decode(r.Value)
	if err != nil {
		out.deadLetters = append(out.deadLetters, r)
		return
	}
	in, err := job.DecodeInput(e)
	if err != nil {
		out.deadLetters = append(out.deadLetters, r)
		return
	}
	switch {
	case in.Create != nil:
		v := ps.vehicle(in.Create.Vehicle, touched, out).v
		ps.noteLate(in.Create.RequestedAt, out)
		ps.rules.Create(v, *in.Create)
	case in.Cancel != nil:
		v := ps.vehicle(in.Cancel.Vehicle, touched, out).v
		ps.noteLate(in.Cancel.RequestedAt, out)
		ps.rules.Cancel(v, *in.Cancel)
	}
}

func (ps *partitionState) takeVisit(r *kgo.Record, touched map[string]bool, out *outputs) {
	e, err := event.Decode(r.Value)
	if err != nil {
		out.deadLetters = append(out.deadLetters, r)
		return
	}
	if e.Type != event.TypeEnteredStation && e.Type != event.TypeExitedStation {
		return // alerts: the entries carry the same visits
	}
	var d geofence.Visit
	if err := gojson.Unmarshal(e.Data, &d); err != nil || d.Vehicle == "" || d.VisitID == "" {
		out.deadLetters = append(out.deadLetters, r)
		return
	}
	v := ps.vehicle(d.Vehicle, touched, out).v
	ps.noteLate(d.FixTime, out)
	ps.rules.Visit(v, job.Visit{Exit: e.Type == event.TypeExitedStation, StationID: d.StationID, VisitID: d.VisitID,
		At: d.FixTime.UTC(), Point: job.Point{Lat: d.Lat, Lng: d.Lng}, Flags: d.Flags})
}

func (ps *partitionState) takePosition(r *kgo.Record, touched map[string]bool, out *outputs) {
	p, _, ok, err := position.DecodeEvent(r.Value)
	switch {
	case err != nil:
		out.deadLetters = append(out.deadLetters, r)
		return
	case !ok:
		return
	}
	// A device whose clock runs ahead cannot push the watermark past the
	// time the fix was received.
	capped := p.FixTime
	if !p.ReceivedAt.IsZero() && p.ReceivedAt.Before(capped) {
		capped = p.ReceivedAt
	}
	if capped.After(ps.positions) {
		ps.positions = capped
		ps.ahead = append(ps.ahead, mark{Offset: r.Offset, WM: capped.UnixMilli()})
	}
	e := ps.vehicle(p.Plate, touched, out)
	out.events = append(out.events, ps.rules.Fix(e.v, track.Fix{Time: p.FixTime, Point: geo.Point{Lat: p.Lat, Lng: p.Lng},
		SpeedKmh: p.SpeedKmh}, ps.positions, r.Offset)...)
}

// noteLate counts an input taken after the applied watermark had passed
// its time by the decision delay: it is applied out of its event-time
// order.
func (ps *partitionState) noteLate(at time.Time, out *outputs) {
	if at.Add(ps.rules.DecisionDelay).Before(ps.applied) {
		out.late++
	}
}

// effectiveBarrier is the barrier a step goes by: the geofence's progress
// in the latest reading whose visits the partition has read (its
// tms.geofence offset has reached where that topic ended), and never
// less than before.
func (ps *partitionState) effectiveBarrier(seen []progress) int64 {
	b := ps.barrier
	for _, pr := range seen {
		if pr.Written <= ps.next[inGeofence] && pr.Decided > b {
			b = pr.Decided
		}
	}
	return b
}

// nextDeadline is the earliest time a vehicle of the partition waits for,
// or zero.
func (ps *partitionState) nextDeadline() time.Time {
	var next time.Time
	for plate := range ps.waiting {
		if e := ps.vehicles[plate]; e != nil {
			if at, ok := ps.rules.Deadline(e.v); ok && (next.IsZero() || at.Before(next)) {
				next = at
			}
		}
	}
	return next
}

// advanceApplied moves the applied watermark to the positions watermark as
// of the last position before barrier.
func (ps *partitionState) advanceApplied(barrier int64) {
	i := 0
	for i < len(ps.ahead) && ps.ahead[i].Offset < barrier {
		ps.applied = time.UnixMilli(ps.ahead[i].WM).UTC()
		i++
	}
	ps.ahead = slices.Delete(ps.ahead, 0, i)
}

// advance applies the inputs due and settles the jobs of the vehicles
// touched and those waiting on the watermark, in plate order.
func (ps *partitionState) advance(touched map[string]bool, out *outputs) {
	var plates []string
	for p := range touched {
		plates = append(plates, p)
	}
	for p := range ps.waiting {
		if !touched[p] {
			plates = append(plates, p)
		}
	}
	slices.Sort(plates)
	for _, plate := range plates {
		e := ps.vehicles[plate]
		if e == nil {
			continue
		}
		if at, ok := ps.rules.Deadline(e.v); ok && at.After(ps.applied) && !touched[plate] {
			continue
		}
		out.events = append(out.events, ps.rules.Advance(e.v, ps.applied)...)
		ps.file(e)
	}
}

// file puts a vehicle where it belongs after a change: waiting on the
// watermark if something is due at one, among the idle ones (which may be
// forgotten) if it has no jobs and nothing waits.
func (ps *partitionState) file(e *entry) {
	_, waits := ps.rules.Deadline(e.v)
	if waits {
		ps.waiting[e.v.Plate] = true
	} else {
		delete(ps.waiting, e.v.Plate)
	}
	switch idle := !waits && !e.v.HasJobs(); {
	case idle && e.idle == nil:
		e.idle = ps.idle.PushBack(e)
	case !idle && e.idle != nil:
		ps.idle.Remove(e.idle)
		e.idle = nil
	}
}

// snapshotMeta is what a snapshot is consistent with.
type snapshotMeta struct {
	Step      int64            `json:"step"`
	Next      [numInputs]int64 `json:"next"`
	Positions int64            `json:"positions"`
	Applied   int64            `json:"applied"`
	Barrier   int64            `json:"barrier"`
	Ahead     []mark           `json:"ahead,omitempty"`
}

// snapshotItem is a vehicle in a snapshot, with its place among the idle
// ones (-1 when it is not idle).
type snapshotItem struct {
	Vehicle *job.Vehicle `json:"v"`
	Idle    int          `json:"idle"`
}

// snapshot encodes the partition's state as snapshot meta and items.
func (ps *partitionState) snapshot() (snapshotMeta, [][]byte, error) {
	rank := map[*entry]int{}
	i := 0
	for el := ps.idle.Front(); el != nil; el = el.Next() {
		rank[el.Value.(*entry)] = i
		i++
	}
	plates := make([]string, 0, len(ps.vehicles))
	for p := range ps.vehicles {
		plates = append(plates, p)
	}
	slices.Sort(plates)
	items := make([][]byte, 0, len(plates))
	for _, p := range plates {
		e := ps.vehicles[p]
		r, ok := rank[e]
		if !ok {
			r = -1
		}
		b, err := gojson.Marshal(snapshotItem{Vehicle: e.v, Idle: r})
		if err != nil {
			return snapshotMeta{}, nil, fmt.Errorf("encode vehicle %s: %w", p, err)
		}
		items = append(items, b)
	}
	return snapshotMeta{Step: ps.steps, Next: ps.next, Positions: ps.positions.UnixMilli(),
		Applied: ps.applied.UnixMilli(), Ahead: ps.ahead}, items, nil
}

// restoreSnapshot rebuilds the state a snapshot recorded.
func (ps *partitionState) restoreSnapshot(metaJSON json.RawMessage, items []json.RawMessage) error {
	var meta snapshotMeta
	if err := gojson.Unmarshal(metaJSON, &meta); err != nil {
		return fmt.Errorf("snapshot meta: %w", err)
	}
	type ranked struct {
		e    *entry
		rank int
	}
	var idle []ranked
	for _, raw := range items {
		var it snapshotItem
		if err := gojson.Unmarshal(raw, &it); err != nil || it.Vehicle == nil {
			return fmt.Errorf("snapshot vehicle: %v", err)
		}
		e := &entry{v: it.Vehicle}
		ps.vehicles[it.Vehicle.Plate] = e
		if _, ok := ps.rules.Deadline(e.v); ok {
			ps.waiting[e.v.Plate] = true
		}
		if it.Idle >= 0 {
			idle = append(idle, ranked{e, it.Idle})
		}
	}
	slices.SortFunc(idle, func(a, b ranked) int { return cmp.Compare(a.rank, b.rank) })
	for _, r := range idle {
		r.e.idle = ps.idle.PushBack(r.e)
	}
	ps.steps, ps.next, ps.ahead, ps.barrier = meta.Step, meta.Next, meta.Ahead, meta.Barrier
	ps.positions = time.UnixMilli(meta.Positions).UTC()
	ps.applied = time.UnixMilli(meta.Applied).UTC()
	return nil
}
