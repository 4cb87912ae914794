package topic

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/plexica/eventbus/deadletter"
	"github.com/plexica/eventbus/internal/errs"
	"github.com/plexica/eventbus/internal/topicadmin"
)

// Defaults of the topics a Manager creates.
const (
	// DefaultPartitions is the partition count of the topics Ensure
	// creates (and the bus before first use of a topic); see
	// WithPartitions.
	DefaultPartitions = 3
	// DefaultReplicationFactor is the largest default replication factor
	// (WithReplicationFactor): a topic gets min(DefaultReplicationFactor,
	// brokers).
	DefaultReplicationFactor = topicadmin.DefaultReplication
	// DefaultRetention is a topic's retention.ms (WithRetention).
	DefaultRetention = 7 * 24 * time.Hour
	// CreationTimeout bounds a topic creation that Ensure starts, unless
	// WithCreationTimeout says otherwise.
	CreationTimeout = 30 * time.Second
)

// Option changes how Ensure creates a topic.
type Option func(*settings)

// settings are how Ensure creates a topic (see Option).
type settings struct {
	partitions  int32
	replication int16 // 0: min(DefaultReplicationFactor, brokers)
	retention   time.Duration
	configs     map[string]string
	timeout     time.Duration
}

// WithPartitions sets the partition count (default DefaultPartitions, 3).
func WithPartitions(n int) Option {
	return func(s *settings) { s.partitions = int32(n) }
}

// WithReplicationFactor sets the replication factor (default
// min(DefaultReplicationFactor, brokers)).
func WithReplicationFactor(n int) Option {
	return func(s *settings) { s.replication = int16(n) }
}

// WithRetention sets retention.ms (default DefaultRetention, 7 days;
// deadletter.DefaultRetention, 30 days, for dlq.* topics).
func WithRetention(d time.Duration) Option {
	return func(s *settings) { s.retention = d }
}

// WithConfig sets any other topic config, such as min.insync.replicas.
func WithConfig(key, value string) Option {
	return func(s *settings) {
		if s.configs == nil {
			s.configs = map[string]string{}
		}
		s.configs[key] = value
	}
}

// WithCreationTimeout bounds the creation this call starts (default
// CreationTimeout). Calls that join a creation already running wait for
// that one's bound.
func WithCreationTimeout(d time.Duration) Option {
	return func(s *settings) { s.timeout = d }
}

// withDefaults fills in the zero settings of a topic, a dlq.* one when dlq.
func (s settings) withDefaults(dlq bool) settings {
	if s.partitions == 0 {
		s.partitions = DefaultPartitions
	}
	if s.retention == 0 {
		s.retention = DefaultRetention
		if dlq {
			s.retention = deadletter.DefaultRetention
		}
	}
	if s.timeout == 0 {
		s.timeout = CreationTimeout
	}
	if dlq {
		if _, ok := s.configs["cleanup.policy"]; !ok {
			configs := map[string]string{"cleanup.policy": string(deadletter.DefaultCleanupPolicy)}
			for k, v := range s.configs {
				configs[k] = v
			}
			s.configs = configs
		}
	}
	return s
}

func (s settings) validate(topic string) error {
	switch {
	case s.partitions < 0:
		return fmt.Errorf("%w: topic %s: WithPartitions(%d) is negative; give at least 1 (0: DefaultPartitions, %d)",
			errs.InvalidConfig, topic, s.partitions, DefaultPartitions)
	case s.replication < 0:
		return fmt.Errorf("%w: topic %s: WithReplicationFactor(%d) is negative; give at least 1 (0: min(DefaultReplicationFactor, brokers))",
			errs.InvalidConfig, topic, s.replication)
	case s.retention < 0:
		return fmt.Errorf("%w: topic %s: WithRetention(%s) is negative; give a positive retention (0: DefaultRetention, %s; deadletter.DefaultRetention, %s, for dlq.* topics)",
			errs.InvalidConfig, topic, s.retention, DefaultRetention, deadletter.DefaultRetention)
	case s.timeout < 0:
		return fmt.Errorf("%w: topic %s: WithCreationTimeout(%s) is negative; give a positive bound (0: CreationTimeout, %s)",
			errs.InvalidConfig, topic, s.timeout, CreationTimeout)
	}
	return nil
}

// Manager validates topic names and creates topics with the defaults
// above. Get one from eventbus.Client.Topics; it works once the client is
// connected (before, its calls fail with eventbus.ErrNotConnected). A
// topic is ensured once per process: later calls for the same name return
// at once, so publishing never pays an extra round trip. A publish that
// finds the topic unknown to the brokers (deleted while in use) makes the
// next call check and create it again (see Forget).
type Manager struct {
	conn  topicadmin.Conn
	rules *Rules

	mu      sync.Mutex
	admin   *topicadmin.Admin
	adminOf *kgo.Client // the client admin was made for

}

func init() {
	topicadmin.NewManager = func(conn topicadmin.Conn, rules any) any {
		r, _ := rules.(*Rules)
		if r == nil {
			r = defaultRules
		}
		return &Manager{conn: conn, rules: r}
	}
}

// Rules returns the topic rules in force.
func (m *Manager) Rules() *Rules { return m.rules }

// topicAdmin returns the topic administration over the current
// connection.
func (m *Manager) topicAdmin() (*topicadmin.Admin, error) {
	if m.conn == nil {
		return nil, fmt.Errorf("%w: a topic.Manager must come from eventbus.Client.Topics", errs.InvalidConfig)
	}
	cl, err := m.conn()
	if err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.adminOf != cl {
		m.admin, m.adminOf = topicadmin.New(cl), cl
	}
	return m.admin, nil
}

// Ensure creates topic if it does not exist, with DefaultPartitions (3)
// partitions, replication factor min(DefaultReplicationFactor (3),
// brokers) and DefaultRetention (7 days; dlq.* topics: deadletter.DefaultRetention,
// 30 days, and cleanup.policy compact,delete) unless opts say otherwise; a
// negative option fails with eventbus.ErrInvalidConfig, a name the rules
// reject with ErrInvalidTopic. A topic that already exists is left as it
// is. Concurrent calls for one name make one request, which runs under its
// own context bounded by CreationTimeout (or WithCreationTimeout), not
// under any caller's: a caller whose ctx ends stops waiting with ctx's
// error while the others keep waiting. When the brokers do not answer in
// time the error wraps eventbus.ErrBrokerUnavailable.
func (m *Manager) Ensure(ctx context.Context, topic string, opts ...Option) error {
	if err := m.rules.Validate(topic); err != nil {
		return err
	}
	var s settings
	for _, o := range opts {
		o(&s)
	}
	s = s.withDefaults(strings.HasPrefix(topic, dlqPrefix))
	if err := s.validate(topic); err != nil {
		return err
	}
	admin, err := m.topicAdmin()
	if err != nil {
		return err
	}
	err = admin.Ensure(ctx, topic, s.timeout, func() topicadmin.Settings {
		return topicadmin.Settings{Partitions: s.partitions, Replication: s.replication, Retention: s.retention, Configs: s.configs}
	})
	switch {
	case err == nil:
		return nil
	case ctx.Err() != nil:
		return err // the caller's own context: its error, unwrapped by us
	case errors.Is(err, topicadmin.ErrTimedOut):
		return fmt.Errorf("%w: the brokers did not create topic %s within %s: %w", errs.BrokerUnavailable, topic, s.timeout, err)
	case errs.Unavailable(err):
		return fmt.Errorf("%w: could not create topic %s: %w", errs.BrokerUnavailable, topic, err)
	}
	return err
}

// Forget makes the next Ensure of topic ask the brokers again instead of
// returning at once: for a topic deleted while in use. (The bus calls it
// when a publish finds its topic gone.)
func (m *Manager) Forget(topic string) {
	m.mu.Lock()
	admin := m.admin
	m.mu.Unlock()
	if admin != nil {
		admin.Forget(topic)
	}
}

// Exists reports whether topic exists on the cluster.
func (m *Manager) Exists(ctx context.Context, topic string) (bool, error) {
	admin, err := m.topicAdmin()
	if err != nil {
		return false, err
	}
	topics, err := admin.Fresh(ctx, topic)
	if err != nil {
		return false, err
	}
	return slices.Contains(topics, topic), nil
}

// List returns the cluster's topics, sorted, without internal ones (names
// starting with "__").
func (m *Manager) List(ctx context.Context) ([]string, error) {
	admin, err := m.topicAdmin()
	if err != nil {
		return nil, err
	}
	topics, err := admin.Fresh(ctx)
	if err != nil {
		return nil, err
	}
	topics = slices.DeleteFunc(topics, func(name string) bool { return strings.HasPrefix(name, "__") })
	sort.Strings(topics)
	return topics, nil
}
