package g7api

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Defaults of Config. docs/backfill.md gives the reasons.
const (
	// DefaultBaseURL is G7's open-platform host as we know it: neither
	// G7.md nor the original system's repository gives one (it read its
	// own G7_HTTP_HOST). A company sets G7_API_BASE_URL from its G7
	// contract (docs/backfill.md).
	DefaultBaseURL = "https://openapi.huoyunren.com"
	// HistoryPath is the history_location endpoint, under the base URL.
	HistoryPath = "/v1/device/truck/history_location"
	// DefaultPageSize is how many rows G7 returns at most in one page.
	DefaultPageSize = 1000
	// DefaultWindow is the longest range G7 answers in one query.
	DefaultWindow = 31 * 24 * time.Hour
	// DefaultRate is requests per second: gentle enough for an account
	// shared with other users of the API.
	DefaultRate = 5
	// DefaultTimeout bounds one request, as the original system's 30 s.
	DefaultTimeout = 30 * time.Second
	// DefaultRetries is how many times a request is sent again after a
	// failure that may pass (network, 5xx, 429, throttling).
	DefaultRetries = 6
	// DefaultBackoff and DefaultBackoffMax: the first wait before a retry
	// and the longest (full jitter: a random wait up to the bound, which
	// doubles from DefaultBackoff at each retry).
	DefaultBackoff    = 500 * time.Millisecond
	DefaultBackoffMax = 30 * time.Second
	// DefaultMaxResponseBytes bounds a response body: a full page of
	// 1,000 rows is about 150 KB.
	DefaultMaxResponseBytes = 8 << 20
)

// DefaultThrottleCodes are the envelope codes (code or sub_code) that
// mean "too many requests": retried like an HTTP 429.
var DefaultThrottleCodes = []string{"429"}

// ChinaTime is the zone G7's from and to parameters are written in
// (UTC+8, without daylight saving), as the original system wrote them.
var ChinaTime = time.FixedZone("CST", 8*60*60)

// Secret is a credential: it prints, formats and logs as "[redacted]".
// Only the signing reads its value.
type Secret string

func (Secret) String() string               { return "[redacted]" }
func (Secret) GoString() string             { return `"[redacted]"` }
func (Secret) LogValue() slog.Value         { return slog.StringValue("[redacted]") }
func (Secret) MarshalText() ([]byte, error) { return []byte("[redacted]"), nil }

// Config configures a Client. Zero fields take their defaults.
type Config struct {
	// BaseURL is the API's scheme and host (and path prefix, if any)
	// (G7_API_BASE_URL). Default DefaultBaseURL.
	BaseURL string
	// Key is the API key (G7_API_KEY), named in every request.
	Key string
	// Secret signs every request (G7_API_SECRET). Never printed.
	Secret Secret
	// Rate is requests per second, all retries included (G7_API_RATE).
	// Default DefaultRate.
	Rate float64
	// Timeout bounds one request, from sending it to the end of its body
	// (G7_API_TIMEOUT). Default DefaultTimeout.
	Timeout time.Duration
	// Retries is how many times a request that failed in a way that may
	// pass is sent again before the failure is returned (G7_API_RETRIES).
	// Negative means none. Default DefaultRetries.
	Retries int
	// Backoff and BackoffMax bound the waits between retries
	// (G7_API_BACKOFF, G7_API_BACKOFF_MAX). Defaults DefaultBackoff and
	// DefaultBackoffMax.
	Backoff, BackoffMax time.Duration
	// MaxResponseBytes bounds a response body (G7_API_MAX_RESPONSE_BYTES);
	// a larger one is an error, not retried. Default
	// DefaultMaxResponseBytes.
	MaxResponseBytes int64
	// PageSize is the most rows G7 returns in one page: a page with fewer
	// ends its window. Default DefaultPageSize (G7's).
	PageSize int
	// Window is the longest range asked in one query. Default
	// DefaultWindow (G7's limit).
	Window time.Duration
	// TimeInterval, when positive, is sent as timeInterval (whole seconds):
	// G7 then thins the track to a row per interval. Zero sends none: the
	// full track (G7_API_TIME_INTERVAL).
	TimeInterval time.Duration
	// ThrottleCodes are the envelope codes (code or sub_code) retried as
	// throttling (G7_API_THROTTLE_CODES). Default DefaultThrottleCodes.
	ThrottleCodes []string
	// HTTPClient sends the requests; default a client of its own. Its own
	// timeout, if any, applies on top of Timeout.
	HTTPClient *http.Client
	// Clock gives the signing timestamps. Default time.Now.
	Clock func() time.Time
	// Logger receives a line per retry. Default slog's.
	Logger *slog.Logger
}

func (c *Config) setDefaults() {
	if c.BaseURL == "" {
		c.BaseURL = DefaultBaseURL
	}
	c.BaseURL = strings.TrimRight(c.BaseURL, "/")
	if c.Rate == 0 {
		c.Rate = DefaultRate
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	if c.Retries == 0 {
		c.Retries = DefaultRetries
	}
	if c.Retries < 0 {
		c.Retries = 0
	}
	if c.Backoff == 0 {
		c.Backoff = DefaultBackoff
	}
	if c.BackoffMax == 0 {
		c.BackoffMax = DefaultBackoffMax
	}
	if c.MaxResponseBytes == 0 {
		c.MaxResponseBytes = DefaultMaxResponseBytes
	}
	if c.PageSize == 0 {
		c.PageSize = DefaultPageSize
	}
	if c.Window == 0 {
		c.Window = DefaultWindow
	}
	if c.ThrottleCodes == nil {
		c.ThrottleCodes = DefaultThrottleCodes
	}
	if c.HTTPClient == nil {
		c.HTTPClient = &http.Client{}
	}
	if c.Clock == nil {
		c.Clock = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

// Validate reports every problem of a config that cannot work. It never
// quotes the secret.
func (c *Config) Validate() error {
	var errs []error
	if u, err := url.Parse(c.BaseURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		errs = append(errs, fmt.Errorf("G7_API_BASE_URL: %q: must be an http or https URL with a host", c.BaseURL))
	}
	if c.Key == "" {
		errs = append(errs, errors.New("G7_API_KEY: not set: G7's API key is required"))
	}
	if c.Secret == "" {
		errs = append(errs, errors.New("G7_API_SECRET: not set: G7's API secret is required"))
	}
	if c.Rate <= 0 {
		errs = append(errs, fmt.Errorf("G7_API_RATE: %g: must be positive (requests per second)", c.Rate))
	}
	if c.Timeout <= 0 {
		errs = append(errs, fmt.Errorf("G7_API_TIMEOUT: %s: must be positive", c.Timeout))
	}
	if c.Backoff <= 0 || c.BackoffMax < c.Backoff {
		errs = append(errs, fmt.Errorf("G7_API_BACKOFF (%s) must be positive and G7_API_BACKOFF_MAX (%s) no less", c.Backoff, c.BackoffMax))
	}
	if c.MaxResponseBytes < 1024 {
		errs = append(errs, fmt.Errorf("G7_API_MAX_RESPONSE_BYTES: %d: must be at least 1024", c.MaxResponseBytes))
	}
	if c.PageSize < 1 {
		errs = append(errs, fmt.Errorf("g7api: PageSize %d: must be at least 1", c.PageSize))
	}
	if c.Window < time.Hour {
		errs = append(errs, fmt.Errorf("g7api: Window %s: must be at least an hour", c.Window))
	}
	if c.TimeInterval < 0 || c.TimeInterval%time.Second != 0 {
		errs = append(errs, fmt.Errorf("G7_API_TIME_INTERVAL: %s: must be 0 or whole seconds", c.TimeInterval))
	}
	return errors.Join(errs...)
}
