package gateway

import (
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"net/http"
	"strings"

	"github.com/plexica/eventbus"
	"github.com/plexica/eventbus/dlqhttp"
	"github.com/plexica/eventbus/topic"
)

// PluginScope is what a plugin token may do: publish its plugin's own
// events (plugin.<PluginID>.*), for TenantID only when it is set.
type PluginScope struct {
	// PluginID is the plugin (kebab-case). Required.
	PluginID string
	// TenantID, when set, is the one tenant the token publishes for;
	// empty: any tenant (a plugin deployment serving many tenants).
	TenantID string
}

// principal is who a request acts for: an admin (every tenant), one
// tenant, or one plugin (and maybe one tenant).
type principal struct {
	admin  bool
	tenant string // a tenant token's, or a plugin token's when it has one
	plugin string // a plugin token's plugin ID
}

// mayPublish returns why p may not publish an event of topic for tenant,
// or nil.
func (p principal) mayPublish(topic, tenant string) error {
	switch {
	case p.admin:
		return nil
	case p.plugin != "" && !strings.HasPrefix(topic, "plugin."+p.plugin+"."):
		return fmt.Errorf("%w: %w: this token is plugin %s's and may publish only plugin.%s.* events, not %q",
			ErrForbidden, eventbus.ErrPluginScope, p.plugin, p.plugin, topic)
	case p.tenant != "" && tenant != p.tenant:
		return fmt.Errorf("%w: the event is for tenant %q; this token may publish only for tenant %q", ErrForbidden, tenant, p.tenant)
	}
	return nil
}

// maySee reports whether p may see a subscription of tenant ("" for every
// tenant): an admin any, a token scoped to a tenant only that tenant's.
func (p principal) maySee(tenant string) bool {
	return p.admin || (p.tenant != "" && tenant == p.tenant)
}

// ParsePluginTokens parses a list of plugin tokens, as `eventbus serve
// --plugin-token` takes it, into Config.PluginTokens: comma separated
// entries, each
//
//	<token>=plugin:<pluginId>                    any tenant
//	<token>=plugin:<pluginId>:tenant:<tenantId>  one tenant
//
// Tokens follow the rules of dlqhttp.ParseTokens (at least 16
// characters). Errors wrap eventbus.ErrInvalidConfig and name the entry by
// position, never by its token.
func ParsePluginTokens(spec string) (map[string]PluginScope, error) {
	out := map[string]PluginScope{}
	n := 0
	for raw := range strings.SplitSeq(spec, ",") {
		entry := strings.TrimSpace(raw)
		if entry == "" {
			continue
		}
		n++
		token, scope, ok := strings.Cut(entry, "=plugin:")
		if !ok {
			return nil, fmt.Errorf("%w: plugin token entry %d: write <token>=plugin:<pluginId> or <token>=plugin:<pluginId>:tenant:<tenantId>", eventbus.ErrInvalidConfig, n)
		}
		if admin, _, err := dlqhttp.ParseTokens(token); err != nil || len(admin) != 1 {
			return nil, fmt.Errorf("%w: plugin token entry %d: the token is not a valid bearer token of at least %d characters (letters, digits, - . _ ~ + /)",
				eventbus.ErrInvalidConfig, n, dlqhttp.MinTokenLength)
		}
		id, tenant, _ := strings.Cut(scope, ":tenant:")
		ps := PluginScope{PluginID: id, TenantID: tenant}
		if err := ps.validate(); err != nil {
			return nil, fmt.Errorf("%w: plugin token entry %d: %v", eventbus.ErrInvalidConfig, n, err)
		}
		if prev, seen := out[token]; seen && prev != ps {
			return nil, fmt.Errorf("%w: plugin token entry %d repeats an earlier token with another scope", eventbus.ErrInvalidConfig, n)
		}
		out[token] = ps
	}
	return out, nil
}

func (s PluginScope) validate() error {
	if err := topic.ValidatePluginID(s.PluginID); err != nil {
		return err
	}
	if s.TenantID != "" {
		return eventbus.ValidateTenantID(s.TenantID)
	}
	return nil
}

// credential is one token kept as its SHA-256, so every comparison has
// the same length and takes constant time.
type credential struct {
	sum [sha256.Size]byte
	who principal
}

type authenticator struct {
	creds []credential
	open  bool // Config.AllowUnauthenticated
}

func newAuthenticator(cfg Config) (*authenticator, error) {
	a := &authenticator{open: cfg.AllowUnauthenticated}
	seen := map[string]bool{}
	for i, token := range cfg.AdminTokens {
		if strings.TrimSpace(token) == "" {
			return nil, fmt.Errorf("%w: gateway Config.AdminTokens[%d] is empty", eventbus.ErrInvalidConfig, i)
		}
		seen[token] = true
		a.creds = append(a.creds, credential{sha256.Sum256([]byte(token)), principal{admin: true}})
	}
	for token, tenant := range cfg.TenantTokens {
		if strings.TrimSpace(token) == "" {
			return nil, fmt.Errorf("%w: gateway Config.TenantTokens has an empty token for tenant %q", eventbus.ErrInvalidConfig, tenant)
		}
		if err := eventbus.ValidateTenantID(tenant); err != nil {
			return nil, fmt.Errorf("%w: gateway Config.TenantTokens: %v", eventbus.ErrInvalidConfig, err)
		}
		if seen[token] {
			return nil, fmt.Errorf("%w: gateway Config.TenantTokens: the token for tenant %q is also an admin token", eventbus.ErrInvalidConfig, tenant)
		}
		a.creds = append(a.creds, credential{sha256.Sum256([]byte(token)), principal{tenant: tenant}})
	}
	for token, scope := range cfg.PluginTokens {
		if strings.TrimSpace(token) == "" {
			return nil, fmt.Errorf("%w: gateway Config.PluginTokens has an empty token for plugin %q", eventbus.ErrInvalidConfig, scope.PluginID)
		}
		if err := scope.validate(); err != nil {
			return nil, fmt.Errorf("%w: gateway Config.PluginTokens: %v", eventbus.ErrInvalidConfig, err)
		}
		if seen[token] || cfg.TenantTokens[token] != "" {
			return nil, fmt.Errorf("%w: gateway Config.PluginTokens: the token of plugin %q is also an admin or tenant token", eventbus.ErrInvalidConfig, scope.PluginID)
		}
		a.creds = append(a.creds, credential{sha256.Sum256([]byte(token)), principal{plugin: scope.PluginID, tenant: scope.TenantID}})
	}
	if len(a.creds) == 0 && !a.open {
		return nil, fmt.Errorf("%w: the gateway needs at least one admin or tenant token (or AllowUnauthenticated, for local development only)", eventbus.ErrInvalidConfig)
	}
	return a, nil
}

// authenticate returns the principal of r's bearer token. Presented
// credentials must always be valid; none are needed only under
// AllowUnauthenticated.
func (a *authenticator) authenticate(r *http.Request) (principal, error) {
	header := r.Header.Get("Authorization")
	if header == "" {
		if a.open {
			return principal{admin: true}, nil
		}
		return principal{}, fmt.Errorf("%w: no Authorization header", ErrUnauthorized)
	}
	scheme, token, _ := strings.Cut(header, " ")
	token = strings.TrimSpace(token)
	if !strings.EqualFold(scheme, "Bearer") || token == "" {
		return principal{}, fmt.Errorf("%w: the Authorization header is not \"Bearer <token>\"", ErrUnauthorized)
	}
	sum := sha256.Sum256([]byte(token))
	var who principal
	found := 0
	for _, c := range a.creds { // no early exit: the time does not depend on which token matched
		if subtle.ConstantTimeCompare(sum[:], c.sum[:]) == 1 {
			who, found = c.who, 1
		}
	}
	if found == 0 {
		return principal{}, fmt.Errorf("%w: unknown token", ErrUnauthorized)
	}
	return who, nil
}
