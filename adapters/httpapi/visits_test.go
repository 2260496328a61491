package httpapi

import (
	"net/http"
	"net/url"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tmsfleet/tms/domain/event"
	"github.com/tmsfleet/tms/domain/geofence"
	"github.com/tmsfleet/tms/projections/visits"
)

// seedVisit is a visit to store: entered at in minutes after base, exited
// at out (open when out < in).
type seedVisit struct {
	plate, station, typ string
	in, out             int
	entryFlags          []string
	exitFlags           []string
	cause               string
}

func (v seedVisit) id() string {
	return event.ID("test-visit", v.plate, v.station, atMinute(v.in).Format(time.RFC3339))
}

func atMinute(m int) time.Time { return base.Add(time.Duration(m) * time.Minute) }

// seedVisits stores visits as the visits projection would, through it.
func seedVisits(t *testing.T, pool *pgxpool.Pool, vs ...seedVisit) {
	t.Helper()
	var changes []visits.Change
	for _, v := range vs {
		typ := v.typ
		if typ == "" {
			typ = geofence.TypeLoading
		}
		in := geofence.Visit{Vehicle: v.plate, StationID: v.station, StationType: typ, StationVersion: 1, VisitID: v.id(),
			FixTime: atMinute(v.in), Lat: 31, Lng: 121, Flags: v.entryFlags, InitialCause: v.cause}
		changes = append(changes, visits.Change{Kind: geofence.Entered, Visit: in})
		if v.out >= v.in {
			out := in
			entered, dwell := atMinute(v.in), atMinute(v.out).Sub(atMinute(v.in)).Seconds()
			out.FixTime, out.Flags, out.InitialCause, out.EnteredAt, out.DwellS = atMinute(v.out), v.exitFlags, "", &entered, &dwell
			changes = append(changes, visits.Change{Kind: geofence.Exited, Visit: out})
		}
	}
	err := pgx.BeginFunc(t.Context(), pool, func(tx pgx.Tx) error {
		return visits.NewProjection(nil, nil).Apply(t.Context(), tx, changes)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// The visits the tests below read, in minutes after base (the API's
// clock is at +60).
var (
	vClosed   = seedVisit{plate: "沪A12345", station: "S1", in: 10, out: 40, exitFlags: []string{geofence.FlagGap}}
	vOpen     = seedVisit{plate: "沪A12345", station: "S2", in: 50, out: -1, entryFlags: []string{geofence.FlagInitial}, cause: geofence.CauseFirstSeen}
	vOpen2    = seedVisit{plate: "沪A12345", station: "H1", typ: geofence.TypeHazard, in: 55, out: -1}
	vOther    = seedVisit{plate: "京B00001", station: "S1", in: 20, out: 25, entryFlags: []string{geofence.FlagInterpolated}, exitFlags: []string{geofence.FlagInterpolated}}
	vLong     = seedVisit{plate: "京B00001", station: "S2", in: -3000, out: 30} // began two days before
	vYearsAgo = seedVisit{plate: "粤C77777", station: "S1", in: -600000, out: -599990}
)

func visitIDs(vs []visitJSON) []string {
	out := make([]string, len(vs))
	for i, v := range vs {
		out[i] = v.VisitID
	}
	return out
}

func idsOf(vs ...seedVisit) []string {
	out := make([]string, len(vs))
	for i, v := range vs {
		out[i] = v.id()
	}
	return out
}

func visitsDB(t *testing.T) *pgxpool.Pool {
	t.Helper()
	pool := newDB(t, fleet())
	seedVisits(t, pool, vClosed, vOpen, vOpen2, vOther, vLong, vYearsAgo)
	return pool
}

func TestListVisits(t *testing.T) {
	t.Parallel()
	a := newDBAPI(t, visitsDB(t))
	rfc := func(m int) string { return url.QueryEscape(atMinute(m).Format(time.RFC3339)) }
	cases := []struct {
		name, query string
		want        []string
	}{
		{"the last 24 hours by default, newest first", "", idsOf(vOpen2, vOpen, vOther, vClosed, vLong)},
		{"a window", "from=" + rfc(26) + "&to=" + rfc(45), idsOf(vClosed, vLong)},
		{"by station", "station=S1", idsOf(vOther, vClosed)},
		{"by vehicle, normalised", "vehicle=" + url.QueryEscape("京b00001"), idsOf(vOther, vLong)},
		{"by station and vehicle", "station=S2&vehicle=" + url.QueryEscape("沪A12345"), idsOf(vOpen)},
		{"open only", "open=true", idsOf(vOpen2, vOpen)},
		{"closed only", "open=false", idsOf(vOther, vClosed, vLong)},
		{"long ago", "from=" + rfc(-700000) + "&to=" + rfc(-500000), idsOf(vYearsAgo)},
		{"nothing", "station=S9", nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			got := decode[visitListJSON](t, a.get(t, "/api/v1/visits?"+c.query), "application/json")
			if ids := visitIDs(got.Visits); !slices.Equal(ids, c.want) && len(ids)+len(c.want) > 0 {
				t.Errorf("visits %v\nwant   %v", ids, c.want)
			}
			// Walk the pages one by one: the same visits in the same order.
			var walked []string
			q, _ := url.ParseQuery(c.query)
			q.Set("limit", "1")
			for range 20 {
				page := decode[visitListJSON](t, a.get(t, "/api/v1/visits?"+q.Encode()), "application/json")
				walked = append(walked, visitIDs(page.Visits)...)
				if page.NextCursor == nil {
					break
				}
				q.Set("cursor", *page.NextCursor)
			}
			if !slices.Equal(walked, visitIDs(got.Visits)) {
				t.Errorf("paged %v\nwhole %v", walked, visitIDs(got.Visits))
			}
		})
	}

	t.Run("a visit as shown", func(t *testing.T) {
		t.Parallel()
		got := decode[visitListJSON](t, a.get(t, "/api/v1/visits?station=S1&vehicle="+url.QueryEscape("京B00001")), "application/json")
		if len(got.Visits) != 1 {
			t.Fatalf("%+v", got)
		}
		v := got.Visits[0]
		if v.VisitID != vOther.id() || v.Vehicle != "京B00001" || v.StationType != "loading" || v.StationVersion != 1 ||
			!v.EnteredAt.Equal(atMinute(20)) || !v.ExitedAt.Equal(atMinute(25)) || *v.DwellS != 300 || v.Open ||
			!slices.Equal(v.Flags, []string{"interpolated"}) || v.InitialCause != nil || v.GapS != nil {
			t.Errorf("visit %+v", v)
		}
		if !got.From.Equal(atMinute(60).Add(-24*time.Hour)) || !got.To.Equal(atMinute(60)) {
			t.Errorf("window %v to %v", got.From, got.To)
		}
		raw := decode[map[string]any](t, a.get(t, "/api/v1/visits?open=true&limit=1"), "application/json")
		wantKeys(t, raw, "from", "to", "visits", "next_cursor")
		open := raw["visits"].([]any)[0].(map[string]any)
		wantKeys(t, open, "visit_id", "vehicle", "station_id", "station_type", "station_version", "entered_at", "exited_at", "dwell_s",
			"open", "flags", "entry_flags", "exit_flags", "initial_cause", "gap_s", "exit_gap_s")
		if open["exited_at"] != nil || open["dwell_s"] != nil || open["open"] != true {
			t.Errorf("open visit %v", open)
		}
		all := decode[visitListJSON](t, a.get(t, "/api/v1/visits?station=S2"), "application/json")
		i := slices.IndexFunc(all.Visits, func(v visitJSON) bool { return v.VisitID == vOpen.id() })
		if v := all.Visits[i]; !slices.Equal(v.Flags, []string{"initial"}) || *v.InitialCause != "vehicle_first_seen" {
			t.Errorf("initial visit %+v", v)
		}
	})

	t.Run("bad parameters are named", func(t *testing.T) {
		t.Parallel()
		for query, fields := range map[string][]string{
			"station=a%20b":  {"station"},
			"vehicle=沪A/1":   {"vehicle"},
			"from=yesterday": {"from"},
			"from=2025-03-10T10:00:00Z&to=2025-03-10T09:00:00Z": {"from"},
			"open=maybe":            {"open"},
			"limit=0":               {"limit"},
			"limit=1001":            {"limit"},
			"cursor=xyz":            {"cursor"},
			"station=S1&station=S2": {"station"},
			"open=1&limit=x&to=now": {"open", "limit", "to"},
		} {
			wantProblem(t, a.get(t, "/api/v1/visits?"+query), "/api/v1/visits", http.StatusBadRequest, fields...)
		}
	})
}

// TestCurrentStations: vehicles carry the stations they are in now, and
// a station the vehicles inside it.
func TestCurrentStations(t *testing.T) {
	t.Parallel()
	pool := visitsDB(t)
	seedStations(t, pool, circle("S2", "two"), circle("S1", "one"))
	a := newDBAPI(t, pool)

	v := decode[vehicleJSON](t, a.get(t, "/api/v1/vehicles/"+url.PathEscape("沪A12345")), "application/json")
	want := []currentStationJSON{
		{StationID: "S2", StationType: "loading", VisitID: vOpen.id(), EnteredAt: atMinute(50)},
		{StationID: "H1", StationType: "hazard", VisitID: vOpen2.id(), EnteredAt: atMinute(55)},
	}
	if !equalStations(v.Stations, want) {
		t.Errorf("stations %+v\nwant %+v", v.Stations, want)
	}
	list := decode[vehicleListJSON](t, a.get(t, "/api/v1/vehicles"), "application/json")
	for _, v := range list.Vehicles {
		w := []currentStationJSON{}
		if v.Plate == "沪A12345" {
			w = want
		}
		if !equalStations(v.Stations, w) {
			t.Errorf("%s: stations %+v, want %+v", v.Plate, v.Stations, w)
		}
	}
	// Across pages too: each page's vehicles get theirs.
	page := decode[vehicleListJSON](t, a.get(t, "/api/v1/vehicles?plate="+url.QueryEscape("沪A12345")+"&limit=1"), "application/json")
	if len(page.Vehicles) != 1 || !equalStations(page.Vehicles[0].Stations, want) {
		t.Errorf("page %+v", page)
	}

	s := decode[stationJSON](t, a.get(t, "/api/v1/stations/S2"), "application/json")
	if s.Inside == nil || len(*s.Inside) != 1 || (*s.Inside)[0] != (insideJSON{Vehicle: "沪A12345", VisitID: vOpen.id(), EnteredAt: atMinute(50)}) {
		t.Errorf("inside S2: %+v", s.Inside)
	}
	s = decode[stationJSON](t, a.get(t, "/api/v1/stations/S1"), "application/json")
	if s.Inside == nil || len(*s.Inside) != 0 {
		t.Errorf("inside S1: %+v", s.Inside)
	}
	wantProblem(t, a.get(t, "/api/v1/stations/S9"), "/api/v1/stations/S9", http.StatusNotFound)
}

func equalStations(a, b []currentStationJSON) bool {
	return slices.EqualFunc(a, b, func(x, y currentStationJSON) bool {
		return x.StationID == y.StationID && x.StationType == y.StationType && x.VisitID == y.VisitID && x.EnteredAt.Equal(y.EnteredAt)
	})
}
