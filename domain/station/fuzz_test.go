package station

import (
	"errors"
	"testing"
	"time"

	"github.com/tmsfleet/tms/domain/event"
	"github.com/tmsfleet/tms/domain/geo"
)

// FuzzParse: whatever the body, Parse either accepts a station that
// encodes, decodes and re-encodes to the same event data, or refuses it
// with a *ValidationError whose every entry names a field and says why.
// Seeds are in testdata/fuzz/FuzzParse.
func FuzzParse(f *testing.F) {
	f.Add([]byte(`{"id":"S1","name":"a","type":"oil","geometry":{"type":"Point","coordinates":[121,31]},"radius_m":50}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := Parse(b)
		if err != nil {
			var verr *ValidationError
			if !errors.As(err, &verr) || len(verr.Fields) == 0 {
				t.Fatalf("error %T %v is not a ValidationError with fields", err, err)
			}
			for _, fe := range verr.Fields {
				if fe.Field == "" || fe.Detail == "" {
					t.Fatalf("an error without field or detail: %+v", fe)
				}
			}
			return
		}
		if s.ID() == "" {
			if s, err = s.WithID("fuzz"); err != nil {
				t.Fatal(err)
			}
		}
		e, err := s.Upserted("/fuzz", 1, time.Unix(0, 0))
		if err != nil {
			t.Fatalf("an accepted station does not encode: %v", err)
		}
		c, err := FromEvent(e)
		if err != nil {
			t.Fatalf("an accepted station's event does not decode: %v\n%s", err, e.Data)
		}
		again, err := c.Station.Upserted("/fuzz", 1, time.Unix(0, 0))
		if err != nil || string(again.Data) != string(e.Data) {
			t.Fatalf("round trip: %v\n%s\n%s", err, e.Data, again.Data)
		}
		if c.Geofence().Shape.Validate() != nil {
			t.Fatal("an accepted station has no shape")
		}
	})
}

// FuzzFromEvent: whatever a tms.stations record holds, FromEvent either
// refuses it as malformed or returns a station whose shape every reader
// can evaluate: the geometry of a stored station is trusted, not validated
// again (a forged one is judged by its own crossing rule), and nothing in
// it may crash or stall a reader.
func FuzzFromEvent(f *testing.F) {
	s, err := Parse([]byte(`{"id":"S1","name":"a","type":"oil","geometry":{"type":"Polygon","coordinates":[[[121,31],[121.1,31],[121.1,31.1],[121,31]]]}}`))
	if err != nil {
		f.Fatal(err)
	}
	e, err := s.Upserted("/fuzz", 1, time.Unix(0, 0))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(string(e.Data))
	f.Add(`{"id":"S1","name":"a","type":"oil","coord_system":"wgs84","geometry":{"type":"Polygon","coordinates":[[[0,0],[1,1],[1,0],[0,1],[0,0]]]},"detection":{},"version":1}`)
	f.Add(`{"id":"S1","name":"a","type":"oil","coord_system":"wgs84","geometry":{"type":"MultiPolygon","coordinates":[[[[0,0],[0,0],[0,0],[0,0]]]]},"detection":{},"version":1}`)
	f.Fuzz(func(t *testing.T, data string) {
		ev := e
		ev.Data = []byte(data)
		c, err := FromEvent(ev)
		if err != nil {
			if !errors.Is(err, event.ErrMalformed) {
				t.Fatalf("error %v is not ErrMalformed", err)
			}
			return
		}
		sh := c.Station.Shape()
		if sh.Validate() != nil {
			t.Fatal("a decoded station has no shape")
		}
		for _, p := range []geo.Point{{Lat: 0.5, Lng: 0.5}, {Lat: 31.05, Lng: 121.05}, {Lat: 0, Lng: 0}} {
			sh.Contains(p)
			sh.OutsideBy(p, 30)
		}
	})
}
