package geofence

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	gojson "github.com/goccy/go-json"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tmsfleet/tms/adapters/kafka"
	"github.com/tmsfleet/tms/domain/event"
	"github.com/tmsfleet/tms/domain/geofence"
	"github.com/tmsfleet/tms/domain/position"
)

// A snapshot of a partition is a header record and chunk records, all in
// the state topic's partition of the same number, keyed so that
// compaction keeps only the latest snapshot:
//
//	snapshot/header  {"id", "next_offset", "chunks", "vehicles"}
//	snapshot/chunk/<i> the snapshot id and vehicles (snapshot_codec.go)
//
// Restoring reads the partition to a marker of its own (key marker/<id>,
// no value: compaction removes it), keeps the last header and the latest
// chunk of each number, and decodes those of the header's snapshot only.
const (
	headerKey    = "snapshot/header"
	chunkPrefix  = "snapshot/chunk/"
	markerPrefix = "marker/"
	// chunkBytes bounds a chunk's encoded size, well under Kafka's
	// default 1 MB message limit whatever a vehicle's state holds.
	chunkBytes = 256 << 10
	// restoreFetchBytes is how much a restore asks for in one fetch of a
	// partition: a snapshot of 100,000 vehicles is about 50 MB, which
	// franz-go's default of 1 MB would take in a round trip per four chunks.
	restoreFetchBytes = 16 << 20
)

type snapshotHeader struct {
	ID         string `json:"id"`
	NextOffset int64  `json:"next_offset"`
	Chunks     int    `json:"chunks"`
	Vehicles   int    `json:"vehicles"`
}

// snapshotChunk is a chunk in the JSON format of version 1.
type snapshotChunk struct {
	ID       string                  `json:"id"`
	Vehicles []geofence.VehicleState `json:"vehicles"`
}

// partitionState is what the processor holds for one positions
// partition it owns.
type partitionState struct {
	fleet *geofence.Fleet
	// tracker decides the partition's fixes, batch after batch: it keeps
	// caches over the catalogue (they notice its changes) that are worth
	// keeping.
	tracker *geofence.Tracker
	// next is the offset of the next record to process.
	next int64
	// sinceSnapshot and snapshotAt decide when to snapshot next.
	sinceSnapshot int
	snapshotAt    time.Time
	// decoder reads the partition's positions; buf is where its events
	// are encoded (see emit).
	decoder position.Decoder
	buf     []byte
}

func newID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// snapshotRecords encodes ps as the records of a snapshot of partition,
// its chunks in format (SnapshotBinary or SnapshotJSON).
func snapshotRecords(topic string, partition int32, ps *partitionState, format string) ([]*kgo.Record, error) {
	id := newID()
	var out []*kgo.Record
	start := func() []byte {
		if format == SnapshotJSON {
			return append(make([]byte, 0, chunkBytes+chunkBytes/8), `{"id":"`+id+`","vehicles":[`...)
		}
		return appendChunkStart(make([]byte, 0, chunkBytes+chunkBytes/8), id)
	}
	end := func(chunk []byte) []byte {
		if format == SnapshotJSON {
			if chunk[len(chunk)-1] == ',' {
				chunk = chunk[:len(chunk)-1]
			}
			return append(chunk, "]}"...)
		}
		return chunk
	}
	empty := len(start())
	chunk := start()
	var err error
	ps.fleet.Each(func(v *geofence.Vehicle) {
		if err != nil {
			return
		}
		mark := len(chunk)
		if format == SnapshotJSON {
			var state []byte
			if state, err = gojson.Marshal(&v.State); err != nil {
				err = fmt.Errorf("encode a vehicle's state: %w", err)
				return
			}
			chunk = append(append(chunk, state...), ',')
		} else {
			chunk = appendVehicle(chunk, &v.State)
		}
		if len(chunk) > chunkBytes && mark > empty {
			// Too large with this vehicle: the chunk is closed without it,
			// and it starts the next.
			next := append(start(), chunk[mark:]...)
			out = append(out, chunkRecord(topic, partition, len(out), end(chunk[:mark])))
			chunk = next
		}
	})
	if err != nil {
		return nil, err
	}
	out = append(out, chunkRecord(topic, partition, len(out), end(chunk))) // the last, or the only, maybe empty, one
	header, err := gojson.Marshal(snapshotHeader{ID: id, NextOffset: ps.next, Chunks: len(out), Vehicles: ps.fleet.Len()})
	if err != nil {
		return nil, err
	}
	// The header goes last: a reader that sees it has seen its chunks.
	return append(out, &kgo.Record{Topic: topic, Partition: partition, Key: []byte(headerKey), Value: header}), nil
}

func chunkRecord(topic string, partition int32, i int, value []byte) *kgo.Record {
	return &kgo.Record{Topic: topic, Partition: partition, Key: []byte(chunkPrefix + strconv.Itoa(i)), Value: value}
}

// restorer rebuilds a partition's state on takeover.
type restorer struct {
	kafka  *kafka.Config
	marker *kgo.Client // non-transactional producer of markers
	// fleetCapacity is the most vehicles a partition holds.
	fleetCapacity int
	// window is how many offsets before its marker a restore reads
	// first; zero means restoreWindow.
	window int64
}

// restoreWindow is how far back from its marker a restore reads first:
// more offsets than the latest snapshot of a partition of 200,000
// vehicles takes. The partition is compacted, but until its segment rolls
// it holds every snapshot taken since, which a read from the start would
// go through: a minute of them is a gigabyte for 100,000 vehicles.
const restoreWindow = 1024

// restore returns the state of positions partition partition as of
// offset resume, where consumption continues: the latest committed
// snapshot, then the positions from its offset to resume replayed.
func (r *restorer) restore(ctx context.Context, tracker *geofence.Tracker, partition int32, resume int64) (*partitionState, int, error) {
	stateTopic := r.kafka.Topic(event.TopicGeofenceState)
	marker := markerPrefix + newID()
	marked, err := r.marker.ProduceSync(ctx, &kgo.Record{Topic: stateTopic, Partition: partition, Key: []byte(marker)}).First()
	if err != nil {
		return nil, 0, fmt.Errorf("mark state partition %d: %w", partition, err)
	}
	header, chunks, err := r.latestSnapshot(ctx, stateTopic, partition, marker, marked.Offset)
	if err != nil {
		return nil, 0, err
	}
	ps := &partitionState{fleet: geofence.NewFleet(r.fleetCapacity), snapshotAt: time.Now()}
	if header != nil {
		ps.next = header.NextOffset
	}
	// The positions to replay are fetched while the snapshot is decoded.
	var replay *kgo.Client
	if ps.next < resume {
		topic := r.kafka.Topic(event.TopicPositions)
		replay, err = r.kafka.NewTransientClient("geofence-replay",
			kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {partition: kgo.NewOffset().At(ps.next)}}),
			kgo.FetchMaxPartitionBytes(restoreFetchBytes), kgo.FetchMaxBytes(restoreFetchBytes))
		if err != nil {
			return nil, 0, err
		}
		defer replay.Close()
	}
	if header != nil {
		vehicles, err := decodeSnapshot(header, chunks)
		if err != nil {
			return nil, 0, fmt.Errorf("state partition %d: %w", partition, err)
		}
		for _, vs := range vehicles {
			for _, s := range vs {
				ps.fleet.Restore(s)
			}
		}
	}
	replayed, err := r.replay(ctx, replay, tracker, partition, ps, resume)
	// The records replayed count towards the next snapshot: a partition
	// restored again and again (after aborts) still gets snapshotted and
	// its replays stay short.
	ps.sinceSnapshot = replayed
	return ps, replayed, err
}

// latestSnapshot finds the last snapshot committed to a state partition
// before marker, at offset markedAt: it reads the window of offsets
// before the marker, and a window eight times as large while that holds
// no whole snapshot, back to the start of the partition at most. The last
// header before the marker is the latest snapshot's, and its chunks come
// before it: when they are all in the window, the snapshot is whole.
func (r *restorer) latestSnapshot(ctx context.Context, topic string, partition int32, marker string, markedAt int64) (*snapshotHeader, map[int][]byte, error) {
	window := cmp.Or(r.window, restoreWindow)
	for {
		from := max(markedAt-window, 0)
		header, chunks, err := r.readSnapshot(ctx, topic, partition, marker, from)
		if err != nil || from == 0 || header != nil && whole(header, chunks) {
			return header, chunks, err
		}
		window *= 8
	}
}

// whole reports whether chunks hold every chunk of header's snapshot.
func whole(header *snapshotHeader, chunks map[int][]byte) bool {
	for i := range header.Chunks {
		value, ok := chunks[i]
		if id, known := chunkID(value); !ok || known && id != header.ID {
			return false
		}
	}
	return true
}

// readSnapshot reads a state partition from offset from up to marker and
// returns the last snapshot header and the latest value of each chunk,
// undecoded: the log may hold many snapshots yet to be compacted, and
// only the last is decoded.
func (r *restorer) readSnapshot(ctx context.Context, topic string, partition int32, marker string, from int64) (*snapshotHeader, map[int][]byte, error) {
	cl, err := r.kafka.NewTransientClient("geofence-restore",
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {partition: kgo.NewOffset().At(from)}}),
		kgo.FetchMaxPartitionBytes(restoreFetchBytes), kgo.FetchMaxBytes(restoreFetchBytes))
	if err != nil {
		return nil, nil, err
	}
	defer cl.Close()
	var header *snapshotHeader
	chunks := map[int][]byte{}
	for {
		fetches := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return nil, nil, err
		}
		var ferr error
		fetches.EachError(func(_ string, _ int32, err error) { ferr = err })
		if ferr != nil {
			return nil, nil, fmt.Errorf("read state partition %d: %w", partition, ferr)
		}
		for _, rec := range fetches.Records() {
			key := string(rec.Key)
			switch {
			case key == marker:
				return header, chunks, nil
			case key == headerKey:
				var h snapshotHeader
				if err := gojson.Unmarshal(rec.Value, &h); err != nil {
					return nil, nil, fmt.Errorf("state partition %d: snapshot header: %w", partition, err)
				}
				header = &h
			case strings.HasPrefix(key, chunkPrefix):
				i, err := strconv.Atoi(strings.TrimPrefix(key, chunkPrefix))
				if err != nil {
					continue
				}
				chunks[i] = rec.Value
			}
		}
	}
}

// decodeSnapshot decodes the chunks of header's snapshot, side by side
// (as many at once as there are cores), and returns their vehicles,
// chunk by chunk.
func decodeSnapshot(header *snapshotHeader, chunks map[int][]byte) ([][]geofence.VehicleState, error) {
	if !whole(header, chunks) {
		return nil, fmt.Errorf("snapshot %s lacks chunks", header.ID)
	}
	out := make([][]geofence.VehicleState, header.Chunks)
	errs := make([]error, header.Chunks)
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(runtime.GOMAXPROCS(0), header.Chunks) {
		wg.Go(func() {
			for i := int(next.Add(1) - 1); i < header.Chunks; i = int(next.Add(1) - 1) {
				id, vehicles, err := decodeChunk(chunks[i])
				switch {
				case err != nil:
					errs[i] = fmt.Errorf("snapshot %s chunk %d: %w", header.ID, i, err)
				case id != header.ID:
					errs[i] = fmt.Errorf("snapshot %s lacks chunk %d", header.ID, i)
				}
				out[i] = vehicles
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	n := 0
	for _, vs := range out {
		n += len(vs)
	}
	if n != header.Vehicles {
		return nil, fmt.Errorf("snapshot %s holds %d vehicles, its header says %d", header.ID, n, header.Vehicles)
	}
	return out, nil
}

// replay runs the positions of partition from ps.next up to resume,
// which cl consumes from ps.next on, through the tracker, discarding the
// transitions: they were produced, and committed, when those positions
// were first processed.
func (r *restorer) replay(ctx context.Context, cl *kgo.Client, tracker *geofence.Tracker, partition int32, ps *partitionState, resume int64) (int, error) {
	if ps.next >= resume {
		ps.next = resume
		return 0, nil
	}
	var discard []geofence.Transition
	n := 0
	for ps.next < resume {
		fetches := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return n, err
		}
		var ferr error
		fetches.EachError(func(_ string, _ int32, err error) { ferr = err })
		if ferr != nil {
			return n, fmt.Errorf("replay positions partition %d: %w", partition, ferr)
		}
		for _, rec := range fetches.Records() {
			if rec.Offset >= resume {
				break
			}
			if p, ok, err := ps.decoder.Decode(rec.Value); ok && err == nil {
				discard, _ = observe(tracker, ps, p, rec.Offset, discard[:0])
			}
			ps.next = rec.Offset + 1
			n++
		}
	}
	return n, nil
}

// observe gives the fix at offset of a partition to its vehicle's
// tracker; it also returns how many vehicles were forgotten to make room.
func observe(t *geofence.Tracker, ps *partitionState, p position.Position, offset int64, out []geofence.Transition) ([]geofence.Transition, int) {
	return ps.fleet.Observe(t, p.Plate, geofence.Fix{Time: p.FixTime, Point: geoPoint(p)}, offset, out)
}
