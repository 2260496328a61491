DROP TABLE g7_events;
