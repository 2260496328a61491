// Package bench holds tms's performance benchmarks: the figures of
// docs/performance.md, measured on the real services `make bench` starts
// (PostgreSQL, Mosquitto and Apache Kafka, all on this machine, sharing
// its cores with tms and with the benchmark itself).
//
// The package has no code of its own; its benchmarks are in its test
// files, and `make bench` runs them once each:
//
//	bash deploy/test/services.sh run -- go test -run '^$' -bench . -benchtime 1x -timeout 30m ./bench/...
//
// BenchmarkIngest drives the ingest stage (pipeline/ingest with a real
// MQTT subscriber and Kafka producer, in the benchmark's process) with the
// project's simulator, and measures positions per second from the first
// MQTT publish until Kafka has acknowledged the last record.
//
// BenchmarkProjector fills a fresh positions topic before its timer starts
// and measures how fast the vehicles projection applies it to a fresh
// database, for several MaxBatch values, by polling the offsets the
// projector commits in Postgres.
//
// BenchmarkGeofenceInstances runs 1, 2 and 3 real `tms serve` processes
// with TMS_ROLES=geofence and their own TMS_INSTANCE_IDs over a positions
// topic of 12 partitions filled before the timer, and reports the
// aggregate and per-instance fixes/s and each process's CPU per fix
// (docs/scaling.md, section 1).
//
// BenchmarkPublishToPush runs the real `tms serve` binary with all roles,
// publishes G7 batches at a steady rate with a paho client, and measures
// the latency from each position's publish instant (its gps_time) to its
// arrival at a WebSocket client subscribed to everything.
//
// BenchmarkDashboard runs `tms serve` fed by `tms simulate` (10,000
// vehicles, a fix each every 5 s) and one dashboard page in Debian's
// Chromium, driven by web/bench/dashboard.bench.mjs (playwright-core) for
// TMS_DASH_BENCH_DURATION (default 10m) with the map fitted to the fleet,
// and reports the page's frame times, JS heap, renderer memory and first
// load (docs/dashboard.md, "Tests and benchmark").
//
// Rates are reported as positions/s, latencies in milliseconds, with the
// machine's core count as the "cores" metric; each benchmark also logs its
// setup and how the machine's CPU time was shared between the benchmark
// process, tms, Postgres, Kafka and Mosquitto while it was timed.
package bench
