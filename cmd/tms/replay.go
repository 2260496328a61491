package main

import (
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
('replay geofence'), or every read model from scratch ('replay read-models').`,
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
of the range enter flagged initial; those inside at its end have no exit.`,
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
				return errors.New("--from must be before --to")
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
			pool, err := env.postgres(ctx)
			if err != nil {
				return err
			}
			store := replays.NewStore(pool)
			collector := replays.NewCollector()
			started := time.Now()
			rc := pipeline.ReplayConfig{Kafka: kc, Geofence: cfg.geofence(), DecodeStation: decodeStation,
				StationID: stationID, From: from, To: to}
			res, err := pipeline.Replay(ctx, rc, func(t geofence.Transition) error { return collector.Add(t) })
			if err != nil {
				return err
			}
			run := replays.Run{ID: uuid.NewString(), StationID: stationID, StationVersion: res.Station.Version,
				From: from, To: to, StartedAt: started}
			if err := store.Start(ctx, run); err != nil {
				return err
			}
			visits := collector.Visits()
			if err := store.Finish(ctx, run.ID, res.FixesRead, visits, time.Now()); err != nil {
				_ = store.Fail(ctx, run.ID, err, time.Now())
				return err
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
