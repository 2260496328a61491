package schemas

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/tmsfleet/tms/domain/event"
	"github.com/tmsfleet/tms/domain/geo"
	"github.com/tmsfleet/tms/domain/geofence"
	"github.com/tmsfleet/tms/domain/station"
)

var at = time.Date(2026, 11, 27, 8, 0, 0, 0, time.UTC)

// stationBodies are definitions of every shape the encoder writes.
var stationBodies = map[string]string{
	"a wgs84 circle with detection": `{"id": "S001", "name": "Gate 3", "type": "loading", "radius_m": 300,
		"geometry": {"type": "Point", "coordinates": [121.4737, 31.2304]},
		"detection": {"enter_confirm_fixes": 2, "enter_confirm_s": 1.5, "exit_margin_m": 0, "exit_confirm_fixes": 3, "exit_confirm_s": 60}}`,
	"a gcj02 circle": `{"id": "G:1", "name": "火星门", "type": "hazard", "coord_system": "gcj02", "radius_m": 10,
		"geometry": {"type": "Point", "coordinates": [116.4, 39.9]}}`,
	"a gcj02 polygon with a hole": `{"id": "P.1", "name": "Yard", "type": "parking", "coord_system": "gcj02",
		"geometry": {"type": "Polygon", "coordinates": [[[121.5, 31.2], [121.52, 31.2], [121.52, 31.22], [121.5, 31.22], [121.5, 31.2]],
			[[121.505, 31.205], [121.51, 31.205], [121.51, 31.21], [121.505, 31.205]]]}}`,
	"a multipolygon": `{"id": "M-1", "name": "Two pads", "type": "waypoint",
		"geometry": {"type": "MultiPolygon", "coordinates": [[[[0, 0], [1, 0], [1, 1], [0, 0]]], [[[2, 0], [3, 0], [3, 1], [2, 0]]]]}}`,
}

func upserted(t *testing.T, body string, version int64) event.Envelope {
	t.Helper()
	s, err := station.Parse([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	e, err := s.Upserted("/tms/api", version, at)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// geofenceEvents encodes transitions the way the geofence does: an entry
// (initial, after a gap), the exit of that visit, an entry into a hazard
// station with its alert, and a late correction's entry and exit.
func geofenceEvents(t *testing.T) []event.Envelope {
	t.Helper()
	p := geo.Point{Lat: 31.2304, Lng: 121.4737}
	visit := event.ID("test", "1")
	trs := []geofence.Transition{
		{Kind: geofence.Entered, Vehicle: "沪A12345", StationID: "S001", StationType: geofence.TypeLoading, StationVersion: 3,
			VisitID: visit, At: at, Point: p, Flags: []string{geofence.FlagInitial, geofence.FlagGap},
			InitialCause: geofence.CauseStationAdded, Gap: 15 * time.Minute},
		{Kind: geofence.Exited, Vehicle: "沪A12345", StationID: "S001", StationType: geofence.TypeLoading, StationVersion: 4,
			VisitID: visit, At: at.Add(time.Hour), Point: p, Flags: []string{geofence.FlagStationChanged},
			EnteredAt: at, Dwell: time.Hour},
		{Kind: geofence.Entered, Vehicle: "沪A12345", StationID: "H1", StationType: geofence.TypeHazard, StationVersion: 1,
			VisitID: event.ID("test", "2"), At: at, Point: p, Flags: []string{geofence.FlagInterpolated}},
		{Kind: geofence.Entered, Vehicle: "京B00001", StationID: "S2", StationType: geofence.TypeOil, StationVersion: 1,
			VisitID: event.ID("test", "3"), At: at, Point: p, Flags: []string{geofence.FlagLate}},
		{Kind: geofence.Exited, Vehicle: "京B00001", StationID: "S2", StationType: geofence.TypeOil, StationVersion: 1,
			VisitID: event.ID("test", "3"), At: at, Point: p, Flags: []string{geofence.FlagLate}, EnteredAt: at},
		{Kind: geofence.Exited, Vehicle: "京B00001", StationID: "S3", StationType: geofence.TypeRepair, StationVersion: 2,
			VisitID: event.ID("test", "4"), At: at, Point: p, Flags: nil, EnteredAt: at.Add(-time.Minute), Dwell: time.Minute},
		// A crossing inferred between two fixes: its points are
		// interpolated (float arithmetic: 121.4 + 0.007 is
		// 121.40700000000001), its times to the millisecond, and a
		// dwell or gap of 1.239 s is 1.2389999999999999 in float seconds.
		{Kind: geofence.Entered, Vehicle: "京B00001", StationID: "S4", StationType: geofence.TypeWaypoint, StationVersion: 1,
			VisitID: event.ID("test", "5"), At: at.Add(1239 * time.Millisecond), Point: geo.Point{Lat: plus(31.2, 0.1), Lng: plus(121.4, 0.007)},
			Flags: []string{geofence.FlagInterpolated, geofence.FlagGap}, Gap: 1239 * time.Millisecond},
		{Kind: geofence.Exited, Vehicle: "京B00001", StationID: "S4", StationType: geofence.TypeWaypoint, StationVersion: 1,
			VisitID: event.ID("test", "5"), At: at.Add(2478 * time.Millisecond), Point: geo.Point{Lat: plus(31.3, 0.0001), Lng: plus(121.407, 0.0005)},
			Flags: []string{geofence.FlagInterpolated}, EnteredAt: at.Add(1239 * time.Millisecond), Dwell: 1239 * time.Millisecond},
	}
	var out []event.Envelope
	for _, tr := range trs {
		es, err := tr.Events("/tms/geofence")
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, es...)
	}
	return out
}

// plus adds in float64 at run time (a constant expression would be exact):
// how the geofence's interpolated points come by their noise.
func plus(a, b float64) float64 { return a + b }

// schemaOf compiles each event type's schema once per test.
type schemaOf map[string]*jsonschema.Schema

func (m schemaOf) get(t *testing.T, typ string) *jsonschema.Schema {
	t.Helper()
	if m[typ] == nil {
		m[typ] = compile(t, typ+".json")
	}
	return m[typ]
}

func TestStationAndGeofenceEventsMatchTheirSchemas(t *testing.T) {
	t.Parallel()
	var events []event.Envelope
	for _, body := range stationBodies {
		events = append(events, upserted(t, body, 7))
	}
	deleted, err := station.DeletedEvent("/tms/api", "S001", 8, at)
	if err != nil {
		t.Fatal(err)
	}
	events = append(events, deleted)
	events = append(events, geofenceEvents(t)...)
	schemas := schemaOf{}
	seen := map[string]bool{}
	for _, e := range events {
		seen[e.Type] = true
		if err := validate(t, schemas.get(t, e.Type), e); err != nil {
			t.Errorf("%s %s: %v", e.Type, e.Data, err)
		}
	}
	for _, typ := range []string{event.TypeStationUpserted, event.TypeStationDeleted, event.TypeEnteredStation,
		event.TypeExitedStation, event.TypeAlertRaised} {
		if !seen[typ] {
			t.Errorf("no %s was checked", typ)
		}
	}
}

// mutated returns e with its data changed by mutate.
func mutated(t *testing.T, e event.Envelope, mutate func(d map[string]any)) event.Envelope {
	t.Helper()
	var d map[string]any
	if err := json.Unmarshal(e.Data, &d); err != nil {
		t.Fatal(err)
	}
	mutate(d)
	out := e
	out.Data, _ = json.Marshal(d)
	return out
}

// TestStationAndGeofenceSchemasRejectWhatTheContractForbids guards the
// schemas: each case breaks one rule of the contract.
func TestStationAndGeofenceSchemasRejectWhatTheContractForbids(t *testing.T) {
	t.Parallel()
	circle := upserted(t, stationBodies["a wgs84 circle with detection"], 1)
	polygon := upserted(t, stationBodies["a gcj02 polygon with a hole"], 2)
	deleted, _ := station.DeletedEvent("/tms/api", "S001", 2, at)
	geofenceByType := map[string]event.Envelope{}
	for _, e := range geofenceEvents(t) {
		if _, ok := geofenceByType[e.Type]; !ok {
			geofenceByType[e.Type] = e
		}
	}
	entered, exited, alert := geofenceByType[event.TypeEnteredStation], geofenceByType[event.TypeExitedStation], geofenceByType[event.TypeAlertRaised]
	cases := map[string]event.Envelope{
		"a circle without a radius":    mutated(t, circle, func(d map[string]any) { delete(d, "radius_m") }),
		"a radius too small":           mutated(t, circle, func(d map[string]any) { d["radius_m"] = 5 }),
		"a polygon with a radius":      mutated(t, polygon, func(d map[string]any) { d["radius_m"] = 100 }),
		"gcj02 without the original":   mutated(t, polygon, func(d map[string]any) { delete(d, "original_geometry") }),
		"wgs84 with an original":       mutated(t, circle, func(d map[string]any) { d["original_geometry"] = d["geometry"] }),
		"an unknown station type":      mutated(t, circle, func(d map[string]any) { d["type"] = "depot" }),
		"an unknown coordinate system": mutated(t, circle, func(d map[string]any) { d["coord_system"] = "bd09" }),
		"version 0":                    mutated(t, circle, func(d map[string]any) { d["version"] = 0 }),
		"an unknown field":             mutated(t, circle, func(d map[string]any) { d["colour"] = "red" }),
		"a bad id":                     mutated(t, circle, func(d map[string]any) { d["id"] = "a b" }),
		"a position with altitude": mutated(t, circle, func(d map[string]any) {
			d["geometry"] = map[string]any{"type": "Point", "coordinates": []any{121, 31, 5}}
		}),
		"a latitude out of range": mutated(t, circle, func(d map[string]any) { d["geometry"] = map[string]any{"type": "Point", "coordinates": []any{121, 91}} }),
		"a LineString": mutated(t, circle, func(d map[string]any) {
			d["geometry"] = map[string]any{"type": "LineString", "coordinates": []any{[]any{1, 1}, []any{2, 2}}}
		}),
		"a ring of three positions": mutated(t, polygon, func(d map[string]any) {
			d["geometry"] = map[string]any{"type": "Polygon", "coordinates": []any{[]any{[]any{0, 0}, []any{1, 0}, []any{0, 0}}}}
		}),
		"an unknown detection setting":    mutated(t, circle, func(d map[string]any) { d["detection"] = map[string]any{"enter_confirm": 1} }),
		"a fractional fix count":          mutated(t, circle, func(d map[string]any) { d["detection"] = map[string]any{"enter_confirm_fixes": 1.5} }),
		"a deletion with a name":          mutated(t, deleted, func(d map[string]any) { d["name"] = "x" }),
		"a deletion of version 1":         mutated(t, deleted, func(d map[string]any) { d["version"] = 1 }),
		"an entry with an unknown flag":   mutated(t, entered, func(d map[string]any) { d["flags"] = []string{"made_up"} }),
		"an entry with a dwell":           mutated(t, entered, func(d map[string]any) { d["dwell_s"] = 1 }),
		"an entry with an unknown cause":  mutated(t, entered, func(d map[string]any) { d["initial_cause"] = "magic" }),
		"an entry without a visit":        mutated(t, entered, func(d map[string]any) { delete(d, "visit_id") }),
		"a visit id that is not a UUID":   mutated(t, entered, func(d map[string]any) { d["visit_id"] = "v1" }),
		"an exit without its dwell":       mutated(t, exited, func(d map[string]any) { delete(d, "dwell_s") }),
		"an exit without its entry time":  mutated(t, exited, func(d map[string]any) { delete(d, "entered_at") }),
		"a negative dwell":                mutated(t, exited, func(d map[string]any) { d["dwell_s"] = -1 }),
		"an unknown alert":                mutated(t, alert, func(d map[string]any) { d["alert"] = "speeding" }),
		"an alert with a dwell":           mutated(t, alert, func(d map[string]any) { d["dwell_s"] = 1 }),
		"a station event without subject": func() event.Envelope { e := circle; e.Subject = ""; return e }(),
	}
	schemas := schemaOf{}
	for name, e := range cases {
		if validate(t, schemas.get(t, e.Type), e) == nil {
			t.Errorf("%s: accepted %s", name, e.Data)
		}
	}
	wrongType := circle
	wrongType.Type = event.TypeStationDeleted
	if validate(t, schemas.get(t, event.TypeStationUpserted), wrongType) == nil {
		t.Error("an upsert schema accepted another type")
	}
}
