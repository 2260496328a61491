package main

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/tmsfleet/tms/adapters/kafka"
	"github.com/tmsfleet/tms/domain/event"
	"github.com/tmsfleet/tms/domain/position"
	"github.com/tmsfleet/tms/domain/station"
	"github.com/tmsfleet/tms/projections/projector"
	"github.com/tmsfleet/tms/projections/stations"
	"github.com/tmsfleet/tms/projections/vehicles"
	"github.com/tmsfleet/tms/projections/visits"
)

// runner is one projector, ready to run.
type runner struct {
	name   string
	topics []string
	run    func(context.Context) error
}

// projectors builds the project role: one projector per read model, each
// a consumer group of its own. The vehicle-keyed topics' projectors run
// e.cfg.ProjectorMembers members each, so that their transactions use
// more than one database backend and core.
func (e *environment) projectors(kc *kafka.Config, pool *pgxpool.Pool) ([]runner, error) {
	if e.cfg.ProjectorMembers < 1 {
		return nil, fmt.Errorf("TMS_PROJECTOR_MEMBERS: must be at least 1, not %d", e.cfg.ProjectorMembers)
	}
	var out []runner
	v, err := projector.New(projector.Config[position.Position]{Kafka: kc, Pool: pool, Members: e.cfg.ProjectorMembers,
		Projection: vehicles.NewProjection(e.registry, e.log), Registerer: e.registry, Logger: e.log})
	if err != nil {
		return nil, err
	}
	out = append(out, runner{vehicles.ProjectionName, []string{event.TopicPositions}, v.Run})
	s, err := projector.New(projector.Config[station.Change]{Kafka: kc, Pool: pool,
		Projection: stations.NewProjection(e.registry, e.log), Registerer: e.registry, Logger: e.log})
	if err != nil {
		return nil, err
	}
	out = append(out, runner{stations.ProjectionName, []string{event.TopicStations}, s.Run})
	vi, err := projector.New(projector.Config[visits.Change]{Kafka: kc, Pool: pool, Members: e.cfg.ProjectorMembers,
		Projection: visits.NewProjection(e.registry, e.log), Registerer: e.registry, Logger: e.log})
	if err != nil {
		return nil, err
	}
	out = append(out, runner{visits.ProjectionName, []string{event.TopicGeofence}, vi.Run})
	return out, nil
}

// projectionTables are the tables the projectors build, with their
// offsets; replay read-models empties them.
const projectionTables = "positions, vehicles, stations, visits, projector_offsets"

func replayReadModelsCommand(cfg *config) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "read-models",
		Short: "Rebuild every read model from the topics",
		Long: `Empties the read models the projectors build (positions, vehicles, stations,
visits) and their offsets, then projects the topics again up to where they end
now, and exits. The project role must not run meanwhile: this command refuses
to start while any projector's consumer group has members. Replay results
(replay_runs) are not read models of the topics and are kept.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			env, err := newEnvironment(*cfg)
			if err != nil {
				return err
			}
			defer env.close()
			kc, err := env.kafka(ctx)
			if err != nil {
				return err
			}
			pool, err := env.postgres(ctx, poolProject)
			if err != nil {
				return err
			}
			runners, err := env.projectors(kc, pool)
			if err != nil {
				return err
			}
			adm, err := kc.NewAdmin("replay-admin")
			if err != nil {
				return err
			}
			defer adm.Close()
			for _, r := range runners {
				described, err := adm.DescribeGroups(ctx, kc.Group(r.name))
				if err != nil {
					return err
				}
				if g := described[kc.Group(r.name)]; len(g.Members) > 0 {
					return fmt.Errorf("projector %s is running (%d members in its group): stop the project role first", r.name, len(g.Members))
				}
			}
			if _, err := pool.Exec(ctx, "TRUNCATE "+projectionTables); err != nil {
				return err
			}
			start := time.Now()
			for _, r := range runners {
				if err := projectToEnd(ctx, adm, kc, pool, r); err != nil {
					return err
				}
			}
			fmt.Fprintf(cmd.OutOrStdout(), "read models rebuilt from the topics in %s\n", time.Since(start).Round(time.Millisecond))
			return nil
		},
	}
	cfg.bindConnectionFlags(cmd.Flags())
	return cmd
}

// projectToEnd runs one projector until it has committed everything its
// topics hold now.
func projectToEnd(ctx context.Context, adm *kadm.Client, kc *kafka.Config, pool *pgxpool.Pool, r runner) error {
	var end int64
	topics := make([]string, len(r.topics))
	for i, t := range r.topics {
		topics[i] = kc.Topic(t)
	}
	// The end a read_committed reader can reach: the last stable offset.
	ends, err := adm.ListCommittedOffsets(ctx, topics...)
	if err != nil {
		return err
	}
	ends.Each(func(o kadm.ListedOffset) { end += o.Offset })
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- r.run(runCtx) }()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		var committed int64
		if err := pool.QueryRow(ctx, `SELECT coalesce(sum(next_offset), 0) FROM projector_offsets
			WHERE projector = $1 AND topic = ANY($2)`, r.name, topics).Scan(&committed); err != nil {
			return err
		}
		if committed >= end {
			cancel()
			return <-done
		}
		select {
		case err := <-done:
			return fmt.Errorf("projector %s stopped: %w", r.name, err)
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
}
