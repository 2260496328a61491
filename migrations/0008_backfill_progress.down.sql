DROP TABLE IF EXISTS backfill_progress;
