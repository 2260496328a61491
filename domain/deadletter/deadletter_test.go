package deadletter

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"math"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

func TestLetterKeepsTheRawBytesExactly(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 11, 27, 8, 0, 0, 0, time.UTC)
	text := New("ingest", "mqtt:g7", "latitude_out_of_range", "lat", "95 is outside [-90, 90]", []byte(`{"lat":95}`), at)
	if text.Raw != `{"lat":95}` || text.RawEncoding != "utf-8" || text.RawTruncated {
		t.Errorf("text letter = %+v", text)
	}
	bin := []byte{0xff, 0x00, 0xfe}
	l := New("ingest", "mqtt:g7", "invalid_json", "", "not JSON", bin, at)
	got, err := base64.StdEncoding.DecodeString(l.Raw)
	if l.RawEncoding != "base64" || err != nil || !bytes.Equal(got, bin) {
		t.Errorf("binary letter = %+v", l)
	}
	big := bytes.Repeat([]byte("a"), MaxRawBytes+1)
	if l := New("ingest", "mqtt:g7", "too_large", "", "", big, at); !l.RawTruncated || len(l.Raw) != MaxRawBytes || l.RawSHA256 != Hash(big) {
		t.Errorf("large letter: truncated=%v len=%d", l.RawTruncated, len(l.Raw))
	}
}

func TestLetterIDsIgnoreTheReceiveTimeButNotThePlaceInTheBatch(t *testing.T) {
	t.Parallel()
	raw := []byte(`{"lat":95}`)
	at := time.Date(2026, 11, 27, 8, 0, 0, 0, time.UTC)
	first, _ := New("ingest", "mqtt:g7", "latitude_out_of_range", "lat", "d", raw, at).InBatch(1, "batch").Event("/s")
	redelivered, _ := New("ingest", "mqtt:g7", "latitude_out_of_range", "lat", "d", raw, at.Add(time.Minute)).InBatch(1, "batch").Event("/s")
	if first.ID != redelivered.ID {
		t.Error("a redelivered bad item got a new id")
	}
	other, _ := New("ingest", "mqtt:g7", "latitude_out_of_range", "lat", "d", raw, at).InBatch(2, "batch").Event("/s")
	if other.ID == first.ID {
		t.Error("two bad items of one batch share an id")
	}
}

// TestHostileLetterOfTheWorstInputStaysWithinMaxEventBytes builds letters
// whose every field is megabytes of what JSON escapes most ('<', control
// characters, invalid UTF-8), through every constructor, and checks each
// encoded event against MaxEventBytes. Before the bounds, the vehicle was
// copied whole (a 300 KB plate of '<' made a record of over 5 MB) and
// the raw excerpt was 64 KiB, 384 KiB once escaped.
func TestHostileLetterOfTheWorstInputStaysWithinMaxEventBytes(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 11, 27, 8, 0, 0, 123456789, time.UTC)
	largest := 0
	for _, c := range []string{"<", "\x01", "\xff", "\u2028", "沪"} {
		huge := strings.Repeat(c, 1<<20)
		counts := map[string]int{}
		for i := range 100 {
			counts[huge[:1000]+strconv.Itoa(i)] = math.MaxInt
		}
		for name, l := range map[string]Letter{
			"New": New(huge, huge, huge, huge, huge, []byte(huge), at).WithVehicle(huge).InBatch(math.MaxInt, Hash(nil)),
			"Summary": Summary(huge, huge, huge, huge, math.MaxInt, counts, []byte(huge), at).
				WithVehicle(huge).InBatch(math.MaxInt, Hash(nil)),
			"Refusal":   Refusal(huge, huge, huge, []byte(huge), []byte(huge), huge, at),
			"Discarded": Discarded(huge, huge, huge, huge, Hash(nil), at).WithVehicle(huge),
			"built by hand": {Stage: huge, Origin: huge, Reason: huge, Field: huge, Detail: huge, Vehicle: huge,
				Raw: huge, RawSHA256: huge, BatchSHA256: huge, Counts: counts, Count: math.MaxInt,
				Refused: &Refused{Topic: huge, Key: huge, Bytes: math.MaxInt, Error: huge}},
		} {
			e, err := l.Event(huge)
			if err != nil {
				t.Fatal(err)
			}
			value, err := json.Marshal(e)
			if err != nil {
				t.Fatal(err)
			}
			if len(value) > MaxEventBytes {
				t.Errorf("%s of %q: %d bytes, bound %d", name, c, len(value), MaxEventBytes)
			}
			largest = max(largest, len(value))
			var back Letter
			if err := json.Unmarshal(e.Data, &back); err != nil {
				t.Fatal(err)
			}
			if len(e.Subject) > MaxVehicleBytes || !utf8.ValidString(e.Subject) || !utf8.ValidString(back.Vehicle) {
				t.Errorf("%s of %q: subject %q", name, c, e.Subject)
			}
		}
	}
	t.Logf("largest letter: %d bytes, bound %d", largest, MaxEventBytes)
}

func TestCutKeepsRunesWholeAndSaysSo(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		in   string
		max  int
		want string
		cut  bool
	}{
		{"沪A12345", 64, "沪A12345", false},
		{strings.Repeat("𠀀", 16), 64, strings.Repeat("𠀀", 16), false}, // the longest valid plate
		{strings.Repeat("沪", 30), 64, strings.Repeat("沪", 21), true},  // 63 bytes, not 64
		{"ab\xffcd", 64, "ab\uFFFDcd", false},
		{strings.Repeat("\xff", 100), 10, "\uFFFD", true}, // a run of invalid bytes is one U+FFFD
		{"abc", 0, "", true},
	} {
		got, cut := Cut(c.in, c.max)
		if got != c.want || cut != c.cut || !utf8.ValidString(got) || len(got) > c.max {
			t.Errorf("Cut(%q, %d) = %q, %v; want %q, %v", c.in, c.max, got, cut, c.want, c.cut)
		}
	}
	l := New("ingest", "mqtt:g7", "invalid_plate", "plateNum", "d", []byte(strings.Repeat("沪", MaxRawBytes)), time.Time{}).
		WithVehicle(strings.Repeat("<", 300_000))
	if l.RawEncoding != "utf-8" || !l.RawTruncated || len(l.Raw) > MaxRawBytes || !utf8.ValidString(l.Raw) {
		t.Errorf("text cut inside a rune: encoding %s, %d bytes", l.RawEncoding, len(l.Raw))
	}
	if l.Vehicle != strings.Repeat("<", MaxVehicleBytes) || !l.VehicleTruncated {
		t.Errorf("vehicle %q, truncated %v", l.Vehicle, l.VehicleTruncated)
	}
	if l := New("ingest", "mqtt:g7", "invalid_plate", "plateNum", "d", nil, time.Time{}).WithVehicle("沪A12345"); l.VehicleTruncated {
		t.Error("a valid plate was marked as cut")
	}
}
