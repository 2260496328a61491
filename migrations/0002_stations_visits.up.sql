-- The station catalogue as of the last event of tms.stations for each
-- station. A deleted station keeps its row, with deleted_at set and the
-- version of its deletion: a station created again continues its versions
-- from there (commands read the version here), and its event ids never
-- repeat. The API answers 404 for it. A deletion whose station was never
-- seen (its upserts compacted away) leaves a row with only the id, the
-- version and the times; the CHECK keeps every live row complete.
CREATE TABLE stations (
    id                 text COLLATE "C" PRIMARY KEY,
    name               text,
    type               text,
    coord_system       text,
    -- GeoJSON, WGS84: what fixes are compared against.
    geometry           jsonb,
    -- GeoJSON as given, for stations given in GCJ-02.
    original_geometry  jsonb,
    radius_m           double precision,
    -- The detection settings the definition gave, and only those.
    detection          jsonb,
    version            bigint      NOT NULL,
    -- The last event's time: when the station took its current form.
    updated_at         timestamptz NOT NULL,
    deleted_at         timestamptz,
    CHECK (deleted_at IS NOT NULL OR
           (name IS NOT NULL AND type IS NOT NULL AND coord_system IS NOT NULL AND
            geometry IS NOT NULL AND detection IS NOT NULL))
);

-- GET /stations?type= pages live stations by id.
CREATE INDEX stations_type ON stations (type, id) WHERE deleted_at IS NULL;

-- Every visit of a vehicle to a station, from tms.geofence: open from
-- its entry until its exit (exited_at and dwell_s NULL meanwhile). Open
-- visits are each vehicle's current stations and each station's vehicles
-- inside; no other table is needed for those.
CREATE TABLE visits (
    visit_id         uuid PRIMARY KEY,
    vehicle          text COLLATE "C" NOT NULL,
    station_id       text COLLATE "C" NOT NULL,
    station_type     text             NOT NULL,
    -- The station version the vehicle entered (or, for a visit whose
    -- entry was never seen, the one it left).
    station_version  bigint           NOT NULL,
    entered_at       timestamptz      NOT NULL,
    exited_at        timestamptz,
    dwell_s          double precision,
    entry_flags      text[]           NOT NULL DEFAULT '{}',
    exit_flags       text[]           NOT NULL DEFAULT '{}',
    initial_cause    text,
    -- The silence before the entry, and before the exit, when there was one.
    gap_s            double precision,
    exit_gap_s       double precision,
    CHECK ((exited_at IS NULL) = (dwell_s IS NULL))
);

-- GET /visits finds the visits overlapping [from, to) in two ranges per
-- filter: those that began in the window (by entered_at) and those in
-- progress when it began (closed ones by exited_at, open ones below).
-- Each range scans only visits near the window, however long the history.
CREATE INDEX visits_station_entered ON visits (station_id, entered_at);
CREATE INDEX visits_station_exited  ON visits (station_id, exited_at) WHERE exited_at IS NOT NULL;
CREATE INDEX visits_vehicle_entered ON visits (vehicle, entered_at);
CREATE INDEX visits_vehicle_exited  ON visits (vehicle, exited_at) WHERE exited_at IS NOT NULL;
CREATE INDEX visits_entered         ON visits (entered_at);
CREATE INDEX visits_exited          ON visits (exited_at) WHERE exited_at IS NOT NULL;

-- Open visits: who is inside a station now, and each vehicle's current
-- stations.
CREATE INDEX visits_open_station ON visits (station_id, entered_at) WHERE exited_at IS NULL;
CREATE INDEX visits_open_vehicle ON visits (vehicle, entered_at) WHERE exited_at IS NULL;
