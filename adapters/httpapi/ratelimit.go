package httpapi

import (
	"crypto/sha256"
	"fmt"
	"math"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"time"

	"github.com/gin-gonic/gin"
	"golang.org/x/time/rate"
)

// rateLimitedError is a request over its client's budget.
type rateLimitedError struct {
	// scope is what the budget belongs to: "token" or "address".
	scope string
	rate  float64
	burst int
	// retryAfter is when the request would have been allowed.
	retryAfter time.Duration
}

func (e *rateLimitedError) Error() string {
	return fmt.Sprintf("this %s may make %g requests a second (bursts of %d); retry after %s",
		e.scope, e.rate, e.burst, strconv.Itoa(retryAfterSeconds(e.retryAfter))+" s")
}

// retryAfterSeconds rounds a wait up to Retry-After's whole seconds, at
// least 1: a client told 0 would retry at once and be refused again.
func retryAfterSeconds(d time.Duration) int {
	return max(1, int(math.Ceil(d.Seconds())))
}

// rateLimit admits a request within its client's budget (see RateLimit)
// and answers the others 429 with Retry-After. It runs before routing's
// handlers and before authentication, so that neither a flood of 404s
// nor one of wrong tokens escapes it; the token is recognised here only
// to choose the bucket (authenticate still decides who gets in), and the
// bucket is keyed by the token's SHA-256 digest, never by the token.
func (s *server) rateLimit(c *gin.Context) {
	now := time.Now()
	token, _, err := bearerToken(c.Request, c.FullPath() == wsPath)
	if err == nil {
		d := sha256.Sum256([]byte(token))
		if _, ok := s.lookupDigest(d); ok {
			s.admit(c, s.byToken, d, now)
			return
		}
	}
	s.admit(c, s.byAddress, addressKey(c.Request.RemoteAddr), now)
}

// admit lets the request go on when key's bucket allows it. A refused
// request is answered after a pause (RateLimit.RefusalPause, at most its
// wait): a client over its budget has to wait anyway, and a client that
// floods one request after another on a connection is held to a few a
// second on it, instead of making the server answer thousands of 429s.
func (s *server) admit(c *gin.Context, b *buckets, key any, now time.Time) {
	if wait := b.allow(key, now); wait > 0 {
		pause := time.NewTimer(min(wait, s.cfg.RateLimit.RefusalPause))
		select {
		case <-pause.C:
		case <-c.Request.Context().Done():
			pause.Stop()
		}
		fail(c, &rateLimitedError{scope: b.scope, rate: float64(b.rate), burst: b.burst, retryAfter: wait})
		return
	}
	c.Next()
}

// addressKey is the limiter key of a remote address: the IP without its
// port, an IPv6 address by its /64 (one subscriber's usual allocation,
// which its owner can fill with as many addresses as they like). An
// address that does not parse keys as itself.
func addressKey(remoteAddr string) any {
	host, _, err := net.SplitHostPort(remoteAddr)
	if err != nil {
		host = remoteAddr
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return host
	}
	ip = ip.Unmap().WithZone("")
	if ip.Is6() {
		return netip.PrefixFrom(ip, 64).Masked()
	}
	return ip
}

// buckets are token buckets by key, at most max of them. A bucket that
// has been left alone long enough to fill up again is the same as no
// bucket, so idle ones are forgotten (swept at most once a sweepEvery);
// when max busy buckets are tracked, new keys share one overflow bucket
// until some go idle. Memory stays bounded whatever the number of keys,
// and no busy key's state is ever reset by forgetting it.
type buckets struct {
	scope string
	rate  rate.Limit
	burst int
	max   int

	mu        sync.Mutex
	m         map[any]*bucket
	overflow  *rate.Limiter
	lastSweep time.Time
}

type bucket struct {
	lim  *rate.Limiter
	last time.Time
}

// sweepEvery bounds how often buckets walks its map for idle keys.
const sweepEvery = time.Second

func newBuckets(scope string, r float64, burst, max int) *buckets {
	return &buckets{scope: scope, rate: rate.Limit(r), burst: burst, max: max,
		m: make(map[any]*bucket), overflow: rate.NewLimiter(rate.Limit(r), burst)}
}

// fillTime is how long an unused bucket takes to fill up.
func (b *buckets) fillTime() time.Duration {
	return time.Duration(float64(b.burst) / float64(b.rate) * float64(time.Second))
}

// allow takes one request from key's bucket at now: 0 when it may go,
// else how long until it could.
func (b *buckets) allow(key any, now time.Time) time.Duration {
	b.mu.Lock()
	defer b.mu.Unlock()
	lim := b.limiter(key, now)
	r := lim.ReserveN(now, 1)
	if !r.OK() { // burst 0: nothing is ever allowed
		return time.Duration(math.MaxInt64)
	}
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now) // a refused request spends nothing
		return d
	}
	return 0
}

func (b *buckets) limiter(key any, now time.Time) *rate.Limiter {
	if e, ok := b.m[key]; ok {
		e.last = now
		return e.lim
	}
	if len(b.m) >= b.max || now.Sub(b.lastSweep) >= time.Minute {
		b.sweep(now)
	}
	if len(b.m) >= b.max {
		return b.overflow
	}
	e := &bucket{lim: rate.NewLimiter(b.rate, b.burst), last: now}
	b.m[key] = e
	return e.lim
}

// sweep forgets the buckets that are full again, at most once a
// sweepEvery: with max busy keys, a new key does not pay for a walk of
// the whole map each time.
func (b *buckets) sweep(now time.Time) {
	if now.Sub(b.lastSweep) < sweepEvery {
		return
	}
	b.lastSweep = now
	idle := b.fillTime()
	for k, e := range b.m {
		if now.Sub(e.last) >= idle {
			delete(b.m, k)
		}
	}
}

// size is how many keys are tracked.
func (b *buckets) size() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.m)
}
