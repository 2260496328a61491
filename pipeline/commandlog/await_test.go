package commandlog_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/tmsfleet/tms/pipeline/commandlog"
)

// TestAwait: shown once the read model shows the command; not shown, and
// no error, once the timeout has passed (the command is accepted); the
// error when the read fails or the client goes away.
func TestAwait(t *testing.T) {
	t.Parallel()
	boom := errors.New("boom")
	gone, cancel := context.WithCancel(t.Context())
	cancel()
	for _, tc := range []struct {
		name      string
		ctx       context.Context
		shown     func(n int) (bool, error)
		wantShown bool
		wantErr   error
	}{
		{"shown at the third look", t.Context(), func(n int) (bool, error) { return n == 3, nil }, true, nil},
		{"never shown", t.Context(), func(int) (bool, error) { return false, nil }, false, nil},
		{"the read fails", t.Context(), func(int) (bool, error) { return false, boom }, false, boom},
		{"the client went away", gone, func(int) (bool, error) { return false, nil }, false, context.Canceled},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			n := 0
			shown, err := commandlog.Await(tc.ctx, 50*time.Millisecond, 5*time.Millisecond, func(wctx context.Context) (bool, error) {
				if _, ok := wctx.Deadline(); !ok {
					t.Error("shown is called without the wait's deadline")
				}
				n++
				return tc.shown(n)
			})
			if shown != tc.wantShown || !errors.Is(err, tc.wantErr) || (tc.wantErr == nil) != (err == nil) {
				t.Errorf("Await = %v, %v; want %v, %v", shown, err, tc.wantShown, tc.wantErr)
			}
		})
	}
}
