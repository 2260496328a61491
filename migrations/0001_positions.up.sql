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
-- time, so a redelivered or resent fix is stored once.
CREATE TABLE positions (
    plate        text             NOT NULL,
    fix_time     timestamptz      NOT NULL,
    received_at  timestamptz      NOT NULL,
    lat          double precision NOT NULL,
    lng          double precision NOT NULL,
    speed_kmh    double precision NOT NULL,
    course_deg   double precision,
    flags        text[]           NOT NULL DEFAULT '{}',
    event_id     uuid             NOT NULL,
    PRIMARY KEY (plate, fix_time)
);

-- Each vehicle's latest fix by fix time (a late, older fix never replaces
-- a newer one), when it was last heard from, and how many fixes it sent.
CREATE TABLE vehicles (
    plate            text             PRIMARY KEY,
    fix_time         timestamptz      NOT NULL,
    received_at      timestamptz      NOT NULL,
    lat              double precision NOT NULL,
    lng              double precision NOT NULL,
    speed_kmh        double precision NOT NULL,
    course_deg       double precision,
    flags            text[]           NOT NULL DEFAULT '{}',
    first_seen       timestamptz      NOT NULL,
    last_seen        timestamptz      NOT NULL,
    positions_count  bigint           NOT NULL,
    late_count       bigint           NOT NULL DEFAULT 0
);
