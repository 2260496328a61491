package kafka

import (
	"context"
	"errors"
	"fmt"

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
