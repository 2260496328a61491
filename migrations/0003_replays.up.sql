-- History derived for a new or changed station (tms replay geofence):
-- each run applies one station, as it stands now, to the positions of a
-- past time range. Its visits are a result of their own, never mixed with
-- the live visits (nor with tms.geofence, which billing consumes).
CREATE TABLE replay_runs (
    id               uuid PRIMARY KEY,
    station_id       text COLLATE "C" NOT NULL,
    station_version  bigint           NOT NULL,
    from_time        timestamptz      NOT NULL,
    to_time          timestamptz      NOT NULL,
    started_at       timestamptz      NOT NULL,
    finished_at      timestamptz,
    -- running, done, or failed (with the error in detail).
    status           text             NOT NULL,
    detail           text,
    fixes_read       bigint           NOT NULL DEFAULT 0,
    visits           bigint           NOT NULL DEFAULT 0
);

CREATE INDEX replay_runs_station ON replay_runs (station_id, started_at);

-- A run's visits. exited_at is NULL for a vehicle still inside at the end
-- of the range.
CREATE TABLE replay_visits (
    run_id         uuid             NOT NULL REFERENCES replay_runs (id) ON DELETE CASCADE,
    visit_id       uuid             NOT NULL,
    vehicle        text COLLATE "C" NOT NULL,
    entered_at     timestamptz      NOT NULL,
    exited_at      timestamptz,
    dwell_s        double precision,
    entry_flags    text[]           NOT NULL DEFAULT '{}',
    exit_flags     text[]           NOT NULL DEFAULT '{}',
    initial_cause  text,
    PRIMARY KEY (run_id, visit_id)
);

CREATE INDEX replay_visits_entered ON replay_visits (run_id, entered_at);
