package simulator

import (
	"context"
	"log/slog"
	"sync/atomic"
	"time"
)

// Stats counts what a Simulator has done so far. Messages carry a batch of
// positions each; every count is since Run began.
type Stats struct {
	// MessagesSent and PositionsSent count what was handed to the MQTT
	// client.
	MessagesSent, PositionsSent uint64
	// FaultySent counts the deliberately faulty items among the positions
	// sent (see Config.FaultRate).
	FaultySent uint64
	// MessagesPublished and PositionsPublished count what the broker
	// acknowledged.
	MessagesPublished, PositionsPublished uint64
	// MessagesFailed and PositionsFailed count messages the broker refused
	// or did not acknowledge within Config.PublishTimeout. A late one may
	// still arrive: the client resends unacknowledged messages after a
	// reconnect.
	MessagesFailed, PositionsFailed uint64
	// Retries counts messages published again after their first attempt
	// broke, typically as the connection dropped.
	Retries uint64
	// Lags counts the times publishing fell more than a second behind its
	// pace and the schedule was restarted (the broker, or this machine,
	// could not keep up with the rate).
	Lags uint64
	// SimTime is the fix time of the latest round.
	SimTime time.Time
}

// InFlight is the number of messages sent and not yet judged.
func (s Stats) InFlight() uint64 {
	return s.MessagesSent - s.MessagesPublished - s.MessagesFailed
}

// counters are Stats as they are updated, from the run loop and from the
// goroutine that awaits acknowledgements.
type counters struct {
	messagesSent, positionsSent, faultySent atomic.Uint64
	messagesPublished, positionsPublished   atomic.Uint64
	messagesFailed, positionsFailed         atomic.Uint64
	retries, lags                           atomic.Uint64
	simTime                                 atomic.Int64 // Unix nanoseconds; 0 before the first round
}

func (c *counters) sent(m message) {
	c.messagesSent.Add(1)
	c.positionsSent.Add(uint64(m.positions))
	c.faultySent.Add(uint64(m.faulty))
}

func (c *counters) published(positions int) {
	c.messagesPublished.Add(1)
	c.positionsPublished.Add(uint64(positions))
}

// failed counts a failed message and returns how many have failed.
func (c *counters) failed(positions int) uint64 {
	c.positionsFailed.Add(uint64(positions))
	return c.messagesFailed.Add(1)
}

// snapshot reads the counters. Outcomes are read before sends, so that
// InFlight never goes negative while messages are being judged.
func (c *counters) snapshot() Stats {
	s := Stats{
		MessagesPublished:  c.messagesPublished.Load(),
		PositionsPublished: c.positionsPublished.Load(),
		MessagesFailed:     c.messagesFailed.Load(),
		PositionsFailed:    c.positionsFailed.Load(),
	}
	s.MessagesSent = c.messagesSent.Load()
	s.PositionsSent = c.positionsSent.Load()
	s.FaultySent = c.faultySent.Load()
	s.Retries = c.retries.Load()
	s.Lags = c.lags.Load()
	if ns := c.simTime.Load(); ns != 0 {
		s.SimTime = time.Unix(0, ns).UTC()
	}
	return s
}

// logAttrs describes s for a log line; since and prev give the rate.
func (s Stats) logAttrs(prev Stats, elapsed time.Duration) []any {
	rate := 0.0
	if elapsed > 0 {
		rate = float64(s.PositionsPublished-prev.PositionsPublished) / elapsed.Seconds()
	}
	return []any{
		"messages_published", s.MessagesPublished,
		"positions_published", s.PositionsPublished,
		"positions_per_s", int64(rate),
		"messages_failed", s.MessagesFailed,
		"positions_failed", s.PositionsFailed,
		"faulty_sent", s.FaultySent,
		"retries", s.Retries,
		"in_flight", s.InFlight(),
		"lags", s.Lags,
		"sim_time", s.SimTime.Format(time.RFC3339),
	}
}

// report logs a summary every `every` until ctx ends.
func report(ctx context.Context, log *slog.Logger, every time.Duration, stats func() Stats) {
	t := time.NewTicker(every)
	defer t.Stop()
	prev, prevAt := stats(), time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			s := stats()
			log.Info("simulator progress", s.logAttrs(prev, now.Sub(prevAt))...)
			prev, prevAt = s, now
		}
	}
}
