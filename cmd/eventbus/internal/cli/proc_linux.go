package cli

import (
	"os/exec"
	"syscall"
)

// setChildAttrs puts a child broker in its own process group, so that a
// Ctrl-C in the terminal reaches only this process, which then cleans up
// on the broker before stopping it; and makes the kernel kill the child
// when this process dies without stopping it (SIGKILL, crash), so that no
// orphan keeps running. (Pdeathsig fires when the creating OS thread exits;
// the Go runtime does not end threads under goroutines not locked to them.)
func setChildAttrs(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
