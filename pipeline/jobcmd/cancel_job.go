package jobcmd

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tmsfleet/tms/domain/job"
	"github.com/tmsfleet/tms/projections/jobs"
)

// Cancel cancels job id (a UUID in its canonical form) for reason; see
// the package doc. Errors: a *job.ValidationError for a reason that says
// nothing or too much, job.ErrNotFound, job.ErrFinished, ErrUnavailable.
func (c *Commands) Cancel(ctx context.Context, id, reason string) (res Result, err error) {
	start := time.Now()
	defer func() { c.observe("cancel", res, err, time.Since(start)) }()
	if _, err := job.NewCancel(id, "", reason, time.Time{}); err != nil {
		return Result{}, err
	}
	var cmd job.Cancel
	err = c.commands.Decide(ctx, id, func(_ context.Context, q pgx.Tx) error {
		vehicle, err := c.cancellable(ctx, q, id)
		if err != nil {
			return err
		}
		// The command's time is taken under the lock, so that the times
		// of one job's commands follow their order.
		if cmd, err = job.NewCancel(id, vehicle, reason, c.cfg.Now()); err != nil {
			return err
		}
		e, err := cmd.Event()
		if err != nil {
			return fmt.Errorf("jobcmd: %w", err)
		}
		return c.commands.Append(ctx, vehicle, e)
	})
	if err != nil {
		return Result{}, err
	}
	e, _ := cmd.Event() // encoded once already
	return c.show(ctx, Result{JobID: id, EventID: e.ID}, func(j *jobs.Job) (bool, error) {
		switch {
		case j.Status == job.StatusCancelled:
			return true, nil
		case j.Finished():
			// Every stop had departed by the cancellation's time.
			return false, fmt.Errorf("%w: job %s ended before it could be cancelled; its completion stands", job.ErrFinished, id)
		}
		return false, nil
	})
}

// cancellable returns the vehicle of job id if the job can be cancelled:
// the read model holds it, not ended; or holds only its create command,
// which the job processor has not applied yet (it will apply the
// cancellation after it).
func (c *Commands) cancellable(ctx context.Context, q jobs.Querier, id string) (string, error) {
	j, err := jobs.Get(ctx, q, id)
	switch {
	case err == nil && j.Finished():
		what := "was " + j.Status
		if j.Status != job.StatusCompleted && j.Status != job.StatusCancelled {
			what = "has departed every stop (its completion is settling, and stands)"
		}
		return "", fmt.Errorf("%w: job %s %s", job.ErrFinished, id, what)
	case err == nil:
		return j.Vehicle, nil
	case !errors.Is(err, jobs.ErrNotFound):
		return "", err
	}
	req, err := jobs.Request(ctx, q, id)
	if err != nil {
		return "", err // wraps ErrNotFound for a job never created
	}
	return req.Vehicle, nil
}
