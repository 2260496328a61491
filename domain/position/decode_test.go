package position

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/tmsfleet/tms/domain/event"
)

// decodeSeeds are record values of every kind the decoder meets: what
// tms writes, and what a hostile or buggy producer could.
func decodeSeeds(t testing.TB) [][]byte {
	course := 87.5
	p := Position{Plate: "沪A12345", FixTime: time.Date(2026, 11, 27, 8, 0, 0, 123e6, time.UTC),
		ReceivedAt: time.Date(2026, 11, 27, 8, 0, 1, 250e6, time.UTC), Lat: 31.2304, Lng: 121.4737, SpeedKmh: 42.5, Course: &course}
	e, err := p.Event("/tms/ingest/g7")
	if err != nil {
		t.Fatal(err)
	}
	written, _ := json.Marshal(e)
	p.Course, p.Flags = nil, []string{FlagNoFixTime}
	e2, _ := p.Event("/tms/ingest/g7")
	noCourse, _ := json.Marshal(e2)
	indented, _ := json.MarshalIndent(e, " ", "\t")
	w := string(written)
	out := [][]byte{written, noCourse, indented}
	for _, s := range []string{
		strings.Replace(w, `"vehicle"`, `"Vehicle"`, 1),
		strings.Replace(w, `"id"`, `"ID"`, 1),
		strings.Replace(w, `"specversion"`, `"ſpecversion"`, 1),
		strings.Replace(w, `"lat":31.2304`, `"lat":31.2304,"lat":1`, 1),
		strings.Replace(w, `"lat":31.2304`, `"lat":"31.2304"`, 1),
		strings.Replace(w, `"lat":31.2304`, `"lat":1e400`, 1),
		strings.Replace(w, `"lat":31.2304`, `"lat":-0`, 1),
		strings.Replace(w, `"lat":31.2304`, `"lat":01`, 1),
		strings.Replace(w, `"lat":31.2304`, `"lat":1.`, 1),
		strings.Replace(w, `"lat":31.2304`, `"lat":1E+2`, 1),
		strings.Replace(w, `"lat":31.2304`, `"lat":null`, 1),
		strings.Replace(w, `"course_deg":87.5`, `"course_deg":null`, 1),
		strings.Replace(w, `"flags":[]`, `"flags":null`, 1),
		strings.Replace(w, `"flags":[]`, `"flags":["a","b"]`, 1),
		strings.Replace(w, `"flags":[]`, `"flags":["a",]`, 1),
		strings.Replace(w, `"flags":[]`, `"flags":[1]`, 1),
		strings.Replace(w, `"flags":[]`, `"flags":"x"`, 1),
		strings.Replace(w, `沪A12345"`, `\u6caaA12345"`, 2),
		strings.Replace(w, `沪A12345"`, "\xffA12345\"", 2),
		strings.Replace(w, `沪A12345"`, "A\t1\"", 2),
		strings.Replace(w, `"vehicle":"沪A12345"`, `"vehicle":""`, 1),
		strings.Replace(w, `"fix_time":"2026-11-27T08:00:00.123Z"`, `"fix_time":"2026-11-27T16:00:00.123+08:00"`, 1),
		strings.Replace(w, `"fix_time":"2026-11-27T08:00:00.123Z"`, `"fix_time":"2026-11-27 08:00:00Z"`, 1),
		strings.Replace(w, `"fix_time":"2026-11-27T08:00:00.123Z"`, `"fix_time":null`, 1),
		strings.Replace(w, `"fix_time":"2026-11-27T08:00:00.123Z"`, `"fix_time":"0001-01-01T00:00:00Z"`, 1),
		strings.Replace(w, `"type":"tms.position.reported.v1"`, `"type":"tms.station.upserted.v1"`, 1),
		strings.Replace(w, `"specversion":"1.0"`, `"specversion":"0.3"`, 1),
		strings.Replace(w, `"id":"`, `"id":"","x":"`, 1),
		strings.Replace(w, `"source"`, `"extension"`, 1),
		strings.Replace(w, `"data":{`, `"data":{"extra":{"a":[1,2,{}]},`, 1),
		strings.Replace(w, `"data":{`, `"data":null,"x":{`, 1),
		w + " \n",
		w + "x",
		w + "{}",
		w[:len(w)-1],
		"[" + w + "]",
		`{}`, ` { } `, `null`, ``, `{"data":{}}`, `{"specversion":"1.0","id":"x","type":"tms.position.reported.v1","data":{}}`,
	} {
		out = append(out, []byte(s))
	}
	return out
}

// reference is what encoding/json reads: the decoder's contract.
func reference(value []byte) (reportedEnvelope, Position, bool, error) {
	var e reportedEnvelope
	if err := json.Unmarshal(value, &e); err != nil {
		return e, Position{}, false, fmt.Errorf("%w: %v", event.ErrMalformed, err)
	}
	p, ok, err := e.position()
	return e, p, ok, err
}

func checkAgainstReference(t *testing.T, value []byte, d *Decoder) {
	t.Helper()
	want, wantP, wantOK, wantErr := reference(value)
	// What the one-pass reader accepts, encoding/json reads alike.
	var e reportedEnvelope
	if (&Decoder{}).fast(value, &e, true) {
		if wantErr != nil && !errors.Is(wantErr, event.ErrMalformed) || !reflect.DeepEqual(e, want) {
			var raw reportedEnvelope
			jerr := json.Unmarshal(value, &raw)
			t.Fatalf("one pass over %q read %+v; encoding/json %+v (%v)", value, e, raw, jerr)
		}
	}
	for name, decode := range map[string]func() (Position, bool, error){
		"Decoder.Decode": func() (Position, bool, error) { return d.Decode(value) },
		"DecodeEvent": func() (Position, bool, error) {
			p, id, ok, err := DecodeEvent(value)
			if ok && id != want.ID {
				t.Errorf("DecodeEvent(%q) id %q, want %q", value, id, want.ID)
			}
			return p, ok, err
		},
	} {
		p, ok, err := decode()
		if ok != wantOK || !reflect.DeepEqual(p, wantP) || (err == nil) != (wantErr == nil) {
			t.Fatalf("%s(%q) = %+v, %v, %v; encoding/json: %+v, %v, %v", name, value, p, ok, err, wantP, wantOK, wantErr)
		}
		if err != nil && !errors.Is(err, event.ErrMalformed) {
			t.Fatalf("%s(%q): %v does not wrap event.ErrMalformed", name, value, err)
		}
		if err != nil && err.Error() != wantErr.Error() {
			t.Fatalf("%s(%q) error %q; encoding/json's %q", name, value, err, wantErr)
		}
	}
}

func TestDecoderAgreesWithEncodingJSON(t *testing.T) {
	t.Parallel()
	var d Decoder
	for _, v := range decodeSeeds(t) {
		checkAgainstReference(t, v, &d)
	}
}

// FuzzDecoderAgreesWithEncodingJSON holds the one-pass reader to what
// encoding/json reads, on any input: the same fix, the same type check,
// the same rejection (with the same words).
func FuzzDecoderAgreesWithEncodingJSON(f *testing.F) {
	for _, v := range decodeSeeds(f) {
		f.Add(v)
	}
	var d Decoder
	f.Fuzz(func(t *testing.T, value []byte) { checkAgainstReference(t, value, &d) })
}

func TestDecoderTakesTheFastPathForWhatTmsWrites(t *testing.T) {
	t.Parallel()
	for _, v := range decodeSeeds(t)[:3] {
		var e reportedEnvelope
		if !(&Decoder{}).fast(v, &e, true) {
			t.Errorf("%s: read by encoding/json", v)
		}
	}
}

func TestDecoderReusesPlates(t *testing.T) {
	v := decodeSeeds(t)[0]
	var d Decoder
	p1, _, _ := d.Decode(v)
	allocs := testing.AllocsPerRun(100, func() {
		p2, ok, err := d.Decode(v)
		if !ok || err != nil || p2.Plate != p1.Plate {
			t.Fatal(p2, ok, err)
		}
	})
	// The course is the only allocation: a *float64.
	if allocs > 1 {
		t.Errorf("%.0f allocations per decode, want at most 1", allocs)
	}
}

// BenchmarkDecode reads the record of a fix as tms writes it.
func BenchmarkDecode(b *testing.B) {
	v := decodeSeeds(b)[1]
	b.Run("Decoder", func(b *testing.B) {
		var d Decoder
		b.ReportAllocs()
		b.SetBytes(int64(len(v)))
		for b.Loop() {
			if _, ok, err := d.Decode(v); !ok || err != nil {
				b.Fatal(ok, err)
			}
		}
	})
	b.Run("DecodeEvent", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(v)))
		for b.Loop() {
			if _, _, ok, err := DecodeEvent(v); !ok || err != nil {
				b.Fatal(ok, err)
			}
		}
	})
	b.Run("encoding-json", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(v)))
		for b.Loop() {
			if _, err := slowDecode(v); err != nil {
				b.Fatal(err)
			}
		}
	})
}
