package mqtt

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"io"
	"net"
)

// Oversize describes a message larger than the subscriber's
// MaxPacketBytes. Its payload was read off the connection and discarded
// as it arrived, a buffer at a time: never held whole.
type Oversize struct {
	// Bytes is the size of the discarded payload.
	Bytes int
	// SHA256 is the hash of the discarded payload, so that a dead letter
	// can identify it (and a redelivery of it) without keeping it.
	SHA256 [sha256.Size]byte
}

// ErrPacketTooLarge ends a connection on which the broker sent a packet,
// other than a PUBLISH, larger than MaxPacketBytes: no broker has a
// reason to.
var ErrPacketTooLarge = errors.New("mqtt: the broker sent a packet larger than the limit")

// MQTT 3.1.1 framing (section 2.2): a packet is a fixed header (a byte of
// type and flags, then the remaining length in 1 to 4 bytes of 7 bits)
// and the remaining bytes. A PUBLISH's variable header is the topic (2
// bytes of length, then the name) and, at QoS 1 and 2, a packet id.
const (
	typePublish  = 3
	maxLengthLen = 4
	// markerLen is the payload of a PUBLISH that stands in for an
	// oversized one: the subscriber's secret, the size, the hash.
	secretLen = 16
	markerLen = secretLen + 8 + sha256.Size
)

// oversizeConn is the connection paho reads from. It follows the packet
// framing of the incoming stream and passes every packet through as it
// comes, except a PUBLISH larger than max: of that it reads the topic and
// packet id, streams the payload into a hash and away, and hands paho a
// PUBLISH with the same flags, topic and packet id whose payload is a
// marker (see marker). paho thus delivers, and the handler acknowledges,
// the same packet id, so the broker's session forgets the message instead
// of sending it again after every reconnect, and paho never allocates
// more than max for a packet.
//
// The marker starts with a secret drawn when the subscriber is made,
// which never leaves the process: no publisher can forge a marker.
type oversizeConn struct {
	net.Conn
	r      *bufio.Reader
	max    int
	secret [secretLen]byte
	// pending is what Read returns next: a fixed header, or a whole
	// rewritten packet.
	pending []byte
	// body is how many bytes of the current packet's remaining part are
	// still to pass through from r.
	body int
	// header backs pending for a fixed header.
	header [1 + maxLengthLen]byte
	hash   hash.Hash
}

func newOversizeConn(c net.Conn, max int, secret [secretLen]byte) *oversizeConn {
	return &oversizeConn{Conn: c, r: bufio.NewReaderSize(c, 32<<10), max: max, secret: secret, hash: sha256.New()}
}

// Read returns the incoming stream, with each oversized PUBLISH replaced
// as the type's comment says.
func (c *oversizeConn) Read(p []byte) (int, error) {
	if len(c.pending) == 0 && c.body == 0 {
		if err := c.next(); err != nil {
			return 0, err
		}
	}
	if len(c.pending) > 0 {
		n := copy(p, c.pending)
		c.pending = c.pending[n:]
		return n, nil
	}
	if len(p) > c.body {
		p = p[:c.body]
	}
	n, err := c.r.Read(p)
	c.body -= n
	return n, err
}

// next reads the next packet's fixed header and decides what to do with
// its remaining part.
func (c *oversizeConn) next() error {
	first, err := c.r.ReadByte()
	if err != nil {
		return err
	}
	header := append(c.header[:0], first)
	remaining, multiplier := 0, 1
	for i := 0; ; i++ {
		if i == maxLengthLen {
			return errors.New("mqtt: malformed remaining length")
		}
		b, err := c.r.ReadByte()
		if err != nil {
			return err
		}
		header = append(header, b)
		remaining += int(b&0x7f) * multiplier
		multiplier *= 128
		if b&0x80 == 0 {
			break
		}
	}
	if len(header)+remaining <= c.max {
		c.pending, c.body = header, remaining
		return nil
	}
	if first>>4 != typePublish {
		return fmt.Errorf("%w: packet type %d of %d bytes", ErrPacketTooLarge, first>>4, len(header)+remaining)
	}
	return c.discardPublish(first, remaining)
}

// discardPublish reads an oversized PUBLISH whose fixed header (first, and
// the remaining length) has been read, and leaves its stand-in in pending.
func (c *oversizeConn) discardPublish(first byte, remaining int) error {
	qos := (first >> 1) & 3
	if qos == 3 {
		return errors.New("mqtt: PUBLISH with QoS 3")
	}
	varLen := 2
	if qos > 0 {
		varLen += 2 // the packet id
	}
	if remaining < varLen {
		return errors.New("mqtt: malformed PUBLISH")
	}
	var topicLen [2]byte
	if _, err := io.ReadFull(c.r, topicLen[:]); err != nil {
		return err
	}
	varLen += int(binary.BigEndian.Uint16(topicLen[:]))
	if remaining < varLen {
		return errors.New("mqtt: malformed PUBLISH: topic longer than the packet")
	}
	// The rewritten packet: fixed header, then topic and packet id as
	// they came (the topic is at most 64 KiB), then the marker.
	out := make([]byte, 0, 1+maxLengthLen+varLen+markerLen)
	out = append(out, first)
	out = appendLength(out, varLen+markerLen)
	out = append(out, topicLen[:]...)
	start := len(out)
	out = append(out, make([]byte, varLen-2)...)
	if _, err := io.ReadFull(c.r, out[start:]); err != nil {
		return err
	}
	size := remaining - varLen
	c.hash.Reset()
	for left := size; left > 0; {
		chunk, err := c.r.Peek(min(left, c.r.Size()))
		if len(chunk) > 0 {
			c.hash.Write(chunk)
			_, _ = c.r.Discard(len(chunk))
			left -= len(chunk)
		}
		if err != nil && len(chunk) == 0 {
			return err
		}
	}
	out = append(out, c.secret[:]...)
	out = binary.BigEndian.AppendUint64(out, uint64(size))
	c.pending = c.hash.Sum(out)
	return nil
}

// marker reads a payload made by discardPublish with secret.
func marker(payload []byte, secret [secretLen]byte) (*Oversize, bool) {
	if len(payload) != markerLen || !bytes.Equal(payload[:secretLen], secret[:]) {
		return nil, false
	}
	o := &Oversize{Bytes: int(binary.BigEndian.Uint64(payload[secretLen:]))}
	copy(o.SHA256[:], payload[secretLen+8:])
	return o, true
}

func appendLength(b []byte, n int) []byte {
	for {
		digit := byte(n % 128)
		n /= 128
		if n > 0 {
			digit |= 0x80
		}
		b = append(b, digit)
		if n == 0 {
			return b
		}
	}
}
