package jobs

import (
	"context"
	"errors"
	"slices"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
)

// barrier follows the geofence's progress. For each tms.positions
// partition it reads the geofence's committed offset G (the first
// position the geofence has not decided: the geofence commits it in the
// transaction that writes the visits the positions before it made), then
// where the partition of tms.geofence ends, E. Once the job processor has
// read tms.geofence up to E, every visit the positions before G made is
// in, and those positions may move the watermark jobs are decided at
// (partitionState.effectiveBarrier).
type barrier struct {
	adm      *kadm.Client
	group    string
	topic    string // tms.positions
	geofence string // tms.geofence
	interval time.Duration

	mu   sync.Mutex
	seen map[int32][]progress
	err  error
}

// progress is one reading of the geofence's progress on a partition.
type progress struct {
	Decided   int64 // G: positions before it are decided
	Written   int64 // E: tms.geofence ended here after they were
	Positions int64 // where tms.positions ended before G was read
}

// maxProgress bounds the readings kept per partition: the oldest go
// first, which only delays the watermark of a processor that is reading
// tms.geofence far behind its end.
const maxProgress = 256

// run reads the geofence's progress every interval until ctx ends. A
// failed read keeps what was read (decisions wait) and is reported by err.
func (b *barrier) run(ctx context.Context) {
	t := time.NewTicker(b.interval)
	defer t.Stop()
	for {
		b.read(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (b *barrier) read(ctx context.Context) {
	// Where the positions end, first: if the geofence has decided them
	// all, the partition is quiet (Processor.quiet).
	positions, perr := b.adm.ListCommittedOffsets(ctx, b.topic)
	if perr == nil {
		perr = positions.Error()
	}
	decided, err := b.adm.FetchOffsets(ctx, b.group)
	if err == nil {
		err = decided.Error()
	}
	// Listed after the offsets were read: the visits of the transaction
	// that committed them are before this end.
	written, lerr := b.adm.ListCommittedOffsets(ctx, b.geofence)
	if lerr == nil {
		lerr = written.Error()
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.err = errors.Join(perr, err, lerr); b.err != nil {
		return
	}
	if b.seen == nil {
		b.seen = map[int32][]progress{}
	}
	positions.Each(func(pe kadm.ListedOffset) {
		p := pe.Partition
		w, ok := written.Lookup(b.geofence, p)
		if !ok {
			return
		}
		// A partition the geofence has committed nothing for: it has
		// decided nothing (which is everything, while there are no
		// positions).
		pr := progress{Written: w.Offset, Positions: pe.Offset}
		if o, ok := decided.Lookup(b.topic, p); ok && o.At > 0 {
			pr.Decided = o.At
		}
		seen := b.seen[p]
		if n := len(seen); n > 0 && seen[n-1] == pr {
			return
		}
		if len(seen) == maxProgress {
			seen = slices.Delete(seen, 0, 1)
		}
		b.seen[p] = append(seen, pr)
	})
}

// pairs returns the readings of partition p, oldest first.
func (b *barrier) pairs(p int32) []progress {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.seen[p])
}
