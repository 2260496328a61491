package geofence

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"time"

	gojson "github.com/goccy/go-json"

	"github.com/tmsfleet/tms/domain/geo"
	"github.com/tmsfleet/tms/domain/geofence"
)

// A snapshot chunk's value is in one of two formats, told apart by its
// first byte:
//
//   - '{': version 1, JSON: {"id": ..., "vehicles": [VehicleState...]},
//     the vehicles in their JSON form (goccy/go-json). Written until
//     issue 12, still read, so that an instance of this version takes
//     over from one of the previous.
//   - 0x02: version 2, binary, written now. A restore decodes the state
//     of 100,000 vehicles several times faster than from JSON, from a
//     quarter of the bytes (see docs/perf-kafka-notes.md).
//
// Version 2 is the byte 0x02, the snapshot id (a string), then the
// vehicles one after the other to the end of the value. Integers are
// varints (zig-zag for signed ones), strings a uvarint length and the
// bytes, floats their 8 IEEE 754 bytes little-endian, booleans and
// presence flags one byte. A time is a byte (0: the zero time; 1: UTC;
// 2: with the zone offset that follows, in seconds), then for 1 and 2 the
// Unix seconds and the nanoseconds. It keeps what the JSON form keeps: the
// instant and the zone offset. A vehicle is its VehicleState's fields in
// their declaration order; TestSnapshotCodecCoversEveryField fails when
// a field is added to the state that the codec does not know.
const (
	chunkJSON   = '{'
	chunkBinary = 0x02
)

// errChunk is a chunk that cannot be read.
var errChunk = errors.New("malformed snapshot chunk")

// appendChunkStart starts a version 2 chunk of snapshot id.
func appendChunkStart(dst []byte, id string) []byte {
	dst = append(dst, chunkBinary)
	return appendString(dst, id)
}

// appendVehicle appends s, as a version 2 chunk holds it.
func appendVehicle(dst []byte, s *geofence.VehicleState) []byte {
	dst = appendString(dst, s.Plate)
	if s.Last != nil {
		dst = append(dst, 1)
		dst = appendFix(dst, *s.Last)
	} else {
		dst = append(dst, 0)
	}
	dst = appendTime(dst, s.MaxSeen)
	dst = binary.AppendUvarint(dst, uint64(len(s.Pending)))
	for _, f := range s.Pending {
		dst = appendFix(dst, f)
	}
	dst = binary.AppendUvarint(dst, uint64(len(s.Recent)))
	prev := int64(0)
	for _, r := range s.Recent {
		dst = binary.AppendVarint(dst, r-prev) // close to each other: small deltas
		prev = r
	}
	dst = binary.AppendUvarint(dst, uint64(len(s.Members)))
	for i := range s.Members {
		m := &s.Members[i]
		dst = appendString(dst, m.StationID)
		dst = binary.AppendVarint(dst, m.Version)
		flags := byte(0)
		if m.Inside {
			flags |= 1
		}
		if m.Run != nil {
			flags |= 2
		}
		dst = append(dst, flags)
		dst = appendString(dst, m.VisitID())
		dst = appendTime(dst, m.EnteredAt())
		if m.Run != nil {
			dst = appendFix(dst, m.Run.Start)
			dst = binary.AppendVarint(dst, int64(m.Run.Count))
			dst = binary.AppendVarint(dst, int64(m.Run.Gap))
			dst = appendString(dst, m.Run.Cause)
		}
		from, until := m.LastVisit()
		dst = appendTime(dst, from)
		dst = appendTime(dst, until)
	}
	dst = binary.AppendVarint(dst, s.Late)
	dst = binary.AppendVarint(dst, s.Duplicates)
	return binary.AppendVarint(dst, s.Seq)
}

func appendString(dst []byte, s string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}

func appendFix(dst []byte, f geofence.Fix) []byte {
	dst = appendTime(dst, f.Time)
	dst = binary.LittleEndian.AppendUint64(dst, math.Float64bits(f.Point.Lat))
	return binary.LittleEndian.AppendUint64(dst, math.Float64bits(f.Point.Lng))
}

func appendTime(dst []byte, t time.Time) []byte {
	if t.IsZero() {
		return append(dst, 0)
	}
	if _, offset := t.Zone(); offset != 0 {
		dst = append(dst, 2)
		dst = binary.AppendVarint(dst, int64(offset))
	} else {
		dst = append(dst, 1)
	}
	dst = binary.AppendVarint(dst, t.Unix())
	return binary.AppendUvarint(dst, uint64(t.Nanosecond()))
}

// chunkID returns the snapshot id of a chunk of either format without
// decoding its vehicles; ok is false when it cannot tell.
func chunkID(value []byte) (string, bool) {
	if len(value) > 0 && value[0] == chunkBinary {
		r := chunkReader{b: value[1:]}
		id := r.string()
		return id, r.err == nil
	}
	// Version 1 as written: the id first.
	const prefix = `{"id":"`
	if len(value) < len(prefix) || string(value[:len(prefix)]) != prefix {
		return "", false
	}
	for i := len(prefix); i < len(value); i++ {
		switch value[i] {
		case '"':
			return string(value[len(prefix):i]), true
		case '\\':
			return "", false
		}
	}
	return "", false
}

// decodeChunk reads a chunk of either format. (Station ids are not
// interned: a map of them made decoding 20 % slower.)
func decodeChunk(value []byte) (id string, vehicles []geofence.VehicleState, err error) {
	if len(value) == 0 {
		return "", nil, fmt.Errorf("%w: empty", errChunk)
	}
	switch value[0] {
	case chunkJSON:
		var c snapshotChunk
		if err := gojson.Unmarshal(value, &c); err != nil {
			return "", nil, fmt.Errorf("%w: %w", errChunk, err)
		}
		return c.ID, c.Vehicles, nil
	case chunkBinary:
		r := chunkReader{b: value[1:]}
		id = r.string()
		for r.err == nil && len(r.b) > 0 {
			vehicles = append(vehicles, r.vehicle())
		}
		if r.err != nil {
			return "", nil, r.err
		}
		return id, vehicles, nil
	default:
		return "", nil, fmt.Errorf("%w: unknown format %#x", errChunk, value[0])
	}
}

// chunkReader reads a version 2 chunk; the first error sticks, and every
// read after it returns zero values.
type chunkReader struct {
	b   []byte
	err error
}

func (r *chunkReader) fail(what string) {
	if r.err == nil {
		r.err = fmt.Errorf("%w: %s at %d bytes from the end", errChunk, what, len(r.b))
	}
	r.b = nil
}

func (r *chunkReader) uvarint() uint64 {
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.fail("bad uvarint")
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *chunkReader) varint() int64 {
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.fail("bad varint")
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *chunkReader) byte() byte {
	if len(r.b) < 1 {
		r.fail("truncated")
		return 0
	}
	c := r.b[0]
	r.b = r.b[1:]
	return c
}

// count reads a length, which cannot exceed the bytes left (every item
// takes at least one).
func (r *chunkReader) count() int {
	n := r.uvarint()
	if n > uint64(len(r.b)) {
		r.fail("a count past the end")
		return 0
	}
	return int(n)
}

func (r *chunkReader) bytes() []byte {
	n := r.count()
	s := r.b[:n]
	r.b = r.b[n:]
	return s
}

func (r *chunkReader) string() string { return string(r.bytes()) }

func (r *chunkReader) float() float64 {
	if len(r.b) < 8 {
		r.fail("truncated")
		return 0
	}
	f := math.Float64frombits(binary.LittleEndian.Uint64(r.b))
	r.b = r.b[8:]
	return f
}

func (r *chunkReader) time() time.Time {
	var zone *time.Location
	switch r.byte() {
	case 0:
		return time.Time{}
	case 1:
		zone = time.UTC
	case 2:
		offset := r.varint()
		if offset < -24*3600 || offset > 24*3600 {
			r.fail("a zone offset out of range")
			return time.Time{}
		}
		zone = time.FixedZone("", int(offset))
	default:
		r.fail("a bad time")
		return time.Time{}
	}
	sec, nsec := r.varint(), r.uvarint()
	if nsec >= 1e9 {
		r.fail("nanoseconds out of range")
		return time.Time{}
	}
	return time.Unix(sec, int64(nsec)).In(zone)
}

func (r *chunkReader) fix() geofence.Fix {
	t := r.time()
	lat := r.float()
	return geofence.Fix{Time: t, Point: geo.Point{Lat: lat, Lng: r.float()}}
}

func (r *chunkReader) vehicle() geofence.VehicleState {
	s := geofence.VehicleState{Plate: r.string()}
	if r.byte() == 1 {
		f := r.fix()
		s.Last = &f
	}
	s.MaxSeen = r.time()
	if n := r.count(); n > 0 {
		s.Pending = make([]geofence.Fix, n)
		for i := range s.Pending {
			s.Pending[i] = r.fix()
		}
	}
	if n := r.count(); n > 0 {
		s.Recent = make([]int64, n)
		prev := int64(0)
		for i := range s.Recent {
			prev += r.varint()
			s.Recent[i] = prev
		}
	}
	if n := r.count(); n > 0 {
		s.Members = make([]geofence.Membership, n)
		for i := range s.Members {
			m := &s.Members[i]
			m.StationID = r.string()
			m.Version = r.varint()
			flags := r.byte()
			m.Inside = flags&1 != 0
			if err := m.SetVisitID(r.string()); err != nil {
				r.fail("a visit id that is no UUID")
			}
			m.SetEnteredAt(r.time())
			if flags&2 != 0 {
				m.Run = &geofence.Run{Start: r.fix()}
				m.Run.Count = int(r.varint())
				m.Run.Gap = time.Duration(r.varint())
				m.Run.Cause = r.string()
			}
			from := r.time()
			m.SetLastVisit(from, r.time())
		}
	}
	s.Late = r.varint()
	s.Duplicates = r.varint()
	s.Seq = r.varint()
	return s
}
