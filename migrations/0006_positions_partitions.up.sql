-- Positions history partitioned by month of fix time (docs/history.md,
-- "Positions history"), so that retention drops whole months and a query
-- of a window reads only the months it covers.
--
-- Months are UTC calendar months. Each partition is named
-- <parent>_pYYYYMM (<parent>_pYYYYMMbc before the year 1) and created on
-- demand by ensure_month_partitions: by the projector for every month it
-- writes a fix of, and ahead of time by the project role's maintenance.
-- There is no default partition: it would make every new partition's
-- ATTACH lock it exclusively and scan it, keep rows out of retention's
-- reach, and forbid DETACH ... CONCURRENTLY, which is how retention drops
-- a month without blocking readers.
--
-- The primary key carries every other column (INCLUDE), so that a track
-- is an index-only scan: one vehicle's fixes lie together in the index,
-- whereas in the heap they are interleaved with the whole fleet's in the
-- order they arrived (a vehicle-month of 10 s fixes is 268,000 heap pages
-- apart, but some 2,700 index pages).
--
-- An existing deployment keeps its history: the rows move into their
-- months' partitions within this migration's transaction (one pass over
-- the table; the projector's offsets and the vehicles table are kept as
-- they were).
ALTER TABLE positions RENAME TO positions_unpartitioned;
ALTER INDEX positions_pkey RENAME TO positions_unpartitioned_pkey;

CREATE TABLE positions (
    plate        text COLLATE "C" NOT NULL,
    fix_time     timestamptz      NOT NULL,
    received_at  timestamptz      NOT NULL,
    lat          double precision NOT NULL,
    lng          double precision NOT NULL,
    speed_kmh    double precision NOT NULL,
    course_deg   double precision,
    flags        text[]           NOT NULL DEFAULT '{}',
    PRIMARY KEY (plate, fix_time) INCLUDE (received_at, lat, lng, speed_kmh, course_deg, flags)
) PARTITION BY RANGE (fix_time);

-- month_partition_name is the name of parent's partition of the UTC
-- month starting at month_start.
CREATE FUNCTION month_partition_name(parent_name text, month_start timestamptz) RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT parent_name || '_p' || to_char(month_start AT TIME ZONE 'UTC', 'YYYYMM')
           || CASE WHEN month_start < timestamptz '0001-01-01 00:00:00+00' THEN 'bc' ELSE '' END
$$;

-- ensure_month_partitions makes sure parent has a partition for the UTC
-- month of each of times, and returns how many it created. Creation is
-- CREATE TABLE then ATTACH PARTITION, which takes only a SHARE UPDATE
-- EXCLUSIVE lock on parent (reads and writes of other months go on),
-- rather than CREATE TABLE ... PARTITION OF, which locks parent
-- exclusively. Creators are serialised by an advisory lock held to the
-- end of the transaction; months that exist cost a catalogue lookup and
-- take no lock.
CREATE FUNCTION ensure_month_partitions(parent regclass, times timestamptz[]) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    nsp      text;
    base     text;
    m        timestamptz;
    m_end    timestamptz;
    part     text;
    locked   boolean := false;
    created  integer := 0;
BEGIN
    SELECT n.nspname, c.relname INTO nsp, base
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = parent;
    FOR m IN SELECT DISTINCT date_trunc('month', t, 'UTC') FROM unnest(times) AS t WHERE t IS NOT NULL ORDER BY 1 LOOP
        part := month_partition_name(base, m);
        IF to_regclass(format('%I.%I', nsp, part)) IS NOT NULL THEN
            CONTINUE;
        END IF;
        IF NOT locked THEN
            PERFORM pg_advisory_xact_lock(hashtext('tms month partitions'), parent::oid::integer);
            locked := true;
        END IF;
        -- Another creator may have made it while this one waited. Asked of
        -- pg_class with the statement's snapshot, not with to_regclass:
        -- an advisory lock does not make the backend read the catalogue
        -- invalidations of what others committed meanwhile, so its
        -- catalogue cache may still say the month is missing.
        IF EXISTS (SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                   WHERE n.nspname = nsp AND c.relname = part) THEN
            CONTINUE;
        END IF;
        -- The month's end, computed on UTC wall time: adding a month to a
        -- timestamptz would follow the session's time zone.
        m_end := ((m AT TIME ZONE 'UTC') + interval '1 month') AT TIME ZONE 'UTC';
        -- Autovacuum visits a partition after 1 % of its rows are new
        -- (Postgres's default is 20 %): it marks the new pages all-visible,
        -- which index-only scans of recent history need.
        EXECUTE format('CREATE TABLE %I.%I (LIKE %s INCLUDING DEFAULTS INCLUDING STORAGE INCLUDING COMPRESSION) '
                       'WITH (autovacuum_vacuum_insert_scale_factor = 0.01)', nsp, part, parent);
        EXECUTE format('ALTER TABLE %s ATTACH PARTITION %I.%I FOR VALUES FROM (%L) TO (%L)', parent, nsp, part, m, m_end);
        created := created + 1;
    END LOOP;
    RETURN created;
END
$$;

SELECT ensure_month_partitions('positions',
    ARRAY(SELECT DISTINCT date_trunc('month', fix_time, 'UTC') FROM positions_unpartitioned));
INSERT INTO positions (plate, fix_time, received_at, lat, lng, speed_kmh, course_deg, flags)
SELECT plate, fix_time, received_at, lat, lng, speed_kmh, course_deg, flags FROM positions_unpartitioned;
DROP TABLE positions_unpartitioned;

-- How far retention (TMS_POSITIONS_RETENTION) has dropped a read model's
-- history: nothing before kept_from is left. Not a read model of the
-- topics: `tms replay read-models` keeps it, and the projector does not
-- store again the fixes older than kept_from that a replay reads.
CREATE TABLE history_retention (
    table_name  text PRIMARY KEY,
    kept_from   timestamptz NOT NULL,
    -- The setting in force when it last dropped, and when that was.
    retention   interval    NOT NULL,
    updated_at  timestamptz NOT NULL
);
