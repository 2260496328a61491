// Package geofence decides when vehicles enter and leave stations: the
// station catalogue over time, the index that finds the stations a fix is
// in, and the per-vehicle state machine (reorder window, hysteresis,
// crossings between sparse fixes, late and duplicate fixes, first
// sightings and silences) that turns fixes into entered and exited events.
// Every decision takes its time from the fixes and station events, never
// from the clock, so replaying the topics gives the same events.
package geofence
