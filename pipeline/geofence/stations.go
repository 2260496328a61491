package geofence

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tmsfleet/tms/adapters/kafka"
	"github.com/tmsfleet/tms/domain/event"
	"github.com/tmsfleet/tms/domain/station"
)

// stationFeed reads tms.stations from its start, for as long as the
// processor runs, and hands the changes over, decoded as domain/station
// decodes them. The topic has one partition, so changes arrive in the
// order they were made.
type stationFeed struct {
	kafka   *kafka.Config
	log     *slog.Logger
	skipped prometheus.Counter
	changes chan station.Change
	// caughtUp is closed once every change the topic held at start has
	// been handed over.
	caughtUp chan struct{}
}

func newStationFeed(cfg *Config, log *slog.Logger, skipped prometheus.Counter) *stationFeed {
	return &stationFeed{
		kafka: cfg.Kafka, log: log, skipped: skipped,
		changes: make(chan station.Change, 1024), caughtUp: make(chan struct{}),
	}
}

func (f *stationFeed) run(ctx context.Context) error {
	topic := f.kafka.Topic(event.TopicStations)
	end, err := f.endOffset(ctx, topic)
	if err != nil {
		return err
	}
	cl, err := f.kafka.NewClient("geofence-stations",
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {0: kgo.NewOffset().AtStart()}}))
	if err != nil {
		return fmt.Errorf("station feed: %w", err)
	}
	defer cl.Close()
	if end == 0 {
		close(f.caughtUp)
	}
	for {
		fetches := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			return nil
		}
		fetches.EachError(func(_ string, _ int32, err error) {
			f.log.Warn("reading the stations failed; retrying", "err", err)
		})
		for _, r := range fetches.Records() {
			if c, ok := f.read(r); ok {
				select {
				case f.changes <- c:
				case <-ctx.Done():
					return nil
				}
			}
			if r.Offset+1 == end {
				close(f.caughtUp)
			}
		}
	}
}

// read decodes one station record; one it cannot read is skipped and
// counted, not fatal: the catalogue goes on without it.
func (f *stationFeed) read(r *kgo.Record) (station.Change, bool) {
	if r.Value == nil {
		return station.Change{}, false // a tombstone: compaction's business
	}
	c, err := decodeStation(r.Value)
	if err == nil {
		return c, true
	}
	f.skipped.Inc()
	f.log.Error("skipping a station event the geofence cannot read", "offset", r.Offset, "err", err)
	return station.Change{}, false
}

// decodeStation reads a record of tms.stations: the live processor and
// Replay read the catalogue alike.
func decodeStation(value []byte) (station.Change, error) {
	e, err := event.Decode(value)
	if err != nil {
		return station.Change{}, err
	}
	return station.FromEvent(e)
}

func (f *stationFeed) endOffset(ctx context.Context, topic string) (int64, error) {
	adm, err := f.kafka.NewAdmin("geofence-stations-admin")
	if err != nil {
		return 0, fmt.Errorf("station feed: %w", err)
	}
	defer adm.Close()
	for {
		ends, err := adm.ListEndOffsets(ctx, topic)
		if err == nil {
			err = ends.Error()
		}
		if err == nil {
			var end int64
			ends.Each(func(o kadm.ListedOffset) { end = o.Offset })
			return end, nil
		}
		f.log.Warn("looking up the end of the stations failed; retrying", "err", err)
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(time.Second):
		}
	}
}
