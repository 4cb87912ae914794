package eventbus_test

import (
	"slices"
	"testing"

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
