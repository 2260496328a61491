package deadletter

import (
	"bytes"
	"encoding/base64"
	"testing"
	"time"
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
