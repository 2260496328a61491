package txloop

import (
	"context"
	"slices"
	"sync"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Partitions is a processor's state of the partitions it owns, S for each.
type Partitions[S any] struct {
	// Held is the state of each partition the processor holds (has
	// restored), by partition number. Only the loop's goroutine, where
	// Config.Process, Polled and Due run, reads and writes it.
	Held map[int32]S

	topic    string
	mu       sync.Mutex
	assigned map[int32]bool
	revoked  map[int32]bool
}

// NewPartitions returns an empty Partitions whose Assigned follows the
// partitions of topic the group assigns.
func NewPartitions[S any](topic string) *Partitions[S] {
	return &Partitions[S]{Held: map[int32]S{}, topic: topic, assigned: map[int32]bool{}, revoked: map[int32]bool{}}
}

// Options are the session's options that tell p what the group assigns
// and takes away (revoked or lost).
func (p *Partitions[S]) Options() []kgo.Opt {
	return []kgo.Opt{
		kgo.OnPartitionsAssigned(p.onAssigned),
		kgo.OnPartitionsRevoked(p.onRevoked),
		kgo.OnPartitionsLost(p.onRevoked),
	}
}

// Assigned returns the partitions of the topic the group assigns this
// instance now, in order: some may not be held yet.
func (p *Partitions[S]) Assigned() []int32 {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]int32, 0, len(p.assigned))
	for part := range p.assigned {
		out = append(out, part)
	}
	slices.Sort(out)
	return out
}

func (p *Partitions[S]) onAssigned(_ context.Context, _ *kgo.Client, assigned map[string][]int32) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, part := range assigned[p.topic] {
		p.assigned[part] = true
	}
}

// onRevoked notes partitions another instance now owns: their state here
// is stale from now on. A processor's inputs are co-partitioned, so a
// partition number taken away of any of them is taken away of all.
func (p *Partitions[S]) onRevoked(_ context.Context, _ *kgo.Client, revoked map[string][]int32) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, parts := range revoked {
		for _, part := range parts {
			p.revoked[part] = true
			delete(p.assigned, part)
		}
	}
}

// dropRevoked drops the state of the partitions taken away.
func (p *Partitions[S]) dropRevoked() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for part := range p.revoked {
		delete(p.Held, part)
	}
	clear(p.revoked)
}

// forget drops the state of every partition, after an abort.
func (p *Partitions[S]) forget() { clear(p.Held) }

// reset forgets everything, assignments included, for a new session.
func (p *Partitions[S]) reset() {
	p.mu.Lock()
	defer p.mu.Unlock()
	clear(p.Held)
	clear(p.assigned)
	clear(p.revoked)
}
