package station

import (
	"errors"
	"testing"
	"time"
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
