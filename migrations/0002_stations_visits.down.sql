DROP TABLE visits;
DROP TABLE stations;
