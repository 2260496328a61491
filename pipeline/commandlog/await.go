package commandlog

import (
	"context"
	"time"
)

// Await polls shown, with the wait's context, until it reports true, for
// up to timeout, its pauses growing to maxPause: (false, nil) when the
// timeout passed first, so that the command, which is in the topic, is
// answered as accepted; the read model will show it. An error of shown,
// or the end of ctx (the client went away), is returned.
func Await(ctx context.Context, timeout, maxPause time.Duration, shown func(wctx context.Context) (bool, error)) (bool, error) {
	wctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	err := Poll(wctx, maxPause, func() (bool, error) { return shown(wctx) })
	switch {
	case wctx.Err() != nil && ctx.Err() == nil:
		return false, nil
	case err != nil:
		return false, err
	}
	return true, nil
}

// Poll calls done with a growing pause, from 1 ms up to maxPause, until it
// reports true, fails, or ctx ends. A projector applies a record within a
// few milliseconds to a fraction of a second, so the first pauses are
// short; maxPause says what a longer wait may cost the database.
func Poll(ctx context.Context, maxPause time.Duration, done func() (bool, error)) error {
	pause := time.Millisecond
	for {
		ok, err := done()
		if err != nil || ok {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(pause):
		}
		pause = min(2*pause, maxPause)
	}
}
