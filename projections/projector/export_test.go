package projector

import (
	"context"

	"github.com/twmb/franz-go/pkg/kgo"
)

// ApplyRecords decodes records and applies them in one transaction, as
// Run does with a polled batch, and returns how many it applied.
func (p *Projector[T]) ApplyRecords(ctx context.Context, records []*kgo.Record) (int, error) {
	b := batch[T]{records: records, items: make([]T, len(records)), kept: make([]bool, len(records))}
	for i, r := range records {
		if !r.Attrs.IsControl() {
			b.items[i], b.kept[i] = p.cfg.Projection.Decode(r)
		}
	}
	return p.apply(ctx, b)
}
