DROP TABLE IF EXISTS trip_backfill;
DROP TABLE IF EXISTS backfill_progress;
