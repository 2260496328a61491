package kafka_test

import (
	"errors"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/tmsfleet/tms/adapters/kafka"
	"github.com/tmsfleet/tms/domain/event"
	"github.com/tmsfleet/tms/internal/testenv"
)

// TestCoPartitioned checks the check a processor that joins topics by key
// runs at start: tms's vehicle-keyed topics pass with their partition
// count, and a topic partitioned otherwise (the single-partition station
// catalogue) is refused, naming both topics and their counts.
func TestCoPartitioned(t *testing.T) {
	t.Parallel()
	kc := testenv.FromEnv(os.LookupEnv).Kafka(t)
	adm, err := kc.NewAdmin("test-admin")
	if err != nil {
		t.Fatal(err)
	}
	defer adm.Close()
	positions, geofence, jobs := kc.Topic(event.TopicPositions), kc.Topic(event.TopicGeofence), kc.Topic(event.TopicJobs)
	n, err := kafka.CoPartitioned(t.Context(), adm, positions, geofence, jobs)
	if err != nil || n != int(kc.Partitions) {
		t.Errorf("positions, geofence, jobs: %d, %v; want %d partitions", n, err, kc.Partitions)
	}
	stations := kc.Topic(event.TopicStations)
	_, err = kafka.CoPartitioned(t.Context(), adm, positions, stations)
	if err == nil || !strings.Contains(err.Error(), stations+" 1") || !strings.Contains(err.Error(), positions) {
		t.Errorf("positions and stations: %v; want them refused, with the counts", err)
	}
	if !kafka.SinglePartition(event.TopicStations) || kafka.SinglePartition(event.TopicPositions) {
		t.Error("SinglePartition: the stations topic has one partition, positions several")
	}
}

// realKafka returns a config on the configured Kafka cluster in a fresh
// namespace, its topics not created yet; the test is skipped without one
// (and fails when services are required, as make test requires them).
func realKafka(t *testing.T, partitions int32, rf, minISR int16) (*kafka.Config, *kadm.Client) {
	t.Helper()
	env := testenv.FromEnv(os.LookupEnv)
	if !env.RealKafka() {
		if env.Require {
			t.Fatal("KAFKA_BROKERS is not set")
		}
		t.Skip("needs a real Kafka cluster (KAFKA_BROKERS)")
	}
	kc := &kafka.Config{Brokers: env.KafkaBrokers, Namespace: testenv.Name("t"), Partitions: partitions,
		ReplicationFactor: rf, MinInsyncReplicas: minISR, Logger: slog.New(slog.DiscardHandler)}
	kc.SetDefaults()
	if err := kc.Validate(); err != nil {
		t.Fatal(err)
	}
	adm, err := kc.NewAdmin("test-admin")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(adm.Close)
	return kc, adm
}

// clusterMode reports whether the services run a three-node cluster
// (deploy/test/services.sh --cluster).
func clusterMode() bool { return os.Getenv("TMS_SERVICES_KAFKA_NODES") == "3" }

// TestEnsureTopicsRefusesPartitionMismatch: a plate-keyed topic that
// exists with another partition count than the others is refused at
// start, the error naming every co-partitioned topic with its count.
func TestEnsureTopicsRefusesPartitionMismatch(t *testing.T) {
	t.Parallel()
	kc, adm := realKafka(t, 3, -1, 0)
	geofence := kc.Topic(event.TopicGeofence)
	resp, err := adm.CreateTopic(t.Context(), 2, -1, nil, geofence)
	if err == nil {
		err = resp.Err
	}
	if err != nil {
		t.Fatal(err)
	}
	_, err = kc.EnsureTopics(t.Context(), adm)
	if !errors.Is(err, kafka.ErrNotCoPartitioned) {
		t.Fatalf("EnsureTopics: %v; want ErrNotCoPartitioned", err)
	}
	for _, want := range []string{geofence + " 2", kc.Topic(event.TopicPositions) + " 3", kc.Topic(event.TopicJobs) + " 3",
		kc.Topic(event.TopicGeofenceState) + " 3", kc.Topic(event.TopicJobsState) + " 3"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("EnsureTopics: %q does not name %q", err, want)
		}
	}
	// Run again over the topics as they now are: still refused.
	if _, err := kc.EnsureTopics(t.Context(), adm); !errors.Is(err, kafka.ErrNotCoPartitioned) {
		t.Errorf("EnsureTopics over existing topics: %v; want ErrNotCoPartitioned", err)
	}
}

// TestEnsureTopicsReplication: the topics tms creates have the
// replication factor and min.insync.replicas asked for (3 and 2 on the
// cluster of services.sh --cluster, 1 and 1 on the single broker), as the
// cluster itself reports them, and EnsureTopics reports the same.
func TestEnsureTopicsReplication(t *testing.T) {
	t.Parallel()
	rf, minISR := int16(1), int16(1)
	if clusterMode() {
		rf, minISR = 3, 2
	}
	kc, adm := realKafka(t, 3, rf, minISR)
	states, err := kc.EnsureTopics(t.Context(), adm)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, st := range states {
		names = append(names, st.Name)
		if !st.Created || st.ReplicationFactor != int(rf) || st.MinInsyncReplicas != strconv.Itoa(int(minISR)) {
			t.Errorf("reported %+v; want created, replication factor %d, min ISR %d", st, rf, minISR)
		}
	}
	details, err := adm.ListTopics(t.Context(), names...)
	if err != nil {
		t.Fatal(err)
	}
	configs, err := adm.DescribeTopicConfigs(t.Context(), names...)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range names {
		d := details[name]
		if len(d.Partitions) == 0 {
			t.Errorf("%s: no partitions", name)
		}
		for p, pd := range d.Partitions {
			if len(pd.Replicas) != int(rf) {
				t.Errorf("%s[%d]: replicas %v; want %d", name, p, pd.Replicas, rf)
			}
		}
		rc, err := configs.On(name, nil)
		if err != nil {
			t.Fatal(err)
		}
		got := ""
		for _, c := range rc.Configs {
			if c.Key == "min.insync.replicas" && c.Value != nil {
				got = *c.Value
			}
		}
		if got != strconv.Itoa(int(minISR)) {
			t.Errorf("%s: min.insync.replicas %q; want %d", name, got, minISR)
		}
	}
	// A second start finds them all, as they are.
	again, err := kc.EnsureTopics(t.Context(), adm)
	if err != nil {
		t.Fatal(err)
	}
	for _, st := range again {
		if st.Created {
			t.Errorf("%s: created again", st.Name)
		}
	}
}
