package h3

import (
	"math"
	"testing"
)

func TestConfig(t *testing.T) {
	t.Parallel()
	var c Config
	c.setDefaults()
	if c.Resolution != DefaultResolution || c.CoarseCells != DefaultCoarseCells ||
		c.NearBucketDegrees != DefaultNearBucketDegrees || c.GeometryCache != DefaultGeometryCache {
		t.Errorf("defaults: %+v", c)
	}
	if err := (Config{}).Validate(); err != nil {
		t.Errorf("the zero Config: %v", err)
	}
	for _, bad := range []Config{
		{Resolution: 16},
		{Resolution: -1},
		{CoarseCells: -3},
		{NearBucketDegrees: math.NaN()},
		{NearBucketDegrees: 1e-6},
		{NearBucketDegrees: 100},
	} {
		if err := bad.Validate(); err == nil {
			t.Errorf("%+v: valid", bad)
		}
		if _, err := New(bad); err == nil {
			t.Errorf("New(%+v) succeeded", bad)
		}
	}
	ix, err := New(Config{Resolution: 12, GeometryCache: -1})
	if err != nil {
		t.Fatal(err)
	}
	if ix.cfg.Resolution != 12 || ix.cfg.CoarseCells != DefaultCoarseCells {
		t.Errorf("New kept %+v", ix.cfg)
	}
}
