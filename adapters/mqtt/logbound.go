package mqtt

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"unicode/utf8"

	"github.com/mochi-mqtt/server/v2/packets"
)

// maxLogValueBytes bounds each value the embedded broker logs.
const maxLogValueBytes = 256

// boundedHandler is the embedded broker's log handler. mochi logs values
// its clients choose: client ids, and on a packet it cannot process the
// whole packet, payload (up to MaxPacketBytes) and a CONNECT's password
// included. Here a packet is logged as its type, topic and payload size
// only, and every other value is cut to maxLogValueBytes.
type boundedHandler struct{ slog.Handler }

func (h boundedHandler) Handle(ctx context.Context, r slog.Record) error {
	out := slog.NewRecord(r.Time, r.Level, r.Message, r.PC)
	r.Attrs(func(a slog.Attr) bool {
		out.AddAttrs(boundAttr(a))
		return true
	})
	return h.Handler.Handle(ctx, out)
}

func (h boundedHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	bounded := make([]slog.Attr, len(attrs))
	for i, a := range attrs {
		bounded[i] = boundAttr(a)
	}
	return boundedHandler{h.Handler.WithAttrs(bounded)}
}

func (h boundedHandler) WithGroup(name string) slog.Handler {
	return boundedHandler{h.Handler.WithGroup(name)}
}

func boundAttr(a slog.Attr) slog.Attr {
	v := a.Value.Resolve()
	switch v.Kind() {
	case slog.KindString:
		return slog.String(a.Key, cutLog(v.String()))
	case slog.KindGroup:
		group := v.Group()
		bounded := make([]any, len(group))
		for i, g := range group {
			bounded[i] = boundAttr(g)
		}
		return slog.Group(a.Key, bounded...)
	case slog.KindAny:
		switch x := v.Any().(type) {
		case packets.Packet:
			return packetAttr(a.Key, &x)
		case *packets.Packet:
			return packetAttr(a.Key, x)
		case error:
			return slog.String(a.Key, cutLog(x.Error()))
		default:
			return slog.String(a.Key, cutLog(fmt.Sprint(x)))
		}
	}
	return slog.Attr{Key: a.Key, Value: v}
}

func packetAttr(key string, pk *packets.Packet) slog.Attr {
	return slog.Group(key, slog.Int("type", int(pk.FixedHeader.Type)),
		slog.String("topic", cutLog(pk.TopicName)), slog.Int("payload_bytes", len(pk.Payload)))
}

// cutLog cuts s to maxLogValueBytes on a rune boundary, marking the cut.
func cutLog(s string) string {
	if len(s) <= maxLogValueBytes {
		return s
	}
	n := maxLogValueBytes
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return strings.ToValidUTF8(s[:n], "\uFFFD") + "…"
}
