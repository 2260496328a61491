package httpapi

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"
)

// serve runs h under Serve with cfg on a loopback port until the test
// ends, and returns its address.
func serve(t *testing.T, cfg ServerConfig, h http.Handler) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, cfg, ln, h) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return ln.Addr().String()
}

func dial(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// closedWithin reports whether the server closes c within d, reading
// (and discarding) whatever it sends first.
func closedWithin(c net.Conn, d time.Duration) bool {
	_ = c.SetReadDeadline(time.Now().Add(d))
	_, err := io.Copy(io.Discard, c)
	var ne net.Error
	return !(errors.As(err, &ne) && ne.Timeout())
}

var okHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "ok") })

func TestHostileHTTPSlowHeaderIsCut(t *testing.T) {
	t.Parallel()
	addr := serve(t, ServerConfig{ReadHeaderTimeout: 300 * time.Millisecond}, okHandler)
	c := dial(t, addr)
	start := time.Now()
	// A header that never ends, a byte at a time: the attack the header
	// timeout is for.
	go func() {
		for _, b := range []byte("GET / HTTP/1.1\r\nHost: x\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa") {
			if _, err := c.Write([]byte{b}); err != nil {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
	}()
	if !closedWithin(c, 5*time.Second) {
		t.Fatal("a client trickling its header was still connected after 5 s")
	}
	t.Logf("cut after %s", time.Since(start).Round(time.Millisecond))
}

func TestHostileHTTPSlowBodyIsCut(t *testing.T) {
	t.Parallel()
	addr := serve(t, ServerConfig{ReadHeaderTimeout: 200 * time.Millisecond, ReadTimeout: 500 * time.Millisecond},
		http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if _, err := io.Copy(io.Discard, r.Body); err != nil {
				return
			}
			_, _ = io.WriteString(w, "read it all")
		}))
	c := dial(t, addr)
	if _, err := io.WriteString(c, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	go func() {
		for range 1000 {
			if _, err := c.Write([]byte{'a'}); err != nil {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
	}()
	if !closedWithin(c, 5*time.Second) {
		t.Fatal("a client trickling its body was still connected after 5 s")
	}
}

func TestHostileHTTPSlowReaderIsCut(t *testing.T) {
	t.Parallel()
	const size = 256 << 20 // far more than the socket buffers hold
	addr := serve(t, ServerConfig{WriteTimeout: 500 * time.Millisecond},
		http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Length", "268435456")
			chunk := make([]byte, 64<<10)
			for written := 0; written < size; written += len(chunk) {
				if _, err := w.Write(chunk); err != nil {
					return
				}
			}
		}))
	c := dial(t, addr)
	if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	// A client that reads nothing holds the handler until the write
	// deadline; by the time it reads, the server has given up.
	time.Sleep(1500 * time.Millisecond)
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	n, err := io.Copy(io.Discard, c)
	if n >= size {
		t.Fatalf("the slow reader got all %d bytes: the write timeout did not cut it (err %v)", n, err)
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("the connection was still open after reading %d bytes", n)
	}
}

func TestHostileHTTPMaxHeaderBytes(t *testing.T) {
	t.Parallel()
	addr := serve(t, ServerConfig{MaxHeaderBytes: 1 << 10}, okHandler)
	// Go's server reads MaxHeaderBytes plus 4 KiB of slack.
	req, _ := http.NewRequest(http.MethodGet, "http://"+addr+"/", nil)
	req.Header.Set("X-Big", strings.Repeat("a", 8<<10))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Fatalf("an 8 KiB header with a 1 KiB limit: %d, want 431", resp.StatusCode)
	}
	req.Header.Set("X-Big", strings.Repeat("a", 512))
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("a small header: %d", resp.StatusCode)
	}
}

func TestHostileHTTPConnectionCap(t *testing.T) {
	t.Parallel()
	const limit = 3
	addr := serve(t, ServerConfig{MaxConnections: limit}, okHandler)
	// Fill the cap with kept-alive connections, each proven accepted by
	// an answer.
	var held []net.Conn
	for range limit {
		c := dial(t, addr)
		if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		held = append(held, c)
	}
	extra := dial(t, addr)
	if _, err := io.WriteString(extra, "GET / HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReader(extra)
	_ = extra.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
	if _, err := r.ReadByte(); err == nil {
		t.Fatalf("connection %d was served beside %d open ones", limit+1, limit)
	}
	// A slot frees up: the waiting connection is served.
	held[0].Close()
	_ = extra.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(r, nil)
	if err != nil {
		t.Fatalf("the waiting connection after a slot freed up: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("status %d", resp.StatusCode)
	}
}

func TestServerConfigValidate(t *testing.T) {
	t.Parallel()
	bad := ServerConfig{ReadTimeout: time.Second, ReadHeaderTimeout: 2 * time.Second, MaxConnections: -1, IdleTimeout: -1}
	err := bad.Validate()
	if err == nil {
		t.Fatal("accepted")
	}
	for _, want := range []string{"read header timeout", "MaxConnections", "timeouts must be positive"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%v: does not say %q", err, want)
		}
	}
	var zero ServerConfig
	if err := zero.Validate(); err != nil {
		t.Errorf("the zero config (all defaults): %v", err)
	}
}

// TestShutdownWaitsForRequestsInProgress: a request under way when the
// shutdown begins gets its answer (a command waiting for its read model
// is answered, not cut), and one that outlasts ShutdownTimeout makes
// Serve say so.
func TestShutdownWaitsForRequestsInProgress(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		timeout  time.Duration
		answered bool
	}{
		{"released within the timeout", time.Minute, true},
		{"held past the timeout", 50 * time.Millisecond, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			entered, release := make(chan struct{}), make(chan struct{})
			h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				close(entered)
				<-release
				_, _ = io.WriteString(w, "done")
			})
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			addr := ln.Addr().String()
			ctx, cancel := context.WithCancel(context.Background())
			served := make(chan error, 1)
			go func() { served <- Serve(ctx, ServerConfig{ShutdownTimeout: tc.timeout}, ln, h) }()
			answer := make(chan error, 1)
			go func() {
				res, err := http.Get("http://" + addr + "/")
				if err == nil {
					res.Body.Close()
				}
				answer <- err
			}()
			<-entered
			cancel()
			if !tc.answered {
				if err := <-served; err == nil || !errors.Is(err, context.DeadlineExceeded) {
					t.Fatalf("Serve = %v, want the shutdown's deadline exceeded", err)
				}
				close(release)
				return
			}
			// The shutdown has begun once the listener refuses connections.
			for {
				c, err := net.Dial("tcp", addr)
				if err != nil {
					break
				}
				c.Close()
				runtime.Gosched()
			}
			close(release)
			if err := <-answer; err != nil {
				t.Fatalf("the request in progress was not answered: %v", err)
			}
			if err := <-served; err != nil {
				t.Fatalf("Serve: %v", err)
			}
		})
	}
}
