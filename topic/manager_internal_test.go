package topic

import (
	"errors"
	"testing"

	"github.com/plexica/eventbus/deadletter"
	"github.com/plexica/eventbus/internal/errs"
)

// TestSettingsDefaults: the zero settings get the documented defaults,
// from the named constants; a dlq.* topic gets its own retention and
// cleanup policy unless one is given.
func TestSettingsDefaults(t *testing.T) {
	s := settings{}.withDefaults(false)
	if s.partitions != DefaultPartitions || s.retention != DefaultRetention || s.replication != 0 ||
		s.timeout != CreationTimeout || s.configs["cleanup.policy"] != "" {
		t.Errorf("topic defaults: %+v", s)
	}
	s = settings{}.withDefaults(true)
	if s.retention != deadletter.DefaultRetention || s.configs["cleanup.policy"] != string(deadletter.DefaultCleanupPolicy) {
		t.Errorf("dlq topic defaults: %+v", s)
	}
	s = settings{configs: map[string]string{"cleanup.policy": "delete"}}.withDefaults(true)
	if s.configs["cleanup.policy"] != "delete" {
		t.Errorf("dlq topic cleanup.policy given: %+v", s)
	}
	for _, o := range []Option{WithPartitions(-1), WithReplicationFactor(-1), WithRetention(-1), WithCreationTimeout(-1)} {
		var s settings
		o(&s)
		if err := s.withDefaults(false).validate("core.user.created"); !errors.Is(err, errs.InvalidConfig) {
			t.Errorf("a negative option: %v, want ErrInvalidConfig", err)
		}
	}
}

// TestZeroManager: a Manager not made by eventbus.Client.Topics says so
// instead of panicking.
func TestZeroManager(t *testing.T) {
	var m Manager
	if err := m.Ensure(t.Context(), "core.user.created"); !errors.Is(err, errs.InvalidConfig) {
		t.Errorf("Ensure on a zero Manager = %v, want ErrInvalidConfig", err)
	}
	if _, err := m.List(t.Context()); !errors.Is(err, errs.InvalidConfig) {
		t.Errorf("List on a zero Manager = %v, want ErrInvalidConfig", err)
	}
}
