package backfill

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tmsfleet/tms/adapters/g7api"
	"github.com/tmsfleet/tms/domain/deadletter"
	"github.com/tmsfleet/tms/domain/event"
	"github.com/tmsfleet/tms/domain/position"
)

// Source is the CloudEvents source of the events a backfill produces: the
// only thing that tells a backfilled fix from a live one (whose source is
// /tms/ingest/g7). Its id is the live fix's.
const Source = position.BackfillSource

// ProgressSource names G7's backfills in backfill_progress.
const ProgressSource = "g7"

// stage and origin name a backfill in its dead letters.
const (
	stage  = "backfill"
	origin = "g7api:" + g7api.HistoryPath
)

// History walks a vehicle's past track; *g7api.Client satisfies it.
type History interface {
	History(ctx context.Context, plate string, from, to time.Time, fn func(g7api.Page) error) error
}

// Producer writes records and waits for Kafka's answer to each;
// *kgo.Client satisfies it (acks=all, idempotent, as tms's clients are).
type Producer interface {
	ProduceSync(ctx context.Context, rs ...*kgo.Record) kgo.ProduceResults
}

// Progresses keeps the progress of backfills and knows which fixes tms
// has; *Store satisfies it.
type Progresses interface {
	Load(ctx context.Context, source, plate string, from, to time.Time) (Progress, bool, error)
	Save(ctx context.Context, p Progress, now time.Time) error
	Known(ctx context.Context, plate string, from, through time.Time) (map[int64]bool, error)
}

// Config configures a backfill.
type Config struct {
	// History is where the tracks come from (required).
	History History
	// Producer writes the fixes and dead letters (required unless DryRun).
	Producer Producer
	// Store keeps the progress and knows the fixes tms has (required).
	Store Progresses
	// PositionsTopic and DeadLetterTopic are the topics' names in the
	// cluster (namespace included). Defaults the contract's names.
	PositionsTopic, DeadLetterTopic string
	// DryRun walks the tracks and counts, and writes nothing.
	DryRun bool
	// Clock dates the progress records. Default time.Now.
	Clock func() time.Time
	// OnPage, when set, is told of every page once it is done (in Kafka,
	// and recorded, unless DryRun): for progress bars and log lines.
	OnPage func(Update)
	// Logger; default slog's.
	Logger *slog.Logger
}

func (c *Config) setDefaults() {
	if c.PositionsTopic == "" {
		c.PositionsTopic = event.TopicPositions
	}
	if c.DeadLetterTopic == "" {
		c.DeadLetterTopic = event.TopicDeadLetter
	}
	if c.Clock == nil {
		c.Clock = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

// Validate reports every problem of a config that cannot work.
func (c *Config) Validate() error {
	var errs []error
	if c.History == nil || c.Store == nil {
		errs = append(errs, errors.New("backfill: a history source and a store are required"))
	}
	if c.Producer == nil && !c.DryRun {
		errs = append(errs, errors.New("backfill: a producer is required (unless it is a dry run)"))
	}
	return errors.Join(errs...)
}

// Summary is what a backfill did (or, dry, would do) for one plate.
type Summary struct {
	Plate string
	// Fetched counts the rows G7 returned in the range; Rejected those
	// that were not valid fixes (dead letters); Known the fixes tms had
	// already; Added the fixes appended to tms.positions (in a dry run:
	// that would be). Fetched = Rejected + Known + Added, less rows G7
	// repeated (the same plate and fix time).
	Fetched, Rejected, Known, Added int64
	// Pages and Requests count G7 pages and HTTP requests (retries
	// included).
	Pages, Requests int64
	// ResumedFrom is where a rerun started: the previous run's progress.
	ResumedFrom *time.Time
	// AlreadyDone says an earlier run completed the range: nothing was
	// fetched.
	AlreadyDone bool
	// Completed says the whole range is in Kafka (always false in a dry
	// run, which puts nothing there).
	Completed bool
}

// Update reports a page done.
type Update struct {
	Plate    string
	From, To time.Time
	// Page is the page, Summary the plate's totals with it.
	Page    g7api.Page
	Summary Summary
}

// Backfill appends G7's history of vehicles to tms.positions.
type Backfill struct {
	cfg Config
	log *slog.Logger
}

// New validates cfg and builds a backfill.
func New(cfg Config) (*Backfill, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Backfill{cfg: cfg, log: cfg.Logger.With("component", "backfill")}, nil
}

// Run backfills each of plates over [from, to), one after the other, and
// returns a summary per plate it got to. The first error ends the run: a
// wrong secret or a Kafka outage would fail every plate alike. What was
// done before it is recorded: a rerun continues from there.
func (b *Backfill) Run(ctx context.Context, plates []string, from, to time.Time) ([]Summary, error) {
	if !from.Before(to) {
		return nil, fmt.Errorf("backfill: the range's start, %s, is not before its end, %s",
			from.Format(time.RFC3339), to.Format(time.RFC3339))
	}
	var out []Summary
	for _, plate := range plates {
		s, err := b.plate(ctx, plate, from.UTC(), to.UTC())
		out = append(out, s)
		if err != nil {
			return out, fmt.Errorf("backfill of %s: %w", plate, err)
		}
	}
	return out, nil
}

func (b *Backfill) plate(ctx context.Context, plate string, from, to time.Time) (Summary, error) {
	s := Summary{Plate: plate}
	prog := Progress{Source: ProgressSource, Plate: plate, From: from, To: to, Until: from, StartedAt: b.cfg.Clock()}
	if !b.cfg.DryRun {
		p, ok, err := b.cfg.Store.Load(ctx, ProgressSource, plate, from, to)
		if err != nil {
			return s, err
		}
		if ok {
			prog = p
			s.Fetched, s.Rejected, s.Known, s.Added, s.Pages, s.Requests = p.Fetched, p.Rejected, p.Known, p.Added, p.Pages, p.Requests
			if p.CompletedAt != nil {
				s.AlreadyDone, s.Completed = true, true
				return s, nil
			}
			until := p.Until
			s.ResumedFrom = &until
			b.log.Info("resuming", "plate", plate, "from", until.UTC().Format(time.RFC3339Nano))
		}
	}
	start := prog.Until
	err := b.cfg.History.History(ctx, plate, start, to, func(page g7api.Page) error {
		if err := b.page(ctx, plate, page, &s); err != nil {
			return err
		}
		if !b.cfg.DryRun {
			prog.Until = page.Until
			prog.Fetched, prog.Rejected, prog.Known, prog.Added, prog.Pages, prog.Requests = s.Fetched, s.Rejected, s.Known, s.Added, s.Pages, s.Requests
			if err := b.cfg.Store.Save(ctx, prog, b.cfg.Clock()); err != nil {
				return err
			}
		}
		if b.cfg.OnPage != nil {
			b.cfg.OnPage(Update{Plate: plate, From: from, To: to, Page: page, Summary: s})
		}
		return nil
	})
	if err != nil {
		return s, err
	}
	if b.cfg.DryRun {
		return s, nil
	}
	now := b.cfg.Clock()
	prog.Until, prog.CompletedAt = to, &now
	if err := b.cfg.Store.Save(ctx, prog, now); err != nil {
		return s, err
	}
	s.Completed = true
	return s, nil
}

// page turns one page into records, leaves out the fixes tms has, and
// produces the rest, waiting for Kafka to acknowledge every one.
func (b *Backfill) page(ctx context.Context, plate string, page g7api.Page, s *Summary) error {
	s.Pages++
	s.Requests += int64(page.Requests)
	s.Fetched += int64(len(page.Items))
	var first, last time.Time
	for _, it := range page.Items {
		if it.Rejection != nil {
			continue
		}
		if first.IsZero() {
			first = it.Position.FixTime
		}
		last = it.Position.FixTime // items are in fix-time order
	}
	known := map[int64]bool{}
	if !first.IsZero() {
		var err error
		if known, err = b.cfg.Store.Known(ctx, plate, first, last); err != nil {
			return err
		}
	}
	var records []*kgo.Record
	for _, it := range page.Items {
		if it.Rejection != nil {
			s.Rejected++
			l := deadletter.New(stage, origin, it.Rejection.Reason, it.Rejection.Field, it.Rejection.Detail, it.Raw,
				it.ReceivedAt).WithVehicle(plate)
			e, err := l.Event(Source)
			if err != nil {
				return fmt.Errorf("encode a dead letter: %w", err)
			}
			records = append(records, record(b.cfg.DeadLetterTopic, l.Vehicle, e, l.ReceivedAt))
			continue
		}
		p := it.Position
		at := p.FixTime.UnixMicro()
		if known[at] {
			s.Known++
			continue
		}
		known[at] = true // G7 repeating a row within the page
		e, err := p.Event(Source)
		if err != nil {
			return fmt.Errorf("encode a position: %w", err)
		}
		s.Added++
		records = append(records, record(b.cfg.PositionsTopic, plate, e, p.ReceivedAt))
	}
	if b.cfg.DryRun || len(records) == 0 {
		return nil
	}
	if err := b.cfg.Producer.ProduceSync(ctx, records...).FirstErr(); err != nil {
		return fmt.Errorf("produce %d records: %w", len(records), err)
	}
	return nil
}

// record builds a Kafka record for an event, keyed by the plate and
// stamped with when it was fetched, as ingest stamps a live fix with its
// receipt: the topic's time index follows arrival.
func record(topic, key string, e event.Envelope, at time.Time) *kgo.Record {
	value, err := json.Marshal(e)
	if err != nil {
		// An envelope is strings, times and raw JSON already encoded.
		panic(fmt.Sprintf("backfill: encode %s envelope: %v", e.Type, err))
	}
	r := &kgo.Record{
		Topic: topic, Value: value, Timestamp: at,
		Headers: []kgo.RecordHeader{{Key: "content-type", Value: []byte(event.StructuredContentType)}},
	}
	if key != "" {
		r.Key = []byte(key)
	}
	return r
}
