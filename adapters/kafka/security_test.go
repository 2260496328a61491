package kafka

import (
	"fmt"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
)

// TestWrongCredentialsAreWaitedOutAndNamed: a refused SASL authentication
// is not Permanent (the process waits it out), and the outage names the
// user and mechanism, never the password.
func TestWrongCredentialsAreWaitedOutAndNamed(t *testing.T) {
	t.Parallel()
	refusal := fmt.Errorf("create topic tms.positions: %w", kerr.SaslAuthenticationFailed)
	if Permanent(refusal) {
		t.Error("a failed SASL authentication is permanent: tms would exit and be restarted into the same refusal")
	}
	if !Permanent(kerr.UnsupportedSaslMechanism) {
		t.Error("a mechanism the brokers do not offer is not permanent")
	}
	cfg := Config{SASL: &SASL{Mechanism: SCRAMSHA512, Username: "tms", Password: "Sekr3t"}}
	cfg.SetDefaults()
	o := (*Health)(nil).Outage("test", &cfg)
	got := o.explain(refusal).Error()
	for _, want := range []string{"refused SASL SCRAM-SHA-512 authentication", `user "tms"`, "wrong password", "SASL_AUTHENTICATION_FAILED"} {
		if !strings.Contains(got, want) {
			t.Errorf("%q does not say %q", got, want)
		}
	}
	if strings.Contains(got, "Sekr3t") {
		t.Errorf("%q holds the password", got)
	}
}

func TestSASLValidate(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		s    SASL
		want []string
	}{
		{SASL{Mechanism: SCRAMSHA256, Username: "u", Password: "p"}, nil},
		{SASL{Mechanism: Plain, Username: "u", Password: "p"}, nil},
		{SASL{Mechanism: "OAUTHBEARER", Username: "u", Password: "p"}, []string{"OAUTHBEARER"}},
		{SASL{Mechanism: SCRAMSHA512}, []string{"user name", "password"}},
	} {
		err := tc.s.Validate()
		if tc.want == nil {
			if err != nil {
				t.Errorf("%v: %v", tc.s, err)
			}
			continue
		}
		for _, w := range tc.want {
			if err == nil || !strings.Contains(err.Error(), w) {
				t.Errorf("%v: error %v does not say %q", tc.s, err, w)
			}
		}
	}
}
