package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/spf13/cobra"

	"github.com/tmsfleet/tms/domain/geofence"
	pipeline "github.com/tmsfleet/tms/pipeline/geofence"
	"github.com/tmsfleet/tms/projections/replays"
)

func replayCommand(cfg *config) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "replay",
		Short: "Derive history again from the topics",
		Long: `Kafka is tms's system of record; replay derives from it what the running
service would not: the history of a station that is new or changed
('replay geofence'), or read models from scratch without downtime ('replay
read-models', the same as 'tms rebuild').`,
	}
	cmd.AddCommand(replayGeofenceCommand(cfg), replayReadModelsCommand(cfg))
	return cmd
}

func replayGeofenceCommand(cfg *config) *cobra.Command {
	var stationID, fromText, toText string
	cmd := &cobra.Command{
		Use:   "geofence --station ID --from TIME [--to TIME]",
		Short: "Which vehicles visited a station, as it stands now, in a past time range",
		Long: `Applies one station, as it stands now, to the positions of a past time range
([--from, --to), RFC 3339; --to defaults to now) and stores the visits found as
a replay run of its own: tables replay_runs and replay_visits, and
GET /api/v1/replays/{id}. Nothing is written to tms.geofence: the result is
never mixed into the live events billing consumes. Vehicles inside at the start
of the range enter flagged initial; those inside at its end have no exit.
Backfilled fixes ('tms backfill g7') that reached the topic after newer ones
are taken in fix-time order: such a vehicle's fixes in the range are read
again and replayed in order (at most TMS_REPLAY_MAX_REORDERED_FIXES held). The
run is recorded as running once the station is found, and as failed, with the
reason, if it does not finish.`,
		Example: `  tms replay geofence --station S001 --from 2026-10-01T00:00:00+08:00 --to 2026-11-01T00:00:00+08:00`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			if stationID == "" || fromText == "" {
				return errors.New("--station and --from are required")
			}
			from, err := time.Parse(time.RFC3339, fromText)
			if err != nil {
				return fmt.Errorf("--from: %w", err)
			}
			to := time.Now()
			if toText != "" {
				if to, err = time.Parse(time.RFC3339, toText); err != nil {
					return fmt.Errorf("--to: %w", err)
				}
			}
			if !from.Before(to) {
				return fmt.Errorf("--from (%s) must be before --to (%s)", from.Format(time.RFC3339), to.Format(time.RFC3339))
			}
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
			store := replays.NewStore(pool)
			collector := replays.NewCollector()
			run := replays.Run{ID: uuid.NewString(), StationID: stationID, From: from, To: to, StartedAt: time.Now()}
			recorded := false
			if cfg.Backfill.ReplayMaxReorderedFixes < 1 {
				return fmt.Errorf("TMS_REPLAY_MAX_REORDERED_FIXES: %d: must be at least 1", cfg.Backfill.ReplayMaxReorderedFixes)
			}
			rc := pipeline.ReplayConfig{Kafka: kc, Geofence: cfg.geofence(), MaxVehicles: cfg.MaxVehicles,
				MaxReorderedFixes: cfg.Backfill.ReplayMaxReorderedFixes,
				StationID:         stationID, From: from, To: to,
				// The run is visible as running while positions are read, and
				// stays as failed if the replay does not finish.
				Found: func(st geofence.Station) error {
					run.StationVersion = st.Version
					if err := store.Start(ctx, run); err != nil {
						return err
					}
					recorded = true
					return nil
				},
			}
			res, err := pipeline.Replay(ctx, rc, collector.Add)
			visits := collector.Visits()
			if err == nil {
				err = store.Finish(ctx, run.ID, res.FixesRead, visits, time.Now())
			}
			if err != nil {
				if !recorded {
					return err
				}
				return failRun(ctx, store, run.ID, err)
			}
			vehicles := map[string]bool{}
			for _, v := range visits {
				vehicles[v.Vehicle] = true
			}
			fmt.Fprintf(cmd.OutOrStdout(), "replay %s: station %s (version %d), %s to %s: %d fixes read, %d visits by %d vehicles\n"+
				"  results: GET /api/v1/replays/%s (tables replay_runs, replay_visits)\n",
				run.ID, stationID, res.Station.Version, from.Format(time.RFC3339), to.Format(time.RFC3339),
				res.FixesRead, len(visits), len(vehicles), run.ID)
			return nil
		},
	}
	cfg.bindConnectionFlags(cmd.Flags())
	cmd.Flags().StringVar(&stationID, "station", "", "id of the station")
	cmd.Flags().StringVar(&fromText, "from", "", "start of the range, RFC 3339")
	cmd.Flags().StringVar(&toText, "to", "", "end of the range, RFC 3339 (default now)")
	return cmd
}

// failRun records run id as failed with err, and returns err naming the
// run. It records it even when ctx is canceled (an interrupted replay is
// a failed one), within a few seconds of its own.
func failRun(ctx context.Context, store *replays.Store, id string, err error) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	ferr := store.Fail(ctx, id, err, time.Now())
	err = fmt.Errorf("replay %s failed: %w", id, err)
	if ferr != nil {
		return errors.Join(err, fmt.Errorf("record replay %s as failed: %w", id, ferr))
	}
	return err
}
