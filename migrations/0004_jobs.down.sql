DROP TABLE job_requests;
DROP TABLE job_stops;
DROP TABLE jobs;
