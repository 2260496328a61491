package main

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tmsfleet/tms/adapters/kafka"
	"github.com/tmsfleet/tms/projections"
	"github.com/tmsfleet/tms/projections/projector"
)

// runner is one registered projection's projector, ready to run.
type runner struct {
	projector.Spec
	run func(context.Context) error
}

// projectors builds the project role: the projector of every registered
// read model (projections.All), each a consumer group of its own. Those
// of partitioned topics run e.cfg.ProjectorMembers members each, so that
// their transactions use more than one database backend and core.
func (e *environment) projectors(kc *kafka.Config, pool *pgxpool.Pool) ([]runner, error) {
	if e.cfg.ProjectorMembers < 1 {
		return nil, fmt.Errorf("TMS_PROJECTOR_MEMBERS: must be at least 1, not %d", e.cfg.ProjectorMembers)
	}
	deps := projector.Deps{Kafka: kc, Pool: pool, Members: e.cfg.ProjectorMembers, Registerer: e.registry, Logger: e.log}
	var out []runner
	for _, r := range projections.All() {
		run, err := r.NewProjector(deps)
		if err != nil {
			return nil, err
		}
		out = append(out, runner{r.Spec, run})
	}
	return out, nil
}
