package mqtt

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"io"
	"net"
	"runtime"
	"testing"

	"github.com/eclipse/paho.mqtt.golang/packets"
)

// pattern is an endless, cheap, deterministic byte stream: a payload of
// any size without holding it.
type pattern struct{ i byte }

func (p *pattern) Read(b []byte) (int, error) {
	for k := range b {
		b[k] = p.i
		p.i = p.i*31 + 7
	}
	return len(b), nil
}

// streamConn is a net.Conn that reads r and ignores writes.
type streamConn struct {
	net.Conn
	r io.Reader
}

func (c streamConn) Read(p []byte) (int, error) { return c.r.Read(p) }

func encode(t *testing.T, cp packets.ControlPacket) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := cp.Write(&b); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// publishHeader is the start of a QoS 1 PUBLISH of a payload of size
// bytes to topic, with packet id id: everything but the payload.
func publishHeader(t *testing.T, topic string, id uint16, size int) []byte {
	t.Helper()
	p := packets.NewControlPacket(packets.Publish).(*packets.PublishPacket)
	p.Qos, p.TopicName, p.MessageID = 1, topic, id
	p.Payload = make([]byte, 0)
	whole := encode(t, p)
	// Re-frame with the real remaining length: fixed header, then the
	// variable header paho wrote.
	variable := whole[2:] // an empty payload's remaining length is one byte
	return append(appendLength([]byte{whole[0]}, len(variable)+size), variable...)
}

// TestHostileOversizedPublishIsStreamedAwayNotBuffered feeds paho's own
// packet reader a stream holding a 64 MiB PUBLISH between a CONNACK and a
// small PUBLISH, through the subscriber's connection wrapper with a 1 MiB
// limit. paho reads the small stand-in (same topic, same packet id, the
// size and hash of the payload), the packets around it intact, and the
// whole read allocates a small fraction of the payload. paho on the bare
// stream (what the subscriber did before) allocates the 64 MiB.
func TestHostileOversizedPublishIsStreamedAwayNotBuffered(t *testing.T) {
	const size = 64 << 20
	want := sha256.New()
	if _, err := io.CopyN(want, &pattern{}, size); err != nil {
		t.Fatal(err)
	}
	connack := encode(t, packets.NewControlPacket(packets.Connack))
	small := packets.NewControlPacket(packets.Publish).(*packets.PublishPacket)
	small.Qos, small.TopicName, small.MessageID, small.Payload = 1, "g7/positions", 8, []byte(`{"data":[]}`)
	stream := io.MultiReader(bytes.NewReader(connack),
		bytes.NewReader(publishHeader(t, "g7/positions", 7, size)), io.LimitReader(&pattern{}, size),
		bytes.NewReader(encode(t, small)))
	var secret [secretLen]byte
	secret[0] = 42
	conn := newOversizeConn(streamConn{r: stream}, 1<<20, secret)

	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	first, err := packets.ReadPacket(conn)
	if err != nil {
		t.Fatal(err)
	}
	big, err := packets.ReadPacket(conn)
	if err != nil {
		t.Fatal(err)
	}
	runtime.ReadMemStats(&after)
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 1<<20 {
		t.Errorf("reading a %d-byte PUBLISH allocated %d bytes", size, alloc)
	}
	if _, ok := first.(*packets.ConnackPacket); !ok {
		t.Fatalf("first packet %v", first)
	}
	pub, ok := big.(*packets.PublishPacket)
	if !ok || pub.TopicName != "g7/positions" || pub.MessageID != 7 || pub.Qos != 1 {
		t.Fatalf("stand-in %v", big)
	}
	o, ok := marker(pub.Payload, secret)
	if !ok || o.Bytes != size || !bytes.Equal(o.SHA256[:], want.Sum(nil)) {
		t.Fatalf("stand-in payload %x: %+v, %v", pub.Payload, o, ok)
	}
	var other [secretLen]byte
	if _, forged := marker(pub.Payload, other); forged {
		t.Error("another subscriber's secret reads the marker")
	}
	next, err := packets.ReadPacket(conn)
	if err != nil {
		t.Fatal(err)
	}
	if p, ok := next.(*packets.PublishPacket); !ok || p.MessageID != 8 || string(p.Payload) != `{"data":[]}` {
		t.Fatalf("packet after the oversized one: %v", next)
	}
	if _, err := packets.ReadPacket(conn); !errors.Is(err, io.EOF) {
		t.Errorf("end of stream: %v", err)
	}
}

func TestOversizeConnRefusesOtherOversizedPacketsAndBadFraming(t *testing.T) {
	t.Parallel()
	suback := packets.NewControlPacket(packets.Suback).(*packets.SubackPacket)
	suback.MessageID, suback.ReturnCodes = 1, bytes.Repeat([]byte{1}, 2000)
	for name, c := range map[string]struct {
		stream []byte
		want   error
	}{
		"a SUBACK above the limit":       {encode(t, suback), ErrPacketTooLarge},
		"a remaining length of 5 bytes":  {[]byte{0x30, 0xff, 0xff, 0xff, 0xff, 0x7f}, nil},
		"a topic longer than the packet": {append(appendLength([]byte{0x30}, 2000), 0xff, 0xff), nil},
	} {
		conn := newOversizeConn(streamConn{r: bytes.NewReader(c.stream)}, 1024, [secretLen]byte{})
		_, err := packets.ReadPacket(conn)
		if err == nil || (c.want != nil && !errors.Is(err, c.want)) {
			t.Errorf("%s: %v", name, err)
		}
	}
}
