package httpapi

import (
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/tmsfleet/tms/projections/rebuild"
)

// Bounds of GET /rebuilds.
const (
	defaultRebuildsLimit = 10
	maxRebuildsLimit     = 100
)

// rebuildJSON is a read-model rebuild (`tms rebuild`) as the API shows
// it. The first of the list is the running one, if any, else the last.
type rebuildJSON struct {
	ID         string             `json:"id"`
	State      string             `json:"state"`
	Detail     *string            `json:"detail"`
	StartedAt  time.Time          `json:"started_at"`
	UpdatedAt  time.Time          `json:"updated_at"`
	SwitchedAt *time.Time         `json:"switched_at"`
	FinishedAt *time.Time         `json:"finished_at"`
	ReadModels []rebuildModelJSON `json:"read_models"`
}

// rebuildModelJSON is one read model's progress in a rebuild: records of
// its topics projected (done) of those there are (total), the rate per
// second over the last seconds, and the seconds left at that rate (null
// while nothing moves).
type rebuildModelJSON struct {
	Name      string    `json:"name"`
	Tables    []string  `json:"tables"`
	State     string    `json:"state"`
	Done      int64     `json:"done"`
	Total     int64     `json:"total"`
	Percent   float64   `json:"percent"`
	RatePerS  float64   `json:"rate_per_s"`
	ETAS      *float64  `json:"eta_s"`
	UpdatedAt time.Time `json:"updated_at"`
}

// rebuildListJSON is the newest rebuilds.
type rebuildListJSON struct {
	Rebuilds []rebuildJSON `json:"rebuilds"`
}

func toRebuildJSON(r *rebuild.Rebuild) rebuildJSON {
	out := rebuildJSON{ID: r.ID, State: r.State, StartedAt: r.StartedAt.UTC(), UpdatedAt: r.UpdatedAt.UTC(),
		ReadModels: make([]rebuildModelJSON, 0, len(r.Models))}
	if r.Detail != "" {
		out.Detail = &r.Detail
	}
	for _, t := range []struct {
		from *time.Time
		to   **time.Time
	}{{r.SwitchedAt, &out.SwitchedAt}, {r.FinishedAt, &out.FinishedAt}} {
		if t.from != nil {
			u := t.from.UTC()
			*t.to = &u
		}
	}
	for _, m := range r.Models {
		j := rebuildModelJSON{Name: m.Name, Tables: nonNil(m.Tables), State: m.State, Done: m.Done, Total: m.Total,
			Percent: 100, RatePerS: m.Rate, UpdatedAt: m.UpdatedAt.UTC()}
		if m.Total > 0 {
			j.Percent = float64(m.Done) * 100 / float64(m.Total)
		}
		if m.ETA != nil {
			s := m.ETA.Seconds()
			j.ETAS = &s
		}
		out.ReadModels = append(out.ReadModels, j)
	}
	return out
}

// listRebuilds serves GET /api/v1/rebuilds: the newest rebuilds first,
// each with its read models' progress.
func (s *server) listRebuilds(c *gin.Context) {
	p := newParams(c.Request)
	limit := p.limit(defaultRebuildsLimit, maxRebuildsLimit)
	if err := p.err(); err != nil {
		fail(c, err)
		return
	}
	ctx, cancel := s.queryContext(c)
	defer cancel()
	list, err := s.cfg.Rebuilds.List(ctx, limit)
	if err != nil {
		fail(c, err)
		return
	}
	out := rebuildListJSON{Rebuilds: make([]rebuildJSON, 0, len(list))}
	for i := range list {
		out.Rebuilds = append(out.Rebuilds, toRebuildJSON(&list[i]))
	}
	writeJSON(c, http.StatusOK, contentJSON, out)
}
