package stationcmd_test

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/tmsfleet/tms/adapters/kafka"
	"github.com/tmsfleet/tms/domain/geofence"
	"github.com/tmsfleet/tms/domain/station"
	"github.com/tmsfleet/tms/internal/metricstest"
	"github.com/tmsfleet/tms/pipeline/stationcmd"
)

// refuseLarge is an Indexer that refuses circles over 1 km and polygons
// of more than one ring.
type refuseLarge struct{}

func (refuseLarge) Indexable(s geofence.Shape) error {
	if (s.Circle != nil && s.Circle.RadiusM > 1000) || (s.Circle == nil && len(s.Polygons[0]) > 1) {
		return errors.New("too large")
	}
	return nil
}

// TestStationsAreAdmittedBeforeAnythingElse: a station of more positions
// than the Rules allow, or one the Indexer refuses, is a ValidationError
// naming the field, before the command touches Kafka or Postgres (there
// are none here: a command that got further would fail otherwise).
func TestStationsAreAdmittedBeforeAnythingElse(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	c, err := stationcmd.New(stationcmd.Config{
		Kafka: &kafka.Config{Brokers: []string{"127.0.0.1:1"}, Logger: slog.Default()}, Pool: &pgxpool.Pool{},
		Rules: station.Rules{MaxPoints: 20}, Indexer: refuseLarge{}, Registerer: reg,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	square := func(x float64) string {
		return fmt.Sprintf("[[%v, 31], [%v, 31], [%v, 31.01], [%v, 31.01], [%v, 31]]", x, x+0.01, x+0.01, x, x)
	}
	parse := func(geometry string, extra string) *station.Station {
		t.Helper()
		s, err := station.Parse([]byte(`{"id": "S1", "name": "s", "type": "oil", "geometry": ` + geometry + extra + `}`))
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	cases := []struct {
		name  string
		s     *station.Station
		field string
	}{
		{"a big circle", parse(`{"type": "Point", "coordinates": [121, 31]}`, `, "radius_m": 5000`), "radius_m"},
		{"a polygon with a hole", parse(`{"type": "Polygon", "coordinates": [`+square(121)+`, [[121.002, 31.002], [121.004, 31.002], [121.004, 31.004], [121.002, 31.002]]]}`, ""), "geometry"},
		{"25 positions", parse(`{"type": "MultiPolygon", "coordinates": [[`+square(121)+`], [`+square(121.1)+`], [`+square(121.2)+`], [`+square(121.3)+`], [`+square(121.4)+`]]}`, ""), "geometry.coordinates"},
	}
	for _, tc := range cases {
		for _, do := range []func() error{
			func() error { _, err := c.Create(t.Context(), tc.s); return err },
			func() error { _, err := c.Put(t.Context(), tc.s, station.Condition{}); return err },
		} {
			var verr *station.ValidationError
			if err := do(); !errors.As(err, &verr) || len(verr.Fields) != 1 || verr.Fields[0].Field != tc.field {
				t.Errorf("%s: %v; want a ValidationError on %s", tc.name, err, tc.field)
			} else if tc.field != "geometry.coordinates" && !strings.Contains(verr.Fields[0].Detail, "cannot index") {
				t.Errorf("%s: %q does not say why", tc.name, verr.Fields[0].Detail)
			}
		}
	}
	if n := metricstest.Sum(t, reg, "tms_station_commands_total", "command", "create", "outcome", "invalid"); n != 3 {
		t.Errorf("%v creates counted invalid, want 3", n)
	}
	// The rules are Parse's too.
	if _, err := c.Parse([]byte(`{"name": "s", "type": "oil", "geometry": {"type": "MultiPolygon", "coordinates": [[` +
		square(121) + `], [` + square(121.1) + `], [` + square(121.2) + `], [` + square(121.3) + `], [` + square(121.4) + `]]}}`)); err == nil ||
		!strings.Contains(err.Error(), "more than 20 positions") {
		t.Errorf("Parse: %v", err)
	}
}
