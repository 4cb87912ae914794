// Package catalog is the typed catalog of Plexica's core events: for each
// event its type name (which is also its topic) as a constant, and its data
// as a Go struct whose JSON field names are the camelCase names the
// TypeScript services use.
//
//	eventbus.Subscribe(ctx, bus, catalog.UserCreated,
//		func(ctx context.Context, ev eventbus.Event[catalog.UserCreatedData]) error {
//			log.Printf("tenant %s: new user %s", ev.TenantID, ev.Data.Email)
//			return nil
//		}, eventbus.InGroup("welcome-mails"))
//
//	ctx = eventbus.WithEventContext(ctx, eventbus.PublishMetadata{TenantID: "acme"})
//	eventbus.Publish(ctx, bus, catalog.UserCreated,
//		catalog.UserCreatedData{UserID: "u-1", Email: "ada@acme.test", Role: "member"})
//
// # Events
//
//	event                                   data
//	core.tenant.created                     TenantCreatedData{tenantId, slug, name}
//	core.tenant.updated                     TenantUpdatedData{tenantId, changes}
//	core.tenant.suspended                   TenantSuspendedData{tenantId, reason?}
//	core.tenant.deleted                     TenantDeletedData{tenantId}
//	core.workspace.created                  WorkspaceCreatedData{workspaceId, slug, name, creatorId}
//	core.workspace.updated                  WorkspaceUpdatedData{workspaceId, changes}
//	core.workspace.deleted                  WorkspaceDeletedData{workspaceId}
//	core.workspace.member_added             MemberAddedData{workspaceId, userId, role, invitedBy?}
//	core.workspace.member_role_updated      MemberRoleUpdatedData{workspaceId, userId, oldRole, newRole}
//	core.workspace.member_removed           MemberRemovedData{workspaceId, userId}
//	core.user.created                       UserCreatedData{userId, email, role}
//	core.user.updated                       UserUpdatedData{userId, changes}
//	core.user.deleted                       UserDeletedData{userId}
//	core.user.login                         UserLoginData{userId, ipAddress?, userAgent?}
//	core.user.logout                        UserLogoutData{userId, sessionDuration?}
//	core.plugin.installed                   PluginInstalledData{pluginId, tenantId, version?, sequence?}
//	core.plugin.uninstalled                 PluginUninstalledData{pluginId, tenantId, sequence?}
//	core.plugin.activated                   PluginActivatedData{pluginId, tenantId, sequence?}
//	core.plugin.deactivated                 PluginDeactivatedData{pluginId, tenantId, sequence?}
//	core.plugin.configured                  PluginConfiguredData{pluginId, tenantId, changes}
//	core.auth.token_issued                  TokenIssuedData{userId, clientId?, expiresAt}
//	core.auth.login_failed                  LoginFailedData{email, ipAddress?, reason}
//	core.auth.password_reset                PasswordResetData{userId, email}
//	core.auth.password_changed              PasswordChangedData{userId, viaReset}
//	core.api.request                        APIRequestData{method, path, statusCode, responseTime, userId?}
//	core.api.error                          APIErrorData{method, path, statusCode, error}
//
// Fields marked ? are omitted from the JSON when empty. Every event also
// carries its tenant (and optional workspace) in the event envelope, so the
// data repeats a tenant ID only where the tenant is the subject
// (core.tenant.*, core.plugin.*).
//
// The names follow the bus's topic rules (core.<domain>.<action>, past-tense
// actions; login, logout, request, error and reset are allowed as they
// are). Where the TypeScript documentation's names break those rules the
// catalog keeps to the rules: workspace members are
// core.workspace.member_added, not core.workspace.member.added. The
// completion of a password reset, core.auth.password_changed, is an
// addition of this catalog.
//
// Data types are versioned with the event's Metadata.Version ("1.0"). Add
// fields freely (consumers ignore unknown ones); rename or remove none
// without a new version.
//
// This package imports nothing of the bus, so services can share it without
// pulling in a Kafka client.
package catalog

import (
	"time"

	"github.com/plexica/eventbus"
)

// Names of the core events, each typed with its data (see eventbus.Name).
// Each is also the event's topic.
const (
	TenantCreated   eventbus.Name[TenantCreatedData]   = "core.tenant.created"
	TenantUpdated   eventbus.Name[TenantUpdatedData]   = "core.tenant.updated"
	TenantSuspended eventbus.Name[TenantSuspendedData] = "core.tenant.suspended"
	TenantDeleted   eventbus.Name[TenantDeletedData]   = "core.tenant.deleted"

	WorkspaceCreated           eventbus.Name[WorkspaceCreatedData]  = "core.workspace.created"
	WorkspaceUpdated           eventbus.Name[WorkspaceUpdatedData]  = "core.workspace.updated"
	WorkspaceDeleted           eventbus.Name[WorkspaceDeletedData]  = "core.workspace.deleted"
	WorkspaceMemberAdded       eventbus.Name[MemberAddedData]       = "core.workspace.member_added"
	WorkspaceMemberRoleUpdated eventbus.Name[MemberRoleUpdatedData] = "core.workspace.member_role_updated"
	WorkspaceMemberRemoved     eventbus.Name[MemberRemovedData]     = "core.workspace.member_removed"

	UserCreated eventbus.Name[UserCreatedData] = "core.user.created"
	UserUpdated eventbus.Name[UserUpdatedData] = "core.user.updated"
	UserDeleted eventbus.Name[UserDeletedData] = "core.user.deleted"
	UserLogin   eventbus.Name[UserLoginData]   = "core.user.login"
	UserLogout  eventbus.Name[UserLogoutData]  = "core.user.logout"

	PluginInstalled   eventbus.Name[PluginInstalledData]   = "core.plugin.installed"
	PluginUninstalled eventbus.Name[PluginUninstalledData] = "core.plugin.uninstalled"
	PluginActivated   eventbus.Name[PluginActivatedData]   = "core.plugin.activated"
	PluginDeactivated eventbus.Name[PluginDeactivatedData] = "core.plugin.deactivated"
	PluginConfigured  eventbus.Name[PluginConfiguredData]  = "core.plugin.configured"

	AuthTokenIssued     eventbus.Name[TokenIssuedData]     = "core.auth.token_issued"
	AuthLoginFailed     eventbus.Name[LoginFailedData]     = "core.auth.login_failed"
	AuthPasswordReset   eventbus.Name[PasswordResetData]   = "core.auth.password_reset"
	AuthPasswordChanged eventbus.Name[PasswordChangedData] = "core.auth.password_changed"

	APIRequest eventbus.Name[APIRequestData] = "core.api.request"
	APIError   eventbus.Name[APIErrorData]   = "core.api.error"
)

// entry is one event of the catalog: its type and a constructor of its data.
type entry struct {
	typ  string
	data func() any
}

// of makes the entry of a typed name: its data type comes from the name.
func of[T any](name eventbus.Name[T]) entry {
	return entry{string(name), func() any { return new(T) }}
}

// entries lists the catalog's events in order.
var entries = []entry{
	of(TenantCreated),
	of(TenantUpdated),
	of(TenantSuspended),
	of(TenantDeleted),
	of(WorkspaceCreated),
	of(WorkspaceUpdated),
	of(WorkspaceDeleted),
	of(WorkspaceMemberAdded),
	of(WorkspaceMemberRoleUpdated),
	of(WorkspaceMemberRemoved),
	of(UserCreated),
	of(UserUpdated),
	of(UserDeleted),
	of(UserLogin),
	of(UserLogout),
	of(PluginInstalled),
	of(PluginUninstalled),
	of(PluginActivated),
	of(PluginDeactivated),
	of(PluginConfigured),
	of(AuthTokenIssued),
	of(AuthLoginFailed),
	of(AuthPasswordReset),
	of(AuthPasswordChanged),
	of(APIRequest),
	of(APIError),
}

// Types returns every core event type of the catalog, in catalog order.
func Types() []string {
	out := make([]string, len(entries))
	for i, e := range entries {
		out[i] = e.typ
	}
	return out
}

// NewData returns a pointer to a new zero value of eventType's data struct
// (for example *UserCreatedData for core.user.created), ready to decode
// into, and whether the catalog knows eventType.
func NewData(eventType string) (any, bool) {
	for _, e := range entries {
		if e.typ == eventType {
			return e.data(), true
		}
	}
	return nil, false
}

// TenantCreatedData is the data of core.tenant.created: a tenant was
// registered.
type TenantCreatedData struct {
	TenantID string `json:"tenantId"`
	Slug     string `json:"slug"`
	Name     string `json:"name"`
}

// TenantUpdatedData is the data of core.tenant.updated: a tenant's settings
// changed. Changes maps each changed field to its new value.
type TenantUpdatedData struct {
	TenantID string         `json:"tenantId"`
	Changes  map[string]any `json:"changes"`
}

// TenantSuspendedData is the data of core.tenant.suspended: a tenant was
// suspended (its users can no longer sign in; its data is kept).
type TenantSuspendedData struct {
	TenantID string `json:"tenantId"`
	Reason   string `json:"reason,omitempty"`
}

// TenantDeletedData is the data of core.tenant.deleted: a tenant was removed.
type TenantDeletedData struct {
	TenantID string `json:"tenantId"`
}

// WorkspaceCreatedData is the data of core.workspace.created.
type WorkspaceCreatedData struct {
	WorkspaceID string `json:"workspaceId"`
	Slug        string `json:"slug"`
	Name        string `json:"name"`
	CreatorID   string `json:"creatorId"`
}

// WorkspaceUpdatedData is the data of core.workspace.updated. Changes maps
// each changed field to its new value.
type WorkspaceUpdatedData struct {
	WorkspaceID string         `json:"workspaceId"`
	Changes     map[string]any `json:"changes"`
}

// WorkspaceDeletedData is the data of core.workspace.deleted.
type WorkspaceDeletedData struct {
	WorkspaceID string `json:"workspaceId"`
}

// MemberAddedData is the data of core.workspace.member_added. Role is
// "ADMIN", "MEMBER" or "VIEWER".
type MemberAddedData struct {
	WorkspaceID string `json:"workspaceId"`
	UserID      string `json:"userId"`
	Role        string `json:"role"`
	InvitedBy   string `json:"invitedBy,omitempty"`
}

// MemberRoleUpdatedData is the data of core.workspace.member_role_updated.
type MemberRoleUpdatedData struct {
	WorkspaceID string `json:"workspaceId"`
	UserID      string `json:"userId"`
	OldRole     string `json:"oldRole"`
	NewRole     string `json:"newRole"`
}

// MemberRemovedData is the data of core.workspace.member_removed.
type MemberRemovedData struct {
	WorkspaceID string `json:"workspaceId"`
	UserID      string `json:"userId"`
}

// UserCreatedData is the data of core.user.created: a user account was
// created in the event's tenant.
type UserCreatedData struct {
	UserID string `json:"userId"`
	Email  string `json:"email"`
	Role   string `json:"role"`
}

// UserUpdatedData is the data of core.user.updated. Changes maps each
// changed profile field to its new value.
type UserUpdatedData struct {
	UserID  string         `json:"userId"`
	Changes map[string]any `json:"changes"`
}

// UserDeletedData is the data of core.user.deleted.
type UserDeletedData struct {
	UserID string `json:"userId"`
}

// UserLoginData is the data of core.user.login: a user signed in.
type UserLoginData struct {
	UserID    string `json:"userId"`
	IPAddress string `json:"ipAddress,omitempty"`
	UserAgent string `json:"userAgent,omitempty"`
}

// UserLogoutData is the data of core.user.logout: a user signed out.
// SessionDuration is the session's length in milliseconds.
type UserLogoutData struct {
	UserID          string `json:"userId"`
	SessionDuration int64  `json:"sessionDuration,omitempty"`
}

// SessionLength returns SessionDuration as a time.Duration.
func (d UserLogoutData) SessionLength() time.Duration {
	return time.Duration(d.SessionDuration) * time.Millisecond
}

// PluginInstalledData is the data of core.plugin.installed: a plugin was
// installed for a tenant.
type PluginInstalledData struct {
	PluginID string `json:"pluginId"`
	TenantID string `json:"tenantId"`
	Version  string `json:"version,omitempty"`
	// Sequence, when the platform sets it, increases with each lifecycle
	// event (installed, activated, deactivated, uninstalled) of one plugin
	// and tenant; PluginHost.FollowLifecycle orders by it rather than by
	// the publishers' clocks. 0: not set.
	Sequence int64 `json:"sequence,omitempty"`
}

// PluginUninstalledData is the data of core.plugin.uninstalled.
type PluginUninstalledData struct {
	PluginID string `json:"pluginId"`
	TenantID string `json:"tenantId"`
	// Sequence, when the platform sets it, increases with each lifecycle
	// event (installed, activated, deactivated, uninstalled) of one plugin
	// and tenant; PluginHost.FollowLifecycle orders by it rather than by
	// the publishers' clocks. 0: not set.
	Sequence int64 `json:"sequence,omitempty"`
}

// PluginActivatedData is the data of core.plugin.activated: an installed
// plugin was turned on for a tenant.
type PluginActivatedData struct {
	PluginID string `json:"pluginId"`
	TenantID string `json:"tenantId"`
	// Sequence, when the platform sets it, increases with each lifecycle
	// event (installed, activated, deactivated, uninstalled) of one plugin
	// and tenant; PluginHost.FollowLifecycle orders by it rather than by
	// the publishers' clocks. 0: not set.
	Sequence int64 `json:"sequence,omitempty"`
}

// PluginDeactivatedData is the data of core.plugin.deactivated: an
// installed plugin was turned off for a tenant (it stays installed).
type PluginDeactivatedData struct {
	PluginID string `json:"pluginId"`
	TenantID string `json:"tenantId"`
	// Sequence, when the platform sets it, increases with each lifecycle
	// event (installed, activated, deactivated, uninstalled) of one plugin
	// and tenant; PluginHost.FollowLifecycle orders by it rather than by
	// the publishers' clocks. 0: not set.
	Sequence int64 `json:"sequence,omitempty"`
}

// PluginConfiguredData is the data of core.plugin.configured: a plugin's
// configuration for a tenant changed. Changes maps each changed setting to
// its new value; secrets are never included.
type PluginConfiguredData struct {
	PluginID string         `json:"pluginId"`
	TenantID string         `json:"tenantId"`
	Changes  map[string]any `json:"changes"`
}

// TokenIssuedData is the data of core.auth.token_issued: an access token
// was issued to a user (for a client application).
type TokenIssuedData struct {
	UserID    string    `json:"userId"`
	ClientID  string    `json:"clientId,omitempty"`
	ExpiresAt time.Time `json:"expiresAt"`
}

// LoginFailedData is the data of core.auth.login_failed: a sign-in was
// refused. Reason is a short code such as "bad_password" or
// "account_locked"; the password is never included.
type LoginFailedData struct {
	Email     string `json:"email"`
	IPAddress string `json:"ipAddress,omitempty"`
	Reason    string `json:"reason"`
}

// PasswordResetData is the data of core.auth.password_reset: a user asked
// for a password reset (the reset link was sent to Email).
type PasswordResetData struct {
	UserID string `json:"userId"`
	Email  string `json:"email"`
}

// PasswordChangedData is the data of core.auth.password_changed: a user's
// password was changed, through a reset when ViaReset is true.
type PasswordChangedData struct {
	UserID   string `json:"userId"`
	ViaReset bool   `json:"viaReset"`
}

// APIRequestData is the data of core.api.request: an API request was
// served. ResponseTime is in milliseconds.
type APIRequestData struct {
	Method       string `json:"method"`
	Path         string `json:"path"`
	StatusCode   int    `json:"statusCode"`
	ResponseTime int64  `json:"responseTime"`
	UserID       string `json:"userId,omitempty"`
}

// APIErrorData is the data of core.api.error: an API request failed.
type APIErrorData struct {
	Method     string `json:"method"`
	Path       string `json:"path"`
	StatusCode int    `json:"statusCode"`
	Error      string `json:"error"`
}
