package main

import (
	"context"
	"errors"

	"github.com/tmsfleet/tms/adapters/kafka"
	"github.com/tmsfleet/tms/pipeline/jobs"
)

// jobs wires the jobs role: the job processor.
func (e *environment) jobs(kc *kafka.Config) (func(context.Context) error, error) {
	rules, err := e.cfg.jobRules()
	if err != nil {
		return nil, err
	}
	p, err := jobs.New(jobs.Config{Kafka: kc, Rules: rules, MaxVehicles: e.cfg.JobsMaxVehicles,
		Registerer: e.registry, Logger: e.log})
	if err != nil {
		return nil, err
	}
	e.readiness = append(e.readiness, readiness{"jobs", func() error {
		select {
		case <-p.Ready():
			return nil
		default:
			return errors.New("the job processor is still checking its topics")
		}
	}})
	return p.Run, nil
}
