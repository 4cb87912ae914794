package eventbustest

import (
	"bytes"
	"sync"
)

// LogBuffer collects what a logger or a command writes while a test reads
// it: a bytes.Buffer safe for concurrent writes and reads. Give it to
// slog.NewTextHandler to watch a bus's logs.
type LogBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

// Write appends p.
func (b *LogBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// String returns everything written so far.
func (b *LogBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
