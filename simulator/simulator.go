package simulator

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"
)

// encodingStream is the random stream of the encoder (which items carry
// strings or faults), apart from the vehicles' streams 0..n-1.
const encodingStream = math.MaxUint64

// itemSizeHint is about the size of one encoded item, to size buffers.
const itemSizeHint = 120

// Simulator runs a Fleet and publishes its fixes to an MQTT broker.
type Simulator struct {
	cfg     Config
	fleet   *Fleet
	stats   counters
	running atomic.Bool
}

// New validates cfg (after filling in its defaults) and builds the fleet.
// Run connects and publishes.
func New(cfg Config) (*Simulator, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	fleet, err := NewFleet(cfg.Seed, cfg.Vehicles, cfg.Area, WithDwell(cfg.Dwell), WithJobs(cfg.Jobs))
	if err != nil {
		return nil, err
	}
	return &Simulator{cfg: cfg, fleet: fleet}, nil
}

// Plates lists the simulated vehicles' plates.
func (s *Simulator) Plates() []string { return s.fleet.Plates() }

// Jobs lists the jobs the simulator creates and drives (Config.Jobs).
func (s *Simulator) Jobs() []Job { return s.fleet.Jobs() }

// Stats returns the counts so far. It is safe to call while Run runs.
func (s *Simulator) Stats() Stats { return s.stats.snapshot() }

// Run defines the area's sites as stations through the API (when one is
// configured and answers), connects to the broker and publishes until
// ctx ends (it then returns nil) or Duration or MaxPositions is reached;
// meanwhile it creates the Jobs through the API. On the way out it
// waits for the messages in flight to be acknowledged, at most
// PublishTimeout, and disconnects; jobs whose create is still unanswered
// are left to the API. It returns an error when it cannot connect for
// good (ctx ending while it still tries is not an error), when Jobs are
// asked for and the API does not answer or refuses the token, and when a
// run that reached its limit had messages that failed, so that a script
// can tell. Run may be called once.
func (s *Simulator) Run(ctx context.Context) error {
	if !s.running.CompareAndSwap(false, true) {
		return errors.New("simulator: Run may be called once")
	}
	cfg := &s.cfg
	pub := newPublisher(cfg, &s.stats)
	log := pub.log
	perVehicle := cfg.Interval
	if cfg.RatePerSecond > 0 && !cfg.Accelerated {
		perVehicle = time.Duration(float64(cfg.Vehicles) / cfg.RatePerSecond * float64(time.Second))
	}
	log.Info("simulator starting", "vehicles", cfg.Vehicles, "area", cfg.Area.Name, "sites", len(cfg.Area.Sites),
		"interval_per_vehicle", perVehicle, "rate_per_s", cfg.RatePerSecond, "batch_size", cfg.BatchSize,
		"accelerated", cfg.Accelerated, "fault_rate", cfg.FaultRate, "qos", cfg.QoS, "seed", cfg.Seed,
		"jobs", cfg.Jobs, "dwell", cfg.Dwell)
	client, err := s.prepareAPI(ctx, log)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	if err := pub.connect(ctx); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	began := time.Now()
	reportCtx, stopReport := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { report(reportCtx, log, cfg.LogEvery, s.Stats) })
	// The jobs are created while the fleet reports: the API answers a
	// create once the job processor has applied it, which its watermark,
	// moved by the vehicles' fixes, decides.
	jobsCtx, stopJobs := context.WithCancel(ctx)
	var jobsWG sync.WaitGroup
	if jobs := s.fleet.Jobs(); client != nil && len(jobs) > 0 {
		jobsWG.Go(func() { client.createJobs(jobsCtx, jobs) })
	}

	finished := s.run(ctx, pub, wallClock{})
	stopJobs()
	jobsWG.Wait()
	pub.close()
	stopReport()
	wg.Wait()

	st := s.Stats()
	log.Info("simulator stopped", st.logAttrs(Stats{}, time.Since(began))...)
	if finished && st.MessagesFailed > 0 {
		return fmt.Errorf("simulator: %d of %d messages (%d positions) were not acknowledged",
			st.MessagesFailed, st.MessagesSent, st.PositionsFailed)
	}
	return nil
}

// prepareAPI defines the area's stations through the API and returns
// the client that creates the jobs; nil when there is no API to use, which
// without Jobs is said in a log line and is no error.
func (s *Simulator) prepareAPI(ctx context.Context, log *slog.Logger) (*api, error) {
	cfg := &s.cfg
	if cfg.APIURL == "" {
		log.Info("no tms API configured: the area's sites are not defined as stations; positions only")
		return nil, nil
	}
	if cfg.APIToken == "" { // Validate lets this through only without jobs
		log.Info("no API token (--token, TMS_API_TOKENS or $TMS_DATA_DIR/api-tokens/operator): "+
			"the area's sites are not defined as stations; positions only", "api", redact(cfg.APIURL))
		return nil, nil
	}
	client := newAPI(cfg, log)
	if err := client.reachable(ctx, cfg.Jobs > 0); err != nil {
		if cfg.Jobs > 0 {
			return nil, fmt.Errorf("simulator: %d jobs need the tms API at %s: %w", cfg.Jobs, redact(cfg.APIURL), err)
		}
		log.Info("the tms API does not answer: the area's sites are not defined as stations; positions only",
			"api", redact(cfg.APIURL), "err", err)
		return nil, nil
	}
	if err := client.defineStations(ctx, cfg.Area); err != nil {
		if cfg.Jobs > 0 {
			return nil, fmt.Errorf("simulator: define the stations: %w", err)
		}
		log.Warn("the area's sites are not all defined as stations; positions only", "err", err)
		return nil, nil
	}
	return client, nil
}

// run steps the fleet round by round, one fix per vehicle per round, and
// sends each round's fixes through out in batches, paced by clk (tests
// give it a fake clock and outlet). It returns true when Duration or MaxPositions was reached, false when ctx
// ended.
func (s *Simulator) run(ctx context.Context, out outlet, clk clock) (finished bool) {
	cfg := &s.cfg
	// Without a rate, real time still spreads each round's batches over
	// the interval: the same pacing, at Vehicles/Interval.
	var pace *pacer
	switch {
	case cfg.RatePerSecond > 0:
		pace = newPacer(cfg.RatePerSecond)
	case !cfg.Accelerated:
		pace = newPacer(float64(cfg.Vehicles) / cfg.Interval.Seconds())
	}
	enc := Encoding{StringShare: cfg.StringShare, FaultRate: cfg.FaultRate}
	rnd := rand.New(rand.NewPCG(cfg.Seed, encodingStream))
	start := cfg.Start
	if cfg.Accelerated && start.IsZero() {
		start = clk.Now()
	}
	start = start.Truncate(time.Millisecond)
	left := cfg.MaxPositions
	var fixes []Fix
	var prev time.Time
	for round := int64(0); ; round++ {
		for i := 0; i < cfg.Vehicles; i += cfg.BatchSize {
			if ctx.Err() != nil {
				return false
			}
			n := min(cfg.BatchSize, cfg.Vehicles-i)
			if cfg.MaxPositions > 0 {
				if left == 0 {
					return true
				}
				n = int(min(int64(n), left))
			}
			if pace != nil {
				due, lagged := pace.reserve(clk.Now(), n)
				if lagged {
					s.stats.lags.Add(1)
				}
				if clk.SleepUntil(ctx, due) != nil {
					return false
				}
			}
			if i == 0 {
				t := roundTime(cfg, clk, start, round, prev)
				if round == 0 && !cfg.Accelerated {
					start = t
				}
				if cfg.Duration > 0 && t.Sub(start) >= cfg.Duration {
					return true
				}
				fixes = s.fleet.Step(t)
				s.stats.simTime.Store(t.UnixNano())
				prev = t
			}
			payload, faulty := enc.Encode(make([]byte, 0, n*itemSizeHint+16), fixes[i:i+n], rnd)
			if out.send(ctx, message{payload: payload, positions: n, faulty: faulty}) != nil {
				return false
			}
			left -= int64(n)
		}
	}
}

// roundTime is the fix time of a round: Start + round*Interval on the
// simulated clock, or the wall clock, to the millisecond (gps_time's
// resolution) and always after the previous round's, so that no vehicle
// reports two fixes with one gps_time.
func roundTime(cfg *Config, clk clock, start time.Time, round int64, prev time.Time) time.Time {
	if cfg.Accelerated {
		return start.Add(time.Duration(round) * cfg.Interval)
	}
	t := clk.Now().Truncate(time.Millisecond)
	if round > 0 && !t.After(prev) {
		t = prev.Add(time.Millisecond)
	}
	return t
}
