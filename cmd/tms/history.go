package main

import (
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tmsfleet/tms/adapters/httpapi"
	"github.com/tmsfleet/tms/projections/vehicles"
)

// history returns the limits of simplified tracks and exports (the api
// role). Zero is refused rather than taken for "the default": a limit
// set to 0 by mistake must not silently become a large one.
func (c *config) history() (httpapi.History, error) {
	h := httpapi.History{
		MaxPoints: c.TrackMaxPoints, TrackBuffer: c.TrackBuffer, StopRadiusM: c.TrackStopRadiusM, StopMin: c.TrackStopMin,
		TrackTimeout: c.TrackTimeout, MaxTracks: c.TrackMaxConcurrent,
		ExportMaxRange: c.ExportMaxRange, ExportMaxRows: c.ExportMaxRows, ExportTimeout: c.ExportTimeout, ExportWriteTimeout: c.HTTPWriteTimeout,
		MaxExports: c.ExportMaxConcurrent,
	}
	var errs []error
	for _, l := range []struct {
		name string
		v    int64
		min  int64
	}{
		{"TMS_TRACK_MAX_POINTS", int64(c.TrackMaxPoints), 2}, {"TMS_TRACK_MAX_CONCURRENT", int64(c.TrackMaxConcurrent), 1},
		{"TMS_EXPORT_MAX_ROWS", c.ExportMaxRows, 1}, {"TMS_EXPORT_MAX_CONCURRENT", int64(c.ExportMaxConcurrent), 1},
	} {
		if l.v < l.min {
			errs = append(errs, fmt.Errorf("%s: %d: must be at least %d", l.name, l.v, l.min))
		}
	}
	if c.TrackBuffer < 4*c.TrackMaxPoints {
		errs = append(errs, fmt.Errorf("TMS_TRACK_BUFFER: %d: must be at least 4 x TMS_TRACK_MAX_POINTS (%d)", c.TrackBuffer, 4*c.TrackMaxPoints))
	}
	if c.TrackStopRadiusM <= 0 || c.TrackStopMin <= 0 {
		errs = append(errs, fmt.Errorf("TMS_TRACK_STOP_RADIUS_M (%g) and TMS_TRACK_STOP_MIN (%s) must be positive", c.TrackStopRadiusM, c.TrackStopMin))
	}
	if c.ExportMaxRange < time.Hour {
		errs = append(errs, fmt.Errorf("TMS_EXPORT_MAX_RANGE: %s: must be at least an hour", c.ExportMaxRange))
	}
	// A long simplified track holds two connections (its window read in
	// two halves side by side) and an export one: the pool must hold them
	// all with one to spare for the other queries, or a track's second
	// half could wait for a connection that the first halves hold.
	if need := 2*int64(c.TrackMaxConcurrent) + int64(c.ExportMaxConcurrent) + 1; int64(c.PostgresAPIConns) < need {
		errs = append(errs, fmt.Errorf("TMS_POSTGRES_API_MAX_CONNS: %d: must be at least 2 x TMS_TRACK_MAX_CONCURRENT + "+
			"TMS_EXPORT_MAX_CONCURRENT + 1 (%d); raise it or lower those", c.PostgresAPIConns, need))
	}
	if c.TrackTimeout <= 0 || c.ExportTimeout <= 0 {
		errs = append(errs, fmt.Errorf("TMS_TRACK_TIMEOUT (%s) and TMS_EXPORT_TIMEOUT (%s) must be positive", c.TrackTimeout, c.ExportTimeout))
	}
	return h, errors.Join(errs...)
}

// positionsMaintenance builds the project role's upkeep of the positions
// history: partitions ahead, and retention.
func (e *environment) positionsMaintenance(pool *pgxpool.Pool) (*vehicles.Maintenance, error) {
	c := e.cfg
	var errs []error
	if c.PositionsRetention < 0 {
		errs = append(errs, fmt.Errorf("TMS_POSITIONS_RETENTION: %s: must be 0 (keep everything) or positive", c.PositionsRetention))
	}
	if c.PositionsRetention > 0 && c.PositionsRetention < 24*time.Hour {
		errs = append(errs, fmt.Errorf("TMS_POSITIONS_RETENTION: %s: less than a day; retention drops whole months, "+
			"write it in hours (2160h is 90 days) or 0 to keep everything", c.PositionsRetention))
	}
	if c.PositionsPartitionsAhead < 1 {
		errs = append(errs, fmt.Errorf("TMS_POSITIONS_PARTITIONS_AHEAD: %d: must be at least 1", c.PositionsPartitionsAhead))
	}
	if c.PositionsMaintenance < time.Minute {
		errs = append(errs, fmt.Errorf("TMS_POSITIONS_MAINTENANCE_INTERVAL: %s: must be at least a minute", c.PositionsMaintenance))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return vehicles.NewMaintenance(vehicles.MaintenanceConfig{
		Pool: pool, Retention: c.PositionsRetention, Ahead: c.PositionsPartitionsAhead, Interval: c.PositionsMaintenance,
		Registerer: e.registry, Logger: e.log,
	})
}
