package kafka

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"

	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"
)

// SASL mechanisms tms authenticates with.
const (
	// SCRAMSHA256 and SCRAMSHA512 send no password over the wire, only
	// proof of knowing it (RFC 5802): the broker keeps a salted hash.
	SCRAMSHA256 = "SCRAM-SHA-256"
	SCRAMSHA512 = "SCRAM-SHA-512"
	// Plain sends the password itself: only inside TLS.
	Plain = "PLAIN"
)

// SASL is how tms authenticates to the brokers. Its password is never
// printed: String, Format, LogValue and MarshalJSON leave it out, so that
// a SASL logged by mistake (or a Config holding one, printed with %+v or
// as JSON) shows the mechanism and user only.
type SASL struct {
	// Mechanism is SCRAMSHA256, SCRAMSHA512 or Plain.
	Mechanism string
	// Username and Password are the credentials the broker knows.
	Username, Password string
}

// Validate reports every problem of s.
func (s *SASL) Validate() error {
	var errs []error
	switch s.Mechanism {
	case SCRAMSHA256, SCRAMSHA512, Plain:
	default:
		errs = append(errs, fmt.Errorf("kafka: SASL mechanism %q: must be %s, %s or %s", s.Mechanism, SCRAMSHA256, SCRAMSHA512, Plain))
	}
	if s.Username == "" {
		errs = append(errs, errors.New("kafka: SASL needs a user name"))
	}
	if s.Password == "" {
		errs = append(errs, errors.New("kafka: SASL needs a password"))
	}
	return errors.Join(errs...)
}

// mechanism is franz-go's implementation of s.
func (s *SASL) mechanism() sasl.Mechanism {
	switch s.Mechanism {
	case SCRAMSHA256:
		return scram.Auth{User: s.Username, Pass: s.Password}.AsSha256Mechanism()
	case SCRAMSHA512:
		return scram.Auth{User: s.Username, Pass: s.Password}.AsSha512Mechanism()
	}
	return plain.Auth{User: s.Username, Pass: s.Password}.AsMechanism()
}

// String shows the mechanism and user, never the password.
func (s SASL) String() string { return s.Mechanism + " as " + s.Username }

// Format prints String for every verb (%v, %+v, %#v, %s...): a SASL
// printed by fmt never shows its password.
func (s SASL) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(s.String())) }

// LogValue implements slog.LogValuer: the mechanism and user only.
func (s SASL) LogValue() slog.Value {
	return slog.GroupValue(slog.String("mechanism", s.Mechanism), slog.String("user", s.Username))
}

// MarshalJSON implements json.Marshaler: the mechanism and user only.
func (s SASL) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		Mechanism string `json:"mechanism"`
		User      string `json:"user"`
	}{s.Mechanism, s.Username})
}
