// Package crm is the sample CRM plugin of Plexica, written against the
// public API of github.com/plexica/eventbus only: its business logic, run
// by pluginrun (one deployment, an eventbus.PluginHost, serves many
// tenants) from cmd/crm and from `eventbus demo`. For each tenant it
// serves, it
//
//   - turns each new user of the tenant (core.user.created) into a contact
//     and publishes plugin.crm.contact.created;
//   - publishes plugin.crm.deal.updated when a deal changes, and keeps its
//     pipeline (deals per stage) from its own deal.updated events.
//
// Both handlers share the consumer group "crm-sync": one group,
// plugin.crm.crm-sync, for every tenant, reading each event once. The
// tenants are given on the command line and, with -follow, followed from
// the platform's core.plugin.installed/uninstalled events. Run it next to
// `eventbus serve`:
//
//	go run ./examples/crm/cmd/crm -brokers 127.0.0.1:9092 -tenants acme,globex -follow
package crm

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/plexica/eventbus"
	"github.com/plexica/eventbus/catalog"
	"github.com/plexica/eventbus/pluginrun"
)

// PluginID is the plugin's ID: its topics are plugin.crm.*.
const PluginID = "crm"

// Group is the consumer group of both handlers, in the plugin's
// namespace: plugin.crm.crm-sync.
const Group = "crm-sync"

// Event names of the plugin (topics plugin.crm.<name>).
const (
	ContactCreatedEvent = "contact.created"
	DealUpdatedEvent    = "deal.updated"
)

// ContactCreated is the data of plugin.crm.contact.created.
type ContactCreated struct {
	ContactID string `json:"contactId"`
	Name      string `json:"name"`
	Email     string `json:"email"`
	UserID    string `json:"userId,omitempty"`
}

// DealUpdated is the data of plugin.crm.deal.updated.
type DealUpdated struct {
	DealID string `json:"dealId"`
	Stage  string `json:"stage"`
	Amount int64  `json:"amount"`
}

// Stages are the pipeline stages a deal can be in.
var Stages = []string{"lead", "qualified", "proposal", "won", "lost"}

// NewContact is what CreateContact takes.
type NewContact struct {
	Name, Email, UserID string
}

// CRM is the plugin's state for one tenant: its contacts and deals, and
// the operations that publish them.
type CRM struct {
	// CreateContact stores a contact and publishes contact.created.
	CreateContact func(context.Context, NewContact) (ContactCreated, error)
	// UpdateDeal validates a deal change and publishes deal.updated.
	UpdateDeal func(context.Context, DealUpdated) (DealUpdated, error)

	mu       sync.Mutex
	contacts []ContactCreated
	deals    map[string]string // deal ID -> stage
}

// NewCRM returns the plugin for the tenant of events.
func NewCRM(events *eventbus.PluginClient) *CRM {
	c := &CRM{deals: map[string]string{}}
	c.CreateContact = eventbus.WithPublish(events, ContactCreatedEvent, c.createContact)
	c.UpdateDeal = eventbus.WithPublish(events, DealUpdatedEvent, checkDeal)
	return c
}

func (c *CRM) createContact(_ context.Context, in NewContact) (ContactCreated, error) {
	if in.Email == "" {
		return ContactCreated{}, errors.New("crm: a contact needs an email")
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	ct := ContactCreated{ContactID: fmt.Sprintf("c-%d", len(c.contacts)+1), Name: in.Name, Email: in.Email, UserID: in.UserID}
	c.contacts = append(c.contacts, ct)
	return ct, nil
}

func checkDeal(_ context.Context, d DealUpdated) (DealUpdated, error) {
	if d.DealID == "" || !slices.Contains(Stages, d.Stage) {
		return DealUpdated{}, fmt.Errorf("crm: deal %q: stage %q is not one of %v", d.DealID, d.Stage, Stages)
	}
	return d, nil
}

// onUserCreated makes the new user a contact. Delivery is at-least-once, so
// a user who already is a contact is skipped.
func (c *CRM) onUserCreated(ctx context.Context, ev eventbus.Event[catalog.UserCreatedData]) error {
	c.mu.Lock()
	known := slices.ContainsFunc(c.contacts, func(ct ContactCreated) bool { return ct.UserID == ev.Data.UserID })
	c.mu.Unlock()
	if known {
		return nil
	}
	_, err := c.CreateContact(ctx, NewContact{Name: ev.Data.Email, Email: ev.Data.Email, UserID: ev.Data.UserID})
	return err
}

func (c *CRM) onDealUpdated(_ context.Context, ev eventbus.Event[DealUpdated]) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.deals[ev.Data.DealID] = ev.Data.Stage
	return nil
}

// Contacts returns the tenant's contacts.
func (c *CRM) Contacts() []ContactCreated {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.contacts)
}

// Pipeline returns the number of deals in each stage.
func (c *CRM) Pipeline() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := map[string]int{}
	for _, stage := range c.deals {
		out[stage]++
	}
	return out
}

// Handlers declares the plugin's handlers, once for every tenant: both in
// group crm-sync. pluginrun.Handle routes each event to its tenant's CRM.
func Handlers(d *pluginrun.Deployment[CRM]) []eventbus.HandlerSpec {
	return []eventbus.HandlerSpec{
		eventbus.On(catalog.UserCreated, pluginrun.Handle(d, (*CRM).onUserCreated), eventbus.InGroup(Group)),
		eventbus.On(DealUpdatedEvent, pluginrun.Handle(d, (*CRM).onDealUpdated), eventbus.InGroup(Group)),
	}
}
