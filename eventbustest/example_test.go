package eventbustest_test

// This file is what a test of your own code looks like with eventbustest:
// TestWelcomeMailIsQueued tests subscribeWelcomeMails, a piece of a
// service, on an embedded broker (or the cluster in EVENTBUS_TEST_BROKERS),
// with no sleeps and nothing to clean up by hand.

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"

	"github.com/plexica/eventbus"
	"github.com/plexica/eventbus/eventbustest"
)

type userCreated struct {
	UserID string `json:"userId"`
	Email  string `json:"email"`
}

type mailQueued struct {
	To       string `json:"to"`
	Template string `json:"template"`
}

// subscribeWelcomeMails is the code under test: it turns every user created
// into a queued welcome mail. The topics are parameters so that a test can
// give unique ones.
func subscribeWelcomeMails(ctx context.Context, bus *eventbus.Bus, usersTopic, mailsTopic string) error {
	_, err := eventbus.Subscribe(ctx, bus, eventbus.Name[userCreated](usersTopic), func(ctx context.Context, ev eventbus.Event[userCreated]) error {
		if ev.Data.Email == "" {
			return eventbus.Permanent(fmt.Errorf("user %s has no email", ev.Data.UserID))
		}
		// ctx carries the handled event: the mail keeps its tenant and
		// correlation ID and names it as its cause.
		meta, _ := eventbus.EventContextFrom(ctx)
		_, err := bus.Publish(ctx, mailsTopic, mailQueued{To: ev.Data.Email, Template: "welcome"}, meta)
		return err
	}, eventbus.InGroup("welcome-mails"))
	return err
}

func TestWelcomeMailIsQueued(t *testing.T) {
	ctx := t.Context()
	bus := eventbustest.NewBus(t, eventbus.Config{}) // its own broker; shut down with the test
	users := eventbustest.UniqueTopic(t, "core.user.created")
	mails := eventbustest.UniqueTopic(t, "core.mail.queued")

	rec := eventbustest.NewRecorder()
	eventbustest.MustSubscribe(t, bus, mails, rec.Handle, eventbus.InGroup("test"))
	if err := subscribeWelcomeMails(ctx, bus, users, mails); err != nil {
		t.Fatal(err)
	}

	id := eventbustest.MustPublish(t, bus, users, userCreated{UserID: "u-1", Email: "ada@acme.test"},
		eventbus.PublishMetadata{TenantID: "acme"})

	got := rec.WaitFor(t, 1)[0] // waits for the event, fails after eventbustest.WaitTimeout
	var mail mailQueued
	if err := json.Unmarshal(got.Data, &mail); err != nil {
		t.Fatal(err)
	}
	if mail.To != "ada@acme.test" || got.TenantID != "acme" || got.Metadata.CausationID != id {
		t.Errorf("got %+v for tenant %s caused by %s, want a welcome mail to ada@acme.test for acme caused by %s",
			mail, got.TenantID, got.Metadata.CausationID, id)
	}
}
