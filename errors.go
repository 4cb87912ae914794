package eventbus

import (
	"errors"
	"fmt"

	"github.com/plexica/eventbus/internal/errs"
	"github.com/plexica/eventbus/topic"
)

// Sentinel errors. Every error the bus returns for one of these conditions
// wraps the sentinel with the detail (what was wrong and how to fix it), so
// callers test with errors.Is:
//
//	if errors.Is(err, eventbus.ErrTenantRequired) { ... }
var (
	// ErrInvalidTopic: a topic or event type breaks the naming rules
	// (core.<domain>.<action>, plugin.<pluginId>.<entity>.<action>,
	// dlq.<topic>; lowercase; past-tense actions). The message names the
	// rule and shows a valid example. Nothing was sent.
	ErrInvalidTopic = topic.ErrInvalidTopic

	// ErrInvalidPluginID: a plugin ID is not kebab-case ([a-z0-9]+(-[a-z0-9]+)*).
	ErrInvalidPluginID = topic.ErrInvalidPluginID

	// ErrTenantRequired: an event was published without a tenant ID, or a
	// plugin client or host was given an empty tenant. Every event belongs
	// to a tenant. Nothing was sent.
	ErrTenantRequired = errors.New("tenant ID required")

	// ErrInvalidTenantID: a tenant ID has characters or a length that
	// tenant IDs may not have (see ValidateTenantID): 1 to 128 ASCII
	// letters, digits, '-' and '_'. A tenant ID names consumer groups,
	// which a dot would make ambiguous. The message says what is wrong
	// and shows a valid ID.
	ErrInvalidTenantID = errors.New("invalid tenant ID")

	// ErrInvalidWorkspaceID: a workspace ID breaks the same rule as
	// ErrInvalidTenantID describes (see ValidateWorkspaceID).
	ErrInvalidWorkspaceID = errors.New("invalid workspace ID")

	// ErrEventTooLarge: an event takes more than Config.MaxEventBytes
	// (1,000,000 bytes by default) as a broker measures it — the record
	// batch that would carry it alone, uncompressed: value, key, headers
	// (the trace context included) and their framing. Nothing was sent.
	// It also wraps a broker's MESSAGE_TOO_LARGE or RECORD_LIST_TOO_LARGE
	// for one event (the topic's max.message.bytes is below
	// Config.MaxEventBytes). Never counts toward the circuit breaker.
	ErrEventTooLarge = errors.New("event too large")

	// ErrBatchTooLarge: PublishBatch was given more than MaxBatchSize (100)
	// events. Nothing was sent; split the batch.
	ErrBatchTooLarge = errors.New("batch too large")

	// ErrInvalidEvent: an event's payload or options cannot be published
	// (for example the data does not encode to JSON, or a caller header
	// tries to replace one the bus writes). Nothing was sent. It also wraps
	// a broker's rejection of one event for a topic setting it breaks
	// (INVALID_RECORD, INVALID_TIMESTAMP, ...). Never counts toward the
	// circuit breaker.
	ErrInvalidEvent = errors.New("invalid event")

	// ErrCircuitOpen: the publish circuit breaker is open after repeated
	// publishes failed with ErrBrokerUnavailable; Publish fails fast until
	// it half-opens (Config.Breaker.OpenTimeout, 60 s by default).
	ErrCircuitOpen = errors.New("circuit breaker open")

	// ErrShuttingDown: the bus (or client) was shut down; no more publishing
	// or subscribing (a running handler may still publish while Shutdown
	// waits for it). An event in flight when Shutdown's ctx ended fails
	// with it too, with a message saying the brokers had not acknowledged
	// it: it may or may not have been written.
	ErrShuttingDown = errors.New("event bus shutting down")

	// ErrDuplicateSubscription: the same topic was subscribed twice in one
	// consumer group of this process. Use another GroupID, or one handler.
	ErrDuplicateSubscription = errors.New("duplicate subscription")

	// ErrSubscriptionNotFound: Unsubscribe was given an unknown ID.
	ErrSubscriptionNotFound = errors.New("subscription not found")

	// ErrNotConnected: the client has not connected (call Connect) or was closed.
	ErrNotConnected = errors.New("client not connected")

	// ErrBrokerUnavailable: no broker answered in time (the message names
	// the brokers that were tried), the brokers did not acknowledge a
	// publish (or create its topic) within Config.DeliveryTimeout, could
	// not be reached, or answered that they cannot take writes now (no
	// leader, not enough in-sync replicas). It is the only failure the
	// circuit breaker counts. A caller's own expired context stays
	// context.DeadlineExceeded.
	ErrBrokerUnavailable = errs.BrokerUnavailable

	// ErrAuthenticationFailed: a broker rejected the SASL credentials of
	// ClientConfig.SASL (user name, password, or a mechanism it does not
	// have for that user). Connect returns it at once, in a *ConnectError,
	// instead of retrying until ConnectTimeout.
	ErrAuthenticationFailed = errors.New("SASL authentication failed")

	// ErrTLSHandshake: the TLS handshake with a broker failed: its
	// certificate is not trusted by ClientConfig.TLS (unknown CA, another
	// host name, expired), the broker refused the client's certificate, or
	// it does not speak TLS. Connect returns it at once, in a *ConnectError
	// that also wraps the crypto/tls or crypto/x509 error.
	ErrTLSHandshake = errors.New("TLS handshake failed")

	// ErrInvalidConfig: a configuration value is missing, out of range or
	// conflicts with another. Returned by constructors.
	ErrInvalidConfig = errs.InvalidConfig

	// ErrPluginScope: a PluginClient or PluginHost was asked to step
	// outside its plugin or its tenants — publish a core.*, dlq.* or
	// another plugin's event, or act for a tenant or workspace it does not
	// serve. Nothing was sent. The message says what to do instead.
	ErrPluginScope = errors.New("outside the plugin's scope")

	// ErrHostClosed: PluginHost.Close ran while PluginHost.FollowLifecycle
	// was starting or catching up; the host does not follow the
	// lifecycle. Call FollowLifecycle again to follow it.
	ErrHostClosed = errors.New("plugin host closed")

	// ErrResultNotPublished: a function wrapped by WithPublish succeeded —
	// its side effects happened — but its result could not be published.
	// The error also wraps the cause (ErrCircuitOpen, ErrEventTooLarge, a
	// broker error, ...). The caller decides: retry the publish,
	// compensate, or fail.
	ErrResultNotPublished = errors.New("result not published")
)

// ConnectError is what Client.Connect returns when retrying cannot help.
// It wraps both Reason and Err:
//
//	var ua x509.UnknownAuthorityError
//	if errors.Is(err, eventbus.ErrTLSHandshake) && errors.As(err, &ua) { ... }
type ConnectError struct {
	// Broker is the address, "host:port", of the broker that failed.
	Broker string
	// Reason is ErrAuthenticationFailed (the broker rejected the
	// credentials), ErrTLSHandshake, or ErrBrokerUnavailable (the brokers
	// closed every connection at once, which usually means TLS or SASL is
	// missing).
	Reason error
	// Err is the cause: a kerr error (kerr.SaslAuthenticationFailed), the
	// connection closed during authentication (io.EOF), a crypto/tls or
	// crypto/x509 error, or a *kgo.ErrFirstReadEOF.
	Err error
}

// Error says which broker refused the connection, why, and what to fix.
func (e *ConnectError) Error() string {
	switch e.Reason {
	case ErrAuthenticationFailed:
		return fmt.Sprintf("%v at %s: %v; check ClientConfig.SASL (mechanism, user name and password)", e.Reason, e.Broker, e.Err)
	case ErrTLSHandshake:
		return fmt.Sprintf("%v with %s: %v; check ClientConfig.TLS (RootCAs, ServerName, Certificates)", e.Reason, e.Broker, e.Err)
	default:
		return fmt.Sprintf("%v: %s closed every connection at once: %v", e.Reason, e.Broker, e.Err)
	}
}

// Unwrap returns Reason and Err, for errors.Is and errors.As.
func (e *ConnectError) Unwrap() []error { return []error{e.Reason, e.Err} }
