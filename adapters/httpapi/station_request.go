package httpapi

import (
	"errors"
	"net/http"
	"strconv"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/tmsfleet/tms/domain/station"
	"github.com/tmsfleet/tms/pipeline/stationcmd"
)

// maxStationBody bounds a station definition. The largest valid one, a
// shape of station.MaxPointsCeiling positions, takes well under 1 MiB.
const maxStationBody = 2 << 20

// Errors of request bodies, mapped in problem.go.
var (
	errUnsupportedMediaType = errors.New("unsupported media type")
	errBodyTooLarge         = errors.New("request body too large")
)

// readStation reads and validates a station definition from the request
// body: application/json, at most maxStationBody bytes, parsed by the
// station commands (under their rules).
func (s *server) readStation(c *gin.Context) (*station.Station, error) {
	body, err := readJSONBody(c, maxStationBody, "station definition")
	if err != nil {
		return nil, err
	}
	return s.cfg.StationCommands.Parse(body)
}

// condition reads a write's preconditions: If-Match (a list of ETags, or
// *) and If-None-Match (only *, create-only, is meaningful on a write).
// A station's ETag is its version in quotes; a weak ETag (W/"3") never
// matches, since If-Match compares strongly, and neither does a
// well-formed ETag that is not a version.
func condition(r *http.Request) (station.Condition, error) {
	p := &params{}
	var cond station.Condition
	if values := r.Header.Values("If-Match"); len(values) > 0 {
		list := strings.TrimSpace(strings.Join(values, ","))
		if list == "*" {
			cond.IfMatchAny = true
		} else {
			cond.IfMatch = []int64{}
			for _, tag := range strings.Split(list, ",") {
				tag = strings.TrimSpace(tag)
				weak := strings.HasPrefix(tag, "W/")
				opaque := strings.TrimPrefix(tag, "W/")
				if len(opaque) < 2 || opaque[0] != '"' || opaque[len(opaque)-1] != '"' || strings.Contains(opaque[1:len(opaque)-1], `"`) {
					p.fail("If-Match", "%q is not an entity tag; send the ETag you read, e.g. \"3\", or *", tag)
					continue
				}
				if v, err := strconv.ParseInt(opaque[1:len(opaque)-1], 10, 64); err == nil && !weak {
					cond.IfMatch = append(cond.IfMatch, v)
				}
			}
		}
	}
	if values := r.Header.Values("If-None-Match"); len(values) > 0 {
		if strings.TrimSpace(strings.Join(values, ",")) == "*" {
			cond.IfNoneMatchAny = true
		} else {
			p.fail("If-None-Match", "only * (create only) is supported on writes")
		}
	}
	return cond, p.err()
}

// joinInvalid merges validation errors (of parameters, headers and a
// station body) into one *invalidError, so that one 400 names every bad
// field. Any other error wins as it is: a body that cannot be read at all
// says nothing about its fields.
func joinInvalid(errs ...error) error {
	var out invalidError
	for _, e := range errs {
		var inv *invalidError
		var verr *station.ValidationError
		switch {
		case e == nil:
		case errors.As(e, &inv):
			out.fields = append(out.fields, inv.fields...)
		case errors.As(e, &verr):
			out.fields = append(out.fields, fieldErrors(verr)...)
		default:
			return e
		}
	}
	if len(out.fields) == 0 {
		return nil
	}
	return &out
}

// fieldErrors are a station body's errors as the problem lists them.
func fieldErrors(verr *station.ValidationError) []fieldError {
	out := make([]fieldError, len(verr.Fields))
	for i, f := range verr.Fields {
		out[i] = fieldError{Field: f.Field, Detail: f.Detail}
	}
	return out
}

// acceptedJSON answers a write whose event is appended but not yet shown
// by the read model.
type acceptedJSON struct {
	Status    string `json:"status"`
	EventID   string `json:"event_id"`
	StationID string `json:"station_id"`
	Version   int64  `json:"version"`
}

// answerWrite answers a create or put: 201 with Location for a station
// that did not exist, 200 otherwise, with the stored station and its
// ETag; or 202 with the event id when the read model did not show it in
// time.
func answerWrite(c *gin.Context, res stationcmd.Result) {
	if res.Accepted || res.Station == nil {
		// (A station deleted by a later command before this one could be
		// shown is answered the same way: its event is in.)
		accepted(c, res)
		return
	}
	status := http.StatusOK
	if res.Created {
		status = http.StatusCreated
		c.Header("Location", stationLocation(res.StationID))
	}
	c.Header("ETag", etag(res.Station.Version))
	writeJSON(c, status, contentJSON, toStationJSON(res.Station))
}

func accepted(c *gin.Context, res stationcmd.Result) {
	c.Header("Location", stationLocation(res.StationID))
	writeJSON(c, http.StatusAccepted, contentJSON, acceptedJSON{
		Status: "accepted", EventID: res.EventID, StationID: res.StationID, Version: res.Version,
	})
}
