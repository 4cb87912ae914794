package dlqhttp

import (
	"github.com/plexica/eventbus/deadletter"
	"github.com/plexica/eventbus/internal/redact"
)

// Redacted replaces every secret the API would otherwise show.
const Redacted = redact.Redacted

// redactEntry returns a copy of e fit to show: secrets in its original
// event, headers, failure reason, stack trace and attempt errors replaced
// by Redacted. Values under sensitive keys are hidden whole; free text (a
// malformed record's bytes, kept as a JSON string; any string inside an
// event; the failure texts; header values) is scrubbed by redact.Text. e, and
// the slices it shares with the DLQ's view, are not modified.
func redactEntry(e deadletter.Entry) deadletter.Entry {
	e.OriginalEvent = redact.JSON(e.OriginalEvent)
	e.OriginalHeaders = redactHeaders(e.OriginalHeaders)
	e.FailureReason = redact.Text(e.FailureReason)
	e.StackTrace = redact.Text(e.StackTrace)
	if e.Attempts != nil {
		attempts := make([]deadletter.Attempt, len(e.Attempts))
		for i, a := range e.Attempts {
			a.Error = redact.Text(a.Error)
			attempts[i] = a
		}
		e.Attempts = attempts
	}
	return e
}

// redactHeaders returns a copy of hs with the values of sensitive headers
// replaced by Redacted, and the other values scrubbed by redact.Text.
func redactHeaders(hs []deadletter.Header) []deadletter.Header {
	if hs == nil {
		return nil
	}
	out := make([]deadletter.Header, len(hs))
	for i, h := range hs {
		if redact.SensitiveKey(h.Key) {
			h.Value = redact.Redacted
		} else {
			h.Value = redact.Text(h.Value)
		}
		out[i] = h
	}
	return out
}
