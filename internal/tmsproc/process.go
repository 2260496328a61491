package tmsproc

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"
)

// Process is one `tms serve` process started by Serve: a process of
// several sharing one deployment's topics and consumer groups, each with
// roles of its own, where Deployment runs one process with its API.
type Process struct {
	cmd    *exec.Cmd
	logs   *lockedBuffer
	exited chan struct{}
}

// Serve starts `tms serve` from binary with env (KEY=value, added to
// this process's environment; a later value of a key wins) and returns
// once it runs. It does not wait for readiness: a process without the api
// role serves no /readyz, so the caller waits on what it needs (the
// members of a consumer group, say). The test's cleanup kills it, and
// prints its output when the test failed.
func Serve(t testing.TB, binary string, env ...string) *Process {
	t.Helper()
	cmd := exec.Command(binary, "serve")
	cmd.Env = append(os.Environ(), env...)
	p := &Process{cmd: cmd, logs: &lockedBuffer{}, exited: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = p.logs, p.logs
	if err := cmd.Start(); err != nil {
		t.Fatalf("tmsproc: start tms serve: %v", err)
	}
	go func() { _ = cmd.Wait(); close(p.exited) }()
	t.Cleanup(func() {
		p.Kill()
		if t.Failed() {
			t.Logf("output of tms serve (pid %d):\n%s", cmd.Process.Pid, p.logs.String())
		}
	})
	return p
}

// Pid is the process's id, for reading its CPU time and memory in /proc.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Exited reports whether the process has ended, by itself or killed.
func (p *Process) Exited() bool {
	select {
	case <-p.exited:
		return true
	default:
		return false
	}
}

// Output is what the process wrote to stdout and stderr so far.
func (p *Process) Output() string { return p.logs.String() }

// Stop ends the process with SIGTERM and returns an error unless it
// exits cleanly within the stop timeout (then it is killed).
func (p *Process) Stop() error {
	if p.Exited() {
		return fmt.Errorf("tmsproc: tms serve (pid %d) had exited already:\n%s", p.Pid(), p.Output())
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		return fmt.Errorf("tmsproc: SIGTERM to tms: %w", err)
	}
	timer := time.NewTimer(stopTimeout)
	defer timer.Stop()
	select {
	case <-p.exited:
	case <-timer.C:
		_ = p.cmd.Process.Signal(syscall.SIGQUIT)
		<-p.exited
		return errors.New("tmsproc: tms did not stop within " + stopTimeout.String() + " of SIGTERM (its goroutines are in its output)")
	}
	if code := p.cmd.ProcessState.ExitCode(); code != 0 {
		return fmt.Errorf("tmsproc: tms exited with %d after SIGTERM:\n%s", code, p.Output())
	}
	return nil
}

// Kill ends the process with SIGKILL, if it still runs, and waits for it.
func (p *Process) Kill() {
	if p.Exited() {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.exited
}
