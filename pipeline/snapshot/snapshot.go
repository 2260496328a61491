// Package snapshot keeps a stream processor's per-partition state in a
// compacted Kafka topic, written in the processor's own transactions: the
// state topic has a partition for every input partition, and the state of
// input partition p lives in its partition p.
//
// A snapshot is chunk records and a header record, keyed so that
// compaction keeps only the latest:
//
//	snapshot/chunk/<i>  {"id", "items": [...]}
//	snapshot/header     {"id", "chunks", "items", "meta"}
//
// The header goes last, so a reader that sees it has seen its chunks.
// Besides snapshots a processor may write records of its own under other
// keys (a log of what it did since the last snapshot); Read returns them
// too, in order.
//
// Read first appends a marker of its own to the partition (key
// marker/<id>, no value: compaction removes it) and reads until it sees
// it: everything committed before the marker has then been read, and a
// transaction left open by a crashed owner has been resolved, whichever
// way.
package snapshot

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	gojson "github.com/goccy/go-json"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tmsfleet/tms/adapters/kafka"
)

const (
	headerKey    = "snapshot/header"
	chunkPrefix  = "snapshot/chunk/"
	markerPrefix = "marker/"
	// ChunkBytes bounds a chunk's encoded size, well under Kafka's default
	// 1 MB record limit, whatever one item holds (an item larger than this
	// has a chunk to itself).
	ChunkBytes = 256 << 10
)

type header struct {
	ID     string          `json:"id"`
	Chunks int             `json:"chunks"`
	Items  int             `json:"items"`
	Meta   json.RawMessage `json:"meta"`
}

type chunk struct {
	ID    string              `json:"id"`
	Items []gojson.RawMessage `json:"items"`
}

// Records encodes a snapshot of a partition: meta (what the state is
// consistent with, such as input offsets) and items (each already JSON),
// as the records to produce to partition of topic, in order.
func Records(topic string, partition int32, meta any, items [][]byte) ([]*kgo.Record, error) {
	id := newID()
	var out []*kgo.Record
	c, size := chunk{ID: id}, 0
	flush := func() error {
		value, err := gojson.Marshal(c)
		if err != nil {
			return fmt.Errorf("encode a state snapshot: %w", err)
		}
		out = append(out, &kgo.Record{Topic: topic, Partition: partition, Key: []byte(chunkPrefix + strconv.Itoa(len(out))), Value: value})
		c.Items, size = nil, 0
		return nil
	}
	for _, it := range items {
		if size > 0 && size+len(it) > ChunkBytes {
			if err := flush(); err != nil {
				return nil, err
			}
		}
		c.Items = append(c.Items, it)
		size += len(it) + 1
	}
	if err := flush(); err != nil { // the last chunk, or the only, empty one
		return nil, err
	}
	m, err := gojson.Marshal(meta)
	if err != nil {
		return nil, fmt.Errorf("encode a state snapshot's meta: %w", err)
	}
	h, err := gojson.Marshal(header{ID: id, Chunks: len(out), Items: len(items), Meta: m})
	if err != nil {
		return nil, err
	}
	return append(out, &kgo.Record{Topic: topic, Partition: partition, Key: []byte(headerKey), Value: h}), nil
}

// State is what Read found in a state partition.
type State struct {
	// Found says a snapshot was found; Meta and Items are its.
	Found bool
	Meta  json.RawMessage
	Items []json.RawMessage
	// Others are the records under other keys, in partition order, with
	// values (tombstones are left out).
	Others []*kgo.Record
}

// Read returns the latest committed snapshot of partition of topic and
// the processor's other records, reading up to a marker it appends with
// marker (a non-transactional producer whose partitioner sends records to
// the partition they name).
func Read(ctx context.Context, kc *kafka.Config, marker *kgo.Client, topic string, partition int32) (State, error) {
	key := markerPrefix + newID()
	if err := marker.ProduceSync(ctx, &kgo.Record{Topic: topic, Partition: partition, Key: []byte(key)}).FirstErr(); err != nil {
		return State{}, fmt.Errorf("mark state partition %d: %w", partition, err)
	}
	cl, err := kc.NewTransientClient("state-restore",
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {partition: kgo.NewOffset().AtStart()}}))
	if err != nil {
		return State{}, err
	}
	defer cl.Close()
	var h *header
	chunks := map[int]chunk{}
	var st State
	for {
		fetches := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return State{}, err
		}
		var ferr error
		fetches.EachError(func(_ string, _ int32, err error) { ferr = err })
		if ferr != nil {
			return State{}, fmt.Errorf("read state partition %d: %w", partition, ferr)
		}
		for _, rec := range fetches.Records() {
			k := string(rec.Key)
			switch {
			case k == key:
				return st.assemble(partition, h, chunks)
			case strings.HasPrefix(k, markerPrefix) || rec.Value == nil:
			case k == headerKey:
				var hd header
				if err := gojson.Unmarshal(rec.Value, &hd); err != nil {
					return State{}, fmt.Errorf("state partition %d: snapshot header: %w", partition, err)
				}
				h = &hd
			case strings.HasPrefix(k, chunkPrefix):
				i, err := strconv.Atoi(strings.TrimPrefix(k, chunkPrefix))
				if err != nil {
					continue
				}
				var c chunk
				if err := gojson.Unmarshal(rec.Value, &c); err != nil {
					return State{}, fmt.Errorf("state partition %d: snapshot chunk: %w", partition, err)
				}
				chunks[i] = c
			default:
				st.Others = append(st.Others, rec)
			}
		}
	}
}

func (st State) assemble(partition int32, h *header, chunks map[int]chunk) (State, error) {
	if h == nil {
		return st, nil
	}
	st.Found, st.Meta = true, h.Meta
	for i := range h.Chunks {
		c, ok := chunks[i]
		if !ok || c.ID != h.ID {
			return State{}, fmt.Errorf("state partition %d: snapshot %s lacks chunk %d", partition, h.ID, i)
		}
		for _, it := range c.Items {
			st.Items = append(st.Items, json.RawMessage(it))
		}
	}
	return st, nil
}

func newID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
