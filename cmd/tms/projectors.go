package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"

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
	settings, err := e.cfg.readModels()
	if err != nil {
		return nil, err
	}
	deps := projector.Deps{Kafka: kc, Pool: pool, Members: e.cfg.ProjectorMembers, Registerer: e.registry, Logger: e.log}
	var out []runner
	for _, r := range projections.Configured(settings) {
		run, err := r.NewProjector(deps)
		if err != nil {
			return nil, err
		}
		out = append(out, runner{r.Spec, run})
	}
	return out, nil
}

// readModelTables lists the tables of every registered read model.
func readModelTables() []string {
	var out []string
	for _, r := range projections.All() {
		out = append(out, r.Tables...)
	}
	return out
}

func replayReadModelsCommand(cfg *config) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "read-models",
		Short: "Rebuild every read model from the topics",
		Long: `Empties the read models the projectors build (` + strings.Join(readModelTables(), ", ") + `)
and their projectors' offsets, then projects the topics again up to where they
end now, and exits. The project role must not run meanwhile: this command
refuses to start while any projector's consumer group has members. Replay
results (replay_runs) are not read models of the topics and are kept.`,
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
			specs := make([]projector.Spec, len(runners))
			for i, r := range runners {
				described, err := adm.DescribeGroups(ctx, kc.Group(r.Name))
				if err != nil {
					return err
				}
				if g := described[kc.Group(r.Name)]; len(g.Members) > 0 {
					return fmt.Errorf("projector %s is running (%d members in its group): stop the project role first "+
						"(an instance with TMS_INSTANCE_ID stays a member for the session timeout, 45 s, after it stops)", r.Name, len(g.Members))
				}
				specs[i] = r.Spec
			}
			if err := projector.Reset(ctx, pool, specs...); err != nil {
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
	topics := make([]string, len(r.Topics))
	for i, t := range r.Topics {
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
			WHERE projector = $1 AND topic = ANY($2)`, r.Name, topics).Scan(&committed); err != nil {
			return err
		}
		if committed >= end {
			cancel()
			return <-done
		}
		select {
		case err := <-done:
			return fmt.Errorf("projector %s stopped: %w", r.Name, err)
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
}
