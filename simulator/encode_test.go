package simulator

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/tmsfleet/tms/adapters/g7"
)

// batches steps a fleet and encodes its fixes in batches of 50, calling
// check with each message, the fixes it carries and its count of faults.
func batches(t *testing.T, enc Encoding, rounds int, check func(msg []byte, fixes []Fix, faulty int)) {
	t.Helper()
	f := mustFleet(t, 11, 230) // 230: the last batch of a round is short
	rnd := rand.New(rand.NewPCG(11, encodingStream))
	for r := range rounds {
		fixes := f.Step(t0.Add(time.Duration(r) * 10 * time.Second))
		for i := 0; i < len(fixes); i += 50 {
			b := fixes[i:min(i+50, len(fixes))]
			msg, faulty := enc.Encode(nil, b, rnd)
			check(msg, b, faulty)
		}
	}
}

func TestEncodedBatchesParse(t *testing.T) {
	t.Parallel()
	items, strs := 0, 0
	batches(t, Encoding{StringShare: 0.2}, 30, func(msg []byte, fixes []Fix, faulty int) {
		if faulty != 0 {
			t.Fatalf("%d faulty items without a fault rate", faulty)
		}
		received := fixes[0].Time.Add(time.Second)
		b := g7.Parse(msg, received)
		if b.Rejection != nil {
			t.Fatalf("message rejected: %v\n%s", b.Rejection, msg)
		}
		if len(b.Items) != len(fixes) {
			t.Fatalf("%d items parsed from %d fixes", len(b.Items), len(fixes))
		}
		for i, it := range b.Items {
			if it.Rejection != nil {
				t.Fatalf("item rejected: %v\n%s", it.Rejection, it.Raw)
			}
			want, got := fixes[i], it.Position
			if got.Plate != want.Plate || !got.FixTime.Equal(want.Time.Truncate(time.Millisecond)) ||
				math.Abs(got.Lat-want.Lat) > 1e-6 || math.Abs(got.Lng-want.Lng) > 1e-6 ||
				math.Abs(got.SpeedKmh-want.SpeedKmh) > 0.05+1e-9 || got.Course == nil ||
				math.Abs(*got.Course-math.Mod(math.Round(want.Course), 360)) > 0 || len(got.Flags) != 0 {
				t.Fatalf("fix %+v parsed as %+v", want, got)
			}
			items++
			if bytes.Contains(it.Raw, []byte(`"lat":"`)) {
				strs++
			}
		}
	})
	if share := float64(strs) / float64(items); share < 0.17 || share > 0.23 {
		t.Errorf("%.3f of items carry strings, want about 0.2", share)
	}
}

func TestFaultyItemsAreRejectedForTheirMarkedReason(t *testing.T) {
	t.Parallel()
	for _, rate := range []float64{0.1, 1} {
		t.Run(fmt.Sprint(rate), func(t *testing.T) {
			t.Parallel()
			var items, faulty, rejected int
			reasons := map[string]int{}
			batches(t, Encoding{StringShare: 0.2, FaultRate: rate}, 20, func(msg []byte, fixes []Fix, n int) {
				faulty += n
				b := g7.Parse(msg, fixes[0].Time.Add(time.Second))
				if b.Rejection != nil || len(b.Items) != len(fixes) {
					t.Fatalf("a faulty item spoilt its batch: %v", b.Rejection)
				}
				for _, it := range b.Items {
					items++
					var marked struct {
						Fault string `json:"_fault"`
					}
					if err := json.Unmarshal(it.Raw, &marked); err != nil {
						t.Fatalf("item is not JSON: %s", it.Raw)
					}
					switch {
					case marked.Fault == "" && it.Rejection != nil:
						t.Fatalf("unmarked item rejected: %v\n%s", it.Rejection, it.Raw)
					case marked.Fault != "" && it.Rejection == nil:
						t.Fatalf("item marked %s accepted: %s", marked.Fault, it.Raw)
					case marked.Fault != "" && it.Rejection.Reason != marked.Fault:
						t.Fatalf("item marked %s rejected as %s: %s", marked.Fault, it.Rejection.Reason, it.Raw)
					}
					if it.Rejection != nil {
						rejected++
						reasons[it.Rejection.Reason]++
					}
				}
			})
			if rejected != faulty {
				t.Errorf("Encode reported %d faulty items, the parser rejected %d", faulty, rejected)
			}
			if share := float64(rejected) / float64(items); math.Abs(share-rate) > 0.03 {
				t.Errorf("%.3f of items faulty, want about %v", share, rate)
			}
			for _, r := range faults {
				if reasons[r] == 0 {
					t.Errorf("no item was rejected for %s", r)
				}
			}
		})
	}
}

func TestLargestBatchFitsTheParser(t *testing.T) {
	t.Parallel()
	fix := Fix{Plate: "沪A12345", Time: t0, Lat: -89.999999, Lng: -179.999999, SpeedKmh: 119.95, Course: 359}
	fixes := make([]Fix, MaxBatchSize)
	for i := range fixes {
		fixes[i] = fix
	}
	msg, _ := Encoding{StringShare: 1, FaultRate: 1}.Encode(nil, fixes, rand.New(rand.NewPCG(1, 2)))
	if len(msg) > g7.DefaultMaxPayloadBytes/2 {
		t.Errorf("%d items take %d bytes; tms accepts %d", MaxBatchSize, len(msg), g7.DefaultMaxPayloadBytes)
	}
}

func TestPlatesAreEscaped(t *testing.T) {
	t.Parallel()
	for _, plate := range []string{`沪A"1`, `a\b`, "x\ny", "\xff"} {
		msg, _ := Encoding{}.Encode(nil, []Fix{{Plate: plate, Time: t0, Lat: 31, Lng: 121}}, nil)
		if !json.Valid(msg) {
			t.Errorf("plate %q: invalid JSON %s", plate, msg)
		}
	}
}

func TestCourseIsWholeDegreesBelow360(t *testing.T) {
	t.Parallel()
	msg, _ := Encoding{}.Encode(nil, []Fix{{Plate: "沪A1", Time: t0, Lat: 31, Lng: 121, Course: 359.7}}, nil)
	if !strings.Contains(string(msg), `"course":0,`) {
		t.Errorf("359.7° written as %s", msg)
	}
}

func ExampleEncoding_Encode() {
	fixes := []Fix{
		{Plate: "沪A3K7Q2", Time: time.UnixMilli(1764000000000), Lat: 31.2304, Lng: 121.4737, SpeedKmh: 42.5, Course: 87},
		{Plate: "苏E12345", Time: time.UnixMilli(1764000000000), Lat: 31.3560, Lng: 121.5920},
	}
	// With no strings and no faults, Encode draws nothing at random.
	msg, faulty := Encoding{}.Encode(nil, fixes, nil)
	fmt.Println(string(msg), faulty)
	// Output:
	// {"data":[{"plateNum":"沪A3K7Q2","lng":121.473700,"lat":31.230400,"speed":42.5,"course":87,"gps_time":1764000000000},{"plateNum":"苏E12345","lng":121.592000,"lat":31.356000,"speed":0.0,"course":0,"gps_time":1764000000000}]} 0
}

func BenchmarkEncode(b *testing.B) {
	f := mustFleet(b, 1, DefaultBatchSize)
	fixes := f.Step(t0)
	enc := Encoding{StringShare: DefaultStringShare}
	rnd := rand.New(rand.NewPCG(1, 2))
	buf := make([]byte, 0, 64<<10)
	b.ReportAllocs()
	for b.Loop() {
		msg, _ := enc.Encode(buf[:0], fixes, rnd)
		b.SetBytes(int64(len(msg)))
	}
}
