DROP INDEX jobs_vehicle_started;
DROP TABLE trip_snapshots;
DROP TABLE trip_fixes;
DROP TABLE trip_vehicles;
DROP TABLE stops;
DROP TABLE trips;
