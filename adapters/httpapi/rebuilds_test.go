package httpapi

import (
	"os"
	"testing"
	"time"

	"github.com/tmsfleet/tms/internal/testenv"
	"github.com/tmsfleet/tms/projections/rebuild"
)

// TestRebuilds: GET /api/v1/rebuilds lists the rebuilds newest first, each
// with its read models' progress, as openapi.json has it; a rebuild whose
// process is gone (nobody holds its lock) shows as interrupted; a
// database where no rebuild ever ran has none.
func TestRebuilds(t *testing.T) {
	t.Parallel()
	pool := openPool(t, testenv.FromEnv(os.LookupEnv))
	a := newDBAPI(t, pool)

	t.Run("none ever ran", func(t *testing.T) {
		r := a.get(t, "/api/v1/rebuilds")
		if got := decode[rebuildListJSON](t, r, "application/json"); len(got.Rebuilds) != 0 {
			t.Errorf("rebuilds %+v, want none", got.Rebuilds)
		}
		wantSchema(t, r.Body, "RebuildList")
	})

	if err := rebuild.EnsureState(t.Context(), pool); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(t.Context(), `
		INSERT INTO tms_rebuild.rebuilds (id, shadow_schema, read_models, state, started_at, updated_at, switched_at, finished_at) VALUES
		  ('00000000-0000-4000-8000-000000000001', 'tms_rebuild_a', '{vehicles}', 'done', $1, $1, $1, $1),
		  ('00000000-0000-4000-8000-000000000002', 'tms_rebuild_b', '{vehicles,visits}', 'building', $2, $2, NULL, NULL)`,
		base, base.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(t.Context(), `
		INSERT INTO tms_rebuild.rebuild_models (rebuild_id, read_model, tables, state, done, total, rate, eta_s, updated_at) VALUES
		  ('00000000-0000-4000-8000-000000000001', 'vehicles', '{positions,vehicles}', 'switched', 10, 10, 5, 0, $1),
		  ('00000000-0000-4000-8000-000000000002', 'visits', '{visits}', 'caught_up', 7, 7, 0, NULL, $2),
		  ('00000000-0000-4000-8000-000000000002', 'vehicles', '{positions,vehicles}', 'building', 250, 1000, 50, 15, $2)`,
		base, base.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	t.Run("newest first, with progress", func(t *testing.T) {
		r := a.get(t, "/api/v1/rebuilds")
		wantSchema(t, r.Body, "RebuildList")
		got := decode[rebuildListJSON](t, r, "application/json").Rebuilds
		if len(got) != 2 || got[0].ID != "00000000-0000-4000-8000-000000000002" || got[1].State != "done" || got[1].SwitchedAt == nil {
			t.Fatalf("rebuilds %+v; want the building one, then the done one", got)
		}
		// Its process is gone: nobody holds the rebuild lock.
		if got[0].State != "interrupted" {
			t.Errorf("a building rebuild without its process shows %q, want interrupted", got[0].State)
		}
		m := got[0].ReadModels
		if len(m) != 2 || m[0].Name != "vehicles" || m[0].Done != 250 || m[0].Total != 1000 || m[0].Percent != 25 ||
			m[0].RatePerS != 50 || m[0].ETAS == nil || *m[0].ETAS != 15 || m[1].Name != "visits" || m[1].ETAS != nil {
			t.Errorf("read models %+v", m)
		}
		if one := decode[rebuildListJSON](t, a.get(t, "/api/v1/rebuilds?limit=1"), "application/json").Rebuilds; len(one) != 1 {
			t.Errorf("limit=1 gave %d rebuilds", len(one))
		}
	})
	t.Run("a bad limit", func(t *testing.T) {
		if r := a.get(t, "/api/v1/rebuilds?limit=0"); r.Code != 400 {
			t.Errorf("limit=0: %d, want 400", r.Code)
		}
	})
}
