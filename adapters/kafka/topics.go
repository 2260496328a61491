package kafka

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/tmsfleet/tms/domain/event"
)

// TopicSpec is a topic tms creates when it is missing.
type TopicSpec struct {
	Name    string
	Configs map[string]*string
	// Compacted topics are read whole and are small: one partition is
	// enough and keeps them in a single total order.
	SinglePartition bool
}

func ptr(s string) *string { return &s }

// Topics lists every topic tms uses with its settings. Kafka is the system
// of record, so event topics keep their records forever; the dead-letter
// topic keeps them for 30 days. The station catalogue is compacted, but a
// station's versions stay uncompacted for 90 days (min.compaction.lag.ms),
// so that reprocessing the last 90 days of positions judges every fix
// against the station as it stood when the fix was taken.
func Topics() []TopicSpec {
	forever := map[string]*string{"retention.ms": ptr("-1"), "retention.bytes": ptr("-1")}
	return []TopicSpec{
		{Name: event.TopicPositions, Configs: forever},
		{Name: event.TopicStations, SinglePartition: true, Configs: map[string]*string{
			"cleanup.policy": ptr("compact"), "min.compaction.lag.ms": ptr("7776000000"),
		}},
		{Name: event.TopicGeofence, Configs: forever},
		{Name: event.TopicGeofenceState, Configs: map[string]*string{"cleanup.policy": ptr("compact")}},
		{Name: event.TopicJobs, Configs: forever},
		{Name: event.TopicJobsState, Configs: map[string]*string{"cleanup.policy": ptr("compact")}},
		{Name: event.TopicDeadLetter, Configs: map[string]*string{"retention.ms": ptr("2592000000")}},
	}
}

// SinglePartition reports whether tms creates topic (a contract name)
// with a single partition: a consumer group of such a topic has work for
// one member only.
func SinglePartition(topic string) bool {
	for _, s := range Topics() {
		if s.Name == topic {
			return s.SinglePartition
		}
	}
	return false
}

// EnsureTopics creates the topics tms uses that do not exist yet, in the
// config's namespace, with its partition count (one for single-partition
// topics) and replication factor. Existing topics are left as they are.
func (c *Config) EnsureTopics(ctx context.Context, adm *kadm.Client) error {
	for _, s := range Topics() {
		p := c.Partitions
		if s.SinglePartition {
			p = 1
		}
		resp, err := adm.CreateTopic(ctx, p, c.ReplicationFactor, s.Configs, c.Topic(s.Name))
		if err == nil {
			err = resp.Err
		}
		if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
			return fmt.Errorf("create topic %s: %w", s.Name, err)
		}
	}
	return nil
}

// CoPartitioned checks that topics (names as in the cluster, namespace
// included) exist and have as many partitions each, and returns that
// number. Records of one key are then in the same partition p of each,
// as every tms producer partitions keys alike, which a processor that
// joins the topics by key (state by positions partition, jobs by plate)
// relies on. Topics just created can take a moment to be known to every
// broker: it asks again, once a second, for up to 30 s.
func CoPartitioned(ctx context.Context, adm *kadm.Client, topics ...string) (int, error) {
	var details kadm.TopicDetails
	for attempt := 0; ; attempt++ {
		var err error
		if details, err = adm.ListTopics(ctx, topics...); err != nil {
			return 0, err
		}
		var missing []error
		for _, t := range topics {
			if d, ok := details[t]; !ok {
				missing = append(missing, fmt.Errorf("topic %s: not found", t))
			} else if d.Err != nil {
				missing = append(missing, fmt.Errorf("topic %s: %w", t, d.Err))
			}
		}
		if len(missing) == 0 {
			break
		}
		if attempt == 30 {
			return 0, errors.Join(missing...)
		}
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(time.Second):
		}
	}
	n := len(details[topics[0]].Partitions)
	for _, t := range topics[1:] {
		if m := len(details[t].Partitions); m != n {
			return 0, fmt.Errorf("%s has %d partitions and %s %d: co-partitioned topics must have as many", topics[0], n, t, m)
		}
	}
	return n, nil
}
