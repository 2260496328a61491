package geofence

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tmsfleet/tms/adapters/kafka"
	"github.com/tmsfleet/tms/domain/geofence"
)

// Group is the processor's consumer group. Renaming it re-reads
// tms.positions from the start and produces every event again.
const Group = "tms.geofence"

// Source is the CloudEvents source of the events the processor produces.
const Source = "/tms/geofence"

// Snapshot formats (Config.SnapshotFormat).
const (
	SnapshotBinary = "binary"
	SnapshotJSON   = "json"
)

// DefaultMaxVehicles is MaxVehicles' default.
const DefaultMaxVehicles = 200_000

// Config configures the processor.
type Config struct {
	// Kafka is how to reach the brokers (required).
	Kafka *kafka.Config
	// Geofence is the tracker's behaviour.
	Geofence geofence.Config
	// NewIndex makes the station index (required): the H3 index in
	// production, the brute-force one in small tests.
	NewIndex func() (geofence.Index, error)
	// SnapshotEvery and SnapshotInterval bound how much of a partition a
	// takeover replays: a snapshot is taken after this many records of the
	// partition, or this long after the last one. Defaults 100,000 and
	// 60 s: a takeover replays at most about a second or two of work.
	SnapshotEvery    int
	SnapshotInterval time.Duration
	// MaxBatch bounds the records of one transaction; it matters only with
	// a backlog, where bigger transactions go faster. Default 50,000.
	MaxBatch int
	// CommitInterval is how long a transaction stays open for more records
	// once it has some: the most it adds to an event's latency for
	// read_committed consumers. Default 100 ms, as Kafka Streams'.
	CommitInterval time.Duration
	// MaxVehicles bounds the vehicles the processor keeps in memory were it
	// to own every partition: each partition holds at most MaxVehicles
	// divided by the partition count, and forgets the vehicles that
	// reported least recently to stay there (see geofence.Fleet). Every
	// instance must have the same value, or a takeover decides otherwise
	// than its predecessor. Default 200,000: twice a 100,000-vehicle
	// fleet, and about 200 MB at the ~1 KB a vehicle takes.
	MaxVehicles int
	// SnapshotFormat is how snapshot chunks are written: SnapshotBinary
	// (the default: a quarter of the bytes, several times faster to write
	// and to restore) or SnapshotJSON, the only format versions before
	// issue 12 read. Both are always read; write JSON while instances of
	// such a version may still take over a partition (a rolling upgrade,
	// or to keep a rollback possible), then switch.
	SnapshotFormat string
	// Registerer receives the processor's metrics; nil means none.
	Registerer prometheus.Registerer
	// Logger; default slog's.
	Logger *slog.Logger
}

func (c *Config) setDefaults() {
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
	if c.MaxVehicles == 0 {
		c.MaxVehicles = DefaultMaxVehicles
	}
	if c.SnapshotFormat == "" {
		c.SnapshotFormat = SnapshotBinary
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	c.Geofence.SetDefaults()
}

// Validate reports a config that cannot work.
func (c *Config) Validate() error {
	switch {
	case c.Kafka == nil || c.NewIndex == nil:
		return errors.New("geofence processor: Kafka and NewIndex are required")
	case c.SnapshotEvery < 1 || c.SnapshotInterval <= 0 || c.MaxBatch < 1 || c.CommitInterval < 0:
		return errors.New("geofence processor: snapshot, batch and commit limits must be positive")
	case c.MaxVehicles < 1:
		return errors.New("geofence processor: MaxVehicles must be positive")
	case c.SnapshotFormat != SnapshotBinary && c.SnapshotFormat != SnapshotJSON:
		return fmt.Errorf("geofence processor: snapshot format %q is neither %q nor %q", c.SnapshotFormat, SnapshotBinary, SnapshotJSON)
	}
	return c.Geofence.Validate()
}
