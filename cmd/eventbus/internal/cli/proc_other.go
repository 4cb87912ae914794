//go:build !linux

package cli

import "os/exec"

// setChildAttrs does nothing here: only Linux can tie a child's life to its
// parent's. The bench stops its child broker on every way out it controls.
func setChildAttrs(*exec.Cmd) {}
