package main

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"

	"github.com/tmsfleet/tms/adapters/g7api"
	"github.com/tmsfleet/tms/domain/event"
	"github.com/tmsfleet/tms/domain/position"
	"github.com/tmsfleet/tms/pipeline/backfill"
)

// g7APISettings are G7's HTTP API (docs/backfill.md, "Settings"), for
// `tms backfill g7`, and the bound of what replays hold of backfilled
// history.
type g7APISettings struct {
	G7APIBaseURL string `env:"G7_API_BASE_URL"`
	// G7APIURL is DESIGN.md's name of the same setting; G7_API_BASE_URL
	// wins when both are set.
	G7APIURL              string        `env:"G7_API_URL"`
	G7APIKey              string        `env:"G7_API_KEY"`
	G7APISecret           g7api.Secret  `env:"G7_API_SECRET"`
	G7APIRate             float64       `env:"G7_API_RATE" envDefault:"5"`
	G7APITimeout          time.Duration `env:"G7_API_TIMEOUT" envDefault:"30s"`
	G7APIRetries          int           `env:"G7_API_RETRIES" envDefault:"6"`
	G7APIBackoff          time.Duration `env:"G7_API_BACKOFF" envDefault:"500ms"`
	G7APIBackoffMax       time.Duration `env:"G7_API_BACKOFF_MAX" envDefault:"30s"`
	G7APIMaxResponseBytes int64         `env:"G7_API_MAX_RESPONSE_BYTES" envDefault:"8388608"`
	G7APITimeInterval     time.Duration `env:"G7_API_TIME_INTERVAL" envDefault:"0s"`
	G7APIThrottleCodes    []string      `env:"G7_API_THROTTLE_CODES" envSeparator:"," envDefault:"429"`
	// ReplayMaxReorderedFixes bounds the fixes `tms replay geofence` holds
	// to replay in fix-time order the vehicles whose backfilled fixes
	// came after newer ones (docs/backfill.md, "Late fixes").
	ReplayMaxReorderedFixes int `env:"TMS_REPLAY_MAX_REORDERED_FIXES" envDefault:"5000000"`
}

// g7API builds the G7 client's config. A setting given as 0 is refused
// rather than taken for its default: 0 retries is -1 here, and a rate or
// a timeout of 0 is a mistake.
func (s g7APISettings) g7API(log *slog.Logger) (g7api.Config, error) {
	var errs []error
	if s.G7APIRate <= 0 {
		errs = append(errs, fmt.Errorf("G7_API_RATE: %g: must be positive (requests per second)", s.G7APIRate))
	}
	if s.G7APITimeout <= 0 {
		errs = append(errs, fmt.Errorf("G7_API_TIMEOUT: %s: must be positive", s.G7APITimeout))
	}
	if s.G7APIRetries < -1 {
		errs = append(errs, fmt.Errorf("G7_API_RETRIES: %d: must be -1 (none) or more", s.G7APIRetries))
	}
	if s.G7APIMaxResponseBytes <= 0 {
		errs = append(errs, fmt.Errorf("G7_API_MAX_RESPONSE_BYTES: %d: must be positive", s.G7APIMaxResponseBytes))
	}
	if err := errors.Join(errs...); err != nil {
		return g7api.Config{}, err
	}
	base := s.G7APIBaseURL
	if base == "" {
		base = s.G7APIURL
	}
	retries := s.G7APIRetries
	if retries == 0 {
		retries = -1
	}
	return g7api.Config{
		BaseURL: base, Key: s.G7APIKey, Secret: s.G7APISecret, Rate: s.G7APIRate, Timeout: s.G7APITimeout,
		Retries: retries, Backoff: s.G7APIBackoff, BackoffMax: s.G7APIBackoffMax, MaxResponseBytes: s.G7APIMaxResponseBytes,
		TimeInterval: s.G7APITimeInterval, ThrottleCodes: s.G7APIThrottleCodes, Logger: log,
	}, nil
}

type backfillFlags struct {
	plates   []string
	allKnown bool
	from, to string
	dryRun   bool
	progress string
}

func backfillCommand(cfg *config) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "backfill",
		Short: "Fill gaps in tms's history from a provider's API",
	}
	cmd.AddCommand(backfillG7Command(cfg))
	return cmd
}

func backfillG7Command(cfg *config) *cobra.Command {
	var f backfillFlags
	cmd := &cobra.Command{
		Use:   "g7 (--plate P ... | --all-known) --from TIME --to TIME [--dry-run]",
		Short: "Append vehicles' past tracks from G7's HTTP API to tms.positions",
		Long: `Fetches each vehicle's track over [--from, --to) (RFC 3339) from G7's
history_location (signed with G7_API_KEY and G7_API_SECRET, in windows of 31
days and pages of 1,000 rows, paced by G7_API_RATE, retried with backoff) and
appends the fixes tms does not have yet to tms.positions, as the live feed
would have (the same event ids; source /tms/backfill/g7). Rows that are not
valid fixes go to tms.deadletter. Read models, 'tms replay geofence' and the
trips read model take them from there (docs/backfill.md).

How far each plate got is recorded once Kafka has its fixes: run the same
command again after an interruption and it goes on from there; a range done
is not fetched again. --dry-run fetches and counts, per plate, the fixes it
would add, and writes nothing. --all-known takes every plate tms has a fix
of. On a terminal it shows a progress bar; otherwise it logs each page.`,
		Example: `  tms backfill g7 --plate 沪A12345 --from 2026-10-01T00:00:00+08:00 --to 2026-11-01T00:00:00+08:00 --dry-run
  tms backfill g7 --plate 沪A12345,沪B67890 --from 2026-10-01T00:00:00+08:00 --to 2026-11-01T00:00:00+08:00
  tms backfill g7 --all-known --from 2026-11-20T00:00:00Z --to 2026-11-22T00:00:00Z`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runBackfill(cmd, *cfg, f) },
	}
	fs := cmd.Flags()
	cfg.bindConnectionFlags(fs)
	fs.StringSliceVar(&f.plates, "plate", nil, "a plate to backfill; repeat the flag or give a comma list")
	fs.BoolVar(&f.allKnown, "all-known", false, "backfill every plate tms knows (the vehicles read model)")
	fs.StringVar(&f.from, "from", "", "start of the range, RFC 3339 (required)")
	fs.StringVar(&f.to, "to", "", "end of the range, RFC 3339, excluded (required)")
	fs.BoolVar(&f.dryRun, "dry-run", false, "fetch and count the fixes each plate would add; write nothing")
	fs.StringVar(&f.progress, "progress", "auto", "auto (a bar when stdout is a terminal, else log lines), bar, log or none")
	fs.StringVar(&cfg.Backfill.G7APIBaseURL, "g7-api-base-url", cfg.Backfill.G7APIBaseURL, "G7's open API base URL (G7_API_BASE_URL)")
	fs.Float64Var(&cfg.Backfill.G7APIRate, "rate", cfg.Backfill.G7APIRate, "G7 requests per second, retries included (G7_API_RATE)")
	return cmd
}

// backfillRange reads --from and --to.
func backfillRange(f backfillFlags) (from, to time.Time, err error) {
	if f.from == "" || f.to == "" {
		return from, to, errors.New("--from and --to are required (RFC 3339, e.g. 2026-10-01T00:00:00+08:00)")
	}
	if from, err = time.Parse(time.RFC3339, f.from); err != nil {
		return from, to, fmt.Errorf("--from: %w", err)
	}
	if to, err = time.Parse(time.RFC3339, f.to); err != nil {
		return from, to, fmt.Errorf("--to: %w", err)
	}
	if !from.Before(to) {
		return from, to, fmt.Errorf("--from (%s) must be before --to (%s)", f.from, f.to)
	}
	return from.UTC(), to.UTC(), nil
}

// backfillPlates reads --plate (normalised as the feed's plates are, and
// each once) unless --all-known.
func backfillPlates(f backfillFlags) ([]string, error) {
	if f.allKnown == (len(f.plates) > 0) {
		return nil, errors.New("give --plate (one or more) or --all-known, not both")
	}
	seen := map[string]bool{}
	var out []string
	for _, p := range f.plates {
		n, rej := position.NormalizePlate("--plate", p)
		if rej != nil {
			return nil, rej
		}
		if !seen[n] {
			seen[n] = true
			out = append(out, n)
		}
	}
	return out, nil
}

func runBackfill(cmd *cobra.Command, cfg config, f backfillFlags) error {
	ctx := cmd.Context()
	from, to, err := backfillRange(f)
	if err != nil {
		return err
	}
	plates, err := backfillPlates(f)
	if err != nil {
		return err
	}
	mode, err := progressMode(f.progress, os.Stdout)
	if err != nil {
		return err
	}
	env, err := newEnvironment(cfg)
	if err != nil {
		return err
	}
	defer env.close()
	apiCfg, err := cfg.Backfill.g7API(env.log)
	if err != nil {
		return err
	}
	client, err := g7api.New(apiCfg)
	if err != nil {
		return err
	}
	pool, err := env.postgres(ctx, poolProject)
	if err != nil {
		return err
	}
	store := backfill.NewStore(pool)
	if f.allKnown {
		if plates, err = store.Plates(ctx); err != nil {
			return err
		}
		if len(plates) == 0 {
			return errors.New("--all-known: tms knows no vehicle yet (the vehicles read model is empty); name them with --plate")
		}
	}
	bc := backfill.Config{History: client, Store: store, DryRun: f.dryRun, Logger: env.log}
	if !f.dryRun {
		// A dry run writes nothing, so it needs no Kafka at all.
		kc, err := env.kafka(ctx)
		if err != nil {
			return err
		}
		producer, err := kc.NewClient("backfill")
		if err != nil {
			return err
		}
		defer producer.Close()
		bc.Producer = producer
		bc.PositionsTopic, bc.DeadLetterTopic = kc.Topic(event.TopicPositions), kc.Topic(event.TopicDeadLetter)
	}
	out := cmd.OutOrStdout()
	var view backfillView = backfillNone{}
	switch mode {
	case "bar":
		b := newBackfillBar(out, len(plates), to.Sub(from))
		defer b.close()
		// Log lines go above the bar instead of through it.
		log, err := cfg.loggerTo(b.p)
		if err != nil {
			return err
		}
		bc.Logger = log
		view = b
	case "log":
		view = backfillLog{log: env.log}
	}
	bc.OnPage = view.update
	b, err := backfill.New(bc)
	if err != nil {
		return err
	}
	started := time.Now()
	summaries, err := b.Run(ctx, plates, from, to)
	view.close()
	printBackfill(out, summaries, from, to, f.dryRun, time.Since(started))
	return err
}

// printBackfill writes the summary per plate.
func printBackfill(w io.Writer, summaries []backfill.Summary, from, to time.Time, dry bool, took time.Duration) {
	what := "backfill g7"
	if dry {
		what += " (dry run: nothing written)"
	}
	plates := "plates"
	if len(summaries) == 1 {
		plates = "plate"
	}
	fmt.Fprintf(w, "%s %s to %s, %d %s, %s\n", what, from.Format(time.RFC3339), to.Format(time.RFC3339), len(summaries), plates,
		took.Round(time.Millisecond))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	added := "added"
	if dry {
		added = "would add"
	}
	fmt.Fprintf(tw, "plate\tfetched\trejected\talready in tms\t%s\tpages\trequests\tstatus\n", added)
	var total backfill.Summary
	for _, s := range summaries {
		status := "interrupted: run the same command again to go on"
		switch {
		case s.AlreadyDone:
			status = "already done by an earlier run"
		case dry:
			status = "counted"
		case s.Completed && s.ResumedFrom != nil:
			status = "done (resumed from " + s.ResumedFrom.UTC().Format(time.RFC3339Nano) + ")"
		case s.Completed:
			status = "done"
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t%d\t%s\n", s.Plate, s.Fetched, s.Rejected, s.Known, s.Added, s.Pages, s.Requests, status)
		total.Fetched += s.Fetched
		total.Rejected += s.Rejected
		total.Known += s.Known
		total.Added += s.Added
		total.Pages += s.Pages
		total.Requests += s.Requests
	}
	fmt.Fprintf(tw, "total\t%d\t%d\t%d\t%d\t%d\t%d\t\n", total.Fetched, total.Rejected, total.Known, total.Added, total.Pages, total.Requests)
	_ = tw.Flush()
}

// backfillView shows a backfill's progress.
type backfillView interface {
	update(backfill.Update)
	close()
}

type backfillNone struct{}

func (backfillNone) update(backfill.Update) {}
func (backfillNone) close()                 {}

// backfillLog logs every page: a page is 1,000 rows and at least one
// request, so the lines come at G7's pace.
type backfillLog struct{ log *slog.Logger }

func (l backfillLog) update(u backfill.Update) {
	s := u.Summary
	l.log.Info("backfill progress", "plate", u.Plate, "window", fmt.Sprintf("%d/%d", u.Page.Window+1, u.Page.Windows),
		"until", u.Page.Until.UTC().Format(time.RFC3339), "percent", fmt.Sprintf("%.1f", 100*done(u)),
		"fetched", s.Fetched, "rejected", s.Rejected, "known", s.Known, "added", s.Added)
}

func (backfillLog) close() {}

// done is the share of a plate's range behind its last page.
func done(u backfill.Update) float64 {
	return float64(u.Page.Until.Sub(u.From)) / float64(u.To.Sub(u.From))
}

// backfillBar is one bar for the run (vbauerster/mpb): plates x the
// range's length, advanced by each page's Until.
type backfillBar struct {
	p   *mpb.Progress
	bar *mpb.Bar
	// span is the range's length in seconds, the bar's unit.
	span int64

	mu      sync.Mutex
	plate   string
	plates  int
	index   int
	last    string
	figures string
}

func newBackfillBar(w io.Writer, plates int, span time.Duration) *backfillBar {
	b := &backfillBar{p: mpb.New(mpb.WithOutput(w), mpb.WithRefreshRate(200*time.Millisecond), mpb.WithAutoRefresh()),
		span: max(int64(span/time.Second), 1), plates: plates}
	b.bar = b.p.AddBar(b.span*int64(plates), mpb.BarWidth(30),
		mpb.PrependDecorators(decor.Any(func(decor.Statistics) string { return b.name() }, decor.WC{W: 22, C: decor.DindentRight})),
		mpb.AppendDecorators(decor.Percentage(decor.WC{W: 6}), decor.Any(func(decor.Statistics) string { return b.describe() })))
	return b
}

func (b *backfillBar) name() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.plate == "" {
		return "asking G7"
	}
	return fmt.Sprintf("%s (%d/%d)", b.plate, b.index, b.plates)
}

func (b *backfillBar) describe() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.figures
}

func (b *backfillBar) update(u backfill.Update) {
	b.mu.Lock()
	if u.Plate != b.last {
		b.last = u.Plate
		b.index++
	}
	b.plate = u.Plate
	s := u.Summary
	// Short enough for an 80-column terminal; the summary has the rest.
	b.figures = fmt.Sprintf("  %d read, +%d", s.Fetched, s.Added)
	at := int64(b.index-1)*b.span + int64(done(u)*float64(b.span))
	b.mu.Unlock()
	b.bar.SetCurrent(at)
}

func (b *backfillBar) close() {
	if b.bar.Current() >= b.span*int64(b.plates) {
		b.bar.SetTotal(-1, true)
	} else {
		b.bar.Abort(false)
	}
	b.p.Wait()
}
