package deadletter_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/plexica/eventbus/deadletter"
)

// TestConfigDefaults: WithDefaults fills in the zero fields, and only
// those; NoRetries stays.
func TestConfigDefaults(t *testing.T) {
	c := deadletter.Config{}.WithDefaults()
	want := deadletter.Config{
		MaxRetries: deadletter.DefaultMaxRetries, RetryBackoff: deadletter.DefaultRetryBackoff,
		MaxRetryBackoff: deadletter.DefaultMaxRetryBackoff, SchedulerGroup: deadletter.DefaultSchedulerGroup,
		RetryTimeout: deadletter.DefaultRetryTimeout, TopicCleanupPolicy: deadletter.DefaultCleanupPolicy,
	}
	if c != want {
		t.Fatalf("defaults %+v, want %+v", c, want)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	set := deadletter.Config{MaxRetries: deadletter.NoRetries, RetryBackoff: time.Minute, SchedulerGroup: "g", TopicCleanupPolicy: deadletter.CleanupDelete}.WithDefaults()
	if set.MaxRetries != deadletter.NoRetries || set.RetryBackoff != time.Minute || set.SchedulerGroup != "g" || set.TopicCleanupPolicy != deadletter.CleanupDelete {
		t.Fatalf("WithDefaults replaced a set field: %+v", set)
	}
	if err := set.Validate(); err != nil {
		t.Fatal(err)
	}
}

// TestConfigValidate: each bad value fails with ErrInvalidConfig, saying
// what to give instead.
func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		c    deadletter.Config
		want string
	}{
		{deadletter.Config{MaxRetries: -2}, "NoRetries"},
		{deadletter.Config{RetryBackoff: -time.Second}, "DefaultRetryBackoff"},
		{deadletter.Config{MaxRetryBackoff: -time.Second}, "DefaultMaxRetryBackoff"},
		{deadletter.Config{RetryTimeout: -time.Second}, "DefaultRetryTimeout"},
		{deadletter.Config{RetryBackoff: 2 * time.Hour}, "RetryBackoff (2h0m0s) is over MaxRetryBackoff (1h0m0s)"},
		{deadletter.Config{TopicCleanupPolicy: "compact"}, "CleanupCompactDelete"},
	} {
		err := tc.c.WithDefaults().Validate()
		if !errors.Is(err, deadletter.ErrInvalidConfig) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v; want ErrInvalidConfig saying %q", tc.c, err, tc.want)
		}
	}
}

// TestStatusValid: the four statuses, and nothing else.
func TestStatusValid(t *testing.T) {
	for _, s := range []deadletter.Status{deadletter.StatusPending, deadletter.StatusRetrying, deadletter.StatusResolved, deadletter.StatusMaxRetriesExceeded} {
		if !s.Valid() {
			t.Errorf("%s is not valid", s)
		}
	}
	for _, s := range []deadletter.Status{"", "PENDING", "failed"} {
		if s.Valid() {
			t.Errorf("%q is valid", s)
		}
	}
}
