// Package testenv gives tests the real services `make test` starts
// (Postgres, an MQTT broker, Apache Kafka) and isolates each test in them:
// a fresh database, a Kafka namespace of its own, its own MQTT topics.
//
// The services' addresses come from the environment, read by the test
// files themselves, which hand FromEnv the os package's lookup. Where a
// service is not configured, Kafka and MQTT fall back to tms's in-process
// brokers (kfake, mochi-mqtt), so the same suite also runs against them;
// Postgres has no in-process stand-in. With TMS_TEST_REQUIRE_SERVICES=1,
// as `make test` and CI set it, a missing service fails the test instead:
// a suite that silently ran against fakes, or skipped, would claim what it
// did not test.
package testenv

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/tmsfleet/tms/adapters/kafka"
	"github.com/tmsfleet/tms/adapters/mqtt"
	"github.com/tmsfleet/tms/adapters/postgres"
)

// Services are the addresses of the services tests may use.
type Services struct {
	DatabaseURL  string
	KafkaBrokers []string
	MQTTURL      string
	// Require makes a missing service a test failure.
	Require bool
	// KafkaCAFile, when set, is the CA (PEM) of brokers that require TLS;
	// KafkaSASL, when set, the credentials they require. MQTTCAFile is
	// the CA of an MQTT broker that requires TLS. Set by Secured.
	KafkaCAFile string
	KafkaSASL   *kafka.SASL
	MQTTCAFile  string
	// secure are the services that require encryption and
	// authentication (services.sh --secure), for Secured.
	secure map[string]string
}

// secureVariables are what services.sh exports of its secure services.
var secureVariables = []string{"KAFKA_SECURE_BROKERS", "KAFKA_SECURE_CA_FILE", "KAFKA_SECURE_USERNAME", "KAFKA_SECURE_PASSWORD",
	"MQTT_TLS_URL", "MQTT_SECURE_CA_FILE", "DATABASE_TLS_URL"}

// Secured returns the services that require encryption and
// authentication, as services.sh --secure starts them (and `make test`
// does): a Kafka broker that takes only SASL_SSL with SCRAM-SHA-512, an
// MQTT listener with TLS, and Postgres over TLS with the server's
// certificate verified (sslmode=verify-full). A missing one fails the
// test with TMS_TEST_REQUIRE_SERVICES=1, else skips it: there is no
// in-process stand-in for them.
func (s Services) Secured(t testing.TB) Services {
	t.Helper()
	for _, v := range secureVariables {
		if s.secure[v] == "" {
			s.missing(t, v, "the secure services (services.sh --secure)")
		}
	}
	v := s.secure
	return Services{
		DatabaseURL: v["DATABASE_TLS_URL"], KafkaBrokers: strings.Split(v["KAFKA_SECURE_BROKERS"], ","), MQTTURL: v["MQTT_TLS_URL"],
		Require: s.Require, KafkaCAFile: v["KAFKA_SECURE_CA_FILE"], MQTTCAFile: v["MQTT_SECURE_CA_FILE"],
		KafkaSASL: &kafka.SASL{Mechanism: kafka.SCRAMSHA512, Username: v["KAFKA_SECURE_USERNAME"], Password: v["KAFKA_SECURE_PASSWORD"]},
	}
}

// FromEnv reads DATABASE_URL, KAFKA_BROKERS, MQTT_URL and
// TMS_TEST_REQUIRE_SERVICES through lookup: the test's, normally the
// process environment's.
func FromEnv(lookup func(string) (string, bool)) Services {
	get := func(k string) string { v, _ := lookup(k); return strings.TrimSpace(v) }
	s := Services{DatabaseURL: get("DATABASE_URL"), MQTTURL: get("MQTT_URL"), Require: get("TMS_TEST_REQUIRE_SERVICES") == "1",
		secure: map[string]string{}}
	for _, v := range secureVariables {
		s.secure[v] = get(v)
	}
	if b := get("KAFKA_BROKERS"); b != "" {
		s.KafkaBrokers = strings.Split(b, ",")
	}
	return s
}

// RealKafka reports whether tests run against a configured Kafka cluster
// rather than the in-process one.
func (s Services) RealKafka() bool { return len(s.KafkaBrokers) > 0 }

// Name returns a short random name, safe in databases, topics and client
// ids, prefixed for recognition.
func Name(prefix string) string {
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err)
	}
	return prefix + "_" + hex.EncodeToString(b[:])
}

// Postgres creates a fresh database with tms's schema migrated, returns
// its URL, and drops it when the test ends.
func (s Services) Postgres(t testing.TB) string {
	t.Helper()
	if s.DatabaseURL == "" {
		s.missing(t, "DATABASE_URL", "Postgres")
	}
	ctx := context.Background()
	admin, err := pgx.Connect(ctx, s.DatabaseURL)
	if err != nil {
		t.Fatalf("testenv: connect to Postgres: %v", err)
	}
	defer admin.Close(ctx)
	name := Name("tms_test")
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		t.Fatalf("testenv: create database: %v", err)
	}
	t.Cleanup(func() {
		c, err := pgx.Connect(context.Background(), s.DatabaseURL)
		if err != nil {
			t.Errorf("testenv: drop database %s: %v", name, err)
			return
		}
		defer c.Close(context.Background())
		if _, err := c.Exec(context.Background(), "DROP DATABASE "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
			t.Errorf("testenv: drop database %s: %v", name, err)
		}
	})
	u, err := url.Parse(s.DatabaseURL)
	if err != nil {
		t.Fatalf("testenv: DATABASE_URL: %v", err)
	}
	u.Path = "/" + name
	if err := postgres.Migrate(u.String()); err != nil {
		t.Fatalf("testenv: %v", err)
	}
	return u.String()
}

// Kafka returns a Kafka config in a namespace of the test's own, with its
// topics created: the configured cluster, or an in-process kfake broker.
func (s Services) Kafka(t testing.TB) *kafka.Config {
	t.Helper()
	brokers := s.KafkaBrokers
	if len(brokers) == 0 {
		if s.Require {
			s.missing(t, "KAFKA_BROKERS", "Kafka")
		}
		e, err := kafka.StartEmbedded(t.TempDir(), "127.0.0.1:0", nil)
		if err != nil {
			t.Fatalf("testenv: %v", err)
		}
		t.Cleanup(e.Close)
		brokers = e.Addrs()
	}
	// The broker's default replication factor: 1 on the single test broker,
	// 3 in cluster mode, where a topic of one replica would refuse every
	// acks=all write (min.insync.replicas=2).
	cfg := &kafka.Config{Brokers: brokers, Namespace: Name("t"), Partitions: 3, ReplicationFactor: -1, SASL: s.KafkaSASL}
	if s.KafkaCAFile != "" {
		pem, err := os.ReadFile(s.KafkaCAFile)
		if err != nil {
			t.Fatalf("testenv: %v", err)
		}
		cfg.TLS = &tls.Config{RootCAs: x509.NewCertPool(), MinVersion: tls.VersionTLS12}
		if !cfg.TLS.RootCAs.AppendCertsFromPEM(pem) {
			t.Fatalf("testenv: %s holds no PEM certificate", s.KafkaCAFile)
		}
	}
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	adm, err := cfg.NewAdmin("testenv")
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	defer adm.Close()
	// What it found of each topic would be logged for every test.
	quiet := *cfg
	quiet.Logger = slog.New(slog.DiscardHandler)
	if _, err := quiet.EnsureTopics(context.Background(), adm); err != nil {
		t.Fatalf("testenv: %v", err)
	}
	awaitTopics(t, cfg, adm)
	return cfg
}

// awaitTopics waits until the broker serves every topic: just after a
// topic is created it may not yet (UNKNOWN_TOPIC_OR_PARTITION), which a
// client with a short timeout would take for a broker that does not
// answer.
func awaitTopics(t testing.TB, cfg *kafka.Config, adm *kadm.Client) {
	t.Helper()
	var topics []string
	for _, spec := range kafka.Topics() {
		topics = append(topics, cfg.Topic(spec.Name))
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		ends, err := adm.ListEndOffsets(context.Background(), topics...)
		if err == nil {
			err = ends.Error()
		}
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("testenv: the topics are not served after 30 s: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Go runs run in the background, as a service of the test: stop cancels
// its context and waits for it, and an error it returns fails the test,
// named what. stop runs when the test ends too; calling it again does
// nothing.
func Go(t testing.TB, what string, run func(context.Context) error) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("%s: %v", what, err)
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// MQTT returns the URL of an MQTT broker: the configured one, or an
// in-process mochi-mqtt broker. Tests use topics and client ids of their
// own (see Name).
func (s Services) MQTT(t testing.TB) string {
	t.Helper()
	if s.MQTTURL != "" {
		return s.MQTTURL
	}
	if s.Require {
		s.missing(t, "MQTT_URL", "an MQTT broker")
	}
	b, err := mqtt.StartEmbedded(mqtt.EmbeddedConfig{Addr: "127.0.0.1:0"})
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	t.Cleanup(func() { _ = b.Close() })
	return b.URL()
}

func (s Services) missing(t testing.TB, variable, what string) {
	t.Helper()
	msg := fmt.Sprintf("%s is not set: this test needs %s (make test starts one)", variable, what)
	if s.Require {
		t.Fatal(msg)
	}
	t.Skip(msg)
}
