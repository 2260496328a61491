package vehicles_test

import (
	"os"
	"slices"
	"testing"
	"time"

	"github.com/tmsfleet/tms/adapters/postgres"
	"github.com/tmsfleet/tms/internal/testenv"
	"github.com/tmsfleet/tms/projections/vehicles"
)

// TestListSearchMatchesLiterally: Search finds plates containing the
// text, LIKE's wildcards and escape character in it matched as
// themselves, with the other filters and keyset paging.
func TestListSearchMatchesLiterally(t *testing.T) {
	t.Parallel()
	pool, err := postgres.Open(t.Context(), testenv.FromEnv(os.LookupEnv).Postgres(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	// Plates as ingest would never make them, to prove the escaping: the
	// read model's column takes any text.
	plates := []string{"A%1", "AB1", "A_1", `A\1`, "XA%1Y", "沪A12345", "沪A12399", "京A12"}
	at := time.Date(2025, 3, 10, 8, 0, 0, 0, time.UTC)
	for i, p := range plates {
		_, err := pool.Exec(t.Context(), `INSERT INTO vehicles (plate, fix_time, received_at, lat, lng, speed_kmh, flags,
			first_seen, last_seen, positions_count) VALUES ($1, $2, $2, $3, 121, 0, '{}', $2, $2, 1)`, p, at, 31+float64(i)/100)
		if err != nil {
			t.Fatal(err)
		}
	}
	store := vehicles.NewStore(pool)
	list := func(q vehicles.ListQuery) []string {
		t.Helper()
		vs, err := store.List(t.Context(), q)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, v := range vs {
			out = append(out, v.Plate)
		}
		return out
	}
	for _, c := range []struct {
		q    vehicles.ListQuery
		want []string
	}{
		{vehicles.ListQuery{Search: "%"}, []string{"A%1", "XA%1Y"}},
		{vehicles.ListQuery{Search: "A%1"}, []string{"A%1", "XA%1Y"}},
		{vehicles.ListQuery{Search: "_"}, []string{"A_1"}},
		{vehicles.ListQuery{Search: "A_1"}, []string{"A_1"}},
		{vehicles.ListQuery{Search: `\`}, []string{`A\1`}},
		{vehicles.ListQuery{Search: `A\1`}, []string{`A\1`}},
		{vehicles.ListQuery{Search: "A12"}, []string{"京A12", "沪A12345", "沪A12399"}},
		{vehicles.ListQuery{Search: "a12"}, nil}, // callers normalise
		{vehicles.ListQuery{Search: "A123"}, []string{"沪A12345", "沪A12399"}},
		{vehicles.ListQuery{Search: "A12", Plates: []string{"沪A12399", "AB1"}}, []string{"沪A12399"}},
		{vehicles.ListQuery{Search: "A12", BBox: &vehicles.BBox{MinLng: 120, MinLat: 31.055, MaxLng: 122, MaxLat: 31.065}}, []string{"沪A12399"}},
		{vehicles.ListQuery{Search: "A12", After: "沪A12345"}, []string{"沪A12399"}},
	} {
		// The order is the database collation's: compare as sets.
		got, want := list(c.q), slices.Clone(c.want)
		slices.Sort(got)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Errorf("List(%+v) = %q, want %q", c.q, got, c.want)
		}
	}

	// Pages of a search walk its matches in the store's order.
	all := list(vehicles.ListQuery{Search: "1"})
	if len(all) != len(plates) {
		t.Fatalf("search 1: %q, want every plate (each has a 1)", all)
	}
	var walked []string
	for after := ""; ; {
		page := list(vehicles.ListQuery{Search: "1", After: after, Limit: 2})
		walked = append(walked, page...)
		if len(page) < 2 {
			break
		}
		after = page[len(page)-1]
	}
	if !slices.Equal(walked, all) {
		t.Errorf("pages of 2 walked %q, want %q", walked, all)
	}
}
