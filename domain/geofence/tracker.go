package geofence

import (
	"cmp"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/google/uuid"

	"github.com/tmsfleet/tms/domain/geo"
)

// Fix is one position of a vehicle, at its fix time.
type Fix struct {
	Time  time.Time `json:"t"`
	Point geo.Point `json:"p"`
}

// Run is a confirmation in progress: consecutive fixes inside a station
// the vehicle is not in yet, or outside one it is in.
type Run struct {
	// Start is the run's first fix: where and when the transition will be
	// dated once confirmed.
	Start Fix `json:"start"`
	Count int `json:"count"`
	// Gap is the silence before Start, when longer than the silence gap.
	Gap time.Duration `json:"gap,omitempty"`
	// Cause is why an entry run that starts here would be initial.
	Cause string `json:"cause,omitempty"`
}

// Membership is a vehicle's standing with one station. Its JSON form
// (see MarshalJSON) and the processor's binary snapshots
// (pipeline/geofence) hold all of it but sid: new state here must go
// there too.
type Membership struct {
	StationID string
	// Version is the station version the vehicle entered, or last was
	// judged against.
	Version int64
	Inside  bool
	// sid is the station's number in the tracker's catalogue (-1 for a
	// station it does not know); see Tracker.resolve. It sits in the
	// padding after Inside: there are many memberships.
	sid int32
	// visit is the visit in progress's id (VisitID), as its 16 bytes: a
	// string would take four times that.
	visit uuid.UUID
	Run   *Run
	// entered is EnteredAt; lastFrom and lastUntil bound the last closed
	// visit, remembered for LateHorizon to judge late fixes.
	entered, lastFrom, lastUntil stamp
}

// VisitID is the id of the visit in progress ("" when not inside).
func (m *Membership) VisitID() string {
	if m.visit == uuid.Nil {
		return ""
	}
	return m.visit.String()
}

// SetVisitID sets VisitID; id is a UUID, as visit ids are, or "".
func (m *Membership) SetVisitID(id string) error {
	if id == "" {
		m.visit = uuid.Nil
		return nil
	}
	u, err := uuid.Parse(id)
	if err != nil {
		return fmt.Errorf("visit id %q: %w", id, err)
	}
	m.visit = u
	return nil
}

// EnteredAt is when the visit in progress began (zero when not inside).
func (m *Membership) EnteredAt() time.Time { return m.entered.time() }

// LastVisit bounds the last closed visit (zero times when none is
// remembered).
func (m *Membership) LastVisit() (from, until time.Time) {
	return m.lastFrom.time(), m.lastUntil.time()
}

// SetEnteredAt sets EnteredAt, to the millisecond.
func (m *Membership) SetEnteredAt(t time.Time) { m.entered = toStamp(t) }

// SetLastVisit sets LastVisit, to the millisecond.
func (m *Membership) SetLastVisit(from, until time.Time) {
	m.lastFrom, m.lastUntil = toStamp(from), toStamp(until)
}

// membershipJSON is Membership's JSON form, as it always was.
type membershipJSON struct {
	StationID string    `json:"station"`
	Version   int64     `json:"version"`
	Inside    bool      `json:"inside"`
	VisitID   string    `json:"visit,omitempty"`
	EnteredAt time.Time `json:"entered_at,omitzero"`
	Run       *Run      `json:"run,omitempty"`
	LastFrom  time.Time `json:"last_from,omitzero"`
	LastUntil time.Time `json:"last_until,omitzero"`
}

// MarshalJSON implements json.Marshaler.
func (m Membership) MarshalJSON() ([]byte, error) {
	from, until := m.LastVisit()
	return json.Marshal(membershipJSON{StationID: m.StationID, Version: m.Version, Inside: m.Inside, VisitID: m.VisitID(),
		EnteredAt: m.EnteredAt(), Run: m.Run, LastFrom: from, LastUntil: until})
}

// UnmarshalJSON implements json.Unmarshaler.
func (m *Membership) UnmarshalJSON(b []byte) error {
	var j membershipJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	*m = Membership{StationID: j.StationID, Version: j.Version, Inside: j.Inside, Run: j.Run,
		entered: toStamp(j.EnteredAt), lastFrom: toStamp(j.LastFrom), lastUntil: toStamp(j.LastUntil)}
	return m.SetVisitID(j.VisitID)
}

// stamp is a time to the millisecond in 8 bytes, a time.Time's 24 being
// most of a membership, and there are several per vehicle. Fix times are
// milliseconds (ingest and backfill keep G7's precision), and so is every
// time the tracker derives from them (interpolated ones are rounded). The
// zero stamp is the zero time.
type stamp int64

// stampOffset moves the Unix milliseconds of every representable time
// away from 0, which stands for the zero time.
const stampOffset = 1 << 62

func toStamp(t time.Time) stamp {
	if t.IsZero() {
		return 0
	}
	return stamp(t.UnixMilli() + stampOffset)
}

func (s stamp) time() time.Time {
	if s == 0 {
		return time.Time{}
	}
	return time.UnixMilli(int64(s) - stampOffset).UTC()
}

// VehicleState is everything the geofence keeps about one vehicle. It is
// plain data, persisted between fixes (in the processor's state topic),
// and fully determines what the next fix does.
type VehicleState struct {
	Plate string `json:"plate"`
	// Last is the last fix decided.
	Last *Fix `json:"last,omitempty"`
	// MaxSeen is the newest fix time received.
	MaxSeen time.Time `json:"max_seen,omitzero"`
	// Pending are fixes received but not decided yet, in time order: they
	// wait for the reorder window.
	Pending []Fix `json:"pending,omitempty"`
	// Recent are the latest fix times received (Unix milliseconds, the
	// precision of fix times), to recognise duplicates.
	Recent []int64 `json:"recent,omitempty"`
	// Members are the vehicle's memberships, by station id.
	Members []Membership `json:"members,omitempty"`
	// Late and Duplicates count the fixes that arrived too late to be
	// decided in order, and the repeated ones.
	Late       int64 `json:"late,omitempty"`
	Duplicates int64 `json:"duplicates,omitempty"`
	// Seq is the sequence number of the vehicle's latest fix in its input
	// (the partition offset): the order in which a Fleet forgets.
	Seq int64 `json:"seq,omitempty"`
}

// Vehicle is a VehicleState with the cursor that locates its fixes.
type Vehicle struct {
	State  VehicleState
	cursor Cursor
	// generation is the catalogue's when the cursor was made and the
	// memberships' station numbers resolved.
	generation uint64
	// prev, next and list place the vehicle in its Fleet's recency lists.
	prev, next *Vehicle
	list       *recency
}

// NewVehicle returns a vehicle in state s (the zero state with Plate set
// for a vehicle never seen).
func NewVehicle(s VehicleState) *Vehicle { return &Vehicle{State: s} }

// Tracker turns each vehicle's fixes into entered and exited transitions.
//
// Order: fixes wait in a reorder window and are decided in fix-time order
// once the vehicle has reported a fix ReorderWindow newer. A fix with the
// same time as one already received is a duplicate and changes nothing.
//
// Late fixes: a fix older than the last decided one arrived too late to
// be put in order. It never changes the vehicle's state. It is counted,
// and where it shows the vehicle inside a station at a time when, as
// decided, the vehicle was not (neither in its current visit nor in the
// last one, remembered for LateHorizon), it is reported as a zero-length
// visit, an entry and an exit at the fix's time, both flagged late: an
// explicit correction, never a silent change of history.
//
// Hysteresis: entering takes the station's EnterConfirmFixes consecutive
// fixes inside over at least EnterConfirm; leaving takes ExitConfirmFixes
// consecutive fixes farther than ExitMarginM outside over at least
// ExitConfirm. A transition is dated at the first fix of its run.
//
// Crossings: when the straight segment between two consecutive fixes
// passes through a station that neither is in (and the vehicle is not
// in), an entry and an exit flagged interpolated are reported at the
// estimated crossing times, without confirmation, there being no fix to
// confirm with. None is inferred across a silence or the antimeridian.
//
// Initial: an entry whose run began at the vehicle's first fix, or at its
// first fix after the station appeared or moved over it, is flagged
// initial with its cause, not reported as an arrival.
//
// Silence: a vehicle without fixes for longer than SilenceGap closes no
// visit by guessing. When it reports again, its state goes on from there;
// an entry or exit whose run starts at that fix carries the gap.
//
// Station changes apply to fixes taken at or after their time: a visit to
// a station that is deleted ends at the vehicle's next fix, flagged
// station_deleted; a change that moves the fence away ends it flagged
// station_changed.
//
// A Tracker is not safe for concurrent use.
type Tracker struct {
	cfg     Config
	catalog *Catalog
	// Buffers reused from fix to fix: the tracker decides millions of
	// fixes a second and should not allocate for each.
	keys    []Key
	located []Key // the keys of the shapes containing the fix decided
	in      []*Version
	cross   crossCache
}

// NewTracker validates cfg (after defaults) and returns a tracker over
// catalog.
func NewTracker(cfg Config, catalog *Catalog) (*Tracker, error) {
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Tracker{cfg: cfg, catalog: catalog}, nil
}

// Observe takes one fix of v, appends the transitions it completes to
// out, in time order, and returns out.
func (t *Tracker) Observe(v *Vehicle, f Fix, out []Transition) []Transition {
	s := &v.State
	if slices.Contains(s.Recent, f.Time.UnixMilli()) || slices.ContainsFunc(s.Pending, func(p Fix) bool { return p.Time.Equal(f.Time) }) {
		s.Duplicates++
		return out
	}
	t.remember(s, f.Time)
	if s.Last != nil && !f.Time.After(s.Last.Time) {
		s.Late++
		return t.late(v, f, out)
	}
	i, _ := slices.BinarySearchFunc(s.Pending, f.Time, func(p Fix, at time.Time) int { return p.Time.Compare(at) })
	s.Pending = slices.Insert(s.Pending, i, f)
	if f.Time.After(s.MaxSeen) {
		s.MaxSeen = f.Time
	}
	horizon := s.MaxSeen.Add(-t.cfg.ReorderWindow)
	for len(s.Pending) > 0 && !s.Pending[0].Time.After(horizon) {
		next := s.Pending[0]
		s.Pending = slices.Delete(s.Pending, 0, 1)
		out = t.decide(v, next, out)
	}
	return out
}

// Flush decides every fix still waiting in v's reorder window, as if
// the window had passed. Replays call it at the end of their input; the
// live processor never does (it has no clock to say the window passed).
func (t *Tracker) Flush(v *Vehicle, out []Transition) []Transition {
	for len(v.State.Pending) > 0 {
		next := v.State.Pending[0]
		v.State.Pending = slices.Delete(v.State.Pending, 0, 1)
		out = t.decide(v, next, out)
	}
	return out
}

func (t *Tracker) remember(s *VehicleState, at time.Time) {
	if len(s.Recent) < t.cfg.RecentFixes {
		s.Recent = append(s.Recent, at.UnixMilli())
		return
	}
	// Full: shift the oldest out, in place (no growth, one array for life).
	copy(s.Recent, s.Recent[1:])
	s.Recent[len(s.Recent)-1] = at.UnixMilli()
}

// locate returns the versions valid at f.Time whose shape contains f (at
// most one per station), in a buffer reused by the next call.
func (t *Tracker) locate(v *Vehicle, f Fix) containing {
	at, exact := nanos(f.Time)
	if v.cursor == nil || v.generation != t.catalog.Generation() {
		v.cursor = t.catalog.NewCursor()
		t.resolve(v)
	}
	t.located = v.cursor.Locate(f.Point, t.located[:0])
	t.in = t.in[:0]
	for _, k := range t.located {
		if ver := t.catalog.ByKey(k); ver != nil && (exact && ver.validAtNano(at) || !exact && ver.ValidAt(f.Time)) {
			t.in = append(t.in, ver)
		}
	}
	return t.in
}

// resolve numbers v's memberships by the catalogue, as of its current
// generation: a vehicle restored from a snapshot knows its stations by id
// only, and a station the catalogue did not know may have been defined
// since.
func (t *Tracker) resolve(v *Vehicle) {
	for i := range v.State.Members {
		m := &v.State.Members[i]
		m.sid = t.catalog.lookup(m.StationID)
	}
	v.generation = t.catalog.Generation()
}

// containing are the station versions a fix is in; few, so a slice.
type containing []*Version

// of returns the version of station number sid, or nil.
func (c containing) of(sid int32) *Version {
	for _, v := range c {
		if v.sid == sid {
			return v
		}
	}
	return nil
}

// decide applies one fix, in order, to v's memberships.
func (t *Tracker) decide(v *Vehicle, f Fix, out []Transition) []Transition {
	s := &v.State
	first := len(out)
	prev := s.Last
	var gap time.Duration
	if prev != nil && f.Time.Sub(prev.Time) > t.cfg.SilenceGap {
		gap = f.Time.Sub(prev.Time)
	}
	in := t.locate(v, f)
	if prev != nil && gap == 0 && !crossesAntimeridian(prev.Point, f.Point) {
		out = t.crossings(v, *prev, f, in, out)
	}
	// The stations the vehicle is in or confirming a change with, then
	// those the fix is in. The others (visits closed within the late
	// horizon, remembered for late fixes) have nothing to decide unless
	// the fix is in them. The order does not matter: the fix's
	// transitions are sorted.
	for i := range s.Members {
		m := &s.Members[i]
		if !m.Inside && m.Run == nil {
			continue
		}
		ver := in.of(m.sid)
		switch {
		case m.Inside && ver != nil:
			m.Run = nil // inside the shape is not outside it by any margin
		case m.Inside:
			out = t.judgeInside(s, m, t.catalog.atSid(m.sid, f.Time), f, gap, out)
		case ver != nil:
			out = t.judgeOutside(s, m, ver, prev, f, gap, out)
		default:
			m.Run = nil // an entry run broken by a fix outside
		}
	}
	for _, ver := range in {
		m := s.member(ver.sid)
		switch {
		case m == nil:
			m = s.join(ver)
		case m.Inside || m.Run != nil:
			continue // decided above
		}
		out = t.judgeOutside(s, m, ver, prev, f, gap, out)
	}
	// Last is overwritten in place, not replaced: one allocation a fix
	// saved. prev, which points to it, is not used after this.
	if s.Last == nil {
		s.Last = new(Fix)
	}
	*s.Last = f
	s.prune(f.Time, t.cfg.LateHorizon)
	sortTransitions(out[first:])
	return out
}

// judgeOutside handles a fix inside a station the vehicle is not in.
func (t *Tracker) judgeOutside(s *VehicleState, m *Membership, ver *Version, prev *Fix, f Fix, gap time.Duration, out []Transition) []Transition {
	det := ver.Station.Detection.Apply(t.cfg.Detection)
	if m.Run == nil {
		m.Run = &Run{Start: f, Gap: gap, Cause: t.initialCause(ver, prev)}
	}
	m.Run.Count++
	if m.Run.Count < det.EnterConfirmFixes || f.Time.Sub(m.Run.Start.Time) < det.EnterConfirm {
		return out
	}
	run := m.Run
	visit := visitUUID(s.Plate, ver.Station.ID, run.Start.Time, false)
	tr := Transition{
		Kind: Entered, Vehicle: s.Plate, StationID: ver.Station.ID, StationType: ver.Station.Type,
		StationVersion: ver.Station.Version, VisitID: visit.String(),
		At: run.Start.Time, Point: run.Start.Point, Gap: run.Gap, InitialCause: run.Cause,
	}
	if run.Cause != "" {
		tr.Flags = append(tr.Flags, FlagInitial)
	}
	if run.Cause == CauseStationChanged {
		tr.Flags = append(tr.Flags, FlagStationChanged)
	}
	if run.Gap > 0 {
		tr.Flags = append(tr.Flags, FlagGap)
	}
	*m = Membership{StationID: m.StationID, Version: ver.Station.Version, Inside: true, sid: m.sid,
		visit: visit, entered: toStamp(tr.At), lastFrom: m.lastFrom, lastUntil: m.lastUntil}
	return append(out, tr)
}

// initialCause says why being inside ver at a run's first fix is not an
// arrival: the vehicle had no fix before, or at its previous fix the
// station did not exist, or had another shape that did not hold the
// vehicle while this one does.
func (t *Tracker) initialCause(ver *Version, prev *Fix) string {
	if prev == nil {
		return CauseFirstSeen
	}
	before := t.catalog.atSid(ver.sid, prev.Time)
	switch {
	case before == nil:
		return CauseStationAdded
	case before != ver && !before.Station.Shape.Contains(prev.Point) && ver.Station.Shape.Contains(prev.Point):
		return CauseStationChanged
	}
	return ""
}

// judgeInside handles any fix of a vehicle inside a station.
func (t *Tracker) judgeInside(s *VehicleState, m *Membership, ver *Version, f Fix, gap time.Duration, out []Transition) []Transition {
	if ver == nil {
		// Deleted (or not yet valid, after a change dated later): the
		// visit ends now.
		return t.exit(s, m, f, 0, []string{FlagStationDeleted}, m.Version, out)
	}
	det := ver.Station.Detection.Apply(t.cfg.Detection)
	if !ver.Station.Shape.OutsideBy(f.Point, det.ExitMarginM) {
		m.Run = nil
		return out
	}
	if m.Run == nil {
		m.Run = &Run{Start: f, Gap: gap}
	}
	m.Run.Count++
	if m.Run.Count < det.ExitConfirmFixes || f.Time.Sub(m.Run.Start.Time) < det.ExitConfirm {
		return out
	}
	var flags []string
	if ver.Station.Version != m.Version {
		flags = append(flags, FlagStationChanged)
	}
	if m.Run.Gap > 0 {
		flags = append(flags, FlagGap)
	}
	return t.exit(s, m, m.Run.Start, m.Run.Gap, flags, ver.Station.Version, out)
}

// exit ends m's visit at f.
func (t *Tracker) exit(s *VehicleState, m *Membership, f Fix, gap time.Duration, flags []string, version int64, out []Transition) []Transition {
	entered := m.EnteredAt()
	ver := t.catalog.atSid(m.sid, entered)
	typ := ""
	if ver != nil {
		typ = ver.Station.Type
	}
	tr := Transition{
		Kind: Exited, Vehicle: s.Plate, StationID: m.StationID, StationType: typ, StationVersion: version,
		VisitID: m.VisitID(), At: f.Time, Point: f.Point, Flags: flags,
		EnteredAt: entered, Dwell: f.Time.Sub(entered), Gap: gap,
	}
	*m = Membership{StationID: m.StationID, Version: version, sid: m.sid, lastFrom: m.entered, lastUntil: toStamp(f.Time)}
	return append(out, tr)
}

// crossings reports the stations the segment prev→f passes through while
// neither end is in them and the vehicle is not in them.
func (t *Tracker) crossings(v *Vehicle, prev, f Fix, in containing, out []Transition) []Transition {
	s := &v.State
	// Every point of the segment is within half of its middle.
	half, mid := pathBound(prev.Point, f.Point)/2, lerp(prev.Point, f.Point, 0.5)
	keys, ok := t.cross.candidates(t.catalog, v.cursor, mid, half)
	if !ok {
		t.keys = t.alongSegment(v.cursor, prev.Point, f.Point, t.keys[:0])
		keys = t.keys
	}
	// A shape containing f is no crossing, whatever its version's time:
	// skipped on its key alone (both lists ascend), before its version is
	// looked up. Most candidates near a vehicle are these.
	located, j := t.located, 0
	for _, k := range keys {
		for j < len(located) && located[j] < k {
			j++
		}
		if j < len(located) && located[j] == k {
			continue
		}
		if t.catalog.circleFar(k, mid, half) {
			continue
		}
		ver := t.catalog.ByKey(k)
		if ver == nil || !mayCross(ver, prev.Point, f.Point) || !ver.ValidAt(prev.Time) || !ver.ValidAt(f.Time) || in.of(ver.sid) != nil {
			continue // the usual case, decided without trigonometry
		}
		if m := s.member(ver.sid); m != nil && (m.Inside || m.Run != nil) {
			continue
		}
		shape := ver.Station.Shape
		if shape.Contains(prev.Point) {
			continue
		}
		sIn, sOut, ok := crossing(shape, prev.Point, f.Point)
		if !ok {
			continue
		}
		span := f.Time.Sub(prev.Time)
		at := func(frac float64) time.Time {
			return prev.Time.Add(time.Duration(frac * float64(span))).Round(time.Millisecond)
		}
		inAt, outAt := at(sIn), at(sOut)
		id := visitID(s.Plate, ver.Station.ID, inAt, false)
		// Remembered like any closed visit, so that a late fix within it
		// is not reported again.
		m := s.member(ver.sid)
		if m == nil {
			m = s.join(ver)
		}
		m.SetLastVisit(inAt, outAt)
		flags := []string{FlagInterpolated}
		out = append(out,
			Transition{Kind: Entered, Vehicle: s.Plate, StationID: ver.Station.ID, StationType: ver.Station.Type,
				StationVersion: ver.Station.Version, VisitID: id, At: inAt, Point: lerp(prev.Point, f.Point, sIn), Flags: flags},
			Transition{Kind: Exited, Vehicle: s.Plate, StationID: ver.Station.ID, StationType: ver.Station.Type,
				StationVersion: ver.Station.Version, VisitID: id, At: outAt, Point: lerp(prev.Point, f.Point, sOut), Flags: flags,
				EnteredAt: inAt, Dwell: outAt.Sub(inAt)})
	}
	return out
}

// alongSegment appends the keys of the stations near any point of the
// straight lng/lat segment a→b, ascending and without repeats. Every
// point of a piece of the segment is within half the piece's path length
// of its middle, and that length is at most R·√(Δφ² + (cos φ·Δλ)²) with φ
// the piece's latitude nearest the equator: so each piece's stations are
// those Near its middle within that half. Pieces of about 500 m keep the
// queries small.
func (t *Tracker) alongSegment(c Cursor, a, b geo.Point, dst []Key) []Key {
	const pieceM = 500.0
	n := int(math.Ceil(pathBound(a, b) / pieceM))
	n = min(max(n, 1), 1000)
	start := len(dst)
	for i := range n {
		p, q := lerp(a, b, float64(i)/float64(n)), lerp(a, b, float64(i+1)/float64(n))
		dst = c.Near(lerp(p, q, 0.5), pathBound(p, q)/2+1, dst)
	}
	if n > 1 {
		tail := dst[start:]
		slices.Sort(tail)
		dst = append(dst[:start], slices.Compact(tail)...)
	}
	return dst
}

// pathBound is an upper bound, in metres, of the length of the straight
// lng/lat path from a to b.
func pathBound(a, b geo.Point) float64 {
	minLat := math.Min(math.Abs(a.Lat), math.Abs(b.Lat))
	if (a.Lat < 0) != (b.Lat < 0) {
		minLat = 0
	}
	dLat := (b.Lat - a.Lat) * math.Pi / 180
	dLng := (b.Lng - a.Lng) * math.Pi / 180 * math.Cos(minLat*math.Pi/180)
	return geo.EarthRadiusM * math.Hypot(dLat, dLng) * 1.000001
}

// late reports what a late fix shows and changes nothing else.
func (t *Tracker) late(v *Vehicle, f Fix, out []Transition) []Transition {
	s := &v.State
	first := len(out)
	in := t.locate(v, f)
	slices.SortFunc(in, func(a, b *Version) int { return cmp.Compare(a.Station.ID, b.Station.ID) })
	for _, ver := range in {
		id := ver.Station.ID
		if m := s.member(ver.sid); m != nil && m.covers(f.Time) {
			continue
		}
		vid := visitID(s.Plate, id, f.Time, true)
		flags := []string{FlagLate}
		out = append(out,
			Transition{Kind: Entered, Vehicle: s.Plate, StationID: id, StationType: ver.Station.Type,
				StationVersion: ver.Station.Version, VisitID: vid, At: f.Time, Point: f.Point, Flags: flags},
			Transition{Kind: Exited, Vehicle: s.Plate, StationID: id, StationType: ver.Station.Type,
				StationVersion: ver.Station.Version, VisitID: vid, At: f.Time, Point: f.Point, Flags: flags, EnteredAt: f.Time})
	}
	sortTransitions(out[first:])
	return out
}

// covers reports whether the vehicle, as decided, was in the station at
// time at: in its current visit, or in the last one remembered.
func (m *Membership) covers(at time.Time) bool {
	if m.Inside && !at.Before(m.EnteredAt()) {
		return true
	}
	from, until := m.LastVisit()
	return !from.IsZero() && !at.Before(from) && !at.After(until)
}

// member returns the vehicle's membership of station number sid, or nil.
func (s *VehicleState) member(sid int32) *Membership {
	for i := range s.Members {
		if s.Members[i].sid == sid {
			return &s.Members[i]
		}
	}
	return nil
}

// join adds a membership of ver's station, not inside, in station id
// order (snapshots list them so), and returns it. Pointers to other
// memberships are invalid afterwards.
func (s *VehicleState) join(ver *Version) *Membership {
	id := ver.Station.ID
	i, _ := slices.BinarySearchFunc(s.Members, id, func(m Membership, id string) int { return cmp.Compare(m.StationID, id) })
	s.Members = slices.Insert(s.Members, i, Membership{StationID: id, Version: ver.Station.Version, sid: ver.sid})
	return &s.Members[i]
}

// prune forgets memberships with nothing left to remember: not inside,
// no run, and the last visit beyond the late horizon. Members stay sorted
// by station id.
func (s *VehicleState) prune(now time.Time, horizon time.Duration) {
	// Forgotten when the last visit ended more than horizon before now:
	// in whole milliseconds, the stamps' precision.
	cut := toStamp(now) - stamp(horizon.Milliseconds())
	forgotten := func(m Membership) bool {
		return !m.Inside && m.Run == nil && (m.lastUntil == 0 || m.lastUntil < cut)
	}
	if !slices.ContainsFunc(s.Members, forgotten) {
		return
	}
	s.Members = slices.DeleteFunc(s.Members, forgotten)
	if cap(s.Members) > 2*len(s.Members)+4 {
		// A vehicle that drove through many stations at once keeps no
		// room for them ever after: there are a hundred thousand vehicles.
		s.Members = append([]Membership(nil), s.Members...)
	}
}

// sortTransitions puts the transitions of one fix in a total order: by
// time; at equal times, exits of visits that began earlier first, then by
// station, a station's entry before its exit (a zero-length visit).
func sortTransitions(ts []Transition) {
	phase := func(t Transition) int {
		if t.Kind == Exited && t.EnteredAt.Before(t.At) {
			return 0 // ends a visit that began earlier
		}
		return 1
	}
	slices.SortStableFunc(ts, func(a, b Transition) int {
		return cmp.Or(a.At.Compare(b.At), cmp.Compare(phase(a), phase(b)),
			cmp.Compare(a.StationID, b.StationID), cmp.Compare(a.Kind, b.Kind))
	})
}

// String describes a transition for logs and test failures.
func (t Transition) String() string {
	return fmt.Sprintf("%s %s %s %s at %s (%.6f, %.6f) flags %v visit %s", t.Vehicle, t.Kind, t.StationID,
		t.StationType, t.At.UTC().Format(time.RFC3339Nano), t.Point.Lat, t.Point.Lng, t.Flags, t.VisitID[:8])
}
