package gateway

import (
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"net/http"
	"strings"

	"github.com/plexica/eventbus"
)

// principal is who a request acts for: an admin (every tenant) or one
// tenant.
type principal struct {
	admin  bool
	tenant string
}

// mayActFor reports whether p may publish or subscribe for tenant.
func (p principal) mayActFor(tenant string) bool { return p.admin || p.tenant == tenant }

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
