package httpapi

import (
	"errors"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/tmsfleet/tms/domain/job"
	"github.com/tmsfleet/tms/pipeline/jobcmd"
)

// createJob serves POST /api/v1/jobs: 201 with Location and the job as
// the read model shows it, 200 with the job when the request repeats one
// (the same external reference and content), 202 when the read model did
// not show it in time; 400 naming every bad field, 409 when the external
// reference names a job of other content.
func (s *server) createJob(c *gin.Context) {
	body, err := readJSONBody(c, maxJobBody, "job")
	if err != nil {
		fail(c, err)
		return
	}
	req, err := parseJobRequest(body)
	if err != nil {
		fail(c, intrinsic(err, req))
		return
	}
	res, err := s.cfg.JobCommands.Create(c.Request.Context(), req)
	if err != nil {
		fail(c, err)
		return
	}
	switch {
	case res.Accepted || res.Job == nil:
		acceptedJob(c, res)
	case res.Created:
		c.Header("Location", jobLocation(res.JobID))
		writeJSON(c, http.StatusCreated, contentJSON, toJobJSON(res.Job))
	default:
		writeJSON(c, http.StatusOK, contentJSON, toJobJSON(res.Job))
	}
}

// cancelJob serves POST /api/v1/jobs/{id}/cancel: 200 with the job once
// the read model shows it cancelled, 202 when it did not in time; 404 for
// an unknown job, 409 for one that has ended (or whose every stop has
// departed: its completion stands).
func (s *server) cancelJob(c *gin.Context) {
	p := newParams(c.Request)
	id := p.jobID(c.Param("id"))
	body, err := readJSONBody(c, maxCancelBody, "cancellation")
	if err != nil {
		fail(c, err)
		return
	}
	reason, bodyErr := parseCancel(body)
	if bodyErr == nil && p.err() != nil {
		// The reason's problems too, in the same 400.
		var verr *job.ValidationError
		if _, err := job.NewCancel(id, "", reason, time.Time{}); errors.As(err, &verr) {
			bodyErr = &invalidError{fields: jobFieldErrors(verr)}
		}
	}
	if err := joinInvalid(p.err(), bodyErr); err != nil {
		fail(c, err)
		return
	}
	res, err := s.cfg.JobCommands.Cancel(c.Request.Context(), id, reason)
	if err != nil {
		fail(c, err)
		return
	}
	if res.Accepted || res.Job == nil {
		acceptedJob(c, res)
		return
	}
	writeJSON(c, http.StatusOK, contentJSON, toJobJSON(res.Job))
}

// jobAcceptedJSON answers a job command appended but not yet shown by
// the read model. EventID is null for a repeated create, which appended
// nothing.
type jobAcceptedJSON struct {
	Status  string  `json:"status"`
	JobID   string  `json:"job_id"`
	EventID *string `json:"event_id"`
}

func acceptedJob(c *gin.Context, res jobcmd.Result) {
	c.Header("Location", jobLocation(res.JobID))
	writeJSON(c, http.StatusAccepted, contentJSON, jobAcceptedJSON{Status: "accepted", JobID: res.JobID, EventID: nonEmpty(res.EventID)})
}
