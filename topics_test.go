package eventbus_test

import (
	"slices"
	"strconv"
	"testing"

	"github.com/plexica/eventbus/deadletter"
	"github.com/plexica/eventbus/eventbustest"
)

// TestExistsSeesAnotherClientsTopicAtOnce: a topic another process
// just created is listed and exists at once, even for a client that listed
// the topics a moment before (and so holds cached metadata).
func TestExistsSeesAnotherClientsTopicAtOnce(t *testing.T) {
	t.Parallel()
	brokers := eventbustest.Brokers(t)
	creator, reader := eventbustest.NewClient(t, brokers...), eventbustest.NewClient(t, brokers...)
	topic := eventbustest.UniqueTopic(t, "core.user.created")
	if _, err := reader.Topics().List(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	if ok, err := reader.Topics().Exists(ctxT(t), topic); err != nil || ok {
		t.Fatalf("Exists before creation = %v, %v", ok, err)
	}
	if err := creator.Topics().Ensure(ctxT(t), topic); err != nil {
		t.Fatal(err)
	}
	if ok, err := reader.Topics().Exists(ctxT(t), topic); err != nil || !ok {
		t.Errorf("Exists just after creation = %v, %v; want true", ok, err)
	}
	all, err := reader.Topics().List(ctxT(t))
	if err != nil || !slices.Contains(all, topic) {
		t.Errorf("List just after creation lacks %s (err %v)", topic, err)
	}
}

// TestEnsureGivesDLQTopicsTheQueueDefaults: a dlq.* topic created by the
// topic manager without options gets the dead letter queue's cleanup
// policy (DefaultDLQCleanupPolicy) and retention (deadletter.DefaultRetention),
// the ones the queue itself would give it.
func TestEnsureGivesDLQTopicsTheQueueDefaults(t *testing.T) {
	t.Parallel()
	client := eventbustest.NewClient(t)
	name := "dlq." + eventbustest.UniqueTopic(t, "core.user.created")
	if err := client.Topics().Ensure(ctxT(t), name); err != nil {
		t.Fatal(err)
	}
	adm, err := client.Admin()
	if err != nil {
		t.Fatal(err)
	}
	configs, err := adm.DescribeTopicConfigs(ctxT(t), name)
	if err != nil {
		t.Fatal(err)
	}
	rc, err := configs.On(name, nil)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, c := range rc.Configs {
		if c.Value != nil {
			got[c.Key] = *c.Value
		}
	}
	if got["cleanup.policy"] != string(deadletter.DefaultCleanupPolicy) {
		t.Errorf("cleanup.policy %q, want %q", got["cleanup.policy"], deadletter.DefaultCleanupPolicy)
	}
	if want := strconv.FormatInt(deadletter.DefaultRetention.Milliseconds(), 10); got["retention.ms"] != want {
		t.Errorf("retention.ms %q, want %s", got["retention.ms"], want)
	}
}
