// Package simulator is the fleet behind `tms simulate`: a seeded, repeatable
// set of trucks driving between the sites of a city, reporting their fixes
// the way G7 does, over MQTT, for demos and load tests; and, through tms's
// API, the sites as stations and jobs that some trucks drive stop by stop,
// so that a demo shows visits and jobs too.
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
// Stays last minutes by the site's kind; WithDwell makes them about a
// given length instead. Yard is a small area (seven sites 130 m apart)
// where legs take seconds: with a dwell of a few seconds a job runs its
// course in about a minute, in real time.
//
// Plates are Chinese-style (沪A3K7Q2: province character, issuing-office
// letter, five alphanumerics, no I or O, at most two letters among the
// five), unique within the fleet, and valid for position.NormalizePlate.
//
// # Jobs
//
// WithJobs gives the fleet jobs, planned from their own random streams as
// a dispatcher would: a loading site among the three nearest the vehicle
// (other than the one it stands at or heads for), a quality check at that
// site three times in ten, then one drop, or two four times in ten, among
// the four unloading sites nearest the loading; 5 to 40 t of cargo. Job k
// goes to vehicle k mod the fleet's size and is the same whatever the
// number of jobs, and whatever the fleet's size while there are no more
// jobs than vehicles. A vehicle with jobs sets out at once for its first
// stop (a stay is cut short, a leg turned at the speed it drives), stays
// at each stop's site inside its station (one stay for consecutive stops
// at a site: a loading and its check), leaves, drives to the next, goes on
// to its next job from its last drop, and returns to its work cycle after
// its last job. Vehicles without jobs drive exactly as they would without.
//
// # Stations and jobs through the API
//
// With Config.APIURL and an operator token (Config.APIToken), Run first
// defines every site as a station: a circle of Area.StationRadiusM
// around it, named and typed as the site, with the stable id
// Area.StationID (sim.<area>.<site>). It writes with PUT and If-None-Match:
// *, so that a station that exists is never written blindly: it is read,
// left alone when it is defined as the site is, and put back to the site's
// definition with If-Match (its ETag) when someone changed it. Running the
// simulator twice thus writes nothing the second time. Without jobs, an
// API that does not answer or a missing token is said in a log line and
// the run publishes positions only; with jobs, it is an error.
//
// Then, while the fleet reports (the API answers a job's create once the
// job processor has made it, which the vehicles' fixes move on), Run
// creates the jobs: POST /api/v1/jobs with new_vehicle (the plates may not
// have reported yet) and the external reference sim:<area>:<seed>:<k>, so
// that a second run repeats rather than duplicates them. One vehicle's
// jobs are sent in their order (tms queues a vehicle's second job behind
// its first by creation time), different vehicles' at once. 201, 200 (it
// exists) and 202 (accepted, not shown yet) are success; 409 (the
// reference names other content, say a run with another fleet size) is
// logged and skipped; 429 and 503 are tried again after their
// Retry-After, up to Config.APIAttempts; anything else is logged with the
// API's problem. The token is sent in the Authorization header and never
// logged. A vehicle that reached its first stop before the API took its
// job would not serve it; since legs take seconds at least and the jobs
// are sent together at the start, that does not happen with a responsive
// API.
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
