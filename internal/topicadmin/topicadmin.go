// Package topicadmin creates topics and lists them as the brokers see them
// now: a creation waits until the topic is listed, concurrent creations of
// one name make one request, and listings bypass the client's metadata
// cache.
package topicadmin

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/plexica/eventbus/internal/backoff"
)

// DefaultReplication is the largest replication factor a topic gets when
// Settings.Replication is 0: min(DefaultReplication, brokers).
const DefaultReplication = 3

// Settings are how a topic is created. Replication 0 is
// min(DefaultReplication, brokers).
type Settings struct {
	Partitions  int32
	Replication int16
	Retention   time.Duration
	Configs     map[string]string
}

// Admin creates and lists topics through one client.
type Admin struct {
	cl      *kgo.Client
	adm     *kadm.Client
	ensured sync.Map // topic name -> *ensureCall
}

type ensureCall struct {
	done chan struct{}
	err  error
}

// ErrTimedOut: a creation did not finish within its own time bound. It
// says nothing about the caller's context, which Ensure reports as that
// context's error.
var ErrTimedOut = errors.New("topic creation timed out")

// New returns an Admin over cl.
func New(cl *kgo.Client) *Admin { return &Admin{cl: cl, adm: kadm.NewClient(cl)} }

// Ensure creates topic with s unless it exists, once per Admin: later calls
// for the name return the first call's result at once, and concurrent calls
// share one request. The creation runs under its own context, bounded by
// timeout, and never under a caller's: a caller whose ctx ends stops
// waiting (and gets ctx's error) while the others keep waiting for the
// result. A creation that does not finish within timeout fails with
// ErrTimedOut. A failure is forgotten, so the next call tries again.
// settings is called only when a request is made.
func (a *Admin) Ensure(ctx context.Context, topic string, timeout time.Duration, settings func() Settings) error {
	v, ok := a.ensured.Load(topic)
	if !ok {
		call := &ensureCall{done: make(chan struct{})}
		var loaded bool
		if v, loaded = a.ensured.LoadOrStore(topic, call); !loaded {
			go a.run(call, topic, timeout, settings)
		}
	}
	call := v.(*ensureCall)
	select {
	case <-call.done:
		return call.err
	default:
	}
	select {
	case <-call.done:
		return call.err
	case <-ctx.Done():
		return fmt.Errorf("ensure topic %q: stopped waiting for its creation: %w", topic, context.Cause(ctx))
	}
}

// run creates topic for call under its own timeout.
func (a *Admin) run(call *ensureCall, topic string, timeout time.Duration, settings func() Settings) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	err := a.create(ctx, topic, settings())
	if err != nil && ctx.Err() != nil {
		err = fmt.Errorf("%w: ensure topic %q: not done within %s (%v)", ErrTimedOut, topic, timeout, err)
	}
	if err != nil {
		a.ensured.CompareAndDelete(topic, call)
	}
	call.err = err
	close(call.done)
}

// Forget drops what Ensure remembers of topic, so that the next Ensure
// checks the brokers again: for a topic that was deleted while in use.
func (a *Admin) Forget(topic string) {
	if v, ok := a.ensured.Load(topic); ok {
		select {
		case <-v.(*ensureCall).done: // a creation in progress stays shared
			a.ensured.CompareAndDelete(topic, v)
		default:
		}
	}
}

func (a *Admin) create(ctx context.Context, topic string, s Settings) error {
	if s.Replication == 0 {
		brokers, err := a.adm.ListBrokers(ctx)
		if err != nil {
			return fmt.Errorf("ensure topic %q: list brokers: %w", topic, err)
		}
		s.Replication = int16(min(DefaultReplication, max(1, len(brokers))))
	}
	configs := map[string]*string{}
	retention := strconv.FormatInt(s.Retention.Milliseconds(), 10)
	configs["retention.ms"] = &retention
	for k, v := range s.Configs {
		configs[k] = &v
	}
	resp, err := a.adm.CreateTopic(ctx, s.Partitions, s.Replication, configs, topic)
	if err == nil {
		err = resp.Err
	}
	if errors.Is(err, kerr.TopicAuthorizationFailed) {
		// A client allowed to use the topic but not to create it (a plugin
		// reading a core topic under its ACLs) is fine when it exists.
		if topics, listErr := a.Fresh(ctx, topic); listErr == nil && slices.Contains(topics, topic) {
			return nil
		}
	}
	if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
		return fmt.Errorf("ensure topic %q (%d partitions, replication %d): %w", topic, s.Partitions, s.Replication, err)
	}
	return a.waitListed(ctx, topic)
}

// waitListed returns once a broker lists topic in its metadata. On Kafka,
// CreateTopics is answered by the controller before every broker's metadata
// shows the new topic, so without this a lookup, a subscription or a client
// in another process could miss a topic just created. It waits at most 10 s
// (and ctx); after that the topic is left to appear.
func (a *Admin) waitListed(parent context.Context, topic string) error {
	ctx, cancel := context.WithTimeout(parent, 10*time.Second)
	defer cancel()
	for {
		topics, err := a.Fresh(ctx, topic)
		if err == nil && slices.Contains(topics, topic) {
			return nil
		}
		if !backoff.Sleep(ctx, 20*time.Millisecond) {
			return parent.Err()
		}
	}
}

// Fresh asks a broker which of names exist (all topics when none is
// given). It sends its own metadata request rather than using kadm's
// ListTopics, which answers from the client's metadata cache (up to
// MetadataMinAge, 5 s, old) and so misses a topic another process has just
// created.
func (a *Admin) Fresh(ctx context.Context, names ...string) ([]string, error) {
	req := kmsg.NewPtrMetadataRequest()
	for _, name := range names {
		t := kmsg.NewMetadataRequestTopic()
		t.Topic = kmsg.StringPtr(name)
		req.Topics = append(req.Topics, t)
	}
	resp, err := req.RequestWith(ctx, a.cl)
	if err != nil {
		return nil, fmt.Errorf("list topics: %w", err)
	}
	var out []string
	for _, t := range resp.Topics {
		if t.Topic == nil {
			continue
		}
		switch err := kerr.ErrorForCode(t.ErrorCode); {
		case err == nil:
			out = append(out, *t.Topic)
		case errors.Is(err, kerr.UnknownTopicOrPartition):
		default:
			return nil, fmt.Errorf("list topics: %s: %w", *t.Topic, err)
		}
	}
	return out, nil
}
