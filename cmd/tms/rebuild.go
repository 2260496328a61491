package main

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"
	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"

	"github.com/tmsfleet/tms/projections"
	"github.com/tmsfleet/tms/projections/projector"
	"github.com/tmsfleet/tms/projections/rebuild"
)

// rebuildFlags are the options of `tms rebuild` and its alias `tms
// replay read-models`.
type rebuildFlags struct {
	restart  bool
	progress string
}

func rebuildCommand(cfg *config) *cobra.Command {
	return newRebuildCommand(cfg, "rebuild [read model...]", nil)
}

// replayReadModelsCommand is `tms replay read-models`, the name the
// command had before it worked without downtime: the same command.
func replayReadModelsCommand(cfg *config) *cobra.Command {
	return newRebuildCommand(cfg, "read-models [read model...]", []string{"rebuild"})
}

func newRebuildCommand(cfg *config, use string, aliases []string) *cobra.Command {
	var f rebuildFlags
	names := make([]string, 0)
	for _, r := range projections.All() {
		names = append(names, r.ShortName())
	}
	cmd := &cobra.Command{
		Use:     use,
		Aliases: aliases,
		Short:   "Rebuild read models from the topics, without downtime",
		Long: `Rebuilds the named read models (` + strings.Join(names, ", ") + `; all when none is named)
from the start of their topics into fresh tables in a schema of their own,
while the live projectors and the API go on with the current ones. Once the
fresh tables have caught up with the live projectors, it puts them in their
place in one transaction (the live projectors pause for it, the API sees the
old tables or the new ones, never a mix), drops the old ones, and exits.
Also 'tms replay read-models'.

On a terminal it shows a progress bar per read model with its rate and time
left; otherwise it logs the progress every TMS_REBUILD_LOG_INTERVAL. GET
/api/v1/rebuilds shows it too. Interrupted (Ctrl-C, or killed), it goes on
from where it got to when run again with the same read models; --restart
drops an unfinished rebuild and starts afresh. Against a running 'tms serve'
(make run) it needs no settings: it finds the embedded services by the data
dir.`,
		Example: `  tms rebuild                     # every read model
  tms rebuild vehicles visits     # only these
  tms rebuild --restart visits    # drop an unfinished rebuild first`,
		RunE: func(cmd *cobra.Command, args []string) error { return runRebuild(cmd, *cfg, f, args) },
	}
	fs := cmd.Flags()
	cfg.bindConnectionFlags(fs)
	fs.BoolVar(&f.restart, "restart", false, "drop an unfinished rebuild (its shadow tables) and start afresh")
	fs.StringVar(&f.progress, "progress", "auto", "auto (a bar on a terminal, else log lines), bar, log or none")
	fs.IntVar(&cfg.RebuildMembers, "members", cfg.RebuildMembers, "consumer group members per read model (TMS_REBUILD_MEMBERS)")
	fs.IntVar(&cfg.RebuildMaxBatch, "max-batch", cfg.RebuildMaxBatch, "records applied per transaction at most (TMS_REBUILD_MAX_BATCH)")
	return cmd
}

func runRebuild(cmd *cobra.Command, cfg config, f rebuildFlags, names []string) error {
	ctx := cmd.Context()
	if err := cfg.rebuildLimits(); err != nil {
		return err
	}
	// The rebuild cuts trips by the same rules as the live projector.
	settings, err := cfg.readModels()
	if err != nil {
		return err
	}
	models, err := settings.Select(names...)
	if err != nil {
		return err
	}
	mode, err := progressMode(f.progress, os.Stderr)
	if err != nil {
		return err
	}
	env, err := newEnvironment(cfg)
	if err != nil {
		return err
	}
	defer env.close()
	env.rebuildConns = rebuild.PoolSize(len(models), cfg.RebuildMembers)
	kc, err := env.kafka(ctx)
	if err != nil {
		return err
	}
	pool, err := env.postgres(ctx, poolRebuild)
	if err != nil {
		return err
	}
	url, err := env.databaseURL(ctx)
	if err != nil {
		return err
	}
	log := env.log
	var view progressView
	switch mode {
	case "bar":
		b := newBars(os.Stderr)
		defer b.close()
		// Log lines go above the bars instead of through them.
		log, err = cfg.loggerTo(b.p)
		if err != nil {
			return err
		}
		view = b
	case "log":
		view = &progressLog{log: log, every: cfg.RebuildLogInterval}
	default:
		view = progressNone{}
	}
	res, err := rebuild.Run(ctx, rebuild.Config{
		ReadModels: models, Kafka: kc, Pool: pool, DatabaseURL: url,
		Members: cfg.RebuildMembers, MaxBatch: cfg.RebuildMaxBatch,
		SwitchLockTimeout: cfg.RebuildSwitchLockTimeout, SwitchWait: cfg.RebuildSwitchWait,
		ProgressInterval: cfg.RebuildProgressInterval,
		Restart:          f.restart, Report: view.update,
		Registerer: env.registry, Logger: log,
	})
	view.close()
	if err != nil {
		return err
	}
	verb := "rebuilt"
	if res.Resumed {
		verb = "rebuilt (resumed)"
	}
	rate := float64(res.Projected) / res.Elapsed.Seconds()
	fmt.Fprintf(cmd.OutOrStdout(), "rebuild %s: %s %s from %d events (%d in this run, %.0f/s) in %s, and switched over\n",
		res.ID, verb, strings.Join(shortNames(models), ", "), res.Records, res.Projected, rate, res.Elapsed.Round(time.Millisecond))
	return nil
}

func shortNames(models []projector.Registration) []string {
	out := make([]string, len(models))
	for i, m := range models {
		out[i] = m.ShortName()
	}
	return out
}

// progressMode reads a --progress flag (auto, bar, log, none): auto is a
// bar when out, where the progress goes, is a terminal, log lines
// otherwise.
func progressMode(flag string, out *os.File) (string, error) {
	switch flag {
	case "auto":
		if isTerminal(out) {
			return "bar", nil
		}
		return "log", nil
	case "bar", "log", "none":
		return flag, nil
	}
	return "", fmt.Errorf("--progress: %q is none of auto, bar, log, none", flag)
}

// isTerminal reports whether f is a terminal (a character device).
func isTerminal(f *os.File) bool {
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// progressView shows a rebuild's progress.
type progressView interface {
	update(rebuild.Progress)
	close()
}

type progressNone struct{}

func (progressNone) update(rebuild.Progress) {}
func (progressNone) close()                  {}

// progressLog logs each read model's progress every interval, and once
// at the end.
type progressLog struct {
	log   *slog.Logger
	every time.Duration
	last  time.Time
	final rebuild.Progress
}

func (l *progressLog) update(p rebuild.Progress) {
	l.final = p
	if time.Since(l.last) < l.every && p.State != rebuild.StateDone {
		return
	}
	l.last = time.Now()
	for _, m := range p.Models {
		args := []any{"rebuild", p.ID, "read_model", m.Name, "state", m.State, "done", m.Done, "total", m.Total,
			"percent", fmt.Sprintf("%.1f", percent(m)), "rate_per_s", fmt.Sprintf("%.0f", m.Rate)}
		if m.ETA != nil {
			args = append(args, "eta", m.ETA.Round(time.Second).String())
		}
		l.log.Info("rebuild progress", args...)
	}
}

func (l *progressLog) close() {}

func percent(m rebuild.Model) float64 {
	if m.Total == 0 {
		return 100
	}
	return 100 * float64(m.Done) / float64(m.Total)
}

// bars draws a progress bar per read model (vbauerster/mpb).
type bars struct {
	p      *mpb.Progress
	mu     sync.Mutex
	bars   map[string]*mpb.Bar
	latest map[string]rebuild.Model
	closed bool
}

func newBars(w io.Writer) *bars {
	return &bars{
		p:    mpb.New(mpb.WithOutput(w), mpb.WithWidth(40), mpb.WithRefreshRate(200*time.Millisecond)),
		bars: map[string]*mpb.Bar{}, latest: map[string]rebuild.Model{},
	}
}

func (b *bars) update(p rebuild.Progress) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, m := range p.Models {
		b.latest[m.Name] = m
		bar, ok := b.bars[m.Name]
		if !ok {
			name := m.Name
			// Made with no total, a bar does not complete when done
			// catches up with total: total grows while events arrive,
			// and only the switch completes the rebuild.
			bar = b.p.AddBar(0,
				mpb.PrependDecorators(decor.Name(name, decor.WC{W: 10, C: decor.DindentRight})),
				mpb.AppendDecorators(decor.Any(func(decor.Statistics) string { return b.describe(name) })))
			b.bars[m.Name] = bar
		}
		bar.SetTotal(m.Total, false)
		bar.SetCurrent(m.Done)
	}
	if p.State == rebuild.StateDone {
		for _, bar := range b.bars {
			bar.SetTotal(-1, true)
		}
	}
}

// describe is a bar's figures: records, rate and time left.
func (b *bars) describe(name string) string {
	b.mu.Lock()
	defer b.mu.Unlock()
	m := b.latest[name]
	eta := "--"
	if m.ETA != nil {
		eta = m.ETA.Round(time.Second).String()
	}
	return fmt.Sprintf("%d/%d events  %.0f/s  ETA %s  %s", m.Done, m.Total, m.Rate, eta, m.State)
}

func (b *bars) close() {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return
	}
	b.closed = true
	for _, bar := range b.bars {
		if !bar.Completed() {
			bar.Abort(false)
		}
	}
	b.mu.Unlock()
	b.p.Wait()
}
