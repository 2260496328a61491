package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kgo"
	"golang.org/x/sync/errgroup"

	"github.com/tmsfleet/tms/adapters/httpapi"
	"github.com/tmsfleet/tms/adapters/kafka"
	"github.com/tmsfleet/tms/adapters/mqtt"
	"github.com/tmsfleet/tms/domain/event"
	"github.com/tmsfleet/tms/pipeline/ingest"
)

func serveCommand(cfg *config) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the service's roles (TMS_ROLES: all, or ingest,geofence,jobs,project,api)",
		Long: `Runs the roles named by TMS_ROLES in one process: ingest (MQTT to Kafka),
geofence (positions to station entries and exits, exactly once), jobs (job
commands, entries, exits and positions to job events, exactly once), project
(Kafka to the Postgres read models) and api (query API, WebSocket, health and
metrics on TMS_HTTP_ADDR). Whatever is not configured runs
embedded: a Kafka-protocol broker (KAFKA_BROKERS unset), an MQTT broker
(MQTT_URL unset) and a local Postgres cluster (DATABASE_URL unset), with their
state under TMS_DATA_DIR. SIGINT or SIGTERM stops intake first, then flushes
and commits, then closes.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return serve(cmd.Context(), *cfg) },
	}
	f := cmd.Flags()
	cfg.bindConnectionFlags(f)
	cfg.bindMQTTFlags(f)
	f.StringVar(&cfg.Roles, "roles", cfg.Roles, "roles to run (TMS_ROLES)")
	f.StringVar(&cfg.HTTPAddr, "http-addr", cfg.HTTPAddr, "address of the API, WebSocket and metrics (TMS_HTTP_ADDR)")
	f.IntVar(&cfg.MQTTMaxPacketBytes, "mqtt-max-packet-bytes", cfg.MQTTMaxPacketBytes,
		"largest MQTT packet read whole; a larger message becomes one too_large dead letter (TMS_MQTT_MAX_PACKET_BYTES)")
	return cmd
}

func serve(ctx context.Context, cfg config) error {
	roles, err := cfg.roles()
	if err != nil {
		return err
	}
	if roles[roleIngest] {
		if err := cfg.ingestLimits(); err != nil {
			return err
		}
	}
	env, err := newEnvironment(cfg)
	if err != nil {
		return err
	}
	defer env.close()
	env.serving = true
	if roles[roleAPI] {
		if err := env.serveStarting(); err != nil {
			return err
		}
	}
	kc, err := env.kafka(ctx)
	if err != nil && ctx.Err() != nil {
		// SIGINT or SIGTERM while waiting for Kafka: a stop, not a failure.
		env.log.Info("stopped before Kafka answered", "err", err)
		return nil
	}
	if err != nil {
		return err
	}
	g, gctx := errgroup.WithContext(ctx)
	if roles[roleIngest] {
		run, err := env.ingest(kc)
		if err != nil {
			return err
		}
		g.Go(func() error { return run(gctx) })
	}
	if roles[roleGeofence] {
		run, err := env.geofence(kc)
		if err != nil {
			return err
		}
		g.Go(func() error { return run(gctx) })
	}
	if roles[roleJobs] {
		run, err := env.jobs(kc)
		if err != nil {
			return err
		}
		g.Go(func() error { return run(gctx) })
	}
	if roles[roleProject] {
		pool, err := env.postgres(ctx, poolProject)
		if err != nil {
			return err
		}
		env.readiness = append(env.readiness, readiness{"postgres-project", func() error {
			ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			defer cancel()
			return pool.Ping(ctx)
		}})
		runners, err := env.projectors(kc, pool)
		if err != nil {
			return err
		}
		for _, r := range runners {
			g.Go(func() error { return r.run(gctx) })
		}
		maintenance, err := env.positionsMaintenance(pool)
		if err != nil {
			return err
		}
		g.Go(func() error { return maintenance.Run(gctx) })
	}
	if roles[roleAPI] {
		run, err := env.api(ctx, kc)
		if err != nil {
			return err
		}
		g.Go(func() error { return run(gctx) })
	} else {
		run, err := env.health(kc)
		if err != nil {
			return err
		}
		g.Go(func() error { return run(gctx) })
	}
	if err := env.recordRunning(); err != nil {
		return err
	}
	env.printNotes(os.Stdout)
	err = g.Wait()
	if errors.Is(err, context.Canceled) {
		err = nil
	}
	env.log.Info("stopped")
	return err
}

// ingest wires the ingest role: the MQTT subscription and a producer.
func (e *environment) ingest(kc *kafka.Config) (func(context.Context) error, error) {
	url, err := e.mqttURL()
	if err != nil {
		return nil, err
	}
	qos, err := e.cfg.qos()
	if err != nil {
		return nil, err
	}
	filter, err := e.cfg.positionFilter()
	if err != nil {
		return nil, err
	}
	feeds, err := e.cfg.eventFeeds()
	if err != nil {
		return nil, err
	}
	var more []string
	for _, f := range feeds {
		more = append(more, f.Filter)
	}
	tlsConfig, err := e.cfg.mqttTLS(e.cfg.mqttURL())
	if err != nil {
		return nil, err
	}
	sub, err := mqtt.NewSubscriber(mqtt.Config{
		URL: url, ClientID: e.cfg.G7ClientID, Username: e.cfg.G7AccessID, Password: e.cfg.G7Secret,
		Topic: filter, Topics: more, QoS: qos, MaxPacketBytes: e.cfg.MQTTMaxPacketBytes, TLS: tlsConfig, Logger: e.log,
	})
	if err != nil {
		return nil, err
	}
	if e.cfg.KafkaProduceStall <= 0 {
		return nil, fmt.Errorf("TMS_KAFKA_PRODUCE_STALL: must be positive, not %s", e.cfg.KafkaProduceStall)
	}
	progress := kafka.NewProduceProgress()
	producer, err := kc.NewClient("ingest", kgo.WithHooks(progress))
	if err != nil {
		return nil, err
	}
	e.readiness = append(e.readiness, readiness{"ingest-produce", func() error { return progress.Err(e.cfg.KafkaProduceStall) }})
	e.onClose(producer.Close)
	in, err := ingest.New(ingest.Config{
		Subscriber: sub, Producer: producer,
		PositionsTopic: kc.Topic(event.TopicPositions), DeadLetterTopic: kc.Topic(event.TopicDeadLetter),
		// The payload is part of the packet: one setting bounds both.
		MaxPayloadBytes: e.cfg.MQTTMaxPacketBytes,
		MaxItems:        e.cfg.G7MaxItems, MaxLetters: e.cfg.G7MaxLetters,
		Events: feeds, EventsTopic: kc.Topic(event.TopicG7Events),
		EventMaxBytes: e.cfg.G7EventMaxBytes, EventMaxDuration: e.cfg.G7EventMaxDuration,
		Registerer: e.registry, Logger: e.log,
	})
	if err != nil {
		return nil, err
	}
	e.mqttReady = sub.Connected
	return in.Run, nil
}

// health serves /healthz, /readyz and /metrics on TMS_HTTP_ADDR for a
// process without the api role, so that every instance can be probed and
// scraped.
func (e *environment) health(kc *kafka.Config) (func(context.Context) error, error) {
	kafkaPing, err := kc.NewClient("readyz")
	if err != nil {
		return nil, err
	}
	e.onClose(kafkaPing.Close)
	checks := []httpapi.Check{{Name: "kafka", Check: kafkaPing.Ping}}
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
	gin.SetMode(gin.ReleaseMode)
	handler, err := httpapi.NewHealth(httpapi.HealthConfig{
		Checks: checks, ReadinessInterval: e.cfg.HTTPReadyzInterval, Registerer: e.registry, Gatherer: e.registry, Logger: e.log,
	})
	if err != nil {
		return nil, err
	}
	limits := e.cfg.httpServer(e.log)
	if err := limits.Validate(); err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", e.cfg.HTTPAddr)
	if err != nil {
		return nil, fmt.Errorf("http: %w", err)
	}
	base := "http://" + displayAddr(ln.Addr().String())
	e.notes = append(e.notes, "Health:    "+base+"/healthz  "+base+"/readyz  "+base+"/metrics   (no api role: no API here)")
	return func(ctx context.Context) error { return httpapi.Serve(ctx, limits, ln, handler) }, nil
}

// printNotes tells the operator where everything is.
func (e *environment) printNotes(w io.Writer) {
	fmt.Fprintf(w, "tms %s is up\n", buildVersion())
	for _, n := range e.notes {
		fmt.Fprintln(w, "  "+n)
	}
}
