package jobtest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tmsfleet/tms/adapters/kafka"
	"github.com/tmsfleet/tms/domain/event"
	"github.com/tmsfleet/tms/domain/job"
	"github.com/tmsfleet/tms/internal/testenv"
)

// RunProcessor stands in for the job processor (pipeline/jobs) in tests of
// the commands and the API, until the test ends or stop is called: it
// reads the commands on tms.jobs in kc's namespace, from the start, and
// appends the events domain/job's rules make of them, each at once (its
// watermark is the command's time plus the decision delay: no fix or
// visit comes, so no job gets further than started).
func RunProcessor(t testing.TB, kc *kafka.Config) (stop func()) {
	t.Helper()
	topic := kc.Topic(event.TopicJobs)
	cl, err := kc.NewClient("test-job-processor", kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	rules := job.DefaultRules
	vehicles := map[string]*job.Vehicle{}
	return testenv.Go(t, "job processor stand-in", func(ctx context.Context) error {
		defer cl.Close()
		for {
			fetches := cl.PollFetches(ctx)
			if ctx.Err() != nil {
				return nil
			}
			if err := fetches.Err0(); err != nil && !errors.Is(err, context.Canceled) {
				return err
			}
			var out []*kgo.Record
			for _, r := range fetches.Records() {
				e, err := event.Decode(r.Value)
				if err != nil {
					continue
				}
				in, err := job.DecodeInput(e)
				if err != nil {
					return fmt.Errorf("offset %d: %w", r.Offset, err)
				}
				var made []event.Envelope
				switch {
				case in.Create != nil:
					v := vehicle(vehicles, in.Create.Vehicle)
					rules.Create(v, *in.Create)
					made = rules.Advance(v, in.Create.RequestedAt.Add(rules.DecisionDelay))
				case in.Cancel != nil:
					v := vehicle(vehicles, in.Cancel.Vehicle)
					rules.Cancel(v, *in.Cancel)
					made = rules.Advance(v, in.Cancel.RequestedAt.Add(rules.DecisionDelay))
				}
				for _, m := range made {
					b, err := json.Marshal(m)
					if err != nil {
						return err
					}
					out = append(out, &kgo.Record{Topic: topic, Key: []byte(m.Subject), Value: b})
				}
			}
			if len(out) > 0 {
				if err := cl.ProduceSync(ctx, out...).FirstErr(); err != nil && ctx.Err() == nil {
					return err
				}
			}
		}
	})
}

func vehicle(m map[string]*job.Vehicle, plate string) *job.Vehicle {
	v := m[plate]
	if v == nil {
		v = &job.Vehicle{Plate: plate}
		m[plate] = v
	}
	return v
}
