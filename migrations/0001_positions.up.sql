-- Where each projector has got to in each partition. A projector writes
-- its rows and its offsets in one transaction, so a crash never loses or
-- doubles a row.
CREATE TABLE projector_offsets (
    projector    text        NOT NULL,
    topic        text        NOT NULL,
    partition    integer     NOT NULL,
    next_offset  bigint      NOT NULL,
    updated_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (projector, topic, partition)
);

-- Every accepted fix, once: a fix is identified by its vehicle and fix
-- time, so a redelivered or resent fix is stored once. (Its event id is
-- derived from the same two, so it is not stored again.) Plates compare
-- bytewise (COLLATE "C"): they need no linguistic order, and the primary
-- key, written for every fix, is much cheaper to maintain that way.
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

-- Each vehicle's latest fix by fix time (a late, older fix never replaces
-- a newer one), when it was last heard from, and how many fixes it sent.
-- Every batch updates its vehicles' rows: the free space left in each page
-- lets Postgres update them in place (HOT) without touching the index.
CREATE TABLE vehicles (
    plate            text COLLATE "C" PRIMARY KEY,
    fix_time         timestamptz      NOT NULL,
    received_at      timestamptz      NOT NULL,
    lat              double precision NOT NULL,
    lng              double precision NOT NULL,
    speed_kmh        double precision NOT NULL,
    course_deg       double precision,
    flags            text[]           NOT NULL DEFAULT '{}',
    first_seen       timestamptz      NOT NULL,
    last_seen        timestamptz      NOT NULL,
    positions_count  bigint           NOT NULL
) WITH (fillfactor = 50);
