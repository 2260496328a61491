package trip

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/tmsfleet/tms/domain/geo"
	"github.com/tmsfleet/tms/domain/track"
)

// A Vehicle's state is stored as a compact binary: the projection reads
// and writes one per vehicle per batch, and decoding JSON was most of its
// time. The encoding starts with encodingVersion; a state of another
// version is refused, never misread. Floats keep their bits and times
// their nanoseconds, so a restored Vehicle goes on exactly as the
// original.
const encodingVersion = 1

// ErrBadState is returned for bytes that are not a stored state.
var ErrBadState = errors.New("trip: not a stored vehicle state")

// MarshalBinary stores the vehicle's state.
func (v *Vehicle) MarshalBinary() ([]byte, error) {
	s := &v.s
	e := encoder{b: make([]byte, 0, 512)}
	e.u8(encodingVersion)
	e.fix(s.LastKept)
	e.fix(s.Suspect)
	e.time(s.Newest)
	e.time(s.Prev)
	e.totals(s.Tot)
	e.mark(s.LastPos)
	e.str(string(s.Mode))
	e.mark(s.Start)
	e.strs(s.Flags)
	e.bool(s.Left)
	for _, m := range []*mark{s.Cand, s.Stand, s.Last, s.Within} {
		e.mark(m)
	}
	e.uvarint(uint64(len(s.Out)))
	for i := range s.Out {
		e.mark(&s.Out[i])
	}
	e.f64(s.TripMax)
	e.f64(s.TailMax)
	return e.b, nil
}

// UnmarshalBinary restores a state MarshalBinary stored.
func (v *Vehicle) UnmarshalBinary(b []byte) error {
	d := decoder{b: b}
	if version := d.u8(); d.err == nil && version != encodingVersion {
		return fmt.Errorf("%w: version %d, this build reads %d", ErrBadState, version, encodingVersion)
	}
	var s state
	s.LastKept = d.fix()
	s.Suspect = d.fix()
	s.Newest = d.time()
	s.Prev = d.time()
	s.Tot = d.totals()
	s.LastPos = d.mark()
	s.Mode = mode(d.str())
	s.Start = d.mark()
	s.Flags = d.strs()
	s.Left = d.bool()
	s.Cand, s.Stand, s.Last, s.Within = d.mark(), d.mark(), d.mark(), d.mark()
	if n := d.uvarint(); n > 0 && d.err == nil {
		if n > MaxMoveFixes {
			return fmt.Errorf("%w: %d fixes outside the radius", ErrBadState, n)
		}
		s.Out = make([]mark, n)
		for i := range s.Out {
			if m := d.mark(); m != nil {
				s.Out[i] = *m
			}
		}
	}
	s.TripMax = d.f64()
	s.TailMax = d.f64()
	if d.err == nil && len(d.b) > 0 {
		d.err = fmt.Errorf("%w: %d bytes left over", ErrBadState, len(d.b))
	}
	if d.err != nil {
		return d.err
	}
	v.s = s
	return nil
}

type encoder struct{ b []byte }

func (e *encoder) u8(x byte)           { e.b = append(e.b, x) }
func (e *encoder) uvarint(x uint64)    { e.b = binary.AppendUvarint(e.b, x) }
func (e *encoder) varint(x int64)      { e.b = binary.AppendVarint(e.b, x) }
func (e *encoder) f64(x float64)       { e.b = binary.LittleEndian.AppendUint64(e.b, math.Float64bits(x)) }
func (e *encoder) str(s string)        { e.uvarint(uint64(len(s))); e.b = append(e.b, s...) }
func (e *encoder) present(p bool) bool { e.bool(p); return p }

func (e *encoder) bool(x bool) {
	if x {
		e.u8(1)
	} else {
		e.u8(0)
	}
}

// time writes a time as nanoseconds since 1970, the zero time apart.
func (e *encoder) time(t time.Time) {
	if e.present(!t.IsZero()) {
		e.varint(t.UnixNano())
	}
}

func (e *encoder) strs(ss []string) {
	e.uvarint(uint64(len(ss)))
	for _, s := range ss {
		e.str(s)
	}
}

func (e *encoder) fix(f *track.Fix) {
	if e.present(f != nil) {
		e.time(f.Time)
		e.f64(f.Point.Lat)
		e.f64(f.Point.Lng)
		e.f64(f.SpeedKmh)
	}
}

func (e *encoder) totals(t totals) {
	e.varint(int64(t.Fixes))
	e.f64(t.Distance)
	e.f64(t.Moving)
	e.f64(t.Idle)
	e.varint(int64(t.Used))
	e.varint(int64(t.Dropped))
	e.f64(t.DroppedM)
}

func (e *encoder) mark(m *mark) {
	if e.present(m != nil) {
		e.time(m.Time)
		e.f64(m.Lat)
		e.f64(m.Lng)
		e.f64(m.Speed)
		e.totals(m.Tot)
		e.f64(m.Max)
	}
}

// decoder reads what encoder wrote; its first error sticks, and every
// read after it returns a zero value.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) short() {
	if d.err == nil {
		d.err = fmt.Errorf("%w: cut short", ErrBadState)
	}
}

func (d *decoder) u8() byte {
	if d.err != nil || len(d.b) < 1 {
		d.short()
		return 0
	}
	x := d.b[0]
	d.b = d.b[1:]
	return x
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	x, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.short()
		return 0
	}
	d.b = d.b[n:]
	return x
}

func (d *decoder) varint() int64 {
	if d.err != nil {
		return 0
	}
	x, n := binary.Varint(d.b)
	if n <= 0 {
		d.short()
		return 0
	}
	d.b = d.b[n:]
	return x
}

func (d *decoder) f64() float64 {
	if d.err != nil || len(d.b) < 8 {
		d.short()
		return 0
	}
	x := math.Float64frombits(binary.LittleEndian.Uint64(d.b))
	d.b = d.b[8:]
	return x
}

func (d *decoder) bool() bool { return d.u8() == 1 }

func (d *decoder) str() string {
	n := d.uvarint()
	if d.err != nil || uint64(len(d.b)) < n {
		d.short()
		return ""
	}
	s := string(d.b[:n])
	d.b = d.b[n:]
	return s
}

func (d *decoder) strs() []string {
	n := d.uvarint()
	if n > uint64(len(d.b)) {
		d.short()
		return nil
	}
	var out []string
	for range n {
		out = append(out, d.str())
	}
	return out
}

func (d *decoder) time() time.Time {
	if !d.bool() {
		return time.Time{}
	}
	return time.Unix(0, d.varint()).UTC()
}

func (d *decoder) fix() *track.Fix {
	if !d.bool() {
		return nil
	}
	return &track.Fix{Time: d.time(), Point: geo.Point{Lat: d.f64(), Lng: d.f64()}, SpeedKmh: d.f64()}
}

func (d *decoder) totals() totals {
	return totals{Fixes: int(d.varint()), Distance: d.f64(), Moving: d.f64(), Idle: d.f64(),
		Used: int(d.varint()), Dropped: int(d.varint()), DroppedM: d.f64()}
}

func (d *decoder) mark() *mark {
	if !d.bool() {
		return nil
	}
	return &mark{Time: d.time(), Lat: d.f64(), Lng: d.f64(), Speed: d.f64(), Tot: d.totals(), Max: d.f64()}
}
