package kafka_test

import (
	"os"
	"strings"
	"testing"

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
