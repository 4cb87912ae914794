//go:build !linux

package cli

import (
	"errors"
	"os/exec"
)

// setChildAttrs does nothing here: only Linux can tie a child's life to its
// parent's. The bench stops its child broker on every way out it controls.
func setChildAttrs(*exec.Cmd) {}

// errNoRSS: reading another process's memory is done from /proc, on Linux.
var errNoRSS = errors.New("reading a process's resident memory needs Linux (/proc)")

// processRSS is not available here.
func processRSS(int) (int64, error) { return 0, errNoRSS }
