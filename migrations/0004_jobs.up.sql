-- Jobs, from tms.jobs (docs/jobs.md): one row per job, as the job
-- processor's events leave it. A job's status, times, stops and latest
-- completion are updated by its events in their order; every update is
-- guarded so that an event applied again (a replay, a redelivery) changes
-- nothing.
CREATE TABLE jobs (
    id                 uuid PRIMARY KEY,
    vehicle            text COLLATE "C" NOT NULL,
    -- The billing system's order id; a job's id is derived from it.
    external_ref       text,
    status             text             NOT NULL CHECK (status IN ('queued', 'active', 'completed', 'cancelled')),
    -- {"weight_kg": ..., "description": ...}
    cargo              jsonb            NOT NULL,
    -- The stops with their progress: an array of the events' stop objects
    -- (index, station_id, kind, planned_arrival, station_name, point,
    -- status, arrived_at, departed_at, dwell_s, visit_id, flags).
    stops              jsonb            NOT NULL,
    created_at         timestamptz      NOT NULL,
    started_at         timestamptz,
    -- The last departure, once the completion settled.
    completed_at       timestamptz,
    cancelled_at       timestamptz,
    cancel_reason      text,
    -- The revision of the completion below: 0 before the first.
    revision           integer          NOT NULL DEFAULT 0,
    -- The data of the completed or amended event of that revision.
    completion         jsonb,
    distance_empty_m   double precision,
    distance_loaded_m  double precision,
    distance_total_m   double precision,
    -- The time of the last event that changed the row.
    updated_at         timestamptz      NOT NULL
);

-- One job per external reference.
CREATE UNIQUE INDEX jobs_external_ref ON jobs (external_ref) WHERE external_ref IS NOT NULL;

-- GET /jobs pages newest creation first, by (created_at, id), filtered by
-- vehicle, status or neither; completed ranges use their own index.
CREATE INDEX jobs_created         ON jobs (created_at, id);
CREATE INDEX jobs_vehicle_created ON jobs (vehicle, created_at, id);
CREATE INDEX jobs_status_created  ON jobs (status, created_at, id);
CREATE INDEX jobs_completed       ON jobs (completed_at) WHERE completed_at IS NOT NULL;

-- A job's stops by station, for GET /jobs?station= (any stop). Written
-- once, when the job is created: a job's stations never change.
CREATE TABLE job_stops (
    job_id      uuid             NOT NULL,
    stop_index  integer          NOT NULL,
    station_id  text COLLATE "C" NOT NULL,
    kind        text             NOT NULL,
    -- The job's creation, for paging a station's jobs in the list's order.
    created_at  timestamptz      NOT NULL,
    PRIMARY KEY (job_id, stop_index)
);

CREATE INDEX job_stops_station ON job_stops (station_id, created_at, job_id);

-- The create commands the API appended (tms.command.create_job.v1), the
-- first per job id: what makes a create idempotent on its external
-- reference across API instances before the job processor has turned the
-- command into a job (pipeline/jobcmd), and what a cancellation of such a
-- job finds its vehicle by.
CREATE TABLE job_requests (
    job_id        uuid             PRIMARY KEY,
    vehicle       text COLLATE "C" NOT NULL,
    external_ref  text,
    -- The command's data (job.Create).
    request       jsonb            NOT NULL,
    requested_at  timestamptz      NOT NULL
);
