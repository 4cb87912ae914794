package eventbus

import (
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/plexica/eventbus/breaker"
	"github.com/plexica/eventbus/deadletter"
	"github.com/plexica/eventbus/topic"
)

// TestConfigDefaults: the zero configs get the documented defaults, from
// the named constants.
func TestConfigDefaults(t *testing.T) {
	logger := slog.Default()
	c := Config{}.withDefaults(logger)
	if err := c.validate(); err != nil {
		t.Fatalf("the defaults do not validate: %v", err)
	}
	cc, d, b := c.Consumer, c.DLQ, c.Breaker
	for _, tc := range []struct {
		name      string
		got, want any
	}{
		{"Source", c.Source, DefaultSource},
		{"Compression", c.Compression, DefaultCompression},
		{"MaxBufferedRecords", c.MaxBufferedRecords, DefaultMaxBufferedRecords},
		{"MaxEventBytes", c.MaxEventBytes, DefaultMaxEventBytes},
		{"DeliveryTimeout", c.DeliveryTimeout, DefaultDeliveryTimeout},
		{"ShutdownTimeout", c.ShutdownTimeout, DefaultShutdownTimeout},
		{"Logger", c.Logger, logger},
		{"Breaker.FailureThreshold", b.FailureThreshold, uint32(breaker.DefaultFailureThreshold)},
		{"Breaker.OpenTimeout", b.OpenTimeout, breaker.DefaultOpenTimeout},
		{"Breaker.HalfOpenSuccesses", b.HalfOpenSuccesses, uint32(breaker.DefaultHalfOpenSuccesses)},
		{"Consumer.SessionTimeout", cc.SessionTimeout, DefaultSessionTimeout},
		{"Consumer.HeartbeatInterval", cc.HeartbeatInterval, DefaultHeartbeatInterval},
		{"Consumer.MaxPollRecords", cc.MaxPollRecords, DefaultMaxPollRecords},
		{"Consumer.RevokeTimeout", cc.RevokeTimeout, DefaultRevokeTimeout},
		{"Consumer.CommitInterval", cc.CommitInterval, DefaultCommitInterval},
		{"Consumer.RetryBackoff", cc.RetryBackoff, DefaultConsumerRetryBackoff},
		{"Consumer.MaxRetryBackoff", cc.MaxRetryBackoff, DefaultConsumerMaxRetryBackoff},
		{"DLQ.MaxRetries", d.MaxRetries, deadletter.DefaultMaxRetries},
		{"DLQ.RetryBackoff", d.RetryBackoff, deadletter.DefaultRetryBackoff},
		{"DLQ.MaxRetryBackoff", d.MaxRetryBackoff, deadletter.DefaultMaxRetryBackoff},
		{"DLQ.SchedulerGroup", d.SchedulerGroup, deadletter.DefaultSchedulerGroup},
		{"DLQ.RetryTimeout", d.RetryTimeout, deadletter.DefaultRetryTimeout},
		{"DLQ.TopicCleanupPolicy", d.TopicCleanupPolicy, deadletter.DefaultCleanupPolicy},
	} {
		if tc.got != tc.want {
			t.Errorf("%s = %v, want %v", tc.name, tc.got, tc.want)
		}
	}
	cl := ClientConfig{Brokers: []string{"127.0.0.1:9092"}}.withDefaults()
	if cl.ClientID != DefaultClientID || cl.ConnectTimeout != DefaultConnectTimeout || cl.TopicRules != topic.DefaultRules() || cl.Logger == nil {
		t.Errorf("ClientConfig defaults: %+v", cl)
	}
	dv := Delivery{}.withDefaults()
	if dv.MaxConcurrency != DefaultMaxConcurrency || dv.MaxPending != DefaultMaxPending {
		t.Errorf("Delivery defaults: %+v", dv)
	}
}

// TestConfigTrapFixes: the values that switch something off are named, and
// reach the engine and the queue as their zero.
func TestConfigTrapFixes(t *testing.T) {
	c := Config{Consumer: ConsumerConfig{CommitInterval: CommitEveryBatch}, DLQ: deadletter.Config{MaxRetries: deadletter.NoRetries}}.withDefaults(slog.Default())
	if err := c.validate(); err != nil {
		t.Fatal(err)
	}
	if got := c.Consumer.commitInterval(); got != 0 {
		t.Errorf("CommitEveryBatch reaches the engine as %s, want 0 (every batch)", got)
	}
	if got := c.DLQ.MaxRetries; got != deadletter.NoRetries {
		t.Errorf("NoRetries reaches the queue as %d, want NoRetries (the queue records it as 0 retries)", got)
	}
	if got := (Config{}).withDefaults(nil).DLQ.MaxRetries; got != deadletter.DefaultMaxRetries {
		t.Errorf("MaxRetries 0 reaches the queue as %d, want DefaultMaxRetries", got)
	}
}

// TestREADMEStatesTheDefaults: the README's configuration table gives each
// default constant with its value.
func TestREADMEStatesTheDefaults(t *testing.T) {
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	for name, value := range map[string]string{
		"DefaultClientID":                  `"` + DefaultClientID + `"`,
		"DefaultConnectTimeout":            readable(DefaultConnectTimeout),
		"DefaultSource":                    `"` + DefaultSource + `"`,
		"DefaultCompression":               string(DefaultCompression),
		"DefaultMaxEventBytes":             "1 MB",
		"DefaultDeliveryTimeout":           readable(DefaultDeliveryTimeout),
		"DefaultMaxBufferedRecords":        "10,000",
		"DefaultShutdownTimeout":           readable(DefaultShutdownTimeout),
		"DefaultSessionTimeout":            readable(DefaultSessionTimeout),
		"DefaultHeartbeatInterval":         readable(DefaultHeartbeatInterval),
		"DefaultMaxPollRecords":            strconv.Itoa(DefaultMaxPollRecords),
		"DefaultRevokeTimeout":             readable(DefaultRevokeTimeout),
		"DefaultCommitInterval":            readable(DefaultCommitInterval),
		"DefaultConsumerRetryBackoff":      readable(DefaultConsumerRetryBackoff),
		"DefaultConsumerMaxRetryBackoff":   readable(DefaultConsumerMaxRetryBackoff),
		"DefaultMaxRetries":                strconv.Itoa(deadletter.DefaultMaxRetries),
		"DefaultRetryBackoff":              readable(deadletter.DefaultRetryBackoff),
		"DefaultMaxRetryBackoff":           readable(deadletter.DefaultMaxRetryBackoff),
		"DefaultRetryTimeout":              readable(deadletter.DefaultRetryTimeout),
		"DefaultCleanupPolicy":             "`CleanupCompactDelete`",
		"breaker.DefaultFailureThreshold":  strconv.Itoa(breaker.DefaultFailureThreshold),
		"breaker.DefaultOpenTimeout":       readable(breaker.DefaultOpenTimeout),
		"breaker.DefaultHalfOpenSuccesses": strconv.Itoa(breaker.DefaultHalfOpenSuccesses),
		"topic.DefaultPartitions":          strconv.Itoa(topic.DefaultPartitions),
		"topic.DefaultRetention":           readable(topic.DefaultRetention),
		"deadletter.DefaultRetention":      readable(deadletter.DefaultRetention),
	} {
		if want := "`" + name + "`, " + value; !strings.Contains(string(readme), want) {
			t.Errorf("README.md does not say %s", want)
		}
	}
	for _, d := range []struct {
		name  string
		value int
	}{{"topic.DefaultReplicationFactor", topic.DefaultReplicationFactor}, {"DefaultMaxConcurrency", DefaultMaxConcurrency}} {
		if want := fmt.Sprintf("`%s` (%d)", d.name, d.value); !strings.Contains(string(readme), want) {
			t.Errorf("README.md does not say %s", want)
		}
	}
	if want := "`DefaultMaxPending` (10,000)"; !strings.Contains(string(readme), want) {
		t.Errorf("README.md does not say %s", want)
	}
}

// readable says d as the README does: 30 s, 100 ms, 5 min, 1 h, 7 days.
func readable(d time.Duration) string {
	switch {
	case d >= 24*time.Hour && d%(24*time.Hour) == 0:
		return fmt.Sprintf("%d days", d/(24*time.Hour))
	case d >= time.Hour && d%time.Hour == 0:
		return fmt.Sprintf("%d h", d/time.Hour)
	case d >= 2*time.Minute && d%time.Minute == 0: // 60 s stays 60 s
		return fmt.Sprintf("%d min", d/time.Minute)
	case d >= time.Second && d%time.Second == 0:
		return fmt.Sprintf("%d s", d/time.Second)
	}
	return fmt.Sprintf("%d ms", d/time.Millisecond)
}
