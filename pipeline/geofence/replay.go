package geofence

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tmsfleet/tms/adapters/kafka"
	"github.com/tmsfleet/tms/domain/event"
	"github.com/tmsfleet/tms/domain/geo"
	"github.com/tmsfleet/tms/domain/geofence"
	"github.com/tmsfleet/tms/domain/position"
	"github.com/tmsfleet/tms/domain/station"
)

// ReplayConfig says which station to derive history for, over which
// time range.
type ReplayConfig struct {
	// Kafka is how to reach the brokers (required).
	Kafka *kafka.Config
	// Geofence is the tracker's behaviour, as the live geofence runs it.
	Geofence geofence.Config
	// StationID names the station; its current version is applied as if
	// it had always stood as it stands now.
	StationID string
	// From and To bound the fix times replayed: [From, To).
	From, To time.Time
	// Lookback is how much earlier than From, by the time tms received
	// them, positions are read, for fixes that arrived late. Default 1 h.
	Lookback time.Duration
	// MaxVehicles bounds the vehicles held in memory, as the live
	// processor's MaxVehicles does (each partition's share). Default
	// DefaultMaxVehicles.
	MaxVehicles int
	// MaxReorderedFixes bounds the fixes held in memory to replay, in
	// fix-time order, the vehicles that have backfilled fixes older than
	// their newest (see Replay). Default DefaultMaxReorderedFixes.
	MaxReorderedFixes int
	// Found, when set, is called with the station once it is found and
	// before any position is read, so that the caller can record the run
	// as started (and, should the replay then fail, as failed). An error
	// from Found ends the replay with that error.
	Found func(geofence.Station) error
}

// ReplayResult describes a finished replay.
type ReplayResult struct {
	Station   geofence.Station
	FixesRead int64
	// Reordered counts the vehicles replayed in fix-time order because
	// backfilled fixes of theirs came after newer ones.
	Reordered int
}

// DefaultMaxReorderedFixes is TMS_REPLAY_MAX_REORDERED_FIXES's default:
// about 240 MB of fixes (48 bytes each), ten vehicle-months of a fix
// every 10 s.
const DefaultMaxReorderedFixes = 5_000_000

// ErrNoSuchStation is returned by Replay for a station that does not
// exist now.
var ErrNoSuchStation = errors.New("no such station")

// Replay derives the visits a station, as it stands now, would have seen
// in a past time range: it reads tms.positions over the range and runs a
// fresh tracker with that one station, handing every transition to sink.
// Nothing is written to Kafka: the result is the caller's to keep apart
// from the live events. Vehicles inside at the start of the range enter
// flagged initial; those inside at its end have no exit.
func Replay(ctx context.Context, cfg ReplayConfig, sink func(geofence.Transition) error) (ReplayResult, error) {
	if cfg.Lookback == 0 {
		cfg.Lookback = time.Hour
	}
	cfg.Geofence.SetDefaults()
	switch {
	case cfg.Kafka == nil:
		return ReplayResult{}, errors.New("replay: Kafka is required")
	case !cfg.From.Before(cfg.To):
		return ReplayResult{}, fmt.Errorf("replay: the range's start, %s, is not before its end, %s",
			cfg.From.Format(time.RFC3339Nano), cfg.To.Format(time.RFC3339Nano))
	}
	st, err := currentStation(ctx, cfg)
	if err != nil {
		return ReplayResult{}, err
	}
	if cfg.Found != nil {
		if err := cfg.Found(st); err != nil {
			return ReplayResult{}, err
		}
	}
	catalog := geofence.NewCatalog(geofence.NewBruteForce())
	if err := catalog.Upsert(st, time.Time{}); err != nil {
		return ReplayResult{}, err
	}
	tracker, err := geofence.NewTracker(cfg.Geofence, catalog)
	if err != nil {
		return ReplayResult{}, err
	}
	ranges, partitions, err := positionRanges(ctx, cfg)
	if err != nil {
		return ReplayResult{}, err
	}
	res := ReplayResult{Station: st}
	maxHeld := cmp.Or(cfg.MaxReorderedFixes, DefaultMaxReorderedFixes)
	capacity := fleetCapacity(cmp.Or(cfg.MaxVehicles, DefaultMaxVehicles), partitions)
	for partition, r := range ranges {
		// A vehicle's fixes are all in one partition: each partition is a
		// fleet of its own, as in the live processor. Its transitions are
		// held until its end: those of a vehicle replayed again in
		// fix-time order are replaced.
		fleet := geofence.NewFleet(capacity)
		var out, pending []geofence.Transition
		newest := map[string]time.Time{}
		reordered := map[string]bool{}
		err := readRange(ctx, cfg.Kafka, partition, r, func(rec *kgo.Record) error {
			p, source, ok := decodeSourced(rec)
			if !ok || p.FixTime.Before(cfg.From) || !p.FixTime.Before(cfg.To) {
				return nil
			}
			res.FixesRead++
			if reordered[p.Plate] {
				return nil
			}
			if n, seen := newest[p.Plate]; seen && source == position.BackfillSource && p.FixTime.Before(n.Add(-cfg.Geofence.ReorderWindow)) {
				// Backfilled history that arrived after newer fixes: the
				// vehicle is replayed again below, in fix-time order.
				reordered[p.Plate] = true
				return nil
			}
			if p.FixTime.After(newest[p.Plate]) {
				newest[p.Plate] = p.FixTime
			}
			out, _ = fleet.Observe(tracker, p.Plate, geofence.Fix{Time: p.FixTime, Point: geoPoint(p)}, rec.Offset, out[:0])
			pending = append(pending, out...)
			return nil
		})
		if err != nil {
			return res, err
		}
		// The range is over: nothing more will arrive for its reorder
		// windows.
		fleet.Each(func(v *geofence.Vehicle) { pending = append(pending, tracker.Flush(v, out[:0])...) })
		if len(reordered) > 0 {
			kept := pending[:0]
			for _, t := range pending {
				if !reordered[t.Vehicle] {
					kept = append(kept, t)
				}
			}
			again, err := replayInOrder(ctx, cfg, tracker, partition, r, reordered, maxHeld)
			if err != nil {
				return res, err
			}
			pending = append(kept, again...)
			res.Reordered += len(reordered)
		}
		if err := sinkAll(sink, pending); err != nil {
			return res, err
		}
	}
	return res, nil
}

// heldFix is a fix held to be replayed in fix-time order.
type heldFix struct {
	at       time.Time
	lat, lng float64
	offset   int64
}

// replayInOrder reads partition's range again for the fixes of vehicles
// in the replay's range, and runs each vehicle, in fix-time order (ties
// in offset order), through a tracker of its own, as a live geofence that
// had received its fixes in order would have. It holds at most maxHeld
// fixes.
func replayInOrder(ctx context.Context, cfg ReplayConfig, tracker *geofence.Tracker, partition int32, r offsetRange,
	vehicles map[string]bool, maxHeld int) ([]geofence.Transition, error) {
	fixes := map[string][]heldFix{}
	held := 0
	err := readRange(ctx, cfg.Kafka, partition, r, func(rec *kgo.Record) error {
		p, _, ok := decodeSourced(rec)
		if !ok || !vehicles[p.Plate] || p.FixTime.Before(cfg.From) || !p.FixTime.Before(cfg.To) {
			return nil
		}
		if held == maxHeld {
			return fmt.Errorf("replay: %d vehicles of partition %d have backfilled fixes to replay in fix-time order, more than "+
				"TMS_REPLAY_MAX_REORDERED_FIXES (%d) fixes in the range: replay a shorter range, or raise the limit (48 bytes a fix)",
				len(vehicles), partition, maxHeld)
		}
		held++
		fixes[p.Plate] = append(fixes[p.Plate], heldFix{at: p.FixTime, lat: p.Lat, lng: p.Lng, offset: rec.Offset})
		return nil
	})
	if err != nil {
		return nil, err
	}
	var all, out []geofence.Transition
	for _, plate := range slices.Sorted(maps.Keys(fixes)) {
		fs := fixes[plate]
		slices.SortStableFunc(fs, func(a, b heldFix) int { return a.at.Compare(b.at) })
		fleet := geofence.NewFleet(1)
		for i, f := range fs {
			out, _ = fleet.Observe(tracker, plate, geofence.Fix{Time: f.at, Point: geo.Point{Lat: f.lat, Lng: f.lng}}, int64(i), out[:0])
			all = append(all, out...)
		}
		fleet.Each(func(v *geofence.Vehicle) { all = append(all, tracker.Flush(v, out[:0])...) })
	}
	return all, nil
}

// decodeSourced reads a position record and its event's source; ok is
// false for anything that is not a readable fix.
func decodeSourced(r *kgo.Record) (position.Position, string, bool) {
	p, _, source, ok, err := position.DecodeEventSource(r.Value)
	return p, source, ok && err == nil
}

func sinkAll(sink func(geofence.Transition) error, ts []geofence.Transition) error {
	for _, t := range ts {
		if err := sink(t); err != nil {
			return err
		}
	}
	return nil
}

// currentStation reads tms.stations to its end and returns the station's
// current version.
func currentStation(ctx context.Context, cfg ReplayConfig) (geofence.Station, error) {
	topic := cfg.Kafka.Topic(event.TopicStations)
	var current *geofence.Station
	adm, err := cfg.Kafka.NewAdmin("replay-admin")
	if err != nil {
		return geofence.Station{}, err
	}
	ends, err := endOffsets(ctx, adm, topic)
	adm.Close()
	if err != nil {
		return geofence.Station{}, err
	}
	err = readRange(ctx, cfg.Kafka, 0, offsetRange{topic: topic, start: 0, end: ends[0]}, func(r *kgo.Record) error {
		if r.Value == nil || string(r.Key) != cfg.StationID {
			return nil
		}
		c, err := decodeStation(r.Value)
		switch {
		case err != nil:
			return nil // the live processor skips it too
		case c.Kind == station.Delete:
			current = nil
		default:
			st := c.Geofence()
			current = &st
		}
		return nil
	})
	if err != nil {
		return geofence.Station{}, err
	}
	if current == nil {
		return geofence.Station{}, fmt.Errorf("%w: %s", ErrNoSuchStation, cfg.StationID)
	}
	return *current, nil
}

type offsetRange struct {
	topic      string
	start, end int64
}

// positionRanges finds, per positions partition, the records received
// from From - Lookback on, up to the end of the partition now.
func positionRanges(ctx context.Context, cfg ReplayConfig) (ranges map[int32]offsetRange, partitions int, err error) {
	topic := cfg.Kafka.Topic(event.TopicPositions)
	adm, err := cfg.Kafka.NewAdmin("replay-admin")
	if err != nil {
		return nil, 0, err
	}
	defer adm.Close()
	starts, err := adm.ListOffsetsAfterMilli(ctx, cfg.From.Add(-cfg.Lookback).UnixMilli(), topic)
	if err == nil {
		err = starts.Error()
	}
	if err != nil {
		return nil, 0, fmt.Errorf("replay: find the start of the range: %w", err)
	}
	// The same admin client: a second one of the same role, open at the
	// same time, would register its metrics twice (a panic with a
	// Registerer).
	ends, err := endOffsets(ctx, adm, topic)
	if err != nil {
		return nil, 0, err
	}
	ranges = map[int32]offsetRange{}
	starts.Each(func(o kadm.ListedOffset) {
		if o.Offset < ends[o.Partition] {
			ranges[o.Partition] = offsetRange{topic: topic, start: o.Offset, end: ends[o.Partition]}
		}
	})
	return ranges, len(ends), nil
}

// endOffsets returns the end of each partition of topic for a
// read_committed reader: the last stable offset, which is the high
// watermark unless a transaction is still open. Reading up to the high
// watermark instead would wait for that transaction to end.
func endOffsets(ctx context.Context, adm *kadm.Client, topic string) (map[int32]int64, error) {
	ends, err := adm.ListCommittedOffsets(ctx, topic)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return nil, fmt.Errorf("replay: find the end of %s: %w", topic, err)
	}
	out := map[int32]int64{}
	ends.Each(func(o kadm.ListedOffset) { out[o.Partition] = o.Offset })
	return out, nil
}

// readRange hands each record of [r.start, r.end) of partition to fn,
// except transaction markers. It reads them too (KeepControlRecords),
// because the last offset before r.end may be one: a reader waiting for
// a record there would wait forever.
func readRange(ctx context.Context, kc *kafka.Config, partition int32, r offsetRange, fn func(*kgo.Record) error) error {
	if r.start >= r.end {
		return nil
	}
	cl, err := kc.NewTransientClient("replay", kgo.KeepControlRecords(),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{r.topic: {partition: kgo.NewOffset().At(r.start)}}))
	if err != nil {
		return err
	}
	defer cl.Close()
	for {
		fetches := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return err
		}
		var ferr error
		fetches.EachError(func(_ string, _ int32, err error) { ferr = err })
		if ferr != nil {
			return fmt.Errorf("replay: read %s[%d]: %w", r.topic, partition, ferr)
		}
		for _, rec := range fetches.Records() {
			if rec.Offset >= r.end {
				return nil
			}
			if !rec.Attrs.IsControl() {
				if err := fn(rec); err != nil {
					return err
				}
			}
			if rec.Offset == r.end-1 {
				return nil
			}
		}
	}
}
