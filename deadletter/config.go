package deadletter

import (
	"fmt"
	"time"
)

// The defaults of Config, each named in its field's documentation, and
// the value that turns automatic retries off.
const (
	// DefaultMaxRetries is Config.MaxRetries's default.
	DefaultMaxRetries = 3
	// NoRetries, as Config.MaxRetries, turns automatic retries off: a
	// failed event goes to the dead letter queue as max-retries-exceeded
	// at once, and is sent again only by hand. (MaxRetries 0 means
	// DefaultMaxRetries, as every zero field of a config means its
	// default.)
	NoRetries = -1
	// DefaultRetryBackoff is Config.RetryBackoff's default.
	DefaultRetryBackoff = time.Second
	// DefaultMaxRetryBackoff is Config.MaxRetryBackoff's default.
	DefaultMaxRetryBackoff = time.Hour
	// DefaultSchedulerGroup is Config.SchedulerGroup's default, and the
	// scheduler group of an entry that names none.
	DefaultSchedulerGroup = "plexica-eventbus-dlq-scheduler"
	// DefaultRetryTimeout is Config.RetryTimeout's default.
	DefaultRetryTimeout = 5 * time.Minute
	// DefaultCleanupPolicy is Config.TopicCleanupPolicy's default, and the
	// cleanup policy of the dlq.* topics topic.Manager.Ensure
	// creates.
	DefaultCleanupPolicy = CleanupCompactDelete
	// DefaultRetention is the retention.ms of the dlq.* topics the bus
	// creates.
	DefaultRetention = 30 * 24 * time.Hour
)

// CleanupPolicy is a dlq.* topic's cleanup.policy.
type CleanupPolicy string

// The cleanup policies Config.TopicCleanupPolicy accepts.
const (
	// CleanupCompactDelete keeps the newest version of each key, for at
	// most the topic's retention.
	CleanupCompactDelete CleanupPolicy = "compact,delete"
	// CleanupDelete keeps every version until retention removes it.
	CleanupDelete CleanupPolicy = "delete"
)

// Config tunes the dead letter queue (eventbus.Config.DLQ). A zero field
// means its default; negative durations and counts are errors, except
// NoRetries.
type Config struct {
	// MaxRetries is the number of automatic retries. Default
	// DefaultMaxRetries (3); NoRetries turns automatic retries off (failed
	// events wait in the queue for a manual retry). Any other negative
	// value is an error.
	MaxRetries int
	// RetryBackoff is the delay before the first automatic retry; retry n
	// waits RetryBackoff·2^n, up to MaxRetryBackoff. Default
	// DefaultRetryBackoff (1 s).
	RetryBackoff time.Duration
	// MaxRetryBackoff caps the delay; it must be at least RetryBackoff.
	// Default DefaultMaxRetryBackoff (1 h).
	MaxRetryBackoff time.Duration
	// SchedulerGroup is the consumer group over the dlq.* topics whose
	// members schedule automatic retries: each DLQ partition's owner is its
	// only scheduler. An entry is scheduled only by the group named in its
	// Entry.SchedulerGroup (the group of the bus whose handler failed), so
	// deployments that share a cluster under different names never retry
	// each other's entries. Every instance of one deployment must use the
	// same name. Default DefaultSchedulerGroup
	// ("plexica-eventbus-dlq-scheduler").
	SchedulerGroup string
	// DisableScheduler stops this process from scheduling automatic retries
	// (other instances still do).
	DisableScheduler bool
	// RetryTimeout is how long a sent retry may stay unanswered before it
	// is sent again (the process that was to handle it may have died).
	// Default DefaultRetryTimeout (5 min).
	RetryTimeout time.Duration
	// TopicCleanupPolicy is the cleanup.policy of the dlq.* topics the bus
	// creates: CleanupCompactDelete (the newest version of each entry is
	// kept, for at most the 30-day retention) or CleanupDelete (every
	// version is kept until retention removes it). Use CleanupDelete on a
	// cluster shared with services that use the TypeScript package: it
	// keys its entries by tenant, so compaction would keep only each
	// tenant's newest. Topics that already exist are left as they are.
	// Default DefaultCleanupPolicy (CleanupCompactDelete).
	TopicCleanupPolicy CleanupPolicy
}

// WithDefaults returns c with its zero fields (and only those) set to
// their defaults.
func (c Config) WithDefaults() Config {
	if c.MaxRetries == 0 {
		c.MaxRetries = DefaultMaxRetries
	}
	if c.RetryBackoff == 0 {
		c.RetryBackoff = DefaultRetryBackoff
	}
	if c.MaxRetryBackoff == 0 {
		c.MaxRetryBackoff = DefaultMaxRetryBackoff
	}
	if c.SchedulerGroup == "" {
		c.SchedulerGroup = DefaultSchedulerGroup
	}
	if c.RetryTimeout == 0 {
		c.RetryTimeout = DefaultRetryTimeout
	}
	if c.TopicCleanupPolicy == "" {
		c.TopicCleanupPolicy = DefaultCleanupPolicy
	}
	return c
}

// Validate checks c, defaults applied (WithDefaults), and returns an
// error wrapping ErrInvalidConfig that says what is wrong and how to fix
// it.
func (c Config) Validate() error {
	if c.MaxRetries < 0 && c.MaxRetries != NoRetries {
		return fmt.Errorf("%w: MaxRetries %d is negative; give a count, 0 for DefaultMaxRetries (%d), or NoRetries to turn automatic retries off",
			ErrInvalidConfig, c.MaxRetries, DefaultMaxRetries)
	}
	for _, d := range []struct {
		field, def string
		v, defV    time.Duration
	}{
		{"RetryBackoff", "DefaultRetryBackoff", c.RetryBackoff, DefaultRetryBackoff},
		{"MaxRetryBackoff", "DefaultMaxRetryBackoff", c.MaxRetryBackoff, DefaultMaxRetryBackoff},
		{"RetryTimeout", "DefaultRetryTimeout", c.RetryTimeout, DefaultRetryTimeout},
	} {
		if d.v < 0 {
			return fmt.Errorf("%w: %s %s is negative; give a positive duration, or 0 for %s (%s)", ErrInvalidConfig, d.field, d.v, d.def, d.defV)
		}
	}
	if c.RetryBackoff > c.MaxRetryBackoff {
		return fmt.Errorf("%w: RetryBackoff (%s) is over MaxRetryBackoff (%s), which caps it; raise MaxRetryBackoff or lower RetryBackoff",
			ErrInvalidConfig, c.RetryBackoff, c.MaxRetryBackoff)
	}
	switch c.TopicCleanupPolicy {
	case CleanupCompactDelete, CleanupDelete:
	default:
		return fmt.Errorf("%w: TopicCleanupPolicy %q is not CleanupCompactDelete (%q, the default) or CleanupDelete (%q, for clusters shared with TypeScript services)",
			ErrInvalidConfig, string(c.TopicCleanupPolicy), string(CleanupCompactDelete), string(CleanupDelete))
	}
	return nil
}
