package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/tmsfleet/tms/domain/job"
)

// maxJobBody bounds a job request. The largest valid one, 50 stops and a
// 500-character description, takes under 16 KiB.
const maxJobBody = 64 << 10

// maxCancelBody bounds a cancellation: a reason of 500 characters.
const maxCancelBody = 8 << 10

// readJSONBody reads a request body that must be application/json, of at
// most limit bytes; what names the body in the errors.
func readJSONBody(c *gin.Context, limit int64, what string) ([]byte, error) {
	ct := c.GetHeader("Content-Type")
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil || mt != "application/json" {
		return nil, fmt.Errorf("%w: %q; send the %s as Content-Type: application/json", errUnsupportedMediaType, ct, what)
	}
	body, err := io.ReadAll(http.MaxBytesReader(c.Writer, c.Request.Body, limit))
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		return nil, fmt.Errorf("%w: a %s is at most %d bytes", errBodyTooLarge, what, limit)
	}
	if err != nil {
		return nil, fmt.Errorf("read the request body: %w", err)
	}
	return body, nil
}

// object is a JSON object being read field by field: every problem is
// collected under the field's JSON path, and fields the reader did not
// take are refused by name, so that a misspelt optional field is not
// silently ignored.
type object struct {
	path   string
	fields map[string]json.RawMessage
	taken  map[string]bool
	p      *params
}

// readObject reads raw as an object at path ("" for the body); nil, with
// the problem noted, if it is not one.
func readObject(p *params, path string, raw json.RawMessage) *object {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(raw, &fields); err != nil || fields == nil {
		name := path
		if name == "" {
			name = "body"
		}
		p.fail(name, "must be a JSON object")
		return nil
	}
	return &object{path: path, fields: fields, taken: map[string]bool{}, p: p}
}

func (o *object) name(field string) string {
	if o.path == "" {
		return field
	}
	return o.path + "." + field
}

// field returns a field's raw value; ok false when it is absent, or null
// and not required (null counts as absent). A required field that is
// absent or null is noted.
func (o *object) field(name string, required bool) (json.RawMessage, bool) {
	o.taken[name] = true
	raw, ok := o.fields[name]
	if ok && !bytes.Equal(bytes.TrimSpace(raw), []byte("null")) {
		return raw, true
	}
	if required {
		o.p.fail(o.name(name), "is required")
	}
	return nil, false
}

// decode reads a field into v (a string, number or bool), noting what it
// should have been when it is not.
func (o *object) decode(name string, required bool, v any, want string) bool {
	raw, ok := o.field(name, required)
	if !ok {
		return false
	}
	if err := json.Unmarshal(raw, v); err != nil {
		o.p.fail(o.name(name), "must be %s", want)
		return false
	}
	return true
}

// done refuses the fields nobody took, in a stable order.
func (o *object) done() {
	var unknown []string
	for name := range o.fields {
		if !o.taken[name] {
			unknown = append(unknown, name)
		}
	}
	slices.Sort(unknown)
	for _, name := range unknown {
		o.p.fail(o.name(name), "is not a field of this request")
	}
}

// parseJobRequest reads POST /api/v1/jobs's body: its shape (fields, their
// types, nothing unknown), every problem named by its JSON path. What the
// values must be (a known station, a loading stop first, a weight in
// range) is domain/job's to check, in the job commands.
func parseJobRequest(body []byte) (job.CreateRequest, error) {
	p := &params{}
	var r job.CreateRequest
	o := readObject(p, "", body)
	if o == nil {
		return r, p.err()
	}
	o.decode("vehicle", true, &r.Vehicle, "a string, the plate")
	o.decode("external_ref", false, &r.ExternalRef, "a string")
	o.decode("new_vehicle", false, &r.NewVehicle, "true or false")
	if raw, ok := o.field("cargo", true); ok {
		if cargo := readObject(p, "cargo", raw); cargo != nil {
			cargo.decode("weight_kg", true, &r.Cargo.WeightKg, "a number of kilograms")
			cargo.decode("description", false, &r.Cargo.Description, "a string")
			cargo.done()
		}
	}
	if raw, ok := o.field("stops", true); ok {
		var items []json.RawMessage
		if err := json.Unmarshal(raw, &items); err != nil || items == nil {
			p.fail("stops", "must be an array of stops")
		} else if len(items) > job.MaxStops {
			p.fail("stops", "at most %d stops", job.MaxStops)
		} else {
			r.Stops = make([]job.StopRequest, len(items))
			for i, item := range items {
				stop := readObject(p, "stops["+strconv.Itoa(i)+"]", item)
				if stop == nil {
					continue
				}
				s := &r.Stops[i]
				stop.decode("station_id", true, &s.StationID, "a string, a station id")
				stop.decode("kind", true, &s.Kind, "a string: loading, quality or unloading")
				var planned string
				if stop.decode("planned_arrival", false, &planned, "an RFC 3339 time") {
					if t, err := time.Parse(time.RFC3339, planned); err != nil {
						p.fail(stop.name("planned_arrival"), "%q is not an RFC 3339 time such as 2024-05-01T08:00:00+08:00", clip(planned))
					} else {
						s.PlannedArrival = &t
					}
				}
				stop.done()
			}
		}
	}
	o.done()
	return r, p.err()
}

// jobFieldErrors are a job request's errors as the problem lists them.
func jobFieldErrors(verr *job.ValidationError) []fieldError {
	out := make([]fieldError, len(verr.Fields))
	for i, f := range verr.Fields {
		out[i] = fieldError{Field: f.Field, Detail: f.Detail}
	}
	return out
}

// intrinsic adds to err, the problems of a request's shape, those of its
// values that need no read model (a plate's form, the weight, the stop
// kinds and order, the reference), as domain/job finds them, so that one
// 400 names every bad field; it leaves out the fields the shape's problems
// name already, and those inside them.
func intrinsic(err error, r job.CreateRequest) error {
	var inv *invalidError
	if !errors.As(err, &inv) || slices.ContainsFunc(inv.fields, func(f fieldError) bool { return f.Field == "body" }) {
		return err // not a job at all: nothing to say of its fields
	}
	// Every station named exists and the vehicle is known: what is left
	// is what is wrong whatever the read models hold.
	facts := job.Facts{VehicleKnown: true, Stations: map[string]job.Station{}}
	for _, s := range r.Stops {
		facts.Stations[s.StationID] = job.Station{ID: s.StationID}
	}
	_, derr := job.NewCreate(r, facts, time.Time{}, "")
	var verr *job.ValidationError
	if !errors.As(derr, &verr) {
		return err
	}
	out := &invalidError{fields: slices.Clone(inv.fields)}
	for _, f := range jobFieldErrors(verr) {
		covered := false
		for _, g := range inv.fields {
			if f.Field == g.Field || strings.HasPrefix(f.Field, g.Field+".") || strings.HasPrefix(f.Field, g.Field+"[") {
				covered = true
				break
			}
		}
		if !covered {
			out.fields = append(out.fields, f)
		}
	}
	return out
}

// parseCancel reads POST /api/v1/jobs/{id}/cancel's body: {"reason": ...}.
func parseCancel(body []byte) (string, error) {
	p := &params{}
	var reason string
	if o := readObject(p, "", body); o != nil {
		o.decode("reason", true, &reason, "a string")
		o.done()
	}
	return reason, p.err()
}
