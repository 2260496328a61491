// Package simulator is the fleet behind `tms simulate`: a seeded, repeatable
// set of trucks driving between the sites of a city, reporting their fixes
// the way G7 does, over MQTT, for demos and load tests.
//
// # The fleet
//
// A Fleet (NewFleet) is pure model: given a seed, a vehicle count and an
// Area (Shanghai by default: some thirty loading and unloading sites and
// oil stations within 40 km of the centre) it yields one Fix per vehicle
// each time it is stepped to a later moment. It reads no clock and does no
// I/O, so the same seed and the same step times give the same fixes, and
// it can be tested and reused apart from MQTT.
//
// Vehicles cycle loading site -> unloading site -> (sometimes an oil
// station) -> loading site. A leg is a gently bent polyline between two
// parking spots, driven at 30-80 km/h with truck-like acceleration and a
// braking curve into the stop, so speeds ramp down to 0 on arrival rather
// than jumping. At a site a vehicle dwells for minutes at speed 0 and keeps
// reporting: a parked truck is a position too, and dwell times need it.
// About one vehicle in ten never moves at all. Each vehicle draws from its
// own random stream, so vehicle i behaves the same whatever the fleet size.
//
// Plates are Chinese-style (沪A3K7Q2: province character, issuing-office
// letter, five alphanumerics, no I or O, at most two letters among the
// five), unique within the fleet, and valid for position.NormalizePlate.
//
// # The messages
//
// Encoding.Encode writes a batch as G7's {"data":[...]}: plateNum, lng,
// lat, speed, course (degrees) and gps_time (epoch milliseconds). As real
// feeds do, a share of items carry lng, lat and speed as numeric strings.
// With a FaultRate, some items are made deliberately invalid (lat 95, no
// plateNum, speed -5, lng "abc"), each marked with "_fault": <the reason
// code tms is expected to give>, so that the dead-letter path can be shown
// and checked.
//
// # Running
//
// Simulator (New, Run) steps the fleet and publishes its batches. Each
// vehicle reports once per Config.Interval; batches are spread evenly over
// the interval rather than sent in one burst. With Config.RatePerSecond the
// fleet is instead paced to that many positions per second overall, again
// evenly (a batch every BatchSize/RatePerSecond seconds), which is what a
// load test wants. A delay of up to a second is caught up by sending
// faster; a longer stall is forgiven and counted (Stats.Lags) rather than
// followed by a burst.
//
// Fix times come from the wall clock (the simulator stands in for devices
// at the edge), or, with Config.Accelerated, from a simulated clock that
// starts at Config.Start and advances by Interval per round without
// waiting, to generate a long history quickly. Config.Duration (simulated
// time) and Config.MaxPositions end a run.
//
// Publishing is at QoS 1 (or 2), with up to Config.MaxInFlight messages
// awaiting their acknowledgement, so throughput is not one round trip per
// message. Each message's token is awaited up to Config.PublishTimeout; a
// token that has not completed by then counts as a failure, because a
// timed-out token carries no error. A failed message may still reach the
// broker later (the client resends unacknowledged messages after a
// reconnect). The client reconnects by itself; while it is disconnected
// the simulator pauses rather than queueing messages it cannot send.
// Counts are in Stats, and a summary is logged every Config.LogEvery.
package simulator
