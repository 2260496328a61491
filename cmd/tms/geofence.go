package main

import (
	"context"
	"errors"

	"github.com/tmsfleet/tms/adapters/h3"
	"github.com/tmsfleet/tms/adapters/kafka"
	"github.com/tmsfleet/tms/domain/geofence"
	pipeline "github.com/tmsfleet/tms/pipeline/geofence"
)

// geofence wires the geofence role. Its station index is H3 cells, with
// the exact geometry for the stations whose boundary crosses a cell,
// configured as the station commands check shapes (config.h3).
func (e *environment) geofence(kc *kafka.Config) (func(context.Context) error, error) {
	hc, err := e.cfg.h3()
	if err != nil {
		return nil, err
	}
	p, err := pipeline.New(pipeline.Config{
		Kafka:          kc,
		Geofence:       e.cfg.geofence(),
		MaxVehicles:    e.cfg.MaxVehicles,
		SnapshotFormat: e.cfg.SnapshotFormat,
		NewIndex:       func() (geofence.Index, error) { return h3.New(hc) },
		Registerer:     e.registry,
		Logger:         e.log,
	})
	if err != nil {
		return nil, err
	}
	e.readiness = append(e.readiness, readiness{"geofence", func() error {
		select {
		case <-p.Ready():
			return nil
		default:
			return errors.New("the geofence is still loading the station catalogue")
		}
	}})
	return p.Run, nil
}
