// Package pipeline groups tms's stages, one sub-package each: ingest (MQTT
// to tms.positions), and the Kafka processors that derive new event topics
// from existing ones. Each stage has a Config, a constructor that
// validates it, and Run(ctx), which returns once the stage has stopped
// cleanly: intake first, then flushed output, then closed clients.
package pipeline
