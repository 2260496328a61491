package jobs

import (
	"errors"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tmsfleet/tms/adapters/kafka"
	"github.com/tmsfleet/tms/domain/job"
	geofencepipeline "github.com/tmsfleet/tms/pipeline/geofence"
)

// Group is the job processor's consumer group. Renaming it re-reads
// tms.jobs, tms.geofence and tms.positions from the start and produces
// every job event again.
const Group = "tms.jobs"

// Config configures the job processor.
type Config struct {
	// Kafka is how to reach the brokers (required).
	Kafka *kafka.Config
	// Rules decide the jobs. Default job.DefaultRules.
	Rules job.Rules
	// GeofenceGroup is the geofence processor's consumer group, whose
	// progress on tms.positions bounds the watermark jobs are decided at.
	// Default the geofence's own group.
	GeofenceGroup string
	// MaxVehicles bounds the vehicles without jobs the processor keeps
	// (their latest fix and open visits), were it to own every
	// partition: each partition keeps its share. Default 200,000.
	MaxVehicles int
	// SnapshotEvery and SnapshotInterval bound how much a takeover
	// replays: a snapshot is taken after this many records of a
	// partition, or this long after the last one. Defaults 100,000 and
	// 60 s.
	SnapshotEvery    int
	SnapshotInterval time.Duration
	// MaxBatch bounds the records of one transaction. Default 50,000.
	MaxBatch int
	// CommitInterval is how long a transaction stays open for more
	// records once it has some. Default 100 ms.
	CommitInterval time.Duration
	// BarrierInterval is how often the geofence's progress is read.
	// Default 200 ms.
	BarrierInterval time.Duration
	// Now is the clock a quiet partition takes (see Processor.quiet): a
	// partition whose inputs are all read and decided, with live or no
	// positions, lets commands come due by it. Default time.Now; a test
	// that must decide by event time alone freezes it before its world.
	Now func() time.Time
	// Registerer receives the processor's metrics; nil means none.
	Registerer prometheus.Registerer
	// Logger; default slog's.
	Logger *slog.Logger
}

func (c *Config) setDefaults() {
	if c.Rules == (job.Rules{}) {
		c.Rules = job.DefaultRules
	}
	if c.GeofenceGroup == "" {
		c.GeofenceGroup = geofencepipeline.Group
	}
	if c.MaxVehicles == 0 {
		c.MaxVehicles = 200_000
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.SnapshotEvery == 0 {
		c.SnapshotEvery = 100_000
	}
	if c.SnapshotInterval == 0 {
		c.SnapshotInterval = time.Minute
	}
	if c.MaxBatch == 0 {
		c.MaxBatch = 50_000
	}
	if c.CommitInterval == 0 {
		c.CommitInterval = 100 * time.Millisecond
	}
	if c.BarrierInterval == 0 {
		c.BarrierInterval = 200 * time.Millisecond
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

// Validate reports a config that cannot work.
func (c *Config) Validate() error {
	var errs []error
	if c.Kafka == nil {
		errs = append(errs, errors.New("jobs: Kafka is required"))
	}
	if c.MaxVehicles < 1 || c.SnapshotEvery < 1 || c.SnapshotInterval <= 0 || c.MaxBatch < 1 || c.CommitInterval < 0 || c.BarrierInterval <= 0 {
		errs = append(errs, errors.New("jobs: vehicle, snapshot, batch and interval limits must be positive"))
	}
	if err := c.Rules.Validate(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}
