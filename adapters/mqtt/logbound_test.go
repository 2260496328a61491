package mqtt

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"

	mochipackets "github.com/mochi-mqtt/server/v2/packets"
)

// TestHostileEmbeddedBrokerLogsNoClientValueWhole: mochi logs a packet it
// cannot process whole (its payload, a CONNECT's password) and client ids
// as given, for instance when a client exceeds its receive maximum. The
// embedded broker's logger makes a packet its type, topic and size, and
// cuts any other value. Before, the line held the whole payload (up to the
// packet limit) and the password.
func TestHostileEmbeddedBrokerLogsNoClientValueWhole(t *testing.T) {
	t.Parallel()
	var buf syncBuffer
	b, err := StartEmbedded(EmbeddedConfig{Addr: "127.0.0.1:0", Logger: slog.New(slog.NewTextHandler(&buf, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	pk := mochipackets.Packet{TopicName: "g7/positions", Payload: bytes.Repeat([]byte("<"), 1<<20)}
	pk.FixedHeader.Type = mochipackets.Publish
	pk.Connect.Password = []byte("hunter2")
	// What mochi's receivePacket logs, through the broker's own logger.
	b.server.Log.Warn("error processing packet", "error", errors.New(strings.Repeat("e", 100_000)),
		"client", strings.Repeat("c", 100_000), "pk", pk)
	line := buf.String()[strings.Index(buf.String(), "error processing packet"):]
	if len(line) > 2048 || strings.Contains(line, "hunter2") || !strings.Contains(line, "pk.payload_bytes=1048576") {
		t.Errorf("%d bytes: %.300s", len(line), line)
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
