package station

import (
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/tmsfleet/tms/domain/event"
	"github.com/tmsfleet/tms/domain/geo"
	"github.com/tmsfleet/tms/domain/geofence"
)

func TestFromEventRoundTrip(t *testing.T) {
	t.Parallel()
	for name, b := range map[string][]byte{
		"circle":       body(map[string]any{"detection": `{"enter_confirm_s": 2.5, "exit_margin_m": 0}`}),
		"gcj02 circle": body(map[string]any{"coord_system": `"gcj02"`}),
		"polygon":      body(map[string]any{"radius_m": nil, "type": `"hazard"`, "geometry": polygon(square(121, 31, 0.01), square(121, 31, 0.001))}),
		"multipolygon": body(map[string]any{"radius_m": nil, "coord_system": `"gcj02"`, "geometry": geometry("MultiPolygon", manySquares(2))}),
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			s := mustParse(t, b)
			e, err := s.Upserted("/tms/api", 7, t0)
			if err != nil {
				t.Fatal(err)
			}
			// Through the wire format, as a consumer reads it.
			raw, _ := json.Marshal(e)
			e2, err := event.Decode(raw)
			if err != nil {
				t.Fatal(err)
			}
			c, err := FromEvent(e2)
			if err != nil {
				t.Fatal(err)
			}
			if c.Kind != Upsert || c.ID != "S001" || c.Version != 7 || !c.At.Equal(t0) || c.EventID != e.ID {
				t.Errorf("change %+v", c)
			}
			again, _ := c.Station.Upserted("/tms/api", 7, t0)
			if string(again.Data) != string(e.Data) {
				t.Errorf("re-encoding differs:\n%s\n%s", again.Data, e.Data)
			}
			g := c.Geofence()
			if g.ID != "S001" || g.Version != 7 || g.Type != s.Type() || g.Shape.Validate() != nil {
				t.Errorf("geofence station %+v", g)
			}
		})
	}
}

func TestChangesApplyToTheCatalogue(t *testing.T) {
	t.Parallel()
	s := mustParse(t, body(nil))
	up, _ := s.Upserted("/tms/api", 1, t0)
	del, _ := DeletedEvent("/tms/api", "S001", 2, t0.Add(time.Hour))
	cat := geofence.NewCatalog(geofence.NewBruteForce())
	for _, e := range []event.Envelope{up, del} {
		c, err := FromEvent(e)
		if err != nil {
			t.Fatal(err)
		}
		if err := c.ApplyTo(cat); err != nil {
			t.Fatal(err)
		}
	}
	if v := cat.At("S001", t0.Add(time.Minute)); v == nil || v.Station.Version != 1 || !v.Station.Shape.Contains(s.Geometry().Point()) {
		t.Errorf("during its life: %+v", v)
	}
	if v := cat.At("S001", t0.Add(2*time.Hour)); v != nil {
		t.Errorf("after its deletion: %+v", v)
	}
	if v := cat.At("S001", t0.Add(-time.Minute)); v != nil {
		t.Errorf("before its creation: %+v", v)
	}
}

func TestFromEventRejects(t *testing.T) {
	t.Parallel()
	s := mustParse(t, body(nil))
	good, _ := s.Upserted("/tms/api", 1, t0)
	with := func(mutate func(d map[string]any)) event.Envelope {
		var d map[string]any
		_ = json.Unmarshal(good.Data, &d)
		mutate(d)
		e := good
		e.Data, _ = json.Marshal(d)
		return e
	}
	cases := map[string]event.Envelope{
		"not JSON data":      func() event.Envelope { e := good; e.Data = []byte(`[`); return e }(),
		"version 0":          with(func(d map[string]any) { d["version"] = 0 }),
		"no radius":          with(func(d map[string]any) { delete(d, "radius_m") }),
		"a radius too large": with(func(d map[string]any) { d["radius_m"] = 1e6 }),
		"unknown type":       with(func(d map[string]any) { d["type"] = "depot" }),
		"no geometry":        with(func(d map[string]any) { delete(d, "geometry") }),
		"bad coordinates":    with(func(d map[string]any) { d["geometry"] = map[string]any{"type": "Point", "coordinates": []any{0, 91}} }),
		"gcj02 w/o original": with(func(d map[string]any) { d["coord_system"] = "gcj02" }),
		"original for wgs84": with(func(d map[string]any) { d["original_geometry"] = d["geometry"] }),
		"detection too wide": with(func(d map[string]any) { d["detection"] = map[string]any{"exit_margin_m": 6000} }),
		"id not the subject": with(func(d map[string]any) { d["id"] = "S002" }),
		"bad id":             with(func(d map[string]any) { d["id"] = "a b" }),
		"open ring": with(func(d map[string]any) {
			d["geometry"] = map[string]any{"type": "Polygon", "coordinates": [][][2]float64{{{0, 0}, {1, 0}, {1, 1}, {0, 1}}}}
			delete(d, "radius_m")
		}),
		"edge across the antimeridian": with(func(d map[string]any) {
			d["geometry"] = map[string]any{"type": "Polygon", "coordinates": [][][2]float64{{{179, 0}, {-179, 0}, {-179, 1}, {179, 0}}}}
			delete(d, "radius_m")
		}),
		"too many positions": with(func(d map[string]any) {
			ring := make([][2]float64, MaxPointsCeiling+1)
			for i := range ring {
				ring[i] = [2]float64{float64(i) / MaxPointsCeiling, float64(i%2) / 1000}
			}
			ring[len(ring)-1] = ring[0]
			d["geometry"] = map[string]any{"type": "Polygon", "coordinates": [][][2]float64{ring}}
			delete(d, "radius_m")
		}),
		"a deletion w/o id":   {Type: event.TypeStationDeleted, ID: "x", Data: []byte(`{"version": 2}`)},
		"a deletion, version": {Type: event.TypeStationDeleted, ID: "x", Data: []byte(`{"id": "S1", "version": 0}`)},
	}
	for name, e := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			if c, err := FromEvent(e); !errors.Is(err, event.ErrMalformed) {
				t.Errorf("FromEvent = %+v, %v; want a malformed event", c, err)
			}
		})
	}
	other := good
	other.Type = event.TypePositionReported
	if _, err := FromEvent(other); !errors.Is(err, ErrNotStationEvent) {
		t.Errorf("another type: %v", err)
	}
}

// TestFromEventDoesNotValidateAgain: a stored station was validated when
// its command was accepted; reading it back checks its structure, not its
// simplicity (which would take a sweep over its edges on every read). A
// bow tie, which no command accepts, is read as it stands.
func TestFromEventDoesNotValidateAgain(t *testing.T) {
	t.Parallel()
	s := mustParse(t, body(nil))
	e, _ := s.Upserted("/tms/api", 1, t0)
	var d map[string]any
	_ = json.Unmarshal(e.Data, &d)
	d["geometry"] = map[string]any{"type": "Polygon", "coordinates": [][][2]float64{{{0, 0}, {1, 1}, {1, 0}, {0, 1}, {0, 0}}}}
	delete(d, "radius_m")
	e.Data, _ = json.Marshal(d)
	c, err := FromEvent(e)
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Station.Geometry().Polygons(); len(got) != 1 || len(got[0][0]) != 5 {
		t.Errorf("polygons %v", got)
	}
}

// TestFromEventIgnoresAdditions: a v1 schema may gain optional fields; an
// older reader must go on reading.
func TestFromEventIgnoresAdditions(t *testing.T) {
	t.Parallel()
	s := mustParse(t, body(nil))
	e, _ := s.Upserted("/tms/api", 1, t0)
	var d map[string]any
	_ = json.Unmarshal(e.Data, &d)
	d["colour"] = "red"
	e.Data, _ = json.Marshal(d)
	if _, err := FromEvent(e); err != nil {
		t.Error(err)
	}
}

func TestOverridesOnlyWhatIsGiven(t *testing.T) {
	t.Parallel()
	s := mustParse(t, body(map[string]any{"detection": `{"exit_margin_m": 0, "enter_confirm_s": 0.25}`}))
	got := s.Geofence(1).Detection.Apply(geofence.DefaultDetection)
	want := geofence.DefaultDetection
	want.ExitMarginM, want.EnterConfirm = 0, 250*time.Millisecond
	if got != want {
		t.Errorf("detection %+v, want %+v", got, want)
	}
	if c := s.Shape().Circle; c == nil || *c != (geo.Circle{Center: geo.Point{Lat: 31.2304, Lng: 121.4737}, RadiusM: 300}) {
		t.Errorf("shape %s", fmt.Sprint(c))
	}
}
