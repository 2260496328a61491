package simulator

import (
	"context"
	"encoding/json"
	"testing"
	"time"
)

func TestPacerSpreadsBatchesEvenly(t *testing.T) {
	t.Parallel()
	p := newPacer(5000)
	now := t0
	var dues []time.Time
	for range 200 { // two seconds of batches of 50
		due, lagged := p.reserve(now, 50)
		if lagged {
			t.Fatal("lagged while on time")
		}
		dues = append(dues, due)
		now = due // the sender wakes up exactly on time
	}
	for i, d := range dues {
		if want := t0.Add(time.Duration(i) * 10 * time.Millisecond); !d.Equal(want) {
			t.Fatalf("batch %d due at +%v, want +%v", i, d.Sub(t0), want.Sub(t0))
		}
	}
}

func TestPacerDoesNotDrift(t *testing.T) {
	t.Parallel()
	// A third of a second is no whole number of nanoseconds; the schedule
	// still lands exactly on every whole second.
	p := newPacer(3)
	for i := range 3*3600 + 1 {
		due, _ := p.reserve(t0, 1)
		if i%3 == 0 {
			if want := t0.Add(time.Duration(i/3) * time.Second); !due.Equal(want) {
				t.Fatalf("item %d due at +%v, want +%v", i, due.Sub(t0), want.Sub(t0))
			}
		}
	}
}

func TestPacerCatchesUpSmallDelaysAndForgivesStalls(t *testing.T) {
	t.Parallel()
	p := newPacer(100) // a batch of 10 every 100ms
	due, _ := p.reserve(t0, 10)
	if !due.Equal(t0) {
		t.Fatalf("first batch due at %v", due)
	}
	// Woken 500ms late: the next batches are overdue and go at once,
	// until the schedule is met again.
	late := t0.Add(500 * time.Millisecond)
	for i := 1; i <= 5; i++ {
		due, lagged := p.reserve(late, 10)
		if lagged || !due.Equal(t0.Add(time.Duration(i)*100*time.Millisecond)) {
			t.Fatalf("batch %d: due %v lagged %v", i, due.Sub(t0), lagged)
		}
	}
	due, _ = p.reserve(late, 10)
	if want := t0.Add(600 * time.Millisecond); !due.Equal(want) {
		t.Fatalf("caught up batch due at +%v, want +600ms", due.Sub(t0))
	}
	// A 5 s stall is forgiven rather than made up for in a burst.
	stalled := t0.Add(6 * time.Second)
	due, lagged := p.reserve(stalled, 10)
	if !lagged || !due.Equal(stalled) {
		t.Fatalf("after a stall: due +%v lagged %v", due.Sub(t0), lagged)
	}
	due, _ = p.reserve(stalled, 10)
	if want := stalled.Add(100 * time.Millisecond); !due.Equal(want) {
		t.Fatalf("after a stall the pace resumes: due +%v, want +%v", due.Sub(t0), want.Sub(t0))
	}
}

// fakeClock jumps to the times it is asked to sleep until.
type fakeClock struct {
	now    time.Time
	sleeps int
}

func (c *fakeClock) Now() time.Time { return c.now }

func (c *fakeClock) SleepUntil(ctx context.Context, t time.Time) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c.sleeps++
	if t.After(c.now) {
		c.now = t
	}
	return nil
}

// sent is one message as the recorder saw it.
type sent struct {
	at    time.Time
	msg   message
	times []int64 // gps_time of each item
	plate []string
}

// recorder is an outlet that keeps what it is sent; onSend may act on the
// clock (a stall) or on the context.
type recorder struct {
	t      *testing.T
	clk    *fakeClock
	sent   []sent
	onSend func(r *recorder)
}

func (r *recorder) send(ctx context.Context, m message) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	var batch struct {
		Data []struct {
			Plate string `json:"plateNum"`
			Time  int64  `json:"gps_time"`
		} `json:"data"`
	}
	if err := json.Unmarshal(m.payload, &batch); err != nil {
		r.t.Fatalf("payload: %v", err)
	}
	s := sent{at: r.clk.now, msg: m}
	for _, it := range batch.Data {
		s.times = append(s.times, it.Time)
		s.plate = append(s.plate, it.Plate)
	}
	r.sent = append(r.sent, s)
	if r.onSend != nil {
		r.onSend(r)
	}
	return nil
}

func (r *recorder) positions() int {
	n := 0
	for _, s := range r.sent {
		n += s.msg.positions
	}
	return n
}

// runFake runs a simulator configured by cfg on a fake clock at t0.
func runFake(ctx context.Context, t *testing.T, cfg Config, onSend func(r *recorder)) (*Simulator, *recorder, bool) {
	t.Helper()
	cfg.BrokerURL = "tcp://127.0.0.1:1883" // never dialled
	cfg.Logger = quiet
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	clk := &fakeClock{now: t0}
	rec := &recorder{t: t, clk: clk, onSend: onSend}
	finished := s.run(ctx, rec, clk)
	return s, rec, finished
}

func TestRealTimeSpreadsEachRoundOverTheInterval(t *testing.T) {
	t.Parallel()
	_, rec, finished := runFake(t.Context(), t, Config{Vehicles: 120, Interval: 2 * time.Second, MaxPositions: 5 * 120}, nil)
	if !finished || rec.positions() != 600 || len(rec.sent) != 15 {
		t.Fatalf("finished %v with %d positions in %d messages, want 600 in 15", finished, rec.positions(), len(rec.sent))
	}
	// 60 positions a second: batches of 50, 50, 20 at 0, 5/6 s, 10/6 s.
	offsets := []time.Duration{0, 833333333, 1666666667}
	for i, s := range rec.sent {
		round := i / 3
		roundStart := t0.Add(time.Duration(round) * 2 * time.Second)
		if want := roundStart.Add(offsets[i%3]); !s.at.Equal(want) {
			t.Errorf("message %d sent at +%v, want +%v", i, s.at.Sub(t0), want.Sub(t0))
		}
		for _, ms := range s.times {
			if ms != roundStart.UnixMilli() {
				t.Fatalf("message %d: gps_time %d, want the round's wall time %d", i, ms, roundStart.UnixMilli())
			}
		}
	}
}

func TestRateSetsThePaceNotTheInterval(t *testing.T) {
	t.Parallel()
	s, rec, _ := runFake(t.Context(), t, Config{Vehicles: 1000, RatePerSecond: 5000, Interval: time.Hour, MaxPositions: 20000}, nil)
	if rec.positions() != 20000 {
		t.Fatalf("%d positions", rec.positions())
	}
	for i, m := range rec.sent {
		if want := t0.Add(time.Duration(i) * 10 * time.Millisecond); !m.at.Equal(want) {
			t.Fatalf("message %d sent at +%v, want +%v: batches are spread, not bursts", i, m.at.Sub(t0), want.Sub(t0))
		}
	}
	// Each vehicle reports every 1000/5000 s.
	last := map[string]int64{}
	for _, m := range rec.sent {
		for i, p := range m.plate {
			if prev, ok := last[p]; ok && m.times[i]-prev != 200 {
				t.Fatalf("%s: fixes %d ms apart, want 200", p, m.times[i]-prev)
			}
			last[p] = m.times[i]
		}
	}
	if lags := s.Stats().Lags; lags != 0 {
		t.Errorf("%d lags on time", lags)
	}
}

func TestAcceleratedRunsWithoutWaiting(t *testing.T) {
	t.Parallel()
	start := time.Date(2025, 1, 6, 0, 0, 0, 0, time.UTC)
	s, rec, finished := runFake(t.Context(), t, Config{
		Vehicles: 30, Accelerated: true, Start: start, Interval: time.Minute, Duration: 10 * time.Minute,
	}, nil)
	if !finished {
		t.Fatal("did not finish at Duration")
	}
	if clk := rec.clk; clk.sleeps != 0 || !clk.now.Equal(t0) {
		t.Errorf("accelerated run slept %d times", clk.sleeps)
	}
	if rec.positions() != 10*30 {
		t.Fatalf("%d positions in 10 simulated minutes of 30 vehicles", rec.positions())
	}
	for i, m := range rec.sent {
		for _, ms := range m.times {
			if want := start.Add(time.Duration(i) * time.Minute).UnixMilli(); ms != want {
				t.Fatalf("round %d timed %d, want %d", i, ms, want)
			}
		}
	}
	if got := s.Stats().SimTime; !got.Equal(start.Add(9 * time.Minute)) {
		t.Errorf("sim time %v", got)
	}
}

func TestAStallIsCountedAndNotMadeUpInABurst(t *testing.T) {
	t.Parallel()
	s, rec, _ := runFake(t.Context(), t, Config{Vehicles: 1000, RatePerSecond: 5000, MaxPositions: 2000}, func(r *recorder) {
		if len(r.sent) == 10 {
			r.clk.now = r.clk.now.Add(3 * time.Second) // the 10th send took 3 s
		}
	})
	if s.Stats().Lags != 1 {
		t.Errorf("lags %d, want 1", s.Stats().Lags)
	}
	for i := 11; i < len(rec.sent); i++ {
		if gap := rec.sent[i].at.Sub(rec.sent[i-1].at); gap != 10*time.Millisecond {
			t.Fatalf("after the stall, messages %d and %d are %v apart, want 10ms", i-1, i, gap)
		}
	}
}

func TestRunStopsWhenTheContextEnds(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(t.Context())
	_, rec, finished := runFake(ctx, t, Config{Vehicles: 100, Accelerated: true}, func(r *recorder) {
		if len(r.sent) == 7 {
			cancel()
		}
	})
	if finished || len(rec.sent) != 7 {
		t.Errorf("finished %v after %d messages; want stopped after 7", finished, len(rec.sent))
	}
}

func TestRealTimeFixTimesNeverRepeat(t *testing.T) {
	t.Parallel()
	// 2 vehicles at 1500/s: a round every 1.33 ms, so two rounds can
	// start within one millisecond of the clock.
	_, rec, _ := runFake(t.Context(), t, Config{Vehicles: 2, RatePerSecond: 1500, BatchSize: 1, MaxPositions: 3000}, nil)
	last := map[string]int64{}
	for _, m := range rec.sent {
		p, ms := m.plate[0], m.times[0]
		if prev, ok := last[p]; ok && ms <= prev {
			t.Fatalf("%s: gps_time %d after %d", p, ms, prev)
		}
		last[p] = ms
	}
}
