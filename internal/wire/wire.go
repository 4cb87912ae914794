// Package wire forwards to the public package
// github.com/plexica/eventbus/wire, the record format, for the internal
// packages that still import it by this path.
package wire

import (
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/plexica/eventbus/wire"
)

// Header names; see the public package.
const (
	HeaderEventID       = wire.HeaderEventID
	HeaderEventType     = wire.HeaderEventType
	HeaderTenantID      = wire.HeaderTenantID
	HeaderWorkspaceID   = wire.HeaderWorkspaceID
	HeaderCorrelationID = wire.HeaderCorrelationID
	HeaderTimestamp     = wire.HeaderTimestamp
	HeaderDLQID         = wire.HeaderDLQID
	HeaderRetryGroup    = wire.HeaderRetryGroup
	HeaderRetryAttempt  = wire.HeaderRetryAttempt
	HeaderDLQEntry      = wire.HeaderDLQEntry
	HeaderDLQSignature  = wire.HeaderDLQSignature
	HeaderDLQPosition   = wire.HeaderDLQPosition
	TimeLayout          = wire.TimeLayout
)

// ErrMalformed is wire.ErrMalformed.
var ErrMalformed = wire.ErrMalformed

// ReservedHeaders is wire.ReservedHeaders.
var ReservedHeaders = wire.ReservedHeaders

// Envelope is wire.Envelope.
type Envelope = wire.Envelope

// Scope is wire.Scope.
type Scope = wire.Scope

// Append is wire.Append.
func Append(dst []byte, e *Envelope) []byte { return wire.Append(dst, e) }

// AppendHeaders is wire.AppendHeaders.
func AppendHeaders(dst []kgo.RecordHeader, e *Envelope) []kgo.RecordHeader {
	return wire.AppendHeaders(dst, e)
}

// AppendTime is wire.AppendTime.
func AppendTime(dst []byte, t time.Time) []byte { return wire.AppendTime(dst, t) }

// EventIDOf is wire.EventIDOf.
func EventIDOf(r *kgo.Record) string { return wire.EventIDOf(r) }

// FormatTime is wire.FormatTime.
func FormatTime(t time.Time) string { return wire.FormatTime(t) }

// HeaderValue is wire.HeaderValue.
func HeaderValue(headers []kgo.RecordHeader, key string) ([]byte, bool) {
	return wire.HeaderValue(headers, key)
}

// IsReservedHeader is wire.IsReservedHeader.
func IsReservedHeader(key string) bool { return wire.IsReservedHeader(key) }

// IsRetryHeader is wire.IsRetryHeader.
func IsRetryHeader(key string) bool { return wire.IsRetryHeader(key) }

// Size is wire.Size.
func Size(e *Envelope) int { return wire.Size(e) }

// TimeInRange is wire.TimeInRange.
func TimeInRange(t time.Time) bool { return wire.TimeInRange(t) }

// Decode is wire.Decode.
func Decode(value []byte) (Envelope, error) { return wire.Decode(value) }

// ScopeOf is wire.ScopeOf.
func ScopeOf(headers []kgo.RecordHeader) Scope { return wire.ScopeOf(headers) }
