package g7

import (
	"bytes"
	"encoding/json"
	"fmt"
	"runtime"
	"strings"
	"testing"

	"github.com/tmsfleet/tms/domain/deadletter"
	"github.com/tmsfleet/tms/domain/position"
)

// TestHostileArrayOfOnesIsReadOnlyUpToMaxItems: a 500 KB message of
// [1,1,1,...] holds 262,000 items. The parser keeps the first MaxItems
// and only counts the rest; before the limit it made an Item (and ingest
// a dead letter) of every one.
func TestHostileArrayOfOnesIsReadOnlyUpToMaxItems(t *testing.T) {
	t.Parallel()
	const n = 262_000
	ones := []byte("[" + strings.TrimSuffix(strings.Repeat("1,", n), ",") + "]")
	for _, payload := range [][]byte{ones, []byte(`{"data":` + string(ones) + `}`)} {
		b := Parse(payload, received)
		if b.Rejection != nil {
			t.Fatalf("rejected whole: %v", b.Rejection)
		}
		if len(b.Items) != DefaultMaxItems || b.Excess != n-DefaultMaxItems {
			t.Fatalf("%d items read and %d counted; want %d and %d", len(b.Items), b.Excess, DefaultMaxItems, n-DefaultMaxItems)
		}
		if r := b.Items[0].Rejection; r == nil || r.Reason != position.ReasonInvalidJSON || string(b.Items[0].Raw) != "1" {
			t.Errorf("item 0 = %+v", b.Items[0])
		}
	}
}

// TestHostileParseMemoryDoesNotGrowWithTheItemsPastTheLimit measures what
// parsing allocates: a message of 250,000 tiny items past a limit of 10
// costs less than a tenth of its own size (the decoder's buffer and the
// ten items), not a value per item. It is not parallel: it reads the
// process's allocation count.
func TestHostileParseMemoryDoesNotGrowWithTheItemsPastTheLimit(t *testing.T) {
	p, err := NewParser(Config{MaxItems: 10})
	if err != nil {
		t.Fatal(err)
	}
	payload := []byte("[" + strings.TrimSuffix(strings.Repeat("{},", 250_000), ",") + "]")
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	b := p.Parse(payload, received)
	runtime.ReadMemStats(&after)
	if len(b.Items) != 10 || b.Excess != 250_000-10 {
		t.Fatalf("%d items, %d excess", len(b.Items), b.Excess)
	}
	alloc := after.TotalAlloc - before.TotalAlloc
	t.Logf("parsing %d bytes (250,000 items, 10 read) allocated %d bytes", len(payload), alloc)
	if alloc > uint64(len(payload))/10 {
		t.Errorf("parsing a %d-byte message allocated %d bytes", len(payload), alloc)
	}
}

// TestHostileItemsWithHugeValuesGiveBoundedRejections: a plate of 300 KB
// of '<', a number of 300 KB of digits, a huge string where a number
// belongs, and deep nesting. Each item is rejected on its own with a
// detail of at most position.MaxDetailBytes, and the dead letter built
// from it stays within deadletter.MaxEventBytes. Before, the overflowing
// number's detail quoted all its digits.
func TestHostileItemsWithHugeValuesGiveBoundedRejections(t *testing.T) {
	t.Parallel()
	huge := func(c string) string { return strings.Repeat(c, 300_000) }
	cases := []struct{ name, item, reason, field string }{
		{"plate of '<'", `{"plateNum":"` + huge("<") + `","lng":121.4,"lat":31.2,"speed":1}`, position.ReasonInvalidPlate, "plateNum"},
		{"plate of invalid UTF-8", `{"plateNum":"` + huge("\xff") + `","lng":121.4,"lat":31.2,"speed":1}`, position.ReasonInvalidPlate, "plateNum"},
		{"number of digits", `{"plateNum":"沪A1","lng":121.4,"lat":` + huge("9") + `,"speed":1}`, position.ReasonNotFinite, "lat"},
		{"number of digits as a string", `{"plateNum":"沪A1","lng":121.4,"lat":"` + huge("9") + `","speed":1}`, position.ReasonNotFinite, "lat"},
		{"string for a number", `{"plateNum":"沪A1","lng":121.4,"lat":31.2,"speed":"` + huge("<") + `"}`, position.ReasonInvalidNumber, "speed"},
		{"string for a time", `{"plateNum":"沪A1","lng":121.4,"lat":31.2,"speed":1,"time":"` + huge("<") + `"}`, position.ReasonInvalidTime, "time"},
		{"deep nesting", strings.Repeat("[", 5000) + strings.Repeat("]", 5000), position.ReasonInvalidJSON, ""},
	}
	good := `{"plateNum":"沪A99999","lng":121.4,"lat":31.2,"speed":10}`
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			payload := []byte(`{"data":[` + c.item + `,` + good + `]}`)
			b := Parse(payload, received)
			if b.Rejection != nil || len(b.Items) != 2 || b.Items[1].Rejection != nil {
				t.Fatalf("batch = %v, %d items", b.Rejection, len(b.Items))
			}
			r := b.Items[0].Rejection
			if r == nil || r.Reason != c.reason || r.Field != c.field {
				t.Fatalf("rejection %v, want %s on %q", r, c.reason, c.field)
			}
			if len(r.Detail) > position.MaxDetailBytes {
				t.Errorf("detail has %d bytes", len(r.Detail))
			}
			e, err := deadletter.New("ingest", "mqtt:g7", r.Reason, r.Field, r.Detail, b.Items[0].Raw, received).
				WithVehicle(b.Items[0].Plate).InBatch(0, deadletter.Hash(payload)).Event("/tms/ingest/g7")
			if err != nil {
				t.Fatal(err)
			}
			if value, _ := json.Marshal(e); len(value) > deadletter.MaxEventBytes {
				t.Errorf("dead letter of %d bytes, bound %d", len(value), deadletter.MaxEventBytes)
			}
		})
	}
}

// TestNestingBeyondTheDecodersDepthIsRejectedWhole: 100,000 open
// brackets are refused as invalid JSON in one pass, without recursion.
func TestNestingBeyondTheDecodersDepthIsRejectedWhole(t *testing.T) {
	t.Parallel()
	for _, payload := range []string{
		strings.Repeat("[", 100_000),
		`{"data":[` + strings.Repeat("[", 100_000) + strings.Repeat("]", 100_000) + `]}`,
	} {
		b := Parse([]byte(payload), received)
		if b.Rejection == nil || b.Rejection.Reason != position.ReasonInvalidJSON || len(b.Rejection.Detail) > position.MaxDetailBytes {
			t.Errorf("rejection = %v", b.Rejection)
		}
	}
}

func TestParserLimitsAreSettings(t *testing.T) {
	t.Parallel()
	p, err := NewParser(Config{MaxPayloadBytes: 100, MaxItems: 2})
	if err != nil {
		t.Fatal(err)
	}
	item := `{"plateNum":"沪A1","lng":121.4,"lat":31.2,"speed":1}`
	b := p.Parse([]byte(`[`+item+`, `+item+` ,`+item+`]`), received)
	if b.Rejection == nil || b.Rejection.Reason != position.ReasonTooLarge {
		t.Errorf("a %d-byte message under a 100-byte limit: %v", len(item)*3, b.Rejection)
	}
	p, _ = NewParser(Config{MaxItems: 2})
	b = p.Parse([]byte(`[`+item+`, `+item+` ,`+item+`]`), received)
	if len(b.Items) != 2 || b.Excess != 1 || b.Items[1].Rejection != nil || string(b.Items[1].Raw) != item {
		t.Errorf("got %d items (%+v), excess %d", len(b.Items), b.Items, b.Excess)
	}
	for _, bad := range []Config{{MaxItems: -1}, {MaxPayloadBytes: -5}} {
		if _, err := NewParser(bad); err == nil {
			t.Errorf("%+v accepted", bad)
		}
	}
}

// BenchmarkParse reads a batch of 1,000 good items, the simulator's
// largest.
func BenchmarkParse(b *testing.B) {
	var buf bytes.Buffer
	buf.WriteString(`{"data":[`)
	for i := range 1000 {
		if i > 0 {
			buf.WriteByte(',')
		}
		fmt.Fprintf(&buf, `{"plateNum":"沪A%05d","lng":"121.%04d","lat":31.%04d,"speed":42.5,"course":87,"gps_time":%d}`,
			i, i, i, received.UnixMilli()-int64(i))
	}
	buf.WriteString(`]}`)
	payload := buf.Bytes()
	b.SetBytes(int64(len(payload)))
	b.ReportAllocs()
	for b.Loop() {
		if batch := Parse(payload, received); len(batch.Items) != 1000 {
			b.Fatal(batch.Rejection)
		}
	}
}
