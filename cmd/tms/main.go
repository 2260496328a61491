// Command tms runs the fleet tracking service and its tools: `tms serve`
// runs any set of roles (ingest, project, api) in one process, `tms
// migrate` creates the read models, `tms simulate` drives a demo fleet over
// MQTT, `tms replay` derives a station's history again, `tms rebuild`
// rebuilds read models without downtime, `tms backfill g7` fills gaps in
// the history from G7's HTTP API, `tms version` prints the build. Settings come from the environment
// and a .env file (see .env.example); flags override them.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
)

func main() {
	cfg, err := loadConfig()
	if err != nil {
		fmt.Fprintln(os.Stderr, "tms:", err)
		os.Exit(2)
	}
	// One root context: the first SIGINT or SIGTERM starts a clean stop.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	root := &cobra.Command{
		Use:           "tms",
		Short:         "Event-sourced fleet tracking: G7 positions over MQTT, Kafka, Postgres read models, HTTP and WebSocket",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(serveCommand(&cfg), migrateCommand(&cfg), simulateCommand(&cfg), replayCommand(&cfg), rebuildCommand(&cfg), backfillCommand(&cfg), versionCommand())
	if err := root.ExecuteContext(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "tms:", err)
		os.Exit(1)
	}
}
