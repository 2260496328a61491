package event

// Topic names. They live here, beside the event types, because they are
// the same kind of contract: where each type of event is published, and
// how it is keyed, is what every consumer (tms's own processors and
// projections, billing, dashboards) codes against, and none of it needs
// Kafka. Code that only names a topic imports this package, not the Kafka
// adapter; adapters/kafka adds what is Kafka's (topic settings, clients,
// namespacing, creation). Do not rename one: every consumer reads it by
// this name.
const (
	// TopicPositions holds every accepted position fix
	// (TypePositionReported), keyed by plate.
	TopicPositions = "tms.positions"
	// TopicStations holds the station catalogue (TypeStationUpserted,
	// TypeStationDeleted), keyed by station id; compacted and in one
	// partition, so that it is read whole and in the order the changes
	// were made.
	TopicStations = "tms.stations"
	// TopicGeofence holds station entries and exits (TypeEnteredStation,
	// TypeExitedStation) and alerts (TypeAlertRaised), keyed by plate and
	// partitioned as TopicPositions.
	TopicGeofence = "tms.geofence"
	// TopicJobs holds job events (TypeJob...), keyed by plate and
	// partitioned as TopicPositions.
	TopicJobs = "tms.jobs"
	// TopicG7Events holds the reports of G7's stop, idle and EMS events
	// (TypeG7EventReported), keyed by plate and partitioned as
	// TopicPositions.
	TopicG7Events = "tms.g7events"
	// TopicDeadLetter holds rejected input with its reason and raw bytes
	// (tms.input.rejected.v1, see domain/deadletter).
	TopicDeadLetter = "tms.deadletter"
	// TopicGeofenceState holds the geofence processor's snapshots of its
	// per-vehicle state, one partition per TopicPositions partition;
	// internal to the geofence, compacted.
	TopicGeofenceState = "tms.geofence.state"
	// TopicJobsState holds the job processor's snapshots and the log of
	// its steps since, one partition per TopicPositions partition;
	// internal to the job processor, compacted.
	TopicJobsState = "tms.jobs.state"
)
