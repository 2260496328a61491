package kafka

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strconv"
	"strings"
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
	// CoPartitioned topics are keyed by plate (or, for the processors'
	// state, by positions partition) and joined by key: the geofence reads
	// positions with its state, the jobs processor positions, geofence
	// events and job commands with its state, each by partition number.
	// They must all have as many partitions.
	CoPartitioned bool
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
		{Name: event.TopicPositions, Configs: forever, CoPartitioned: true},
		{Name: event.TopicStations, SinglePartition: true, Configs: map[string]*string{
			"cleanup.policy": ptr("compact"), "min.compaction.lag.ms": ptr("7776000000"),
		}},
		{Name: event.TopicGeofence, Configs: forever, CoPartitioned: true},
		{Name: event.TopicGeofenceState, Configs: map[string]*string{"cleanup.policy": ptr("compact")}, CoPartitioned: true},
		{Name: event.TopicJobs, Configs: forever, CoPartitioned: true},
		{Name: event.TopicJobsState, Configs: map[string]*string{"cleanup.policy": ptr("compact")}, CoPartitioned: true},
		{Name: event.TopicG7Events, Configs: forever, CoPartitioned: true},
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

// TopicState is what EnsureTopics found of one topic.
type TopicState struct {
	// Name is the topic's name in the cluster (namespace included).
	Name string
	// Created is set when EnsureTopics created it, unset when it existed.
	Created bool
	// Partitions is its partition count.
	Partitions int
	// ReplicationFactor is the replica count of its first partition.
	ReplicationFactor int
	// MinInsyncReplicas is its min.insync.replicas, "" when the cluster
	// did not say (the embedded broker has no such setting).
	MinInsyncReplicas string
}

// EnsureTopics creates the topics tms uses that do not exist yet, in the
// config's namespace, with its partition count (one for single-partition
// topics), replication factor and min.insync.replicas. Existing topics
// are left as they are. It then logs what it found of each, and returns
// an error when the co-partitioned topics (TopicSpec.CoPartitioned) do not
// all have as many partitions: the processors that join them by partition
// would put one vehicle's records in different partitions, so tms refuses
// to run rather than mix vehicles up.
func (c *Config) EnsureTopics(ctx context.Context, adm *kadm.Client) ([]TopicState, error) {
	var states []TopicState
	for _, s := range Topics() {
		p := c.Partitions
		if s.SinglePartition {
			p = 1
		}
		configs := s.Configs
		if c.MinInsyncReplicas > 0 {
			configs = maps.Clone(configs)
			configs["min.insync.replicas"] = ptr(strconv.Itoa(int(c.MinInsyncReplicas)))
		}
		resp, err := adm.CreateTopic(ctx, p, c.ReplicationFactor, configs, c.Topic(s.Name))
		if err == nil {
			err = resp.Err
		}
		if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
			return nil, fmt.Errorf("create topic %s: %w", c.Topic(s.Name), err)
		}
		states = append(states, TopicState{Name: c.Topic(s.Name), Created: err == nil})
	}
	if err := c.describe(ctx, adm, states); err != nil {
		return nil, err
	}
	var co []TopicState
	for i, s := range Topics() {
		st := states[i]
		c.Logger.Info("kafka topic", "topic", st.Name, "created", st.Created, "partitions", st.Partitions,
			"replication_factor", st.ReplicationFactor, "min_insync_replicas", st.MinInsyncReplicas)
		if want := c.MinInsyncReplicas; !st.Created && want > 0 && st.MinInsyncReplicas != "" && st.MinInsyncReplicas != strconv.Itoa(int(want)) {
			c.Logger.Warn("an existing topic has another min.insync.replicas than TMS_KAFKA_MIN_INSYNC_REPLICAS; tms leaves it as it is",
				"topic", st.Name, "has", st.MinInsyncReplicas, "want", want)
		}
		if s.CoPartitioned {
			co = append(co, st)
		}
	}
	for _, st := range co[1:] {
		if st.Partitions != co[0].Partitions {
			var counts []string
			for _, st := range co {
				counts = append(counts, fmt.Sprintf("%s %d", st.Name, st.Partitions))
			}
			return nil, fmt.Errorf("%w: %s (a vehicle's records must be in the same partition of each: "+
				"add partitions to the smaller ones, or recreate them)", ErrNotCoPartitioned, strings.Join(counts, ", "))
		}
	}
	return states, nil
}

// ErrNotCoPartitioned is EnsureTopics' error for co-partitioned topics
// with different partition counts: a configuration error, not a fault
// that retrying cures.
var ErrNotCoPartitioned = errors.New("the topics that must be co-partitioned have different partition counts")

// describe fills in the partitions, replication factor and min ISR of
// states. Topics just created can take a moment to be known to every
// broker: it asks again, once a second, for up to 30 s.
func (c *Config) describe(ctx context.Context, adm *kadm.Client, states []TopicState) error {
	names := make([]string, len(states))
	for i, st := range states {
		names[i] = st.Name
	}
	details, err := listTopics(ctx, adm, names...)
	if err != nil {
		return err
	}
	for i := range states {
		d := details[states[i].Name]
		states[i].Partitions = len(d.Partitions)
		if p, ok := d.Partitions[0]; ok {
			states[i].ReplicationFactor = len(p.Replicas)
		}
	}
	// A topic just created may be unknown yet to the broker that answers
	// (as in listTopics): ask again, once a second, for up to 30 s.
	for attempt := 0; ; attempt++ {
		configs, err := adm.DescribeTopicConfigs(ctx, names...)
		if err != nil {
			// Not every Kafka-protocol broker answers this (and the counts
			// are what matters): say so and go on.
			c.Logger.Warn("could not read the topics' min.insync.replicas", "err", err)
			return nil
		}
		unknown := false
		for i := range states {
			rc, err := configs.On(states[i].Name, nil)
			if err == nil {
				err = rc.Err
			}
			if err != nil {
				unknown = true
				continue
			}
			for _, cf := range rc.Configs {
				if cf.Key == "min.insync.replicas" && cf.Value != nil {
					states[i].MinInsyncReplicas = *cf.Value
				}
			}
		}
		if !unknown || attempt == 30 {
			break
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
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
	details, err := listTopics(ctx, adm, topics...)
	if err != nil {
		return 0, err
	}
	n := len(details[topics[0]].Partitions)
	for _, t := range topics[1:] {
		if m := len(details[t].Partitions); m != n {
			return 0, fmt.Errorf("%w: %s has %d partitions and %s %d", ErrNotCoPartitioned, topics[0], n, t, m)
		}
	}
	return n, nil
}

// listTopics describes topics, asking again once a second for up to 30 s
// while some are not known (yet) to the broker that answers.
func listTopics(ctx context.Context, adm *kadm.Client, topics ...string) (kadm.TopicDetails, error) {
	for attempt := 0; ; attempt++ {
		details, err := adm.ListTopics(ctx, topics...)
		if err != nil {
			return nil, err
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
			return details, nil
		}
		if attempt == 30 {
			return nil, errors.Join(missing...)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(time.Second):
		}
	}
}
