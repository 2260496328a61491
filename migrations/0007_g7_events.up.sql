-- G7's stop, idle and EMS events, one row per event, from tms.g7events
-- (projections/g7events; docs/g7.md). The id is the event's identity
-- (g7_event_id: plate, kind, start time), the same for every report of
-- it; a row holds the report of highest rank seen so far (closed over
-- open, then the later push_time, then the later end_time, then the
-- greater version), so that repeats and late, older reports change
-- nothing, in whatever order they come.
CREATE TABLE g7_events (
    id           uuid PRIMARY KEY,
    vehicle      text COLLATE "C" NOT NULL,
    kind         text             NOT NULL CHECK (kind IN ('stop', 'idle', 'ems')),
    -- G7 gave no end yet.
    open         boolean          NOT NULL,
    start_time   timestamptz      NOT NULL,
    end_time     timestamptz,
    g7_seconds   double precision,
    lat          double precision NOT NULL,
    lng          double precision NOT NULL,
    end_lat      double precision,
    end_lng      double precision,
    push_time    timestamptz,
    received_at  timestamptz      NOT NULL,
    -- The envelope id of the report the row holds.
    version      uuid             NOT NULL,
    CHECK (open = (end_time IS NULL))
);

-- A window's events are those that began in it (by start) and those in
-- progress when it began: ended after its start (by end), or still open.
-- Each part is a range scan of its own index, so that a query costs what
-- it finds near the window, not the length of the history before it.
CREATE INDEX g7_events_vehicle_start ON g7_events (vehicle, start_time, id);
CREATE INDEX g7_events_vehicle_end ON g7_events (vehicle, end_time) WHERE end_time IS NOT NULL;
CREATE INDEX g7_events_vehicle_open ON g7_events (vehicle, start_time) WHERE open;
