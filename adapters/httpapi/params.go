package httpapi

import (
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/tmsfleet/tms/domain/position"
	"github.com/tmsfleet/tms/domain/station"
	"github.com/tmsfleet/tms/projections/vehicles"
)

// params reads a request's parameters, collecting every problem instead
// of stopping at the first, so that one 400 names all the bad fields.
// Each getter returns a usable zero or default value on error; the
// handler checks err() before using any of them.
type params struct {
	values url.Values
	errs   []fieldError
}

func newParams(r *http.Request) *params {
	v, err := url.ParseQuery(r.URL.RawQuery)
	p := &params{values: v}
	if err != nil {
		// url.Values from URL.Query() would drop the bad pair silently.
		p.fail("query", "the query string is malformed: %v", err)
	}
	return p
}

func (p *params) fail(field, format string, args ...any) {
	p.errs = append(p.errs, fieldError{Field: field, Detail: fmt.Sprintf(format, args...)})
}

// err returns the collected problems as one *invalidError, or nil.
func (p *params) err() error {
	if len(p.errs) == 0 {
		return nil
	}
	return &invalidError{fields: p.errs}
}

// single returns a parameter that may be given at most once. A repeated
// one is an error rather than a silent pick of the first or the last.
func (p *params) single(name string) (string, bool) {
	vs, ok := p.values[name]
	if !ok {
		return "", false
	}
	if len(vs) > 1 {
		p.fail(name, "given %d times; give it at most once", len(vs))
		return "", false
	}
	return vs[0], true
}

// limit returns the page size: def when absent, else an integer in [1, max].
func (p *params) limit(def, max int) int {
	v, ok := p.single("limit")
	if !ok {
		return def
	}
	n, err := strconv.Atoi(strings.TrimSpace(v))
	switch {
	case err != nil:
		p.fail("limit", "%q is not an integer; want 1 to %d", v, max)
	case n < 1:
		p.fail("limit", "%d is less than 1", n)
	case n > max:
		p.fail("limit", "%d is more than the maximum, %d", n, max)
	default:
		return n
	}
	return def
}

// oneOf returns an enumerated parameter: def when absent.
func (p *params) oneOf(name, def string, allowed ...string) string {
	v, ok := p.single(name)
	if !ok {
		return def
	}
	for _, a := range allowed {
		if v == a {
			return v
		}
	}
	p.fail(name, "%q is not one of %s", v, strings.Join(allowed, ", "))
	return def
}

// time returns an RFC 3339 time parameter, or def when absent.
func (p *params) time(name string, def time.Time) (time.Time, bool) {
	v, ok := p.single(name)
	if !ok {
		return def, true
	}
	t, err := parseTime(v)
	if err != nil {
		p.fail(name, "%q is not an RFC 3339 time such as 2024-05-01T08:00:00+08:00", v)
		return def, false
	}
	return t, true
}

// parseTime reads an RFC 3339 time (fractional seconds optional). An
// unencoded "+08:00" offset reaches the server as " 08:00", since "+"
// means a space in a query string; it is read back as the "+" it was.
func parseTime(v string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339, v)
	if err != nil && strings.Contains(v, " ") {
		if t2, err2 := time.Parse(time.RFC3339, strings.ReplaceAll(v, " ", "+")); err2 == nil {
			return t2, nil
		}
	}
	return t, err
}

// plate normalises a plate from field the way ingest does, so a request
// finds the vehicle whatever the case of its Latin letters.
func (p *params) plate(field, raw string) string {
	plate, rej := position.NormalizePlate(field, raw)
	if rej != nil {
		p.fail(field, "%s", rej.Detail)
		return ""
	}
	return plate
}

// stationID checks a station id from field (a path or query parameter).
func (p *params) stationID(field, raw string) string {
	var verr *station.ValidationError
	if err := station.ValidateID(field, raw); errors.As(err, &verr) {
		for _, f := range verr.Fields {
			p.fail(f.Field, "%s", f.Detail)
		}
		return ""
	}
	return raw
}

// boolean returns an optional true/false parameter; nil when absent.
func (p *params) boolean(name string) *bool {
	v, ok := p.single(name)
	if !ok {
		return nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil || (v != "true" && v != "false") {
		p.fail(name, "%q is not true or false", v)
		return nil
	}
	return &b
}

// stationTypes returns the repeatable station type filter.
func (p *params) stationTypes() []string {
	var out []string
	for _, v := range p.values["type"] {
		if !slices.Contains(station.Types, v) {
			p.fail("type", "%q is not a station type; want one of %s", v, strings.Join(station.Types, ", "))
			continue
		}
		out = append(out, v)
	}
	return out
}

// search returns the plate search text, normalised as plates are
// (trimmed, Latin letters upper-cased, at most 16 letters, digits or
// '-'); "" when absent or blank, which searches nothing away.
func (p *params) search() string {
	v, ok := p.single("search")
	if !ok || strings.TrimSpace(v) == "" {
		return ""
	}
	return p.plate("search", v)
}

// plates returns the repeatable plate filter, normalised, at most max.
func (p *params) plates(max int) []string {
	vs := p.values["plate"]
	if len(vs) > max {
		p.fail("plate", "%d plates given; at most %d", len(vs), max)
		return nil
	}
	var out []string
	for _, v := range vs {
		if pl := p.plate("plate", v); pl != "" {
			out = append(out, pl)
		}
	}
	return out
}

// bbox returns the bbox filter, minLng,minLat,maxLng,maxLat in WGS84
// degrees; nil when absent. minLng > maxLng is a box across the
// antimeridian (from 170 to -170 is 20 degrees wide), so it is allowed;
// minLat > maxLat has no such reading and is an error.
func (p *params) bbox() *vehicles.BBox {
	v, ok := p.single("bbox")
	if !ok {
		return nil
	}
	parts := strings.Split(v, ",")
	if len(parts) != 4 {
		p.fail("bbox", "%q has %d numbers; want minLng,minLat,maxLng,maxLat", v, len(parts))
		return nil
	}
	var n [4]float64
	names := [4]string{"minLng", "minLat", "maxLng", "maxLat"}
	for i, s := range parts {
		f, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
		if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
			p.fail("bbox", "%s %q is not a finite number", names[i], s)
			return nil
		}
		n[i] = f
	}
	b := vehicles.BBox{MinLng: n[0], MinLat: n[1], MaxLng: n[2], MaxLat: n[3]}
	bad := len(p.errs)
	for i, lng := range []float64{b.MinLng, b.MaxLng} {
		if lng < -180 || lng > 180 {
			p.fail("bbox", "%s %v is outside [-180, 180]", names[2*i], lng)
		}
	}
	for i, lat := range []float64{b.MinLat, b.MaxLat} {
		if lat < -90 || lat > 90 {
			p.fail("bbox", "%s %v is outside [-90, 90]", names[2*i+1], lat)
		}
	}
	if len(p.errs) == bad && b.MinLat > b.MaxLat {
		p.fail("bbox", "minLat %v is above maxLat %v", b.MinLat, b.MaxLat)
	}
	if len(p.errs) > bad {
		return nil
	}
	return &b
}

// window reads a time window [from, to): to defaults to now, from to
// length before to, and from must be before to. ok says that both were
// read and are in order.
func (p *params) window(now time.Time, length time.Duration) (from, to time.Time, ok bool) {
	to, toOK := p.time("to", now)
	from, fromOK := p.time("from", to.Add(-length))
	if fromOK && toOK && !from.Before(to) {
		p.fail("from", "%s is not before to, %s", from.Format(time.RFC3339Nano), to.Format(time.RFC3339Nano))
		return from, to, false
	}
	return from, to, fromOK && toOK
}
