package jobs

import (
	"context"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
)

// barrier follows the geofence's progress: for each tms.positions
// partition, the offset of the first position the geofence has not yet
// decided (its consumer group's committed offset). The geofence commits
// that offset in the transaction that writes the visits the positions
// before it made, so once the barrier has passed a position, its visits
// are in tms.geofence.
type barrier struct {
	adm      *kadm.Client
	group    string
	topic    string
	interval time.Duration

	mu      sync.Mutex
	offsets map[int32]int64
	err     error
}

// run reads the geofence's committed offsets every interval until ctx
// ends. A failed read keeps the last offsets (decisions wait) and is
// reported by err.
func (b *barrier) run(ctx context.Context) {
	t := time.NewTicker(b.interval)
	defer t.Stop()
	for {
		resp, err := b.adm.FetchOffsets(ctx, b.group)
		if err == nil {
			err = resp.Error()
		}
		b.mu.Lock()
		b.err = err
		if err == nil {
			next := map[int32]int64{}
			for p, o := range resp[b.topic] {
				next[p] = o.At
			}
			b.offsets = next
		}
		b.mu.Unlock()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// at returns the barrier of partition p (0: nothing decided yet).
func (b *barrier) at(p int32) int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.offsets[p]
}
