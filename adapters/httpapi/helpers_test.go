package httpapi

import (
	"maps"
	"slices"
	"strconv"
	"testing"

	"github.com/tmsfleet/tms/domain/position"
)

func itoa(n int) string { return strconv.Itoa(n) }

func platesOf(vs []vehicleJSON) []string {
	out := make([]string, len(vs))
	for i, v := range vs {
		out[i] = v.Plate
	}
	return out
}

// sameSet reports whether a and b hold the same strings, each once.
func sameSet(a, b []string) bool {
	a, b = slices.Sorted(slices.Values(a)), slices.Sorted(slices.Values(b))
	return slices.Equal(a, b) && len(slices.Compact(slices.Clone(a))) == len(a)
}

func normalized(t *testing.T, plate string) string {
	t.Helper()
	p, rej := position.NormalizePlate("plate", plate)
	if rej != nil {
		t.Fatal(rej)
	}
	return p
}

func equalVehicle(a, b vehicleJSON) bool {
	ap, bp := a.Position, b.Position
	return a.Plate == b.Plate && a.FirstSeen.Equal(b.FirstSeen) && a.LastSeen.Equal(b.LastSeen) &&
		a.PositionsCount == b.PositionsCount &&
		ap.Lat == bp.Lat && ap.Lng == bp.Lng && ap.SpeedKmh == bp.SpeedKmh &&
		equalPtr(ap.CourseDeg, bp.CourseDeg) && ap.FixTime.Equal(bp.FixTime) &&
		ap.ReceivedAt.Equal(bp.ReceivedAt) && slices.Equal(ap.Flags, bp.Flags)
}

func equalPtr(a, b *float64) bool {
	return (a == nil && b == nil) || (a != nil && b != nil && *a == *b)
}

// wantKeys checks that m has exactly keys.
func wantKeys(t *testing.T, m map[string]any, keys ...string) {
	t.Helper()
	got := slices.Sorted(maps.Keys(m))
	if !slices.Equal(got, slices.Sorted(slices.Values(keys))) {
		t.Errorf("keys %v, want %v", got, keys)
	}
}
