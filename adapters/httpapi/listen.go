package httpapi

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"golang.org/x/net/netutil"
)

// ServerConfig bounds what one connection may hold of the HTTP server:
// how long it may take to send its request, to read its answer and to
// sit idle, how large its header may be, and how many connections are
// open at once. The handler's own limits (rates, bodies, query times) are
// in Config.
type ServerConfig struct {
	// ReadHeaderTimeout is how long a client has to send a request's
	// header, from the moment the server starts reading it: a client
	// trickling its header a byte at a time is cut off then. Default 5 s.
	ReadHeaderTimeout time.Duration
	// ReadTimeout is how long a client has to send a whole request, body
	// included (station bodies are at most 2 MiB). Default 30 s.
	ReadTimeout time.Duration
	// WriteTimeout is how long the server has, from the end of a
	// request's header, to finish writing its answer: query time
	// (Config.QueryTimeout, 10 s) plus the time the client takes to read
	// it. A handler that streams more than that (an export) moves its own
	// deadline forward as it writes, with http.ResponseController. The
	// WebSocket is exempt: its handler lifts both deadlines. Default 60 s.
	WriteTimeout time.Duration
	// IdleTimeout is how long a kept-alive connection may wait for its
	// next request. Default 90 s: longer than the 60 s idle timeout of
	// common load balancers, so that the server does not close a
	// connection the balancer is about to reuse.
	IdleTimeout time.Duration
	// MaxHeaderBytes bounds a request's line and header (Go's server
	// allows 4 KiB more for its buffer); a larger one is answered 431.
	// Default 256 KiB: the URL of the largest request the API documents,
	// GET /api/v1/vehicles with its 1,000 plates of up to 16 characters,
	// percent-encoded, is about 150 KB.
	MaxHeaderBytes int
	// MaxConnections caps the connections open at once, WebSockets
	// included; past it, new connections wait in the kernel's accept
	// queue until one closes. It bounds the server's memory and file
	// descriptors (keep it under the process's RLIMIT_NOFILE, less what
	// Kafka, Postgres and MQTT need). Default 4,096.
	MaxConnections int
	// ShutdownTimeout is how long a shutdown waits for the requests in
	// progress. It must outlast the longest wait a request may make for
	// its command to show in the read model (cmd/ checks it against the
	// command timeouts): a write cut short by the shutdown would leave its
	// client without the answer to a command Kafka already has. Default
	// 30 s.
	ShutdownTimeout time.Duration
	// Logger receives the server's own errors (TLS handshakes, panics
	// outside handlers). Default: slog's.
	Logger *slog.Logger
}

func (c *ServerConfig) setDefaults() {
	if c.ReadHeaderTimeout == 0 {
		c.ReadHeaderTimeout = 5 * time.Second
	}
	if c.ReadTimeout == 0 {
		c.ReadTimeout = 30 * time.Second
	}
	if c.WriteTimeout == 0 {
		c.WriteTimeout = 60 * time.Second
	}
	if c.IdleTimeout == 0 {
		c.IdleTimeout = 90 * time.Second
	}
	if c.MaxHeaderBytes == 0 {
		c.MaxHeaderBytes = 256 << 10
	}
	if c.MaxConnections == 0 {
		c.MaxConnections = 4096
	}
	if c.ShutdownTimeout == 0 {
		c.ShutdownTimeout = 30 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

// Validate reports a config that cannot work. Zero values that
// setDefaults fills in are accepted; no limit can be switched off.
func (c *ServerConfig) Validate() error {
	var errs []error
	if c.ReadHeaderTimeout < 0 || c.ReadTimeout < 0 || c.WriteTimeout < 0 || c.IdleTimeout < 0 || c.ShutdownTimeout < 0 {
		errs = append(errs, errors.New("timeouts must be positive"))
	}
	if c.ReadTimeout > 0 && c.ReadHeaderTimeout > c.ReadTimeout {
		errs = append(errs, fmt.Errorf("the read header timeout (%s) exceeds the read timeout (%s), which bounds the header too",
			c.ReadHeaderTimeout, c.ReadTimeout))
	}
	if c.MaxHeaderBytes < 0 {
		errs = append(errs, errors.New("MaxHeaderBytes must be positive"))
	}
	if c.MaxConnections < 0 {
		errs = append(errs, errors.New("MaxConnections must be positive"))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("http server: %w", err)
	}
	return nil
}

// Serve serves h on ln within cfg's limits until ctx ends, then shuts
// down gracefully: it stops accepting, and waits up to cfg.ShutdownTimeout
// for the requests in progress (hijacked connections, the WebSockets, are
// their hub's to close).
func Serve(ctx context.Context, cfg ServerConfig, ln net.Listener, h http.Handler) error {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return err
	}
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: cfg.ReadHeaderTimeout,
		ReadTimeout:       cfg.ReadTimeout,
		WriteTimeout:      cfg.WriteTimeout,
		IdleTimeout:       cfg.IdleTimeout,
		MaxHeaderBytes:    cfg.MaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(cfg.Logger.With("component", "http").Handler(), slog.LevelWarn),
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(netutil.LimitListener(ln, cfg.MaxConnections)) }()
	select {
	case err := <-errc:
		return fmt.Errorf("http: %w", err)
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cfg.ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("http shutdown: %w", err)
	}
	return nil
}
