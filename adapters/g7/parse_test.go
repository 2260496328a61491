package g7

import (
	"bytes"
	"encoding/json"
	"math"
	"strconv"
	"testing"
	"time"

	"github.com/tmsfleet/tms/domain/deadletter"
	"github.com/tmsfleet/tms/domain/position"
)

var received = time.Date(2026, 11, 27, 8, 0, 0, 0, time.UTC)

func TestParseAcceptsWhatG7Sends(t *testing.T) {
	t.Parallel()
	fix := received.Add(-2 * time.Second).UnixMilli()
	payload := []byte(`{"data":[
		{"plateNum":"沪A12345","lng":121.4737,"lat":31.2304,"speed":42.5,"course":87,"gps_time":` + itoa(fix) + `},
		{"plateNum":"苏B7K9Q2","lng":"120.5853","lat":"31.2989","speed":"0","time":"` + itoa(fix) + `"},
		{"plateNum":" 浙c55555 ","lng":120.1551,"lat":30.2741,"speed":0}
	]}`)
	b := Parse(payload, received)
	if b.Rejection != nil {
		t.Fatalf("batch rejected: %v", b.Rejection)
	}
	if len(b.Items) != 3 {
		t.Fatalf("got %d items, want 3", len(b.Items))
	}
	for i, it := range b.Items {
		if it.Rejection != nil {
			t.Fatalf("item %d rejected: %v", i, it.Rejection)
		}
	}
	p0 := b.Items[0].Position
	if p0.Plate != "沪A12345" || p0.Lat != 31.2304 || p0.Lng != 121.4737 || p0.SpeedKmh != 42.5 ||
		p0.Course == nil || *p0.Course != 87 || !p0.FixTime.Equal(time.UnixMilli(fix)) || len(p0.Flags) != 0 {
		t.Errorf("item 0 = %+v", p0)
	}
	p1 := b.Items[1].Position
	if p1.Lat != 31.2989 || p1.SpeedKmh != 0 || !p1.FixTime.Equal(time.UnixMilli(fix)) || p1.Course != nil {
		t.Errorf("numbers as strings: item 1 = %+v", p1)
	}
	// A parked vehicle (speed 0) is a position, and without a fix time
	// the receive time stands in, flagged.
	p2 := b.Items[2].Position
	if p2.Plate != "浙C55555" || !p2.FixTime.Equal(received) || len(p2.Flags) != 1 || p2.Flags[0] != position.FlagNoFixTime {
		t.Errorf("item 2 = %+v", p2)
	}
	if !bytes.Contains(b.Items[1].Raw, []byte(`"苏B7K9Q2"`)) {
		t.Errorf("raw bytes of item 1 = %s", b.Items[1].Raw)
	}
}

func TestParseRejectsBadItemsOneByOne(t *testing.T) {
	t.Parallel()
	future := received.Add(25 * time.Hour).UnixMilli()
	cases := []struct {
		name, item, reason, field string
	}{
		{"missing plate", `{"lng":121.4,"lat":31.2,"speed":1}`, position.ReasonMissingPlate, "plateNum"},
		{"empty plate", `{"plateNum":"  ","lng":121.4,"lat":31.2,"speed":1}`, position.ReasonMissingPlate, "plateNum"},
		{"plate not a string", `{"plateNum":12345,"lng":121.4,"lat":31.2,"speed":1}`, position.ReasonInvalidPlate, "plateNum"},
		{"plate with punctuation", `{"plateNum":"沪A;DROP","lng":121.4,"lat":31.2,"speed":1}`, position.ReasonInvalidPlate, "plateNum"},
		{"latitude out of range", `{"plateNum":"沪A1","lng":121.4,"lat":95,"speed":1}`, position.ReasonLatOutOfRange, "lat"},
		{"longitude out of range", `{"plateNum":"沪A1","lng":-181,"lat":31.2,"speed":1}`, position.ReasonLngOutOfRange, "lng"},
		{"NaN as a string", `{"plateNum":"沪A1","lng":"NaN","lat":31.2,"speed":1}`, position.ReasonNotFinite, "lng"},
		{"Inf as a string", `{"plateNum":"沪A1","lng":121.4,"lat":"-Inf","speed":1}`, position.ReasonNotFinite, "lat"},
		{"overflowing number", `{"plateNum":"沪A1","lng":121.4,"lat":1e999,"speed":1}`, position.ReasonNotFinite, "lat"},
		{"null island", `{"plateNum":"沪A1","lng":0,"lat":0,"speed":1}`, position.ReasonNullIsland, "lat"},
		{"negative speed", `{"plateNum":"沪A1","lng":121.4,"lat":31.2,"speed":-5}`, position.ReasonSpeedOutOfRange, "speed"},
		{"speed above 300", `{"plateNum":"沪A1","lng":121.4,"lat":31.2,"speed":"301"}`, position.ReasonSpeedOutOfRange, "speed"},
		{"missing speed", `{"plateNum":"沪A1","lng":121.4,"lat":31.2}`, position.ReasonMissingCoord, "speed"},
		{"missing lat", `{"plateNum":"沪A1","lng":121.4,"speed":3}`, position.ReasonMissingCoord, "lat"},
		{"number not a number", `{"plateNum":"沪A1","lng":"abc","lat":31.2,"speed":1}`, position.ReasonInvalidNumber, "lng"},
		{"empty string number", `{"plateNum":"沪A1","lng":"","lat":31.2,"speed":1}`, position.ReasonInvalidNumber, "lng"},
		{"bool number", `{"plateNum":"沪A1","lng":true,"lat":31.2,"speed":1}`, position.ReasonInvalidNumber, "lng"},
		{"course above 360", `{"plateNum":"沪A1","lng":121.4,"lat":31.2,"speed":1,"course":400}`, position.ReasonCourseOutOfRange, "course"},
		{"fix time a day ahead", `{"plateNum":"沪A1","lng":121.4,"lat":31.2,"speed":1,"gps_time":` + itoa(future) + `}`, position.ReasonFutureFixTime, "time"},
		{"fix time garbage", `{"plateNum":"沪A1","lng":121.4,"lat":31.2,"speed":1,"time":"yesterday"}`, position.ReasonInvalidTime, "time"},
		{"fix time negative", `{"plateNum":"沪A1","lng":121.4,"lat":31.2,"speed":1,"time":-1}`, position.ReasonInvalidTime, "time"},
		{"item not an object", `[1,2]`, position.ReasonInvalidJSON, ""},
		{"item a string", `"沪A1"`, position.ReasonInvalidJSON, ""},
	}
	good := `{"plateNum":"沪A99999","lng":121.4,"lat":31.2,"speed":10}`
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			// The bad item sits between two good ones: both must survive it.
			b := Parse([]byte(`{"data":[`+good+`,`+c.item+`,`+good+`]}`), received)
			if b.Rejection != nil {
				t.Fatalf("whole batch rejected: %v", b.Rejection)
			}
			if len(b.Items) != 3 || b.Items[0].Rejection != nil || b.Items[2].Rejection != nil {
				t.Fatalf("the good items did not survive: %+v", b.Items)
			}
			r := b.Items[1].Rejection
			if r == nil {
				t.Fatalf("accepted %s as %+v", c.item, b.Items[1].Position)
			}
			if r.Reason != c.reason || r.Field != c.field {
				t.Errorf("rejection = %v, want reason %s field %q", r, c.reason, c.field)
			}
			if r.Detail == "" {
				t.Error("rejection without detail")
			}
			if string(b.Items[1].Raw) != c.item {
				t.Errorf("raw = %s, want %s", b.Items[1].Raw, c.item)
			}
		})
	}
}

func TestParseRejectsUnreadableMessagesWhole(t *testing.T) {
	t.Parallel()
	cases := []struct{ name, payload, reason string }{
		{"not JSON", `{"data":[{"plateNum":`, position.ReasonInvalidJSON},
		{"empty", ``, position.ReasonInvalidJSON},
		{"no data", `{"items":[]}`, position.ReasonInvalidBatch},
		{"data not an array", `{"data":{"plateNum":"沪A1"}}`, position.ReasonInvalidBatch},
		{"a number", `42`, position.ReasonInvalidBatch},
		{"data twice", `{"data":[],"data":[{"plateNum":"沪A1"}]}`, position.ReasonInvalidBatch},
		{"too large", `{"data":[` + string(bytes.Repeat([]byte(" "), DefaultMaxPayloadBytes)) + `]}`, position.ReasonTooLarge},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			b := Parse([]byte(c.payload), received)
			if b.Rejection == nil || b.Rejection.Reason != c.reason {
				t.Fatalf("rejection = %v, want %s", b.Rejection, c.reason)
			}
		})
	}
}

func TestParseAcceptsABareArrayAndEpochSeconds(t *testing.T) {
	t.Parallel()
	secs := received.Add(-time.Minute).Unix()
	b := Parse([]byte(`[{"plateNum":"京A00001","lng":116.4,"lat":39.9,"speed":5,"time":`+itoa(secs)+`}]`), received)
	if b.Rejection != nil || len(b.Items) != 1 || b.Items[0].Rejection != nil {
		t.Fatalf("got %+v", b)
	}
	if got := b.Items[0].Position.FixTime; !got.Equal(time.Unix(secs, 0)) {
		t.Errorf("fix time = %v, want %v", got, time.Unix(secs, 0))
	}
}

// FuzzParse checks that no input panics the parser, that every item is
// either accepted as a valid fix or rejected with a reason, and that an
// item's raw bytes are the bytes it arrived as. And the limits: with a
// limit of fuzzItems items, no more are read, the rest are counted
// exactly (encoding/json, reading the whole batch, is the oracle), every
// rejection's detail is bounded, and every dead letter made of the
// message or of an item is within deadletter.MaxEventBytes.
func FuzzParse(f *testing.F) {
	f.Add([]byte(`{"data":[{"plateNum":"沪A12345","lng":121.47,"lat":31.23,"speed":42.5,"course":87,"gps_time":1764230000000}]}`))
	f.Add([]byte(`{"data":[{"plateNum":"沪A12345","lng":"121.47","lat":"31.23","speed":"0","time":"1764230000000"},{"lat":95}]}`))
	f.Add([]byte(`[{"plateNum":"x","lng":1e999,"lat":"NaN","speed":-1,"time":"2026-11-27T08:00:00Z"}]`))
	f.Add([]byte(`{"data":null}`))
	f.Add([]byte(`[1,2,3,4,5,6,7,8,9,10,11]`))
	f.Add([]byte(`{"x":[1],"data":[{},{},{},{},{},{},{},{},{"plateNum":"<<<<<<<<<<<<<<<<<<<<"}]}`))
	const fuzzItems = 8
	limited, err := NewParser(Config{MaxItems: fuzzItems})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, payload []byte) {
		b := Parse(payload, received)
		if b.Rejection != nil {
			if len(b.Items) != 0 || b.Excess != 0 || b.Rejection.Reason == "" {
				t.Fatalf("rejected batch %+v", b)
			}
			checkLetter(t, deadletter.New("ingest", "mqtt:g7", b.Rejection.Reason, b.Rejection.Field, b.Rejection.Detail, payload, received))
			return
		}
		for i, it := range b.Items {
			if !bytes.Contains(payload, bytes.TrimSpace(it.Raw)) {
				t.Fatalf("item %d raw %q is not in the payload", i, it.Raw)
			}
			if it.Rejection != nil {
				if it.Rejection.Reason == "" || it.Rejection.Detail == "" || len(it.Rejection.Detail) > position.MaxDetailBytes {
					t.Fatalf("item %d: rejection without reason or detail, or too long: %+v", i, it.Rejection)
				}
				checkLetter(t, deadletter.New("ingest", "mqtt:g7", it.Rejection.Reason, it.Rejection.Field, it.Rejection.Detail, it.Raw, received).
					WithVehicle(it.Plate).InBatch(i, deadletter.Hash(payload)))
				continue
			}
			p := it.Position
			if err := p.Validate(); err != nil {
				t.Fatalf("item %d accepted but invalid: %v", i, err)
			}
			if math.IsNaN(p.Lat+p.Lng+p.SpeedKmh) || p.Plate == "" {
				t.Fatalf("item %d accepted as %+v", i, p)
			}
			if _, err := json.Marshal(p.Flags); err != nil {
				t.Fatal(err)
			}
			e, err := p.Event("/fuzz")
			if err != nil {
				t.Fatalf("item %d: accepted fix does not encode: %v", i, err)
			}
			if value, _ := json.Marshal(e); len(value) > position.MaxEventBytes {
				t.Fatalf("item %d: position event of %d bytes", i, len(value))
			}
		}
		all := len(b.Items) + b.Excess
		if want := oracleItems(payload); all != want {
			t.Fatalf("%d items read and %d counted; encoding/json reads %d", len(b.Items), b.Excess, want)
		}
		lb := limited.Parse(payload, received)
		if lb.Rejection != nil || len(lb.Items) > fuzzItems || len(lb.Items)+lb.Excess != all ||
			(all > fuzzItems && len(lb.Items) != fuzzItems) {
			t.Fatalf("with a limit of %d: %d items read, %d counted, of %d (%v)", fuzzItems, len(lb.Items), lb.Excess, all, lb.Rejection)
		}
		for i, it := range lb.Items {
			if !bytes.Equal(it.Raw, b.Items[i].Raw) {
				t.Fatalf("item %d differs under the limit: %q, %q", i, it.Raw, b.Items[i].Raw)
			}
		}
	})
}

// oracleItems counts the items of an accepted batch as encoding/json
// reads the whole of it.
func oracleItems(payload []byte) int {
	var items []json.RawMessage
	if err := json.Unmarshal(payload, &items); err == nil {
		return len(items)
	}
	var envelope map[string]json.RawMessage
	if err := json.Unmarshal(payload, &envelope); err != nil {
		return -1
	}
	if err := json.Unmarshal(envelope["data"], &items); err != nil {
		return -1
	}
	return len(items)
}

func checkLetter(t *testing.T, l deadletter.Letter) {
	t.Helper()
	e, err := l.Event("/tms/ingest/g7")
	if err != nil {
		t.Fatal(err)
	}
	value, err := json.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	if len(value) > deadletter.MaxEventBytes || len(e.Subject) > deadletter.MaxVehicleBytes {
		t.Fatalf("dead letter of %d bytes (bound %d), subject of %d", len(value), deadletter.MaxEventBytes, len(e.Subject))
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// TestCoordinatesComeOutAsGiven: a fix's coordinates reach
// tms.positions as the device wrote them (the same decimal value, in
// JSON's shortest form), whether sent as numbers or as strings, and its
// times to the millisecond, whatever the clock that received it.
func TestCoordinatesComeOutAsGiven(t *testing.T) {
	t.Parallel()
	cases := []struct{ lat, lng, wantLat, wantLng string }{
		{"31.2304567", "121.4070000", "31.2304567", "121.407"},
		{"31.2", "121.40700000000001", "31.2", "121.40700000000001"}, // as given, noise and all
		{`"-33.8688197"`, `"151.2092955"`, "-33.8688197", "151.2092955"},
		{"0.0000001", "-179.9999999", "1e-7", "-179.9999999"},
	}
	at := received.Add(123456789) // a clock's nanoseconds
	fix := itoa(received.Add(-1750 * time.Millisecond).UnixMilli())
	for _, c := range cases {
		b := Parse([]byte(`[{"plateNum":"沪A12345","lat":`+c.lat+`,"lng":`+c.lng+`,"speed":1,"gps_time":`+fix+`}]`), at)
		if b.Rejection != nil || len(b.Items) != 1 || b.Items[0].Rejection != nil {
			t.Fatalf("%s,%s: %+v", c.lat, c.lng, b)
		}
		e, err := b.Items[0].Position.Event("/tms/ingest/g7")
		if err != nil {
			t.Fatal(err)
		}
		var d struct {
			Lat, Lng   json.RawMessage
			FixTime    string `json:"fix_time"`
			ReceivedAt string `json:"received_at"`
		}
		if err := json.Unmarshal(e.Data, &d); err != nil {
			t.Fatal(err)
		}
		if string(d.Lat) != c.wantLat || string(d.Lng) != c.wantLng {
			t.Errorf("given %s,%s: encoded %s,%s; want %s,%s", c.lat, c.lng, d.Lat, d.Lng, c.wantLat, c.wantLng)
		}
		if d.FixTime != "2026-11-27T07:59:58.25Z" || d.ReceivedAt != "2026-11-27T08:00:00.123Z" {
			t.Errorf("times %s, %s", d.FixTime, d.ReceivedAt)
		}
	}
}
