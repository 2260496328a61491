-- Trips and the stops between them, every vehicle's, from tms.positions
-- (projections/trips; the rules are domain/trip's, docs/history.md states
-- them). A segment's id is derived from its vehicle and start, so a trip
-- a late fix changes is updated in place, with the next revision.
-- Stations and jobs are not stored here: the queries join them (visits,
-- jobs) when they read, so that a visit or a job that arrives after the
-- trip still shows.
CREATE TABLE trips (
    id                  uuid PRIMARY KEY,
    vehicle             text COLLATE "C" NOT NULL,
    -- Where the vehicle last stood before it, and first stood after it.
    start_time          timestamptz      NOT NULL,
    start_lat           double precision NOT NULL,
    start_lng           double precision NOT NULL,
    end_time            timestamptz      NOT NULL,
    end_lat             double precision NOT NULL,
    end_lng             double precision NOT NULL,
    -- Still under way: the end is the last fix so far.
    open                boolean          NOT NULL,
    distance_m          double precision NOT NULL,
    max_speed_kmh       double precision NOT NULL,
    moving_s            double precision NOT NULL,
    idle_s              double precision NOT NULL,
    fixes               integer          NOT NULL,
    fixes_used          integer          NOT NULL,
    fixes_dropped       integer          NOT NULL,
    distance_dropped_m  double precision NOT NULL,
    flags               text[]           NOT NULL DEFAULT '{}',
    -- 1, and one more each time a late fix changed it.
    revision            integer          NOT NULL
);

-- A vehicle's trips by start: the list, its paging, and the trip in
-- progress at a window's start. The fleet's by start, for fleet-wide
-- ranges.
CREATE UNIQUE INDEX trips_vehicle_start ON trips (vehicle, start_time);
CREATE INDEX trips_start ON trips (start_time);

CREATE TABLE stops (
    id          uuid PRIMARY KEY,
    vehicle     text COLLATE "C" NOT NULL,
    -- From the end of one trip to the start of the next.
    start_time  timestamptz      NOT NULL,
    end_time    timestamptz      NOT NULL,
    -- Where it stood: where the trip before it ended.
    lat         double precision NOT NULL,
    lng         double precision NOT NULL,
    open        boolean          NOT NULL,
    fixes       integer          NOT NULL,
    flags       text[]           NOT NULL DEFAULT '{}',
    revision    integer          NOT NULL
);

CREATE UNIQUE INDEX stops_vehicle_start ON stops (vehicle, start_time);
CREATE INDEX stops_start ON stops (start_time);

-- The projection's own state, per vehicle: what domain/trip has made of
-- its fixes so far (a few fixes and running totals, as Vehicle.MarshalBinary
-- stores them), the newest fix, and the times of the snapshots kept in
-- trip_snapshots. Written once per
-- batch per vehicle, so its pages keep room for in-place updates.
CREATE TABLE trip_vehicles (
    vehicle      text COLLATE "C" PRIMARY KEY,
    state        bytea            NOT NULL,
    newest       timestamptz      NOT NULL,
    snapshots    timestamptz[]    NOT NULL
) WITH (fillfactor = 50);

-- Each vehicle's recent fixes (those within TMS_TRIPS_LATE_HORIZON of its
-- newest, from a snapshot on), so that a late fix can be applied by
-- reading them again from the snapshot before it.
CREATE TABLE trip_fixes (
    vehicle    text COLLATE "C" NOT NULL,
    fix_time   timestamptz      NOT NULL,
    lat        double precision NOT NULL,
    lng        double precision NOT NULL,
    speed_kmh  double precision NOT NULL,
    PRIMARY KEY (vehicle, fix_time)
);

-- Snapshots of a vehicle's state, each the state before its fix at `at`.
CREATE TABLE trip_snapshots (
    vehicle  text COLLATE "C" NOT NULL,
    at       timestamptz      NOT NULL,
    state    bytea            NOT NULL,
    PRIMARY KEY (vehicle, at)
);

-- The job a trip belonged to is found by the vehicle's jobs started
-- before the trip ended.
CREATE INDEX jobs_vehicle_started ON jobs (vehicle, started_at) WHERE started_at IS NOT NULL;
