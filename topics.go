package eventbus

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/plexica/eventbus/internal/backoff"
	"github.com/plexica/eventbus/internal/dlq"
	"github.com/plexica/eventbus/internal/names"
	"github.com/plexica/eventbus/internal/topicadmin"
)

// Topic is a parsed topic name: its kind and parts. The string fields are
// substrings of Name.
type Topic struct {
	Kind     TopicKind
	Name     string // the full name as given
	Domain   string // core only: "user" in core.user.created
	PluginID string // plugin only: "crm" in plugin.crm.contact.note.added
	Entity   string // plugin only, may contain dots: "contact.note"
	Action   string // core and plugin: "created", "added"
	Original *Topic // dlq only: the core or plugin topic it holds failures of
}

// String returns the full topic name. For a Topic built by hand with an
// empty Name it joins the parts: Topic{Kind: TopicKindCore, Domain: "user",
// Action: "created"}.String() is "core.user.created". It does not validate.
func (t Topic) String() string { return t.names().String() }

func (t Topic) names() names.Topic {
	n := names.Topic{Kind: names.Kind(t.Kind), Name: t.Name, Domain: t.Domain, PluginID: t.PluginID, Entity: t.Entity, Action: t.Action}
	if t.Original != nil {
		o := t.Original.names()
		n.Original = &o
	}
	return n
}

func topicOf(n names.Topic) Topic {
	t := Topic{Kind: TopicKind(n.Kind), Name: n.Name, Domain: n.Domain, PluginID: n.PluginID, Entity: n.Entity, Action: n.Action}
	if n.Original != nil {
		o := topicOf(*n.Original)
		t.Original = &o
	}
	return t
}

// TopicKind says which of the three topic forms a name has. The zero
// TopicKind is not a valid kind: a parsed Topic always has one of the three.
type TopicKind int

// The topic kinds.
const (
	TopicKindCore   = TopicKind(names.KindCore)   // core.<domain>.<action>
	TopicKindPlugin = TopicKind(names.KindPlugin) // plugin.<pluginId>.<entity>.<action>
	TopicKindDLQ    = TopicKind(names.KindDLQ)    // dlq.<core or plugin topic>
)

// String returns "core", "plugin" or "dlq".
func (k TopicKind) String() string { return names.Kind(k).String() }

// TopicRules is a set of topic-name rules: the fixed forms, actions in the
// past tense (created, held, written), plus the list of actions allowed
// although they are not past tenses (login, request). A *TopicRules is
// immutable and safe for concurrent use; a nil one is DefaultTopicRules().
type TopicRules struct {
	rules *names.Rules
}

var defaultTopicRules = &TopicRules{names.DefaultRules()}

// DefaultTopicRules returns the rules with the default allow-list of actions
// that are not past tenses (login, logout, request, response, error, ...).
func DefaultTopicRules() *TopicRules { return defaultTopicRules }

// NewTopicRules returns the default rules extended with more allowed actions,
// for example NewTopicRules("sync", "import"). Each action must itself be a
// valid segment ([a-z][a-z0-9_]*).
func NewTopicRules(extraActions ...string) (*TopicRules, error) {
	r, err := names.NewRules(extraActions...)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidConfig, err)
	}
	return &TopicRules{r}, nil
}

// ValidateTopic checks name against r. The error wraps ErrInvalidTopic (and
// ErrInvalidPluginID when the plugin ID is at fault), names the rule that
// failed and, when one can be derived, a corrected name.
func (r *TopicRules) ValidateTopic(name string) error { return r.get().ValidateTopic(name) }

// ParseTopic parses and validates name under r; errors as ValidateTopic.
func (r *TopicRules) ParseTopic(name string) (Topic, error) {
	t, err := r.get().ParseTopic(name)
	if err != nil {
		return Topic{}, err
	}
	return topicOf(t), nil
}

func (r *TopicRules) get() *names.Rules {
	if r == nil {
		return names.DefaultRules()
	}
	return r.rules
}

// ValidatePluginID checks that id is kebab-case ([a-z0-9]+(-[a-z0-9]+)*).
// The error wraps ErrInvalidPluginID.
func ValidatePluginID(id string) error { return names.ValidatePluginID(id) }

// DLQTopicFor returns the dead-letter topic where the failures of consumer
// group on topic are kept: "dlq.<topic>", except for a plugin's group
// ("plugin.<id>.…") on a topic outside that plugin's own, whose failures
// stay under the plugin's prefix ("dlq.plugin.<id>.<topic as entity>"; see
// TopicManager.ProvisionPlugin).
func DLQTopicFor(group, topic string) (string, error) {
	if err := defaultTopicRules.ValidateTopic(topic); err != nil {
		return "", err
	}
	if strings.HasPrefix(topic, "dlq.") {
		return "", fmt.Errorf("%w: %q is a dead-letter topic already; give the topic whose failures it would hold", ErrInvalidTopic, topic)
	}
	return dlq.TopicFor(group, topic), nil
}

// RetryTopicFor returns the topic where the dead letter queue sends
// consumer group's retries of topic, which only that group reads:
// "dlq.retry.<group>.<topic>", or for a plugin's group
// "plugin.<id>.retry.<group>.<topic as entity>" (<group> is the group's
// name as a topic segment, with 8 hex digits of its hash).
func RetryTopicFor(group, topic string) (string, error) {
	if _, err := DLQTopicFor(group, topic); err != nil {
		return "", err
	}
	return dlq.RetryTopicFor(group, topic), nil
}

// TopicOption changes how EnsureTopic creates a topic.
type TopicOption func(*topicSettings)

// WithPartitions sets the partition count (default DefaultPartitions, 3).
func WithPartitions(n int) TopicOption {
	return func(s *topicSettings) { s.partitions = int32(n) }
}

// WithReplicationFactor sets the replication factor (default
// min(DefaultReplicationFactor, brokers)).
func WithReplicationFactor(n int) TopicOption {
	return func(s *topicSettings) { s.replication = int16(n) }
}

// WithRetention sets retention.ms (default DefaultRetention, 7 days;
// deadletter.DefaultRetention, 30 days, for dlq.* topics).
func WithRetention(d time.Duration) TopicOption {
	return func(s *topicSettings) { s.retention = d }
}

// WithTopicConfig sets any other topic config, such as min.insync.replicas.
func WithTopicConfig(key, value string) TopicOption {
	return func(s *topicSettings) {
		if s.configs == nil {
			s.configs = map[string]string{}
		}
		s.configs[key] = value
	}
}

// TopicManager validates topic names and creates topics with the bus's
// defaults. A topic is ensured once per process: later calls for the same
// name return at once, so publishing never pays an extra round trip. A
// publish that finds the topic unknown to the brokers (deleted while in
// use) makes the next call check and create it again.
type TopicManager struct {
	client *Client

	mu      sync.Mutex
	admin   *topicadmin.Admin
	adminOf *kgo.Client // the client admin was made for

	valid      sync.Map // topic names that passed validation
	validCount atomic.Int64

	provisioning sync.Map // plugin ID -> *sync.Mutex: ProvisionPlugin calls one at a time per plugin
}

// maxCachedValidTopics bounds the cache of validated names, so that a
// stream of ever-new names cannot grow memory without end.
const maxCachedValidTopics = 10_000

// validateCached validates a name once; publishing the same topic again
// costs a map lookup.
func (m *TopicManager) validateCached(name string) error {
	if _, ok := m.valid.Load(name); ok {
		return nil
	}
	if err := m.client.cfg.TopicRules.ValidateTopic(name); err != nil {
		return err
	}
	if m.validCount.Load() < maxCachedValidTopics {
		if _, loaded := m.valid.LoadOrStore(name, struct{}{}); !loaded {
			m.validCount.Add(1)
		}
	}
	return nil
}

// topicAdmin returns the topic administration over the client's
// connection (made by Connect).
func (m *TopicManager) topicAdmin() (*topicadmin.Admin, error) {
	cl, err := m.client.adminKgo()
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

func newTopicManager(c *Client) *TopicManager { return &TopicManager{client: c} }

// Rules returns the topic rules in force.
func (m *TopicManager) Rules() *TopicRules { return m.client.cfg.TopicRules }

// TopicCreationTimeout bounds a topic creation that EnsureTopic starts.
// (The bus bounds the creations it starts before a publish by
// Config.DeliveryTimeout instead.)
const TopicCreationTimeout = 30 * time.Second

// EnsureTopic creates topic if it does not exist, with DefaultPartitions
// (3) partitions, replication factor min(DefaultReplicationFactor (3),
// brokers) and DefaultRetention (7 days; dlq.* topics: deadletter.DefaultRetention,
// 30 days, and cleanup.policy deadletter.DefaultCleanupPolicy) unless opts say
// otherwise; a negative option fails with ErrInvalidConfig. A topic that
// already exists is left as it is. Concurrent calls for one name make one request, which
// runs under its own context bounded by TopicCreationTimeout, not under any
// caller's: a caller whose ctx ends stops waiting with ctx's error while
// the others keep waiting. When the brokers do not answer in time the
// error wraps ErrBrokerUnavailable.
func (m *TopicManager) EnsureTopic(ctx context.Context, topic string, opts ...TopicOption) error {
	return m.ensureTopic(ctx, topic, TopicCreationTimeout, opts...)
}

// ensureTopic is EnsureTopic with the creation bounded by timeout.
func (m *TopicManager) ensureTopic(ctx context.Context, topic string, timeout time.Duration, opts ...TopicOption) error {
	if err := m.client.cfg.TopicRules.ValidateTopic(topic); err != nil {
		return err
	}
	admin, err := m.topicAdmin()
	if err != nil {
		return err
	}
	var s topicSettings
	for _, o := range opts {
		o(&s)
	}
	parsed, _ := m.client.cfg.TopicRules.ParseTopic(topic)
	s = s.withDefaults(parsed.Kind == TopicKindDLQ)
	if err := s.validate(topic); err != nil {
		return err
	}
	err = admin.Ensure(ctx, topic, timeout, func() topicadmin.Settings {
		return topicadmin.Settings{Partitions: s.partitions, Replication: s.replication, Retention: s.retention, Configs: s.configs}
	})
	switch {
	case err == nil:
		return nil
	case ctx.Err() != nil:
		return err // the caller's own context: its error, unwrapped by us
	case errors.Is(err, topicadmin.ErrTimedOut):
		return fmt.Errorf("%w: the brokers did not create topic %s within %s: %w", ErrBrokerUnavailable, topic, timeout, err)
	case isUnavailable(err):
		return fmt.Errorf("%w: could not create topic %s: %w", ErrBrokerUnavailable, topic, err)
	}
	return err
}

// forgetTopic makes the next ensure of topic check the brokers again.
func (m *TopicManager) forgetTopic(topic string) {
	m.mu.Lock()
	admin := m.admin
	m.mu.Unlock()
	if admin != nil {
		admin.Forget(topic)
	}
}

// TopicExists reports whether topic exists on the cluster.
func (m *TopicManager) TopicExists(ctx context.Context, topic string) (bool, error) {
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

// ListTopics returns the cluster's topics, sorted, without internal ones
// (names starting with "__").
func (m *TopicManager) ListTopics(ctx context.Context) ([]string, error) {
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

// endOffsets lists the end offset of every partition of topic, retrying
// while a partition is not served yet (just after the topic was created)
// until ctx ends.
func (b *Bus) endOffsets(ctx context.Context, topic string) (map[int32]int64, error) {
	adm, err := b.client.Admin()
	if err != nil {
		return nil, err
	}
	delays := backoff.Delays{Base: 20 * time.Millisecond, Max: time.Second}
	for {
		listed, err := adm.ListEndOffsets(ctx, topic)
		if err == nil {
			err = listed.Error()
		}
		if err == nil {
			ends := map[int32]int64{}
			listed.Each(func(o kadm.ListedOffset) { ends[o.Partition] = o.Offset })
			if len(ends) > 0 {
				return ends, nil
			}
			err = fmt.Errorf("topic %s has no partitions yet", topic)
		}
		if !backoff.Sleep(ctx, delays.Next()) {
			return nil, fmt.Errorf("list end offsets of %s: %w (last error: %v)", topic, ctx.Err(), err)
		}
	}
}
