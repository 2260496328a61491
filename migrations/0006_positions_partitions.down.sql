-- Back to one positions table, keeping every fix.
DROP TABLE history_retention;
ALTER TABLE positions RENAME TO positions_partitioned;
ALTER INDEX positions_pkey RENAME TO positions_partitioned_pkey;
CREATE TABLE positions (
    plate        text COLLATE "C" NOT NULL,
    fix_time     timestamptz      NOT NULL,
    received_at  timestamptz      NOT NULL,
    lat          double precision NOT NULL,
    lng          double precision NOT NULL,
    speed_kmh    double precision NOT NULL,
    course_deg   double precision,
    flags        text[]           NOT NULL DEFAULT '{}',
    PRIMARY KEY (plate, fix_time)
);
INSERT INTO positions SELECT plate, fix_time, received_at, lat, lng, speed_kmh, course_deg, flags FROM positions_partitioned;
DROP TABLE positions_partitioned;
DROP FUNCTION ensure_month_partitions(regclass, timestamptz[]);
DROP FUNCTION month_partition_name(text, timestamptz);
