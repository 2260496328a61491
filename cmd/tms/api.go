package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/tmsfleet/tms/adapters/dashboard"
	"github.com/tmsfleet/tms/adapters/httpapi"
	"github.com/tmsfleet/tms/adapters/kafka"
	"github.com/tmsfleet/tms/adapters/ws"
	"github.com/tmsfleet/tms/domain/event"
	"github.com/tmsfleet/tms/pipeline/jobcmd"
	"github.com/tmsfleet/tms/pipeline/stationcmd"
	"github.com/tmsfleet/tms/projections/g7events"
	"github.com/tmsfleet/tms/projections/jobs"
	"github.com/tmsfleet/tms/projections/rebuild"
	"github.com/tmsfleet/tms/projections/replays"
	"github.com/tmsfleet/tms/projections/stations"
	"github.com/tmsfleet/tms/projections/timeline"
	"github.com/tmsfleet/tms/projections/trips"
	"github.com/tmsfleet/tms/projections/vehicles"
	"github.com/tmsfleet/tms/projections/visits"
)

// api wires the api role: the query API, the WebSocket hub and its Kafka
// feed, health, readiness and metrics, on one listener.
func (e *environment) api(ctx context.Context, kc *kafka.Config) (func(context.Context) error, error) {
	tokens, err := e.apiTokens()
	if err != nil {
		return nil, err
	}
	pool, err := e.postgres(ctx, poolAPI)
	if err != nil {
		return nil, err
	}
	store := vehicles.NewStore(pool)
	hc, err := e.cfg.h3()
	if err != nil {
		return nil, err
	}
	commands, err := stationcmd.New(stationcmd.Config{
		Kafka: kc, Pool: pool, Rules: e.cfg.stationRules(), Indexer: hc, Registerer: e.registry, Logger: e.log,
	})
	if err != nil {
		return nil, err
	}
	e.onClose(commands.Close)
	jobCfg, err := e.cfg.jobCommands()
	if err != nil {
		return nil, err
	}
	jobCfg.Kafka, jobCfg.Pool, jobCfg.Registerer, jobCfg.Logger = kc, pool, e.registry, e.log
	jobCommands, err := jobcmd.New(jobCfg)
	if err != nil {
		return nil, err
	}
	e.onClose(jobCommands.Close)
	wsCfg := e.cfg.websocket()
	wsCfg.Snapshot, wsCfg.Registerer, wsCfg.Logger = store, e.registry, e.log
	// Replays read the positions, visits and jobs read models; a job's
	// window comes from the jobs read model.
	wsCfg.History, wsCfg.Jobs = timeline.NewStore(pool), timeline.JobWindows{Jobs: jobs.NewStore(pool)}
	wsCfg.Trips = timeline.TripWindows{Trips: trips.NewStore(pool)}
	wsCfg.Caller = func(r *http.Request) string { id, _ := httpapi.CallerFrom(r.Context()); return id }
	hub, err := ws.New(wsCfg)
	if err != nil {
		return nil, err
	}
	// Dashboards get positions, the geofence's entries, exits and alerts,
	// the jobs' events and G7's stop, idle and EMS reports.
	feed, err := ws.NewFeed(ws.FeedConfig{Kafka: kc, Topics: []string{event.TopicPositions, event.TopicGeofence, event.TopicJobs,
		event.TopicG7Events},
		Registerer: e.registry, Logger: e.log}, hub)
	if err != nil {
		return nil, err
	}
	kafkaPing, err := kc.NewClient("readyz")
	if err != nil {
		return nil, err
	}
	e.onClose(kafkaPing.Close)
	checks := []httpapi.Check{
		{Name: "postgres", Check: pool.Ping},
		{Name: "kafka", Check: kafkaPing.Ping},
		// Until the feed knows where the live end is, a new event might not
		// reach the WebSocket clients.
		{Name: "websocket-feed", Check: func(context.Context) error {
			select {
			case <-feed.Positioned():
				return nil
			default:
				return errors.New("the WebSocket feed has not found the live end of the topics yet")
			}
		}},
	}
	for _, r := range e.readiness {
		checks = append(checks, httpapi.Check{Name: r.name, Check: func(context.Context) error { return r.check() }})
	}
	if e.mqttReady != nil {
		checks = append(checks, httpapi.Check{Name: "mqtt", Check: func(context.Context) error {
			if !e.mqttReady() {
				return errors.New("not connected to the MQTT broker")
			}
			return nil
		}})
	}
	history, err := e.cfg.history()
	if err != nil {
		return nil, err
	}
	dash, err := dashboard.New(dashboard.Config{Files: dashboard.Build(), TileURL: e.cfg.DashboardTileURL})
	if err != nil {
		return nil, fmt.Errorf("TMS_DASHBOARD_TILE_URL: %w", err)
	}
	gin.SetMode(gin.ReleaseMode)
	handler, err := httpapi.New(httpapi.Config{
		Vehicles: store, Stations: stations.NewStore(pool), Visits: visits.NewStore(pool), Replays: replays.NewStore(pool),
		Rebuilds:        rebuild.NewStore(pool),
		StationCommands: commands, Jobs: jobs.NewStore(pool), JobCommands: jobCommands, Trips: trips.NewStore(pool),
		G7Events:         g7events.NewStore(pool),
		PlaybackMaxFixes: e.cfg.HTTPPlaybackMaxFixes, Tokens: tokens, Checks: checks, WebSocket: hub,
		Dashboard: dash, Session: e.cfg.session(), ReadinessInterval: e.cfg.HTTPReadyzInterval, RateLimit: e.cfg.rateLimit(), History: history,
		Registerer: e.registry, Gatherer: e.registry, Logger: e.log,
	})
	if err != nil {
		return nil, err
	}
	addr := e.cfg.HTTPAddr
	if e.starting != nil {
		// The API takes the address over from what answered during the
		// start (its port resolved, when HTTPAddr asked for any).
		addr = e.starting.addr
		e.starting.stop()
		e.starting = nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("http: %w", err)
	}
	base := "http://" + displayAddr(ln.Addr().String())
	dashNote := "Dashboard: " + base + "/"
	if dashboard.Build() == nil {
		dashNote += "   (not built into this binary: make web, then build again; make run does both)"
	}
	e.notes = append(e.notes, dashNote,
		"API:       "+base+"/api/v1/vehicles   (OpenAPI: "+base+"/api/v1/openapi.json)",
		"WebSocket: "+strings.Replace(base, "http", "ws", 1)+"/api/v1/ws",
		"Health:    "+base+"/healthz  "+base+"/readyz  "+base+"/metrics")
	limits := e.cfg.httpServer(e.log)
	if err := limits.Validate(); err != nil {
		return nil, err
	}
	return func(ctx context.Context) error {
		feedDone := make(chan error, 1)
		go func() { feedDone <- feed.Run(ctx) }()
		err := httpapi.Serve(ctx, limits, ln, handler)
		_ = hub.Close()
		if ferr := <-feedDone; err == nil {
			err = ferr
		}
		return err
	}, nil
}

// apiTokens reads TMS_API_TOKENS, or, when it is unset, makes one viewer
// and one operator token, keeps them under the data dir (mode 0600, so
// they survive restarts) and says where they are. The tokens themselves
// are never printed or logged.
func (e *environment) apiTokens() (map[string]httpapi.Role, error) {
	if e.cfg.APITokens != "" {
		return httpapi.ParseTokens(e.cfg.APITokens)
	}
	dir := filepath.Join(e.cfg.DataDir, "api-tokens")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	tokens := map[string]httpapi.Role{}
	for _, role := range []httpapi.Role{httpapi.RoleViewer, httpapi.RoleOperator} {
		path := filepath.Join(dir, string(role))
		raw, err := os.ReadFile(path)
		if errors.Is(err, os.ErrNotExist) {
			var b [24]byte
			if _, err := rand.Read(b[:]); err != nil {
				return nil, err
			}
			raw = []byte(hex.EncodeToString(b[:]))
			err = os.WriteFile(path, raw, 0o600)
		}
		if err != nil {
			return nil, fmt.Errorf("api tokens: %w", err)
		}
		tokens[strings.TrimSpace(string(raw))] = role
	}
	e.notes = append(e.notes, fmt.Sprintf("API tokens (TMS_API_TOKENS unset): %s/viewer and %s/operator, e.g.\n"+
		"    curl -H \"Authorization: Bearer $(cat %s/viewer)\" ...", dir, dir, dir))
	return tokens, nil
}

// displayAddr turns a listener's address into one a browser can open.
func displayAddr(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "localhost"
	}
	return net.JoinHostPort(host, port)
}
