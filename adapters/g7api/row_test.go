package g7api

import (
	"encoding/json"
	"math"
	"testing"
	"time"

	"github.com/tmsfleet/tms/domain/position"
)

var fetched = time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)

func TestParseRow(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name, raw, reason string
		lat, lng, speed   float64
		at                int64
	}{
		{name: "G7's own row", raw: `{"lng":"120.39689000016968","lat":"36.06112266041201","speed":4,"course":311,"time":1560077821000,"distance":1502}`,
			lat: 36.06112266041201, lng: 120.39689000016968, speed: 4, at: 1560077821000},
		{name: "numbers as numbers", raw: `{"lng":121.5,"lat":31.2,"speed":"0","time":"1560077821123"}`, lat: 31.2, lng: 121.5, at: 1560077821123},
		{name: "no time", raw: `{"lng":"121.5","lat":"31.2","speed":1}`, reason: position.ReasonInvalidTime},
		{name: "time in seconds", raw: `{"lng":"121.5","lat":"31.2","speed":1,"time":1560077821}`, reason: position.ReasonInvalidTime},
		{name: "latitude out of range", raw: `{"lng":"121.5","lat":"91","speed":1,"time":1560077821000}`, reason: position.ReasonLatOutOfRange},
		{name: "not a number", raw: `{"lng":"east","lat":"31.2","speed":1,"time":1560077821000}`, reason: position.ReasonInvalidNumber},
		{name: "missing lng", raw: `{"lat":"31.2","speed":1,"time":1560077821000}`, reason: position.ReasonMissingCoord},
		{name: "null island", raw: `{"lng":"0","lat":"0","speed":1,"time":1560077821000}`, reason: position.ReasonNullIsland},
		{name: "not an object", raw: `[1,2]`, reason: position.ReasonInvalidJSON},
		{name: "in the future", raw: `{"lng":"121.5","lat":"31.2","speed":1,"time":1900000000000}`, reason: position.ReasonFutureFixTime},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			it := ParseRow(json.RawMessage(c.raw), "沪A12345", fetched)
			if c.reason != "" {
				if it.Rejection == nil || it.Rejection.Reason != c.reason {
					t.Fatalf("rejection %v, want %s", it.Rejection, c.reason)
				}
				if string(it.Raw) != c.raw || !it.ReceivedAt.Equal(fetched) {
					t.Errorf("a rejected row keeps its raw bytes and its fetch time: %s %s", it.Raw, it.ReceivedAt)
				}
				return
			}
			if it.Rejection != nil {
				t.Fatal(it.Rejection)
			}
			p := it.Position
			if p.Plate != "沪A12345" || p.Lat != c.lat || p.Lng != c.lng || p.SpeedKmh != c.speed || p.FixTime.UnixMilli() != c.at {
				t.Errorf("got %+v", p)
			}
		})
	}
}

// FuzzParseRow: whatever G7 sends, a row is a valid fix or a rejection
// with a reason, never a panic, and an accepted fix is one tms would
// accept live.
func FuzzParseRow(f *testing.F) {
	for _, s := range []string{
		`{"lng":"120.39689000016968","lat":"36.06112266041201","speed":4,"course":311,"time":1560077821000,"distance":1502}`,
		`{"lng":121.5,"lat":31.2,"speed":"0","time":"1560077821123"}`,
		`{"lng":"NaN","lat":"1e999","speed":-1,"course":400,"time":-5}`,
		`{"lng":null,"lat":{},"time":[1]}`, `null`, `"x"`, `{`, ``,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		it := ParseRow(raw, "沪A12345", fetched)
		if it.Rejection != nil {
			if it.Rejection.Reason == "" || len(it.Rejection.Detail) > position.MaxDetailBytes {
				t.Fatalf("rejection without a reason or with an unbounded detail: %+v", it.Rejection)
			}
			return
		}
		p := it.Position
		if rej := p.Validate(); rej != nil {
			t.Fatalf("accepted a fix live ingest would reject: %v", rej)
		}
		if p.FixTime.IsZero() || !p.FixTime.Equal(p.FixTime.Truncate(time.Millisecond)) {
			t.Fatalf("fix time %s is not to the millisecond", p.FixTime)
		}
		for _, v := range []float64{p.Lat, p.Lng, p.SpeedKmh} {
			if math.IsNaN(v) || math.IsInf(v, 0) {
				t.Fatalf("not finite: %+v", p)
			}
		}
		if _, err := p.Event("/tms/backfill/g7"); err != nil {
			t.Fatalf("an accepted fix does not encode: %v", err)
		}
	})
}
