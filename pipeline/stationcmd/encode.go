package stationcmd

import (
	"encoding/json"
	"fmt"

	"github.com/tmsfleet/tms/domain/event"
)

// encode is an event as a record value: the structured-mode CloudEvent.
func encode(e event.Envelope) ([]byte, error) {
	b, err := json.Marshal(e)
	if err != nil {
		return nil, fmt.Errorf("stationcmd: encode %s: %w", e.Type, err)
	}
	return b, nil
}
