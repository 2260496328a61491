package httpapi

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// TestVehicleSearch: ?search= keeps the plates that contain the text,
// normalised as plates are, with the other filters and paging.
func TestVehicleSearch(t *testing.T) {
	t.Parallel()
	a := newDBAPI(t, newDB(t, fleet()))

	for _, c := range []struct {
		query string
		want  []string
	}{
		{"search=a12", []string{"沪A12345"}},
		{"search=%E6%B2%AAa1", []string{"沪A12345"}},
		{"search=+1+", []string{"沪A12345", "京B00001", "FIJI-1", "SAMOA-1"}},
		{"search=-1", []string{"FIJI-1", "SAMOA-1"}},
		{"search=ji-", []string{"FIJI-1"}},
		{"search=Z9", []string{}},
		{"search=", fleetPlates()},
		{"search=1&bbox=73,18,135,54", []string{"沪A12345", "京B00001"}},
		{"search=1&plate=FIJI-1&plate=ANCH-9", []string{"FIJI-1"}},
	} {
		got := decode[vehicleListJSON](t, a.get(t, "/api/v1/vehicles?"+c.query), "application/json")
		if ps := platesOf(got.Vehicles); !sameSet(ps, c.want) {
			t.Errorf("%s: %v, want %v", c.query, ps, c.want)
		}
	}

	t.Run("paged", func(t *testing.T) {
		t.Parallel()
		seen, pages := walkVehicles(t, a, "search=1", 1)
		if want := []string{"沪A12345", "京B00001", "FIJI-1", "SAMOA-1"}; !sameSet(seen, want) || len(seen) != 4 || pages != 4 {
			t.Errorf("%d pages of %v, want 4 of %v", pages, seen, want)
		}
	})

	t.Run("a bad search is a 400 naming search", func(t *testing.T) {
		t.Parallel()
		for _, bad := range []string{"%", "_", "A%1", "a_1", `\`, "A 1", strings.Repeat("1", 17), "\xff"} {
			q := url.Values{"search": {bad}}.Encode()
			wantProblem(t, a.get(t, "/api/v1/vehicles?"+q), "/api/v1/vehicles", http.StatusBadRequest, "search")
		}
		wantProblem(t, a.get(t, "/api/v1/vehicles?search=A&search=B"), "/api/v1/vehicles", http.StatusBadRequest, "search")
		// 16 characters is a plate's most, and allowed.
		decode[vehicleListJSON](t, a.get(t, "/api/v1/vehicles?search="+strings.Repeat("1", 16)), "application/json")
	})
}
