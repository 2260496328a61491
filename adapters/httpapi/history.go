package httpapi

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/gin-gonic/gin"
)

// History bounds what the analysts' endpoints may cost: simplified tracks
// (max_points on every track endpoint) and exports (docs/history.md).
type History struct {
	// MaxPoints is the largest max_points a track request may ask for.
	// Default 10,000.
	MaxPoints int
	// TrackBuffer is how many fixes one simplification holds at once
	// (about 32 bytes each): a longer window is simplified in bounded
	// memory, at the cost of a larger tolerance. Default 300,000, a month
	// of 10 s fixes; at least 4 x MaxPoints.
	TrackBuffer int
	// StopRadiusM and StopMin say what a stop is, which a simplified
	// track keeps whatever its tolerance: fixes that stay within
	// StopRadiusM of the first of them for StopMin. Defaults 50 m, 3 min.
	StopRadiusM float64
	StopMin     time.Duration
	// TrackTimeout bounds one simplified track, reading and simplifying
	// its whole window (Config.QueryTimeout bounds the other queries).
	// Default 60 s.
	TrackTimeout time.Duration
	// MaxTracks is how many simplified tracks this instance computes at
	// once; a request beyond them waits up to a second, then is answered
	// 429. Default 4.
	MaxTracks int
	// ExportMaxRange is the longest range (to - from) one export may
	// cover; a longer one is answered 400 naming from. Default 366 days:
	// a year, whatever the year.
	ExportMaxRange time.Duration
	// ExportMaxRows is the most rows one export may hold. A larger one is
	// answered 400 before anything is sent (the rows are counted first, in
	// the snapshot the export then streams). Default 10,000,000.
	ExportMaxRows int64
	// ExportTimeout bounds one export from its start. An export cut by it
	// ends without the last chunk of its body, so that the client reports
	// an incomplete transfer rather than taking a part for the whole.
	// Default 30 min.
	ExportTimeout time.Duration
	// ExportWriteTimeout is how long a client may take to accept each
	// chunk of an export: the HTTP write deadline, pushed forward as the
	// export streams. Default 60 s (cmd/ passes TMS_HTTP_WRITE_TIMEOUT).
	ExportWriteTimeout time.Duration
	// MaxExports is how many exports this instance streams at once (each
	// holds a database connection); one more is answered 429. Default 2.
	MaxExports int
}

func (h *History) setDefaults() {
	if h.MaxPoints == 0 {
		h.MaxPoints = 10_000
	}
	if h.TrackBuffer == 0 {
		h.TrackBuffer = max(300_000, 4*h.MaxPoints)
	}
	if h.StopRadiusM == 0 {
		h.StopRadiusM = 50
	}
	if h.StopMin == 0 {
		h.StopMin = 3 * time.Minute
	}
	if h.TrackTimeout == 0 {
		h.TrackTimeout = time.Minute
	}
	if h.MaxTracks == 0 {
		h.MaxTracks = 4
	}
	if h.ExportMaxRange == 0 {
		h.ExportMaxRange = 366 * 24 * time.Hour
	}
	if h.ExportMaxRows == 0 {
		h.ExportMaxRows = 10_000_000
	}
	if h.ExportTimeout == 0 {
		h.ExportTimeout = 30 * time.Minute
	}
	if h.ExportWriteTimeout == 0 {
		h.ExportWriteTimeout = time.Minute
	}
	if h.MaxExports == 0 {
		h.MaxExports = 2
	}
}

func (h *History) validate() []error {
	var errs []error
	if h.MaxPoints < 2 {
		errs = append(errs, fmt.Errorf("history: MaxPoints %d is less than 2", h.MaxPoints))
	}
	if h.TrackBuffer < 4*h.MaxPoints {
		errs = append(errs, fmt.Errorf("history: TrackBuffer %d is less than 4 x MaxPoints (%d)", h.TrackBuffer, 4*h.MaxPoints))
	}
	if h.StopRadiusM < 0 || math.IsNaN(h.StopRadiusM) || h.StopMin < 0 {
		errs = append(errs, errors.New("history: StopRadiusM and StopMin must not be negative"))
	}
	if h.ExportMaxRange < 0 {
		errs = append(errs, fmt.Errorf("history: ExportMaxRange %s is negative", h.ExportMaxRange))
	}
	if h.TrackTimeout < 0 || h.ExportTimeout < 0 || h.ExportWriteTimeout < 0 {
		errs = append(errs, errors.New("history: timeouts must be positive"))
	}
	if h.MaxTracks < 0 || h.MaxExports < 0 || h.ExportMaxRows < 0 {
		errs = append(errs, errors.New("history: MaxTracks, MaxExports and ExportMaxRows must be positive"))
	}
	return errs
}

// historyGoneError answers a request for history that retention has
// dropped whole.
type historyGoneError struct {
	from, to, keptFrom time.Time
}

func (e *historyGoneError) Error() string {
	return fmt.Sprintf("the positions history before %s has been dropped (TMS_POSITIONS_RETENTION); "+
		"the window %s to %s ends before it", e.keptFrom.UTC().Format(time.RFC3339),
		e.from.UTC().Format(time.RFC3339Nano), e.to.UTC().Format(time.RFC3339Nano))
}

// busyError answers a request over one of the instance's bounds on
// concurrent work (History.MaxTracks, History.MaxExports).
type busyError struct {
	what, setting string
	limit         int
	retryAfter    time.Duration
}

func (e *busyError) Error() string {
	return fmt.Sprintf("this instance computes at most %d %s at once (%s); retry after %d s",
		e.limit, e.what, e.setting, retryAfterSeconds(e.retryAfter))
}

// slots bounds concurrent work of one kind.
type slots chan struct{}

// acquire takes a slot, waiting up to wait; release gives it back. busy
// is returned when none came free in time.
func (s slots) acquire(ctx context.Context, wait time.Duration, busy *busyError) (release func(), err error) {
	take := func() func() { return func() { <-s } }
	select {
	case s <- struct{}{}:
		return take(), nil
	default:
	}
	if wait <= 0 {
		return nil, busy
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case s <- struct{}{}:
		return take(), nil
	case <-t.C:
		return nil, busy
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// historyWindow checks a window of positions history against retention:
// nil when some of it is kept, a historyGoneError when it ends before the
// history does. keptFrom is when the history starts, nil when retention
// has dropped nothing, or nothing of the window.
func (s *server) historyWindow(c *gin.Context, from, to time.Time) (keptFrom *time.Time, err error) {
	ctx, cancel := s.queryContext(c)
	defer cancel()
	kf, ok, err := s.cfg.Vehicles.HistoryFrom(ctx)
	if err != nil || !ok {
		return nil, err
	}
	if !to.After(kf) {
		return nil, &historyGoneError{from: from, to: to, keptFrom: kf}
	}
	if from.Before(kf) {
		kf = kf.UTC()
		return &kf, nil
	}
	return nil, nil
}
