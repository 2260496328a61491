-- How far `tms backfill g7` got with each plate and range
-- (docs/backfill.md, "Resume"). A row is written after Kafka has
-- acknowledged every fix of the range before done_until, so a rerun of the
-- same range starts there. It is the command's bookkeeping, not a read
-- model: dropping it costs only time (a rerun fetches the range again, and
-- the fixes, with the same ids as before, are stored once).
CREATE TABLE backfill_progress (
    source        text             NOT NULL,
    plate         text COLLATE "C" NOT NULL,
    range_from    timestamptz      NOT NULL,
    range_to      timestamptz      NOT NULL,
    -- Every fix of the range before done_until is in Kafka.
    done_until    timestamptz      NOT NULL,
    -- Rows fetched, rows rejected (to tms.deadletter), fixes tms had
    -- already, fixes added to tms.positions; pages and requests made.
    fetched       bigint           NOT NULL DEFAULT 0,
    rejected      bigint           NOT NULL DEFAULT 0,
    known         bigint           NOT NULL DEFAULT 0,
    added         bigint           NOT NULL DEFAULT 0,
    pages         bigint           NOT NULL DEFAULT 0,
    requests      bigint           NOT NULL DEFAULT 0,
    started_at    timestamptz      NOT NULL,
    updated_at    timestamptz      NOT NULL,
    completed_at  timestamptz,
    PRIMARY KEY (source, plate, range_from, range_to)
);

-- The trips projection's backfill lane of each vehicle
-- (projections/trips/backfill.go): backfilled fixes later than the late
-- horizon that fall in a gap of the vehicle's trips and stops (a silence)
-- are cut into trips there, by a state of their own. gap_from and gap_to
-- bound the gap (NULL: unbounded); state is the lane's trip.Vehicle. A
-- table of the trips read model (rebuilt with it).
CREATE TABLE trip_backfill (
    vehicle   text COLLATE "C" PRIMARY KEY,
    gap_from  timestamptz,
    gap_to    timestamptz,
    state     bytea            NOT NULL,
    newest    timestamptz      NOT NULL
);
