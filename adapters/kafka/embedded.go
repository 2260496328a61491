package kafka

import (
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"

	"github.com/twmb/franz-go/pkg/kfake"
)

// Embedded is an in-process Kafka-protocol broker (franz-go's kfake) that
// keeps its log under a data directory, so events survive restarts. It is
// what `make run` uses when no brokers are configured, and what fast unit
// tests use; it is not a substitute for testing against Apache Kafka.
type Embedded struct {
	cluster *kfake.Cluster
}

// StartEmbedded starts the broker listening on listen (host:port; port 0
// picks a free one) with its data in dataDir.
func StartEmbedded(dataDir, listen string, logger *slog.Logger) (*Embedded, error) {
	host, portText, err := net.SplitHostPort(listen)
	if err != nil {
		return nil, fmt.Errorf("embedded kafka: listen address %q: %w", listen, err)
	}
	port, err := strconv.Atoi(portText)
	if err != nil {
		return nil, fmt.Errorf("embedded kafka: listen port %q: %w", portText, err)
	}
	// The log holds every position: readable by its owner only, and so
	// made if an older tms made it readable by all.
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return nil, fmt.Errorf("embedded kafka: %w", err)
	}
	if err := os.Chmod(dataDir, 0o700); err != nil {
		return nil, fmt.Errorf("embedded kafka: %w", err)
	}
	opts := []kfake.Opt{
		kfake.NumBrokers(1),
		kfake.Ports(port),
		kfake.DataDir(dataDir),
		kfake.ClusterID("tms-embedded"),
		// kfake always binds 127.0.0.1; honour the configured host.
		kfake.ListenFn(func(network, _ string) (net.Listener, error) {
			return net.Listen(network, net.JoinHostPort(host, strconv.Itoa(port)))
		}),
	}
	if logger != nil {
		opts = append(opts, kfake.WithLogger(kfakeLogger{logger.With("component", "embedded-kafka")}))
	}
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		return nil, fmt.Errorf("embedded kafka: %w", err)
	}
	return &Embedded{cluster: c}, nil
}

// Addrs returns the broker's host:port addresses.
func (e *Embedded) Addrs() []string { return e.cluster.ListenAddrs() }

// Close stops the broker and flushes its data directory.
func (e *Embedded) Close() { e.cluster.Close() }

// kfakeLogger adapts slog to kfake's logger; kfake's debug chatter is
// dropped.
type kfakeLogger struct{ l *slog.Logger }

func (k kfakeLogger) Logf(level kfake.LogLevel, msg string, args ...any) {
	switch level {
	case kfake.LogLevelError:
		k.l.Error(fmt.Sprintf(msg, args...))
	case kfake.LogLevelWarn:
		k.l.Warn(fmt.Sprintf(msg, args...))
	}
}
