package jobs

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	gojson "github.com/goccy/go-json"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tmsfleet/tms/pipeline/snapshot"
	"github.com/tmsfleet/tms/pipeline/txloop"
)

// restore rebuilds the state of partition part as its previous owner
// committed it: the latest snapshot, then every step logged since,
// replayed over the same input records. cl is the session's client, whose
// committed offsets the replay must arrive at.
func (p *Processor) restore(ctx context.Context, cl, aux *kgo.Client, part int32) (*partitionState, error) {
	start := time.Now()
	ps := newPartitionState(p.cfg.Rules, p.capacity)
	st, err := snapshot.Read(ctx, p.cfg.Kafka, aux, p.topics.state, part)
	if err != nil {
		return nil, err
	}
	if st.Found {
		if err := ps.restoreSnapshot(st.Meta, st.Items); err != nil {
			return nil, fmt.Errorf("state partition %d: %w", part, err)
		}
	} else if ps.next, err = p.startOffsets(ctx, part); err != nil {
		return nil, err
	}
	steps, err := loggedSteps(st.Others, ps.steps)
	if err != nil {
		return nil, fmt.Errorf("state partition %d: %w", part, err)
	}
	replayed := 0
	if len(steps) > 0 {
		records, err := p.readInputs(ctx, part, ps.next, steps[len(steps)-1].Next)
		if err != nil {
			return nil, err
		}
		var discard outputs
		for _, s := range steps {
			var recs [numInputs][]*kgo.Record
			for i := range records {
				n := 0
				for n < len(records[i]) && records[i][n].Offset < s.Next[i] {
					n++
				}
				recs[i], records[i] = records[i][:n], records[i][n:]
				replayed += n
			}
			got := ps.take(recs, s.Barrier, time.UnixMilli(s.Applied), &discard)
			if got.Applied != s.Applied || got.Next != s.Next {
				return nil, fmt.Errorf("state partition %d: replaying step %d arrived at watermark %d and offsets %v, not %d and %v as logged",
					part, s.N, got.Applied, got.Next, s.Applied, s.Next)
			}
			ps.stepsSince = append(ps.stepsSince, s.N)
		}
	}
	if err := p.checkCommitted(cl, part, ps.next); err != nil {
		return nil, err
	}
	ps.sinceSnapshot, ps.snapshotAt = replayed, time.Now()
	p.metrics.Restored(time.Since(start), replayed)
	p.log.Info("restored a partition's jobs", "partition", part, "vehicles", len(ps.vehicles), "steps", len(steps),
		"replayed", replayed, "took", time.Since(start).Round(time.Millisecond))
	return ps, nil
}

// loggedSteps returns the steps after step from, in order; they must
// follow on from it without a gap.
func loggedSteps(records []*kgo.Record, from int64) ([]step, error) {
	var steps []step
	for _, r := range records {
		if !strings.HasPrefix(string(r.Key), "step/") {
			continue
		}
		var s step
		if err := gojson.Unmarshal(r.Value, &s); err != nil {
			return nil, fmt.Errorf("a step record: %w", err)
		}
		if s.N > from {
			steps = append(steps, s)
		}
	}
	slices.SortFunc(steps, func(a, b step) int { return int(a.N - b.N) })
	for i, s := range steps {
		if s.N != from+int64(i)+1 {
			return nil, fmt.Errorf("the step log jumps from %d to %d", from+int64(i), s.N)
		}
	}
	return steps, nil
}

// startOffsets are where a partition's inputs begin, for a partition that
// never had a snapshot.
func (p *Processor) startOffsets(ctx context.Context, part int32) ([numInputs]int64, error) {
	var next [numInputs]int64
	adm, err := p.cfg.Kafka.NewAdmin("jobs-restore-admin")
	if err != nil {
		return next, err
	}
	defer adm.Close()
	for topic, i := range p.input {
		offs, err := adm.ListStartOffsets(ctx, topic)
		if err == nil {
			err = offs.Error()
		}
		if err != nil {
			return next, fmt.Errorf("start offsets of %s: %w", topic, err)
		}
		o, _ := offs.Lookup(topic, part)
		next[i] = o.Offset
	}
	return next, nil
}

// readInputs reads partition part of every input from from to to
// (exclusive), each in offset order.
func (p *Processor) readInputs(ctx context.Context, part int32, from, to [numInputs]int64) ([numInputs][]*kgo.Record, error) {
	var out [numInputs][]*kgo.Record
	consume := map[string]map[int32]kgo.Offset{}
	pending := 0
	for topic, i := range p.input {
		if from[i] < to[i] {
			consume[topic] = map[int32]kgo.Offset{part: kgo.NewOffset().At(from[i])}
			pending++
		}
	}
	if pending == 0 {
		return out, nil
	}
	cl, err := p.cfg.Kafka.NewTransientClient("jobs-replay", kgo.ConsumePartitions(consume), kgo.KeepControlRecords())
	if err != nil {
		return out, err
	}
	defer cl.Close()
	done := map[int]bool{}
	for len(done) < pending {
		fetches := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return out, err
		}
		if err := txloop.FetchError(fetches); err != nil {
			return out, err
		}
		fetches.EachRecord(func(r *kgo.Record) {
			i := p.input[r.Topic]
			if r.Offset < to[i] {
				out[i] = append(out[i], r)
			}
			if r.Offset+1 >= to[i] {
				done[i] = true
			}
		})
	}
	return out, nil
}

// checkCommitted makes sure the state restored stands where the group
// committed: the offsets and the steps are committed in the same
// transactions, so they must agree. (Commands are read ahead of the group
// at a takeover, so the state may be ahead of the group on tms.jobs.)
func (p *Processor) checkCommitted(cl *kgo.Client, part int32, next [numInputs]int64) error {
	committed := cl.CommittedOffsets()
	for topic, i := range p.input {
		o, ok := committed[topic][part]
		if ok && o.Offset >= 0 && (o.Offset > next[i] || i != inJobs && o.Offset != next[i]) {
			return fmt.Errorf("partition %d of %s: the group committed offset %d but the state stands at %d", part, topic, o.Offset, next[i])
		}
	}
	return nil
}
