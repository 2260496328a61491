package kafka

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Permanent reports an error that retrying will not cure: the cluster
// refuses tms for what it is (not authorised, a static member id another
// live process holds, an unsupported protocol or SASL mechanism) or the
// topics are set up wrong (ErrNotCoPartitioned). A process exits on such an
// error, saying which; it waits out every other Kafka error
// (docs/reliability.md).
//
// A failed SASL authentication (a wrong password, a user not yet created)
// is not permanent: credentials are rotated on the brokers and in tms's
// settings at different moments, and a process that exited on the first
// refusal would only be restarted into the same refusal, a crash loop.
// It is waited out like an outage: logged once, named on /readyz.
func Permanent(err error) bool {
	if errors.Is(err, ErrNotCoPartitioned) {
		return true
	}
	for _, e := range []error{
		kerr.TopicAuthorizationFailed, kerr.GroupAuthorizationFailed, kerr.ClusterAuthorizationFailed,
		kerr.TransactionalIDAuthorizationFailed, kerr.UnsupportedSaslMechanism,
		kerr.IllegalSaslState, kerr.UnsupportedVersion, kerr.FencedInstanceID, kerr.InvalidReplicationFactor,
		kerr.PolicyViolation, kerr.InvalidConfig,
	} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// Health follows the components of one process that wait for Kafka: each
// has an Outage of its own, and Err says which are waiting, for /readyz.
// Safe for concurrent use. A nil *Health hands out Outages nobody asks.
type Health struct {
	mu      sync.Mutex
	outages []*Outage
}

// Outage returns the outage tracker of the component name (a role, a
// consumer), with the backoff of cfg: RetryBackoff doubling up to
// RetryBackoffMax.
func (h *Health) Outage(name string, cfg *Config) *Outage {
	o := &Outage{name: name, log: cfg.Logger, min: cfg.RetryBackoff, max: cfg.RetryBackoffMax, sasl: cfg.SASL}
	if o.log == nil {
		o.log = slog.Default()
	}
	if h != nil {
		h.mu.Lock()
		h.outages = append(h.outages, o)
		h.mu.Unlock()
	}
	return o
}

// NewOutage returns an outage tracker that no Health follows, with the
// default backoff, for a component used without one (tests).
func NewOutage(name string, log *slog.Logger) *Outage {
	c := Config{Logger: log}
	c.SetDefaults()
	return (*Health)(nil).Outage(name, &c)
}

// Err returns nil when no component waits for Kafka, else what each
// waiting one last met and since when.
func (h *Health) Err() error {
	if h == nil {
		return nil
	}
	h.mu.Lock()
	outages := slices.Clone(h.outages)
	h.mu.Unlock()
	var waiting []string
	for _, o := range outages {
		if err := o.Err(); err != nil {
			waiting = append(waiting, err.Error())
		}
	}
	if len(waiting) == 0 {
		return nil
	}
	return errors.New(strings.Join(waiting, "; "))
}

// Outage is one component's trouble with Kafka: Failed at every error it
// waits out, Recovered once a call went through again. It logs the first
// error of an outage and its end (with how long it lasted), not every
// attempt, and backs off between attempts. A component that has nothing to
// do may have no call to prove Kafka answers again (an idle consumer's
// poll just waits): an outage also ends once no error came for longer
// than the longest backoff and a margin, as franz-go reports a group it
// cannot reach at every attempt. Safe for concurrent use.
type Outage struct {
	name     string
	log      *slog.Logger
	min, max time.Duration
	sasl     *SASL // to name the user a refusal was for

	mu       sync.Mutex
	since    time.Time // zero: no outage
	lastFail time.Time
	last     error
	attempts int
	backoff  time.Duration
}

// Failed records err, logging it if it opens an outage, and waits the
// next backoff (jittered, capped), or until ctx ends.
func (o *Outage) Failed(ctx context.Context, err error) {
	err = o.explain(err)
	o.mu.Lock()
	if !o.since.IsZero() && o.quietLocked() {
		o.endLocked()
	}
	if o.since.IsZero() {
		o.since = time.Now()
		o.backoff = o.min
		o.log.Warn("Kafka is unreachable or refusing; retrying with backoff until it answers (readyz says not ready meanwhile)",
			"component", o.name, "err", err)
	} else {
		o.backoff = min(2*o.backoff, o.max)
	}
	o.last, o.lastFail = err, time.Now()
	o.attempts++
	wait := o.backoff/2 + rand.N(o.backoff/2+1)
	o.mu.Unlock()
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// explain says what a refusal of the connection itself means, which
// franz-go's and crypto/tls's words leave to the reader: a failed SASL
// exchange says only that it failed.
func (o *Outage) explain(err error) error {
	var untrusted *tls.CertificateVerificationError
	switch {
	case errors.Is(err, kerr.SaslAuthenticationFailed) && o.sasl != nil:
		return fmt.Errorf("the brokers refused SASL %s authentication as user %q (a wrong password, or a user they do not know): %w",
			o.sasl.Mechanism, o.sasl.Username, err)
	case errors.As(err, &untrusted):
		return fmt.Errorf("the brokers' TLS certificate is not trusted (not signed by the configured CA, or not for this host name): %w", err)
	}
	return err
}

// Recovered ends an outage, if one is open, and logs how long it lasted.
func (o *Outage) Recovered() {
	o.mu.Lock()
	defer o.mu.Unlock()
	if !o.since.IsZero() {
		o.endLocked()
	}
}

// quietLocked reports whether the open outage has had no error for long
// enough to count as over.
func (o *Outage) quietLocked() bool { return time.Since(o.lastFail) > o.max+quietMargin }

// quietMargin is added to the longest backoff to tell an outage over from
// a component's silence.
const quietMargin = 5 * time.Second

func (o *Outage) endLocked() {
	o.log.Info("Kafka answers again", "component", o.name, "outage", o.lastFail.Sub(o.since).Round(time.Millisecond).String(),
		"attempts", o.attempts)
	o.since, o.last, o.attempts = time.Time{}, nil, 0
}

// Err returns nil outside an outage, else the last error and since when.
func (o *Outage) Err() error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.since.IsZero() || o.quietLocked() {
		return nil
	}
	return fmt.Errorf("%s: waiting for Kafka for %s: %w", o.name, time.Since(o.since).Round(time.Second), o.last)
}

// ProduceProgress is a client hook that tells whether a producer's
// records are stuck: Kafka neither acknowledges nor refuses them (all
// replicas of a partition down, fewer in sync than min.insync.replicas).
// franz-go retries such records until they go through, which is what
// ingest wants (the MQTT acknowledgements wait meanwhile): this only lets
// /readyz say so. Install it with kgo.WithHooks.
type ProduceProgress struct {
	mu       sync.Mutex
	buffered int64
	lastDone time.Time
}

// NewProduceProgress returns a hook with nothing buffered.
func NewProduceProgress() *ProduceProgress { return &ProduceProgress{lastDone: time.Now()} }

// OnProduceRecordBuffered implements kgo.HookProduceRecordBuffered.
func (p *ProduceProgress) OnProduceRecordBuffered(*kgo.Record) {
	p.mu.Lock()
	if p.buffered == 0 {
		p.lastDone = time.Now() // waiting starts now
	}
	p.buffered++
	p.mu.Unlock()
}

// OnProduceRecordUnbuffered implements kgo.HookProduceRecordUnbuffered.
func (p *ProduceProgress) OnProduceRecordUnbuffered(_ *kgo.Record, err error) {
	p.mu.Lock()
	p.buffered--
	if err == nil {
		p.lastDone = time.Now()
	}
	p.mu.Unlock()
}

// Err returns an error when records have waited for Kafka longer than
// stall without any being acknowledged.
func (p *ProduceProgress) Err(stall time.Duration) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.buffered > 0 && time.Since(p.lastDone) > stall {
		return fmt.Errorf("%d records wait for Kafka, none acknowledged for %s", p.buffered, time.Since(p.lastDone).Round(time.Second))
	}
	return nil
}
