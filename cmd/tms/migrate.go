package main

import (
	"github.com/spf13/cobra"

	"github.com/tmsfleet/tms/adapters/postgres"
)

func migrateCommand(cfg *config) *cobra.Command {
	var down bool
	cmd := &cobra.Command{
		Use:   "migrate",
		Short: "Create or update the Postgres read models",
		Long: `Applies the SQL migrations in migrations/ to DATABASE_URL (or to the local
cluster under the data dir when DATABASE_URL is unset). Safe to run from
several instances at once. With --down, drops every read-model table:
'tms replay' (or the projectors, on their next start) rebuilds them from Kafka.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			env, err := newEnvironment(*cfg)
			if err != nil {
				return err
			}
			defer env.close()
			url, err := env.databaseURL(cmd.Context())
			if err != nil {
				return err
			}
			if down {
				return postgres.MigrateDown(url)
			}
			if err := postgres.Migrate(url); err != nil {
				return err
			}
			env.log.Info("read models are up to date", "database", postgres.Redact(url))
			return nil
		},
	}
	cfg.bindConnectionFlags(cmd.Flags())
	cmd.Flags().BoolVar(&down, "down", false, "drop every read-model table instead")
	return cmd
}
