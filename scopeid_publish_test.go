package eventbus_test

import (
	"errors"
	"testing"

	"github.com/plexica/eventbus"
	"github.com/plexica/eventbus/eventbustest"
)

// TestPublishRefusesInvalidScopeIDs: an event whose tenant or workspace ID
// breaks the rule that keeps group names apart is refused before anything
// is sent, by Publish and PublishBatch alike.
func TestPublishRefusesInvalidScopeIDs(t *testing.T) {
	t.Parallel()
	bus := eventbustest.NewBus(t, eventbus.Config{})
	topic := eventbustest.UniqueTopic(t, "core.user.created")
	cases := []struct {
		meta eventbus.PublishMetadata
		want error
	}{
		{eventbus.PublishMetadata{TenantID: "acme.workspace.w1"}, eventbus.ErrInvalidTenantID},
		{eventbus.PublishMetadata{TenantID: "acme", WorkspaceID: "w 1"}, eventbus.ErrInvalidWorkspaceID},
	}
	for _, c := range cases {
		if _, err := bus.Publish(ctxT(t), topic, 1, c.meta); !errors.Is(err, c.want) {
			t.Errorf("Publish(%+v) = %v, want %v", c.meta, err, c.want)
		}
		if _, err := bus.PublishBatch(ctxT(t), []eventbus.BatchEvent{{EventType: topic, Data: 1, Metadata: c.meta}}); !errors.Is(err, c.want) {
			t.Errorf("PublishBatch(%+v) = %v, want %v", c.meta, err, c.want)
		}
	}
}
