package httpapi

import (
	"context"
	"errors"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/tmsfleet/tms/domain/simplify"
	"github.com/tmsfleet/tms/projections/vehicles"
)

// Simplified tracks: every track endpoint takes max_points (GET
// /vehicles/{plate}/track, /jobs/{id}/track and /trips/{id}/track): each
// parses it with params.maxPoints, answers it with server.simplify, and
// adds simplificationJSON to the answer.

// simplificationJSON says what a simplified track stands for.
type simplificationJSON struct {
	// MaxPoints is what was asked for; Points what came back.
	MaxPoints int `json:"max_points"`
	Points    int `json:"points"`
	// Fixes is how many fixes of the window the points stand for.
	Fixes int64 `json:"fixes"`
	// ToleranceM bounds the distance of every one of those fixes from
	// the line through the points (0 when every fix is a point).
	ToleranceM float64 `json:"tolerance_m"`
	// Stops and StationEntriesExits are how many of each the window held:
	// each stop's first and last fix and the fixes at each station entry
	// and exit are points whatever the tolerance.
	Stops               int `json:"stops"`
	StationEntriesExits int `json:"station_entries_exits"`
}

// simplifiedTrack is a track reduced to at most max_points of its fixes.
type simplifiedTrack struct {
	fixes []vehicles.Fix
	info  simplificationJSON
}

// maxPoints reads max_points: 0 when absent, else an integer in
// [2, max]. A simplified track is one answer, so it excludes the paging
// parameters.
func (p *params) maxPoints(max int) int {
	v, ok := p.single("max_points")
	if !ok {
		return 0
	}
	n, err := strconv.Atoi(strings.TrimSpace(v))
	switch {
	case err != nil:
		p.fail("max_points", "%q is not an integer; want 2 to %d", v, max)
		return 0
	case n < 2:
		p.fail("max_points", "%d is less than 2", n)
		return 0
	case n > max:
		p.fail("max_points", "%d is more than the maximum, %d (TMS_TRACK_MAX_POINTS)", n, max)
		return 0
	}
	for _, paging := range []string{"limit", "cursor"} {
		if _, given := p.values[paging]; given {
			p.fail("max_points", "a simplified track comes whole: give max_points without %s", paging)
		}
	}
	return n
}

// simplify reads plate's fixes in [from, to) as a stream and reduces them
// to at most maxPoints (domain/simplify), keeping each stop and the
// fixes at each of the vehicle's station entries and exits in the
// window, then reads the kept fixes whole. Its cost is bounded: at most
// History.MaxTracks run at once, each in History.TrackBuffer fixes of
// memory and History.TrackTimeout of time.
func (s *server) simplify(c *gin.Context, plate string, from, to time.Time, maxPoints int) (simplifiedTrack, error) {
	h := s.cfg.History
	release, err := s.tracks.acquire(c.Request.Context(), time.Second, &busyError{
		what: "simplified tracks", setting: "TMS_TRACK_MAX_CONCURRENT", limit: h.MaxTracks, retryAfter: time.Second})
	if err != nil {
		return simplifiedTrack{}, err
	}
	defer release()
	// The window may be long: the answer's write deadline moves past the
	// time it may take (the server's counts from the request).
	rc := http.NewResponseController(c.Writer)
	if err := rc.SetWriteDeadline(time.Now().Add(h.TrackTimeout + h.ExportWriteTimeout)); err != nil && !errors.Is(err, http.ErrNotSupported) {
		s.log.WarnContext(c.Request.Context(), "cannot move the write deadline of a simplified track", "err", err)
	}
	ctx, cancel := context.WithTimeout(c.Request.Context(), h.TrackTimeout)
	defer cancel()

	bounds, err := s.cfg.Visits.Boundaries(ctx, plate, from, to, maxPoints+1)
	if err != nil {
		return simplifiedTrack{}, err
	}
	micros := make([]int64, len(bounds))
	for i, b := range bounds {
		micros[i] = b.UnixMicro()
	}
	sim, err := simplify.New(simplify.Config{MaxPoints: maxPoints, Buffer: h.TrackBuffer,
		StopRadiusM: h.StopRadiusM, StopMin: h.StopMin, Boundaries: micros})
	if err != nil {
		return simplifiedTrack{}, err
	}
	err = s.scanTrack(ctx, plate, from, to, func(f vehicles.Sample) error {
		return sim.Add(simplify.Point{UnixMicro: f.UnixMicro, Lat: f.Lat, Lng: f.Lng})
	})
	var r simplify.Result
	if err == nil {
		r, err = sim.Result()
	}
	if tooMany := (*simplify.TooManyKeptError)(nil); errors.As(err, &tooMany) {
		p := &params{}
		p.fail("max_points", "the window holds more than %d stops, station entries and exits and its ends, each kept "+
			"as a point whatever the tolerance: ask for more points (up to %d) or a shorter window", maxPoints, h.MaxPoints)
		return simplifiedTrack{}, p.err()
	}
	if err != nil {
		return simplifiedTrack{}, err
	}
	times := make([]time.Time, len(r.Points))
	for i, k := range r.Points {
		times[i] = time.UnixMicro(k.UnixMicro)
	}
	fixes, err := s.cfg.Vehicles.FixesAt(ctx, plate, from, to, times)
	if err != nil {
		return simplifiedTrack{}, err
	}
	return simplifiedTrack{fixes: fixes, info: simplificationJSON{
		MaxPoints: maxPoints, Points: len(fixes), Fixes: r.Fixes, ToleranceM: round2(r.ToleranceM),
		Stops: r.Stops, StationEntriesExits: r.Boundaries,
	}}, nil
}

// splitScanFrom is the shortest window a simplified track reads in two
// halves side by side; scanChunk is how many samples the second half
// hands over at a time.
const (
	splitScanFrom = 48 * time.Hour
	scanChunk     = 4096
)

// scanTrack calls add with each of plate's fixes in [from, to), in
// fix-time order. A window of splitScanFrom or longer is read by two
// queries side by side: the second half on a connection of its own while
// the first is read and added here. A long scan is bound by the CPU of
// the one Postgres backend that runs it (a vehicle-month of 10 s fixes is
// 268,000 index tuples), so two halves take about half as long on two
// cores. The second half waits in chunks of at most History.TrackBuffer/2
// samples (its query waits when they are full), so memory stays bounded
// whatever the window; its connection comes from the API's pool, which
// cmd/tms sizes to hold two per simplified track.
func (s *server) scanTrack(ctx context.Context, plate string, from, to time.Time, add func(vehicles.Sample) error) error {
	if to.Sub(from) < splitScanFrom {
		return s.cfg.Vehicles.ScanTrack(ctx, plate, from, to, add)
	}
	mid := from.Add(to.Sub(from) / 2).Truncate(time.Microsecond)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	chunks := make(chan []vehicles.Sample, max(1, s.cfg.History.TrackBuffer/2/scanChunk))
	second := make(chan error, 1)
	go func() {
		defer close(chunks)
		send := func(chunk []vehicles.Sample) error {
			select {
			case chunks <- chunk:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		chunk := make([]vehicles.Sample, 0, scanChunk)
		err := s.cfg.Vehicles.ScanTrack(ctx, plate, mid, to, func(f vehicles.Sample) error {
			if chunk = append(chunk, f); len(chunk) < scanChunk {
				return nil
			}
			err := send(chunk)
			chunk = make([]vehicles.Sample, 0, scanChunk)
			return err
		})
		if err == nil && len(chunk) > 0 {
			err = send(chunk)
		}
		second <- err
	}()
	err := s.cfg.Vehicles.ScanTrack(ctx, plate, from, mid, add)
	if err != nil {
		cancel()
	}
	for chunk := range chunks {
		for i := 0; err == nil && i < len(chunk); i++ {
			err = add(chunk[i])
		}
		if err != nil {
			cancel() // the second half stops; its chunks are drained
		}
	}
	if err2 := <-second; err == nil {
		err = err2
	}
	return err
}

// round2 rounds metres up to the centimetre: a tolerance is a bound, and
// must stay one once rounded.
func round2(v float64) float64 {
	r := math.Ceil(v*100) / 100
	if r < v {
		r += 0.01
	}
	return r
}
