DROP TABLE replay_visits;
DROP TABLE replay_runs;
