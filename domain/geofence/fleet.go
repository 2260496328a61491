package geofence

import (
	"cmp"
	"slices"
)

// FlagForgotten marks the exit that ends a visit because the vehicle was
// forgotten (see Fleet): dated at the vehicle's last fix inside, the last
// time it was known to be there.
const FlagForgotten = "forgotten"

// Fleet holds the vehicles one tracker decides for (the processor keeps
// one per partition), at most a fixed number of them.
//
// Every plate in the feed becomes a vehicle, and anyone who can publish
// to the MQTT broker can invent plates: without a bound, a flood of them
// would grow memory until the process dies. When a new vehicle would take
// the fleet past its capacity, the fleet first forgets the vehicle that
// reported least recently, one without an open visit if there is any.
// Forgetting a vehicle decides the fixes still in its reorder window, then
// ends each of its open visits with an exit flagged forgotten; if it
// reports again, it is a vehicle seen for the first time.
//
// "Least recently" is by the sequence number of each vehicle's latest fix
// in the input (the partition offset), not by any clock: the same input
// forgets the same vehicles at the same points, so a replay, or a
// takeover restoring a snapshot, decides exactly as the first run did.
// Each fix costs the fleet O(1): vehicles are kept in two lists by
// recency, those with an open visit and those without.
//
// A Fleet is not safe for concurrent use.
type Fleet struct {
	vehicles map[string]*Vehicle
	capacity int
	// outside and inside order the vehicles without and with an open
	// visit, least recent first.
	outside, inside recency
	// unordered says vehicles were restored and the lists are not built.
	unordered bool
}

// recency is a list of vehicles, least recent first, linked through the
// vehicles themselves (no allocation per fix).
type recency struct{ head, tail *Vehicle }

func (l *recency) push(v *Vehicle) {
	v.prev, v.next, v.list = l.tail, nil, l
	if l.tail != nil {
		l.tail.next = v
	} else {
		l.head = v
	}
	l.tail = v
}

func (l *recency) remove(v *Vehicle) {
	if v.prev != nil {
		v.prev.next = v.next
	} else {
		l.head = v.next
	}
	if v.next != nil {
		v.next.prev = v.prev
	} else {
		l.tail = v.prev
	}
	v.prev, v.next, v.list = nil, nil, nil
}

// NewFleet returns an empty fleet holding at most capacity vehicles
// (at least 1).
func NewFleet(capacity int) *Fleet {
	return &Fleet{vehicles: map[string]*Vehicle{}, capacity: max(capacity, 1)}
}

// Len is the number of vehicles held.
func (fl *Fleet) Len() int { return len(fl.vehicles) }

// Capacity is the most vehicles the fleet holds.
func (fl *Fleet) Capacity() int { return fl.capacity }

// Restore puts a vehicle back as a snapshot recorded it. Vehicles past the
// capacity (from a snapshot taken with a larger one) are forgotten at the
// next new vehicle.
func (fl *Fleet) Restore(s VehicleState) {
	fl.vehicles[s.Plate] = NewVehicle(s)
	fl.unordered = true
}

// Each calls f for every vehicle held, in no particular order.
func (fl *Fleet) Each(f func(*Vehicle)) {
	for _, v := range fl.vehicles {
		f(v)
	}
}

// Observe gives the fix f of plate, at sequence number seq in the input
// (greater than every earlier one), to t, making room for a new vehicle
// first. It appends to out the transitions of the vehicles forgotten to
// make room, then those of the fix, and returns out and how many vehicles
// were forgotten.
func (fl *Fleet) Observe(t *Tracker, plate string, f Fix, seq int64, out []Transition) ([]Transition, int) {
	if fl.unordered {
		fl.order()
	}
	forgotten := 0
	v := fl.vehicles[plate]
	if v == nil {
		for len(fl.vehicles) >= fl.capacity {
			out = fl.forgetOne(t, out)
			forgotten++
		}
		v = NewVehicle(VehicleState{Plate: plate})
		fl.vehicles[plate] = v
	} else {
		v.list.remove(v)
	}
	v.State.Seq = seq
	out = t.Observe(v, f, out)
	fl.file(v)
	return out, forgotten
}

// file appends v to the list it belongs in now: it is the most recent.
func (fl *Fleet) file(v *Vehicle) {
	if v.State.insideAny() {
		fl.inside.push(v)
	} else {
		fl.outside.push(v)
	}
}

// forgetOne forgets the least recent vehicle, one outside if any.
func (fl *Fleet) forgetOne(t *Tracker, out []Transition) []Transition {
	v := fl.outside.head
	if v == nil {
		v = fl.inside.head
	}
	v.list.remove(v)
	delete(fl.vehicles, v.State.Plate)
	return t.Forget(v, out)
}

// order builds the recency lists of restored vehicles from their
// sequence numbers (plates break ties, from snapshots older than Seq).
func (fl *Fleet) order() {
	all := make([]*Vehicle, 0, len(fl.vehicles))
	for _, v := range fl.vehicles {
		all = append(all, v)
	}
	slices.SortFunc(all, func(a, b *Vehicle) int {
		return cmp.Or(cmp.Compare(a.State.Seq, b.State.Seq), cmp.Compare(a.State.Plate, b.State.Plate))
	})
	fl.outside, fl.inside = recency{}, recency{}
	for _, v := range all {
		fl.file(v)
	}
	fl.unordered = false
}

// Forget decides v's fixes still in its reorder window and ends its open
// visits, each with an exit flagged forgotten, appending the transitions
// to out. v must not be observed afterwards.
func (t *Tracker) Forget(v *Vehicle, out []Transition) []Transition {
	out = t.Flush(v, out)
	s := &v.State
	if s.Last == nil {
		return out
	}
	t.resolve(v) // a vehicle restored and never observed since
	first := len(out)
	for i := range s.Members {
		m := &s.Members[i]
		if !m.Inside {
			continue
		}
		// Outside, but not yet confirmed so: the run's first fix is the
		// better guess of when the visit ended.
		at := *s.Last
		if m.Run != nil {
			at = m.Run.Start
		}
		version := m.Version
		if ver := t.catalog.atSid(m.sid, at.Time); ver != nil {
			version = ver.Station.Version
		}
		out = t.exit(s, m, at, 0, []string{FlagForgotten}, version, out)
	}
	sortTransitions(out[first:])
	return out
}

// insideAny reports whether the vehicle has an open visit.
func (s *VehicleState) insideAny() bool {
	return slices.ContainsFunc(s.Members, func(m Membership) bool { return m.Inside })
}
