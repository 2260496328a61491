package geofence

import (
	"bytes"
	"encoding/json"
	"math"
	"testing"
	"time"

	"github.com/tmsfleet/tms/domain/geo"
)

// viaEncodingJSON is what AppendEvents must write: Events, each encoded
// by encoding/json.
func viaEncodingJSON(t *Transition, source string) ([][]byte, error) {
	events, err := t.Events(source)
	if err != nil {
		return nil, err
	}
	var out [][]byte
	for _, e := range events {
		v, err := json.Marshal(e)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, nil
}

func checkAppendEvents(t *testing.T, tr Transition, source string) {
	t.Helper()
	want, wantErr := viaEncodingJSON(&tr, source)
	var got [][]byte
	prefix := []byte("prefix")
	buf, err := tr.AppendEvents(prefix, source, func(v []byte) { got = append(got, v) })
	if (err == nil) != (wantErr == nil) {
		t.Fatalf("%+v: AppendEvents error %v, encoding/json's %v", tr, err, wantErr)
	}
	if err != nil {
		return
	}
	if len(got) != len(want) {
		t.Fatalf("%+v: %d events, encoding/json %d", tr, len(got), len(want))
	}
	for i := range want {
		if !bytes.Equal(got[i], want[i]) {
			t.Fatalf("%+v: event %d\n got  %s\n want %s", tr, i, got[i], want[i])
		}
	}
	if !bytes.HasPrefix(buf, []byte("prefix")) || len(buf) != len("prefix")+len(bytes.Join(want, nil)) {
		t.Fatalf("the buffer holds %q", buf)
	}
}

func sampleTransitions() []Transition {
	at := time.Date(2026, 11, 27, 8, 0, 0, 123_456_789, time.FixedZone("CST", 8*3600))
	base := Transition{Kind: Entered, Vehicle: "沪A12345", StationID: "S001", StationType: "loading", StationVersion: 3,
		VisitID: "0a1b", At: at, Point: geo.Point{Lat: 31.23040000001, Lng: 121.4737}}
	var out []Transition
	add := func(f func(*Transition)) {
		tr := base
		f(&tr)
		out = append(out, tr)
	}
	add(func(*Transition) {})
	add(func(tr *Transition) { tr.Flags = []string{FlagInitial}; tr.InitialCause = CauseFirstSeen })
	add(func(tr *Transition) {
		tr.Kind, tr.EnteredAt, tr.Dwell, tr.Flags = Exited, at.Add(-time.Hour), time.Hour+1234567*time.Microsecond, []string{FlagInterpolated, FlagLate}
	})
	add(func(tr *Transition) { tr.Kind, tr.Gap = Exited, 90*time.Second+time.Nanosecond })
	add(func(tr *Transition) { tr.StationType = TypeHazard; tr.Gap = time.Millisecond })
	add(func(tr *Transition) { tr.StationType = TypeHazard; tr.Kind = Exited })
	add(func(tr *Transition) {
		tr.Vehicle, tr.StationID = "", `<a href="x">&\ `+"\t\n\x01\x7f\u2028\u2029\xff\xfe"
	})
	add(func(tr *Transition) { tr.Point = geo.Point{Lat: -1e-7, Lng: 0} })
	add(func(tr *Transition) { tr.Point = geo.Point{Lat: 1e-9, Lng: -179.99999995} })
	add(func(tr *Transition) { tr.Point = geo.Point{Lat: 1e21, Lng: 5e-324} })
	add(func(tr *Transition) { tr.StationVersion = math.MinInt64 })
	add(func(tr *Transition) { tr.At = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC) })
	add(func(tr *Transition) { tr.Kind, tr.EnteredAt = Exited, time.Date(-1, 1, 1, 0, 0, 0, 0, time.UTC) })
	add(func(tr *Transition) { tr.At = time.Date(0, 1, 1, 0, 0, 0, 0, time.UTC) })
	add(func(tr *Transition) { tr.Point.Lat = math.NaN() })
	add(func(tr *Transition) { tr.Point.Lng = math.Inf(-1) })
	return out
}

func TestAppendEventsWritesWhatEncodingJSONWrites(t *testing.T) {
	t.Parallel()
	for _, tr := range sampleTransitions() {
		checkAppendEvents(t, tr, "/tms/geofence")
	}
	checkAppendEvents(t, sampleTransitions()[0], "<src>")
}

// FuzzAppendEvents holds the one-pass encoder to encoding/json's bytes
// for any strings, numbers and times a transition can carry.
func FuzzAppendEvents(f *testing.F) {
	f.Add(true, "沪A12345", "S001", "loading", "visit", "initial", int64(3), int64(1764230400123456789), int64(3600e9), 31.2304, 121.4737)
	f.Add(false, "<&>", "\u2028", TypeHazard, "\xff", "", int64(-1), int64(math.MinInt64), int64(1), 1e-7, -1e21)
	f.Fuzz(func(t *testing.T, exit bool, vehicle, station, typ, visit, cause string, version, at, d int64, lat, lng float64) {
		tr := Transition{Kind: Entered, Vehicle: vehicle, StationID: station, StationType: typ, StationVersion: version,
			VisitID: visit, At: time.Unix(0, at), Point: geo.Point{Lat: lat, Lng: lng}, Flags: []string{cause, visit},
			InitialCause: cause, Gap: time.Duration(d)}
		if exit {
			tr.Kind, tr.EnteredAt, tr.Dwell = Exited, time.Unix(0, at-d), time.Duration(d)
		}
		checkAppendEvents(t, tr, station)
	})
}

func TestAppendEventsAllocatesNothingWithRoom(t *testing.T) {
	tr := sampleTransitions()[2]
	buf := make([]byte, 0, 4096)
	emit := func([]byte) {}
	if n := testing.AllocsPerRun(100, func() { buf, _ = tr.AppendEvents(buf[:0], "/tms/geofence", emit) }); n != 0 {
		t.Errorf("%.0f allocations per transition", n)
	}
}
