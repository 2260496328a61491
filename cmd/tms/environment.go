package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/tmsfleet/tms/adapters/kafka"
	"github.com/tmsfleet/tms/adapters/mqtt"
	"github.com/tmsfleet/tms/adapters/postgres"
)

// environment provides the services a command needs, starting the
// embedded ones (Kafka, MQTT, a local Postgres) when none is configured,
// and stops what it started, in reverse order, on close.
type environment struct {
	cfg      config
	log      *slog.Logger
	registry *prometheus.Registry
	closers  []func()
	// notes are what the operator needs to know at start (URLs, where
	// tokens are); printed once the service is up.
	notes []string
	// mqttReady reports the ingest subscription's connection, for /readyz;
	// nil when this process does not ingest.
	mqttReady func() bool
	// readiness are further checks of the roles this process runs.
	readiness []readiness
	// migrated is set once the read models' schema is up to date.
	migrated bool
	// serving is set by `tms serve`, which runs the embedded services
	// itself; every other command first looks for a running serve's
	// (findRunning) and uses them.
	serving bool
	// embedded is what this process runs embedded, for runningFile.
	embedded running
	// rebuildConns sizes the poolRebuild pool (rebuild.PoolSize).
	rebuildConns int32
	// starting answers /healthz and /readyz on the API's address while
	// serve sets its roles up (nil: not serving the api role, or done);
	// kafkaStart is the outage of the start's topic step, for its /readyz.
	starting   *startingServer
	kafkaStart atomic.Pointer[kafka.Outage]
}

// readiness is a role's own readiness check.
type readiness struct {
	name  string
	check func() error
}

func newEnvironment(cfg config) (*environment, error) {
	log, err := cfg.logger()
	if err != nil {
		return nil, err
	}
	// The data directory only holds the embedded services' directories,
	// each private to its owner (0700); the local Postgres runs as the
	// postgres user when tms runs as root, and must be able to pass
	// through. Made here, before a MkdirAll of one of them makes it 0700.
	if err := os.MkdirAll(cfg.DataDir, 0o755); err != nil {
		return nil, fmt.Errorf("TMS_DATA_DIR: %w", err)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return &environment{cfg: cfg, log: log, registry: reg}, nil
}

func (e *environment) onClose(f func()) { e.closers = append(e.closers, f) }

func (e *environment) close() {
	for i := len(e.closers) - 1; i >= 0; i-- {
		e.closers[i]()
	}
}

// kafka returns the Kafka config, with the embedded broker started when
// KAFKA_BROKERS is unset, and tms's topics created.
func (e *environment) kafka(ctx context.Context) (*kafka.Config, error) {
	tlsConfig, sasl, err := e.cfg.kafkaSecurity()
	if err != nil {
		return nil, err
	}
	brokers := e.cfg.KafkaBrokers
	if len(brokers) == 0 && e.cfg.kafkaSecured() {
		return nil, errors.New("KAFKA_TLS*, KAFKA_SASL_*: set, but KAFKA_BROKERS is not: the embedded broker speaks neither TLS nor SASL")
	}
	if r, ok := e.attach(); len(brokers) == 0 && ok && len(r.KafkaBrokers) > 0 {
		brokers = r.KafkaBrokers
		e.log.Info("using the Kafka broker of the running tms serve", "pid", r.PID, "brokers", brokers)
	}
	if len(brokers) == 0 {
		dir := filepath.Join(e.cfg.DataDir, "kafka")
		b, err := kafka.StartEmbedded(dir, e.cfg.KafkaListen, e.log)
		if err != nil {
			return nil, busyHint(err, e.cfg.DataDir, "TMS_KAFKA_LISTEN", e.cfg.KafkaListen, "KAFKA_BROKERS")
		}
		e.onClose(b.Close)
		brokers = b.Addrs()
		e.embedded.KafkaBrokers = brokers
		e.notes = append(e.notes, fmt.Sprintf("Kafka (embedded, data in %s): %s", dir, brokers[0]))
	}
	kc := &kafka.Config{
		Brokers:           brokers,
		Namespace:         e.cfg.KafkaNamespace,
		InstanceID:        e.cfg.InstanceID,
		Partitions:        e.cfg.KafkaPartitions,
		ReplicationFactor: e.cfg.KafkaReplication,
		MinInsyncReplicas: e.cfg.KafkaMinInsync,
		RetryBackoff:      e.cfg.KafkaRetryBackoff,
		RetryBackoffMax:   e.cfg.KafkaRetryBackoffMax,
		TLS:               tlsConfig,
		SASL:              sasl,
		Health:            &kafka.Health{},
		Logger:            e.log,
		Registerer:        e.registry,
	}
	kc.SetDefaults()
	if err := kc.Validate(); err != nil {
		return nil, err
	}
	// What the connection is, never the password (kafka.SASL logs
	// without it).
	e.log.Info("kafka connection", "brokers", brokers, "tls", kc.TLS != nil, "sasl", saslAttr(kc.SASL))
	if kc.SASL != nil && kc.SASL.Mechanism == kafka.Plain && kc.TLS == nil {
		e.log.Warn("KAFKA_SASL_MECHANISM PLAIN without TLS sends the password in the clear; set KAFKA_TLS or use SCRAM")
	}
	if err := e.ensureTopics(ctx, kc); err != nil {
		return nil, err
	}
	e.readiness = append(e.readiness, readiness{"kafka-consumers", kc.Health.Err})
	return kc, nil
}

// ensureTopics creates tms's topics, waiting for Kafka as the roles do
// (docs/reliability.md): brokers that do not answer, or refuse tms's
// credentials, are retried with backoff, logged once, and named by the
// check "kafka" of the /readyz that serve answers meanwhile
// (startingServer). Only a permanent refusal (kafka.Permanent) or the end
// of ctx ends the wait.
func (e *environment) ensureTopics(ctx context.Context, kc *kafka.Config) error {
	adm, err := kc.NewAdmin("admin")
	if err != nil {
		return err
	}
	defer adm.Close()
	outage := kc.Health.Outage("kafka-topics", kc)
	e.kafkaStart.Store(outage)
	if !e.serving {
		// A one-off command has no /readyz to say what it waits for:
		// it gives up after a minute, saying why.
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, time.Minute)
		defer cancel()
	}
	for {
		attempt, cancel := context.WithTimeout(ctx, time.Minute)
		_, err := kc.EnsureTopics(attempt, adm)
		cancel()
		switch {
		case err == nil:
			outage.Recovered()
			return nil
		case kafka.Permanent(err):
			return err
		case ctx.Err() != nil:
			return fmt.Errorf("kafka: %w (last error: %w)", context.Cause(ctx), err)
		}
		outage.Failed(ctx, err)
	}
}

// databaseURL returns DATABASE_URL, or starts the local cluster.
func (e *environment) databaseURL(ctx context.Context) (string, error) {
	if e.cfg.DatabaseURL != "" {
		return e.cfg.DatabaseURL, nil
	}
	if r, ok := e.attach(); ok && r.DatabaseURL != "" {
		e.log.Info("using the local Postgres of the running tms serve", "pid", r.PID, "database", postgres.Redact(r.DatabaseURL))
		e.cfg.DatabaseURL = r.DatabaseURL
		return r.DatabaseURL, nil
	}
	l, err := postgres.StartLocal(ctx, postgres.LocalConfig{
		Dir:    filepath.Join(e.cfg.DataDir, "postgres"),
		Port:   e.cfg.LocalPostgresPort,
		Logger: e.log,
	})
	if err != nil {
		return "", err
	}
	e.embedded.DatabaseURL = l.URL()
	// A one-off command stops only a cluster it started: one it found
	// running is someone else's.
	if !e.serving && !l.Started() {
		e.cfg.DatabaseURL = l.URL()
		return l.URL(), nil
	}
	e.onClose(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := l.Stop(ctx); err != nil {
			e.log.Warn("stopping the local Postgres", "err", err)
		}
	})
	e.cfg.DatabaseURL = l.URL()
	e.notes = append(e.notes, "Postgres (local cluster): "+postgres.Redact(l.URL())+"  (password in "+l.PasswordFile()+")")
	return l.URL(), nil
}

// Database pools, one per purpose: each has its own connections, so that
// a flood of API queries cannot stop the projectors from advancing the
// read models, and a rebuild cannot take the API's connections.
const (
	// poolAPI serves the query API and the station commands, which read
	// the stations read model to answer read-your-writes.
	poolAPI = "tms-api"
	// poolProject writes the read models (the projectors, replays).
	poolProject = "tms-project"
	// poolRebuild is `tms rebuild`'s, sized for its projectors
	// (environment.rebuildConns).
	poolRebuild = "tms-rebuild"
)

// postgres opens the pool named purpose (poolAPI or poolProject) on the
// read models, migrated first: once per process, whatever the number of
// pools.
func (e *environment) postgres(ctx context.Context, purpose string) (*pgxpool.Pool, error) {
	url, err := e.databaseURL(ctx)
	if err != nil {
		return nil, err
	}
	backoff := postgres.Backoff{First: e.cfg.PostgresRetryBackoff, Max: e.cfg.PostgresRetryBackoffMax}
	if backoff.First <= 0 || backoff.Max < backoff.First {
		return nil, fmt.Errorf("TMS_POSTGRES_RETRY_BACKOFF (%s) must be positive and at most TMS_POSTGRES_RETRY_BACKOFF_MAX (%s)",
			backoff.First, backoff.Max)
	}
	if !e.migrated {
		// Postgres may be down at start (restarting, not up yet): the role
		// waits for it rather than exiting (docs/reliability.md).
		if err := postgres.WaitFor(ctx, backoff, e.log, "migrations", func(context.Context) error { return postgres.Migrate(url) }); err != nil {
			return nil, err
		}
		e.migrated = true
	}
	size := e.cfg.PostgresProjectConns
	switch purpose {
	case poolAPI:
		size = e.cfg.PostgresAPIConns
	case poolRebuild:
		size = e.rebuildConns
	}
	if size < 1 {
		return nil, fmt.Errorf("the %s database pool needs at least 1 connection, not %d", purpose, size)
	}
	var pool *pgxpool.Pool
	err = postgres.WaitFor(ctx, backoff, e.log, purpose, func(ctx context.Context) error {
		pool, err = postgres.OpenPool(ctx, url, postgres.PoolConfig{MaxConns: size, Name: purpose})
		return err
	})
	if err != nil {
		return nil, err
	}
	e.onClose(pool.Close)
	return pool, nil
}

// mqttURL returns the configured broker, or starts the embedded one.
func (e *environment) mqttURL() (string, error) {
	if u := e.cfg.mqttURL(); u != "" {
		return u, nil
	}
	b, err := mqtt.StartEmbedded(mqtt.EmbeddedConfig{
		Addr: e.cfg.MQTTListen, MaxPacketBytes: e.cfg.MQTTMaxPacketBytes, Logger: e.log,
	})
	if err != nil {
		return "", err
	}
	e.onClose(func() { _ = b.Close() })
	e.embedded.MQTTURL = b.URL()
	e.notes = append(e.notes, "MQTT (embedded): "+b.URL()+"  topic "+e.cfg.G7Topic)
	return b.URL(), nil
}

// attach returns what a running `tms serve` on the same data dir runs
// embedded; never for serve itself, which runs its own.
func (e *environment) attach() (running, bool) {
	if e.serving {
		return running{}, false
	}
	return findRunning(e.cfg.DataDir)
}

// recordRunning writes runningFile for the other commands when this
// process runs an embedded service, and removes it on close.
func (e *environment) recordRunning() error {
	if len(e.embedded.KafkaBrokers) == 0 && e.embedded.DatabaseURL == "" && e.embedded.MQTTURL == "" {
		return nil
	}
	r := e.embedded
	r.PID, r.Since = os.Getpid(), time.Now().UTC()
	remove, err := writeRunning(e.cfg.DataDir, r)
	if err != nil {
		return err
	}
	e.onClose(remove)
	return nil
}

// saslAttr is how the SASL settings are logged: the mechanism and user, or
// "none". A nil *kafka.SASL given to slog as it is would have its value's
// LogValue called through the nil pointer, and the log line would hold
// the panic.
func saslAttr(s *kafka.SASL) any {
	if s == nil {
		return "none"
	}
	return *s
}
