package event

import (
	"strings"
	"testing"

	"github.com/google/uuid"
)

func TestAppendIDIsUUIDv5OfTheName(t *testing.T) {
	t.Parallel()
	cases := [][]string{
		{TypeEnteredStation},
		{TypeEnteredStation, ""},
		{TypeEnteredStation, "0a1b2c3d-visit"},
		{TypeAlertRaised, "hazard_zone_entered", "visit"},
		{TypePositionReported, "沪A12345", "2026-11-27T08:00:00.123Z"},
		{"visit", "沪A12345", strings.Repeat("S", 300), "2026-11-27T08:00:00Z"}, // longer than the scratch buffer
	}
	for _, c := range cases {
		want := uuid.NewSHA1(namespace, []byte(c[0]+"\x00"+strings.Join(c[1:], "\x00"))).String()
		if got := ID(c[0], c[1:]...); got != want {
			t.Errorf("ID(%q) = %s, want %s", c, got, want)
		}
		if got := string(AppendID([]byte("x"), c[0], c[1:]...)); got != "x"+want {
			t.Errorf("AppendID(x, %q) = %s, want x%s", c, got, want)
		}
	}
}

func TestAppendIDDoesNotAllocate(t *testing.T) {
	buf := make([]byte, 0, 64)
	if n := testing.AllocsPerRun(100, func() { buf = AppendID(buf[:0], TypeEnteredStation, "visit-id") }); n != 0 {
		t.Errorf("%.0f allocations", n)
	}
}
