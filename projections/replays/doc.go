// Package replays keeps the results of `tms replay geofence`: for a new
// or changed station, the visits it would have seen over a past time
// range, derived from tms.positions. They live in tables of their own
// (replay_runs, replay_visits), clearly apart from the live visits and
// from tms.geofence, which billing consumes.
package replays
