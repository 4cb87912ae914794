package dlq

// Retry headers: a retry re-publishes the original record with these, and
// every subscription skips, before decoding, a retry meant for another
// group. Only the bus sets them; a caller's headers never may.
const (
	HeaderID      = "dlq-id"
	HeaderGroup   = "retry-group"
	HeaderAttempt = "retry-attempt"
	// HeaderEntry and HeaderSignature carry, with a signing key, the
	// retried entry and its HMAC (signing.go).
	HeaderEntry     = "dlq-entry"
	HeaderSignature = "dlq-signature"
	// HeaderPosition carries, without a signing key, where the entry
	// version the retry was sent as lies on its dlq.* topic
	// ("<partition>:<offset>").
	HeaderPosition = "dlq-position"
)

// IsRetryHeader reports whether key is one of the retry headers.
func IsRetryHeader(key string) bool {
	switch key {
	case HeaderID, HeaderGroup, HeaderAttempt, HeaderEntry, HeaderSignature, HeaderPosition:
		return true
	}
	return false
}
