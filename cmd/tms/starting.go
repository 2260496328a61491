package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"

	"github.com/tmsfleet/tms/adapters/httpapi"
)

// startingServer answers /healthz and /readyz on the API's address from
// the start of `tms serve` until the api role takes the address over:
// setting the roles up waits for Kafka (which may not answer, or may
// refuse tms's credentials: ensureTopics), and meanwhile /readyz must say
// what it waits for rather than refuse connections (httpapi.Starting).
type startingServer struct {
	// addr is the address it listens on, its port resolved.
	addr string
	stop func()
}

// errSettingUp is the check "start"'s failure until the roles are set up.
var errSettingUp = errors.New("tms is setting its roles up")

// serveStarting starts the startingServer on TMS_HTTP_ADDR, if the
// address is free: a taken one is a fault tms cannot survive.
func (e *environment) serveStarting() error {
	limits := e.cfg.httpServer(e.log)
	if err := limits.Validate(); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", e.cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("http: %w", err)
	}
	checks := []httpapi.Check{
		{Name: "start", Check: func(context.Context) error { return errSettingUp }},
		{Name: "kafka", Check: func(context.Context) error {
			if o := e.kafkaStart.Load(); o != nil {
				return o.Err()
			}
			return nil
		}},
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := httpapi.Serve(ctx, limits, ln, httpapi.Starting(checks, e.log)); err != nil {
			e.log.Warn("the start's health endpoints stopped", "err", err)
		}
	}()
	var once sync.Once
	s := &startingServer{addr: ln.Addr().String(), stop: func() { once.Do(func() { cancel(); <-done }) }}
	e.starting = s
	e.onClose(s.stop)
	return nil
}
