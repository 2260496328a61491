package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/tmsfleet/tms/domain/event"
	"github.com/tmsfleet/tms/internal/tmsproc"
)

// TestWebSocketReplayThroughTheService replays positions that went through the
// whole service (MQTT, ingest, Kafka, the projector) over `tms serve`'s
// WebSocket: the hub is wired to the read models (a vehicle's history),
// and to the jobs read model (a job's window).
func TestWebSocketReplayThroughTheService(t *testing.T) {
	t.Parallel()
	d := newDeployment(t)
	d.Start()
	const plate = "沪E00009"
	publish := publisher(t, d)
	first := time.Now().Add(-time.Hour).Truncate(time.Second)
	for i := range 5 {
		publish(plate, first.Add(time.Duration(i)*10*time.Second))
	}
	var v apiVehicle
	tmsproc.Eventually(t, 30*time.Second, plate+" in the read model with its five fixes", func() bool {
		return d.Get("/api/v1/vehicles/"+url.PathEscape(plate), &v) == 200 && v.PositionsCount == 5
	})

	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	conn, _, err := websocket.Dial(ctx, "ws://"+d.HTTPAddr+"/api/v1/ws?access_token="+tmsproc.ViewerToken, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.CloseNow()
	type frame struct {
		Type      string          `json:"type"`
		ReplayID  string          `json:"replay_id"`
		ReplaySeq int             `json:"replay_seq"`
		Reason    string          `json:"reason"`
		Frames    int             `json:"frames"`
		Field     string          `json:"field"`
		Detail    string          `json:"detail"`
		Event     *event.Envelope `json:"event"`
	}
	send := func(msg string) {
		t.Helper()
		if err := conn.Write(ctx, websocket.MessageText, []byte(msg)); err != nil {
			t.Fatal(err)
		}
	}
	next := func() frame {
		t.Helper()
		_, raw, err := conn.Read(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var f frame
		if err := json.Unmarshal(raw, &f); err != nil {
			t.Fatalf("frame %s: %v", raw, err)
		}
		return f
	}

	send(fmt.Sprintf(`{"replay": {"vehicle": %q, "from": %q, "to": %q, "speed": 100}}`,
		plate, first.Format(time.RFC3339), first.Add(time.Minute).Format(time.RFC3339)))
	if f := next(); f.Type != "replay_started" || f.ReplayID == "" {
		t.Fatalf("frame %+v, want replay_started", f)
	}
	for i := range 5 {
		f := next()
		if f.Type != "replay" || f.ReplaySeq != i+1 || f.Event == nil || f.Event.Type != event.TypePositionReported ||
			f.Event.Subject != plate || !f.Event.Time.Equal(first.Add(time.Duration(i)*10*time.Second)) {
			t.Fatalf("frame %d: %+v, want the fix of +%ds", i, f, i*10)
		}
	}
	if f := next(); f.Type != "replay_ended" || f.Reason != "completed" || f.Frames != 5 {
		t.Fatalf("frame %+v, want replay_ended completed after 5", f)
	}

	send(`{"replay": {"job": "7f1c3e52-9a44-4c1e-8f0a-2b6d5e9c0aff"}}`)
	if f := next(); f.Type != "error" || f.Field != "job" || f.Detail != "there is no job 7f1c3e52-9a44-4c1e-8f0a-2b6d5e9c0aff" {
		t.Fatalf("frame %+v, want an error: no such job", f)
	}
}
