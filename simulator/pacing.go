package simulator

import (
	"context"
	"math"
	"time"
)

// maxLag is how far behind schedule the simulator may fall and still catch
// up by sending faster. Beyond it the debt is forgiven: a stall (a slow
// broker, a reconnect) must not turn into a burst that would distort a
// load test more than the stall itself.
const maxLag = time.Second

// pacer spreads items evenly over time at a fixed rate: the k-th item is
// due at origin + k/rate. Batches therefore go out at an even spacing
// (BatchSize/rate apart) instead of a burst at the start of each second.
// Due times are computed from the origin, not from the previous send, so
// rounding and late wake-ups do not accumulate into a lower rate.
type pacer struct {
	nsPerItem float64
	origin    time.Time
	booked    int64
}

func newPacer(ratePerSecond float64) *pacer {
	return &pacer{nsPerItem: float64(time.Second) / ratePerSecond}
}

// reserve books n items and returns when they are due, given that it is
// now. lagged reports that the schedule had fallen more than maxLag behind
// and was restarted at now.
func (p *pacer) reserve(now time.Time, n int) (due time.Time, lagged bool) {
	if p.origin.IsZero() {
		p.origin = now
	}
	due = p.origin.Add(time.Duration(math.Round(float64(p.booked) * p.nsPerItem)))
	if now.Sub(due) > maxLag {
		p.origin, p.booked, due, lagged = now, 0, now, true
	}
	p.booked += int64(n)
	return due, lagged
}

// clock is the simulator's time source. The wall clock serves runs; tests
// use a fake that jumps instead of sleeping.
type clock interface {
	Now() time.Time
	// SleepUntil returns at t, or with ctx's error when ctx ends first.
	SleepUntil(ctx context.Context, t time.Time) error
}

type wallClock struct{}

func (wallClock) Now() time.Time { return time.Now() }

func (wallClock) SleepUntil(ctx context.Context, t time.Time) error {
	d := time.Until(t)
	if d <= 0 {
		return ctx.Err()
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
