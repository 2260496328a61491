package ws

import (
	"time"

	"github.com/tmsfleet/tms/domain/event"
)

// PublishRaw publishes e, whose JSON is raw, as the Feed does: without
// encoding it again. The flood test uses it to spend its time in the hub
// rather than in encoding a million envelopes.
func PublishRaw(h *Hub, e *event.Envelope, raw []byte) { h.publish(e, raw, time.Now()) }

// ReplaysWaiting is how many of h's replays wait for room in their
// client's outbox.
func ReplaysWaiting(h *Hub) int {
	n := 0
	for _, c := range *h.clients.Load() {
		c.mu.Lock()
		for _, r := range c.replays {
			if r.waiting {
				n++
			}
		}
		c.mu.Unlock()
	}
	return n
}
