// Package wire is the record format the bus shares with the original
// TypeScript @plexica/event-bus: the JSON event envelope carried in a record's
// value and the headers that let consumers filter without decoding it.
//
// The value is UTF-8 JSON:
//
//	{"id","type","tenantId","workspaceId"?,"timestamp","data",
//	 "metadata":{"source","userId"?,"correlationId","causationId"?,"version"}}
//
// Absent optional fields are omitted. The timestamp is written as
// JavaScript's Date.toISOString writes it (UTC, milliseconds, "Z"); any RFC
// 3339 time is accepted when reading.
//
// Most programs never need it: the bus encodes and decodes events itself.
// It is public for tools that read or write the topics with a Kafka client
// of their own (the eventbus command's benchmark builds its raw franz-go
// records with it) and as the written form of the format.
package wire

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Header names, in the order they are written on every record.
const (
	HeaderEventID       = "event-id"
	HeaderEventType     = "event-type"
	HeaderTenantID      = "tenant-id"
	HeaderWorkspaceID   = "workspace-id"
	HeaderCorrelationID = "correlation-id"
	HeaderTimestamp     = "timestamp"
)

// Retry headers: a retry of the dead letter queue re-publishes the
// original record with these to the failed group's own retry topic. Only
// the bus sets them; a caller's headers never may.
const (
	HeaderDLQID        = "dlq-id"
	HeaderRetryGroup   = "retry-group"
	HeaderRetryAttempt = "retry-attempt"
)

// IsRetryHeader reports whether key is one of the retry headers (with
// dlq-scheduler, the scheduler group whose owner sent the retry), or one
// that earlier versions of the bus put on retries (dlq-entry,
// dlq-signature, dlq-position): none is kept with an entry's headers.
func IsRetryHeader(key string) bool {
	switch key {
	case HeaderDLQID, HeaderRetryGroup, HeaderRetryAttempt, "dlq-scheduler", "dlq-entry", "dlq-signature", "dlq-position":
		return true
	}
	return false
}

// ReservedHeaders lists the headers the bus writes itself; caller-supplied
// headers with these names are refused so they can never replace them.
var ReservedHeaders = [...]string{
	HeaderEventID, HeaderEventType, HeaderTenantID,
	HeaderWorkspaceID, HeaderCorrelationID, HeaderTimestamp,
}

// IsReservedHeader reports whether key is one of ReservedHeaders.
func IsReservedHeader(key string) bool {
	for _, h := range ReservedHeaders {
		if h == key {
			return true
		}
	}
	return false
}

// ErrMalformed is wrapped by every Decode failure: the bytes are not an event.
var ErrMalformed = errors.New("malformed event")

// Envelope is one event as it travels on the wire, with its payload kept as
// raw JSON.
type Envelope struct {
	ID          string
	Type        string
	TenantID    string
	WorkspaceID string
	Timestamp   time.Time
	Data        json.RawMessage

	Source        string
	UserID        string
	CorrelationID string
	CausationID   string
	Version       string
}

// TimeLayout is JavaScript's Date.toISOString format.
const TimeLayout = "2006-01-02T15:04:05.000Z"

// FormatTime writes t as JavaScript's Date.toISOString does.
func FormatTime(t time.Time) string {
	return t.UTC().Format(TimeLayout)
}

// AppendTime appends FormatTime(t) to dst without allocating. Years
// outside 0–9999 fall back to the standard formatter.
func AppendTime(dst []byte, t time.Time) []byte {
	t = t.UTC()
	year, month, day := t.Date()
	if year < 0 || year > 9999 {
		return t.AppendFormat(dst, TimeLayout)
	}
	hour, min, sec := t.Clock()
	ms := t.Nanosecond() / 1e6
	return append(dst,
		byte('0'+year/1000), byte('0'+year/100%10), byte('0'+year/10%10), byte('0'+year%10), '-',
		byte('0'+int(month)/10), byte('0'+int(month)%10), '-',
		byte('0'+day/10), byte('0'+day%10), 'T',
		byte('0'+hour/10), byte('0'+hour%10), ':',
		byte('0'+min/10), byte('0'+min%10), ':',
		byte('0'+sec/10), byte('0'+sec%10), '.',
		byte('0'+ms/100), byte('0'+ms/10%10), byte('0'+ms%10), 'Z')
}

// TimeInRange reports whether t, in UTC, falls in years 0000-9999: what
// AppendTime writes as JavaScript's toISOString does, and so what an event
// may carry. Encoding refuses, and decoding rejects, any other time.
func TimeInRange(t time.Time) bool {
	y := t.UTC().Year()
	return y >= 0 && y <= 9999
}

// Size is an upper estimate of len(Append(nil, e)) when no string needs
// escaping, so a buffer of this capacity rarely grows.
func Size(e *Envelope) int {
	return 160 + len(TimeLayout) + len(e.Data) + len(e.ID) + len(e.Type) + len(e.TenantID) +
		len(e.WorkspaceID) + len(e.Source) + len(e.UserID) + len(e.CorrelationID) +
		len(e.CausationID) + len(e.Version)
}

// Append appends the JSON value of e to dst. Data must already be valid JSON;
// an empty Data is written as null.
func Append(dst []byte, e *Envelope) []byte {
	dst = append(dst, `{"id":`...)
	dst = appendString(dst, e.ID)
	dst = append(dst, `,"type":`...)
	dst = appendString(dst, e.Type)
	dst = append(dst, `,"tenantId":`...)
	dst = appendString(dst, e.TenantID)
	if e.WorkspaceID != "" {
		dst = append(dst, `,"workspaceId":`...)
		dst = appendString(dst, e.WorkspaceID)
	}
	dst = append(dst, `,"timestamp":"`...)
	dst = AppendTime(dst, e.Timestamp)
	dst = append(dst, `","data":`...)
	if len(e.Data) == 0 {
		dst = append(dst, "null"...)
	} else {
		dst = append(dst, e.Data...)
	}
	dst = append(dst, `,"metadata":{"source":`...)
	dst = appendString(dst, e.Source)
	if e.UserID != "" {
		dst = append(dst, `,"userId":`...)
		dst = appendString(dst, e.UserID)
	}
	dst = append(dst, `,"correlationId":`...)
	dst = appendString(dst, e.CorrelationID)
	if e.CausationID != "" {
		dst = append(dst, `,"causationId":`...)
		dst = appendString(dst, e.CausationID)
	}
	dst = append(dst, `,"version":`...)
	dst = appendString(dst, e.Version)
	dst = append(dst, "}}"...)
	return dst
}

// jsonEnvelope mirrors the wire JSON for decoding.
type jsonEnvelope struct {
	ID          string          `json:"id"`
	Type        string          `json:"type"`
	TenantID    string          `json:"tenantId"`
	WorkspaceID string          `json:"workspaceId,omitempty"`
	Timestamp   string          `json:"timestamp"`
	Data        json.RawMessage `json:"data"`
	Metadata    struct {
		Source        string `json:"source"`
		UserID        string `json:"userId,omitempty"`
		CorrelationID string `json:"correlationId"`
		CausationID   string `json:"causationId,omitempty"`
		Version       string `json:"version"`
	} `json:"metadata"`
}

// Decode parses a record value. It fails, wrapping ErrMalformed, when the
// value is not JSON or lacks the id, type, tenantId or timestamp an event
// always has.
func Decode(value []byte) (Envelope, error) {
	var j jsonEnvelope
	if err := json.Unmarshal(value, &j); err != nil {
		return Envelope{}, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	var missing []string
	if j.ID == "" {
		missing = append(missing, "id")
	}
	if j.Type == "" {
		missing = append(missing, "type")
	}
	if j.TenantID == "" {
		missing = append(missing, "tenantId")
	}
	if j.Timestamp == "" {
		missing = append(missing, "timestamp")
	}
	if len(missing) > 0 {
		return Envelope{}, fmt.Errorf("%w: missing %v", ErrMalformed, missing)
	}
	ts, err := time.Parse(time.RFC3339Nano, j.Timestamp)
	if err != nil {
		return Envelope{}, fmt.Errorf("%w: timestamp %q is not RFC 3339", ErrMalformed, j.Timestamp)
	}
	if !TimeInRange(ts) {
		return Envelope{}, fmt.Errorf("%w: timestamp %q is outside years 0000-9999 in UTC, which the wire format cannot carry", ErrMalformed, j.Timestamp)
	}
	data := j.Data
	if len(data) == 0 {
		data = json.RawMessage("null")
	}
	return Envelope{
		ID:            j.ID,
		Type:          j.Type,
		TenantID:      j.TenantID,
		WorkspaceID:   j.WorkspaceID,
		Timestamp:     ts,
		Data:          data,
		Source:        j.Metadata.Source,
		UserID:        j.Metadata.UserID,
		CorrelationID: j.Metadata.CorrelationID,
		CausationID:   j.Metadata.CausationID,
		Version:       j.Metadata.Version,
	}, nil
}

// AppendHeaders appends the bus's headers for e, in wire order, to dst.
// All six values share one allocation.
func AppendHeaders(dst []kgo.RecordHeader, e *Envelope) []kgo.RecordHeader {
	buf := make([]byte, 0, len(e.ID)+len(e.Type)+len(e.TenantID)+len(e.WorkspaceID)+len(e.CorrelationID)+len(TimeLayout))
	next := func(s string) []byte {
		start := len(buf)
		buf = append(buf, s...)
		return buf[start:len(buf):len(buf)]
	}
	id, typ, tenant, ws, corr := next(e.ID), next(e.Type), next(e.TenantID), next(e.WorkspaceID), next(e.CorrelationID)
	start := len(buf)
	buf = AppendTime(buf, e.Timestamp)
	return append(dst,
		kgo.RecordHeader{Key: HeaderEventID, Value: id},
		kgo.RecordHeader{Key: HeaderEventType, Value: typ},
		kgo.RecordHeader{Key: HeaderTenantID, Value: tenant},
		kgo.RecordHeader{Key: HeaderWorkspaceID, Value: ws},
		kgo.RecordHeader{Key: HeaderCorrelationID, Value: corr},
		kgo.RecordHeader{Key: HeaderTimestamp, Value: buf[start:len(buf):len(buf)]},
	)
}

// Scope is the tenant and workspace a record's headers name.
type Scope struct {
	TenantID    []byte
	WorkspaceID []byte
	// Known is false when the record has no tenant-id header (for example,
	// it was written by another producer); the value must then be decoded.
	Known bool
	// WorkspaceKnown is false when the record has no workspace-id header
	// (the bus always writes one, empty for no workspace): a workspace
	// filter must then be applied to the decoded event.
	WorkspaceKnown bool
}

// ScopeOf reads the tenant and workspace from a record's headers.
func ScopeOf(headers []kgo.RecordHeader) Scope {
	var s Scope
	for _, h := range headers {
		switch h.Key {
		case HeaderTenantID:
			s.TenantID, s.Known = h.Value, true
		case HeaderWorkspaceID:
			s.WorkspaceID, s.WorkspaceKnown = h.Value, true
		}
	}
	return s
}

// Matches reports whether the scope passes a tenant (and workspace) filter.
// An empty filter field matches anything, and so does a workspace filter
// on a record without a workspace-id header (the decoded event decides).
func (s Scope) Matches(tenantID, workspaceID string) bool {
	if tenantID != "" && string(s.TenantID) != tenantID {
		return false
	}
	if workspaceID != "" && s.WorkspaceKnown && string(s.WorkspaceID) != workspaceID {
		return false
	}
	return true
}

// Mismatch describes how the headers' scope disagrees with the decoded
// event e's tenantId and workspaceId, or returns "" when they agree (or
// the headers name no scope). A header that is absent is not compared;
// an empty workspace-id header means "no workspace".
func (s Scope) Mismatch(e *Envelope) string {
	if s.Known && string(s.TenantID) != e.TenantID {
		return fmt.Sprintf("the tenant-id header says %q but the event's tenantId is %q", s.TenantID, e.TenantID)
	}
	if s.WorkspaceKnown && string(s.WorkspaceID) != e.WorkspaceID {
		return fmt.Sprintf("the workspace-id header says %q but the event's workspaceId is %q", s.WorkspaceID, e.WorkspaceID)
	}
	return ""
}

// HeaderValue returns the value of the first header named key, and whether it
// was there.
func HeaderValue(headers []kgo.RecordHeader, key string) ([]byte, bool) {
	for _, h := range headers {
		if h.Key == key {
			return h.Value, true
		}
	}
	return nil, false
}

// EventIDOf names the event of a record that may not decode: its event-id
// header, else its position.
func EventIDOf(r *kgo.Record) string {
	if id, ok := HeaderValue(r.Headers, HeaderEventID); ok && len(id) > 0 {
		return string(id)
	}
	return fmt.Sprintf("%s/%d/%d", r.Topic, r.Partition, r.Offset)
}

// appendString appends s as a JSON string. Invalid UTF-8 is replaced with
// U+FFFD, as encoding/json does.
func appendString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		b := s[i]
		if b < utf8.RuneSelf {
			if b >= 0x20 && b != '"' && b != '\\' && b != '<' && b != '>' && b != '&' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch b {
			case '"', '\\':
				dst = append(dst, '\\', b)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, `\u00`...)
				dst = append(dst, hex[b>>4], hex[b&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\u202`...)
			dst = append(dst, hex[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

const hex = "0123456789abcdef"
