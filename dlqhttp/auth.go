package dlqhttp

import (
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"net/http"
	"strings"
	"unicode"

	"github.com/plexica/eventbus"
)

// ParseTokens parses a token list as given by the --admin-token flag or the
// EVENTBUS_ADMIN_TOKENS environment variable into the AdminTokens and
// TenantTokens of Options.
//
// The list is comma separated; blanks around entries are ignored, and so
// are empty entries. Each entry is one of:
//
//	<token>                    an admin token: access to every tenant
//	<token>=tenant:<tenantId>  a token scoped to one tenant
//
// For example "k8Qz1vXw9mR2pL7a,Yt4nB6cD0eF3gH5j=tenant:acme" gives one admin
// token and one token for tenant acme. A token is an RFC 6750 bearer token:
// letters, digits and - . _ ~ + /, optionally ending in = padding (so
// base64 tokens work as they are). A tenant ID may not contain blanks or
// commas. Listing a token twice is allowed only with the same scope.
//
// A token must have at least MinTokenLength characters (before padding).
// Errors wrap eventbus.ErrInvalidConfig and name the entry by position,
// never by its token.
func ParseTokens(spec string) (admin []string, tenant map[string]string, err error) {
	scopes := map[string]string{} // token -> "" (admin) or tenant ID
	n := 0
	for raw := range strings.SplitSeq(spec, ",") {
		entry := strings.TrimSpace(raw)
		if entry == "" {
			continue
		}
		n++
		token, tenantID, scoped := strings.Cut(entry, "=tenant:")
		token = strings.TrimSpace(token)
		if err := checkToken(token); err != nil {
			return nil, nil, fmt.Errorf("%w: token list entry %d: %v (write <token> or <token>=tenant:<tenantId>)", eventbus.ErrInvalidConfig, n, err)
		}
		if l := len(strings.TrimRight(token, "=")); l < MinTokenLength {
			return nil, nil, fmt.Errorf("%w: token list entry %d has %d characters, too easy to guess; use at least %d (for example: openssl rand -base64 24)",
				eventbus.ErrInvalidConfig, n, l, MinTokenLength)
		}
		if scoped {
			tenantID = strings.TrimSpace(tenantID)
			if err := checkTenantID(tenantID); err != nil {
				return nil, nil, fmt.Errorf("%w: token list entry %d: %v", eventbus.ErrInvalidConfig, n, err)
			}
		}
		if prev, seen := scopes[token]; seen {
			if prev != tenantID {
				return nil, nil, fmt.Errorf("%w: token list entry %d repeats an earlier token with another scope", eventbus.ErrInvalidConfig, n)
			}
			continue
		}
		scopes[token] = tenantID
		if scoped {
			if tenant == nil {
				tenant = map[string]string{}
			}
			tenant[token] = tenantID
		} else {
			admin = append(admin, token)
		}
	}
	return admin, tenant, nil
}

// checkToken checks that token is an RFC 6750 b64token:
// 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"=".
// MinTokenLength is the fewest characters ParseTokens accepts in a token.
const MinTokenLength = 16

func checkToken(token string) error {
	body := strings.TrimRight(token, "=")
	if body == "" {
		return fmt.Errorf("empty token")
	}
	for _, c := range body {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case strings.ContainsRune("-._~+/", c):
		default:
			return fmt.Errorf("a token may hold only letters, digits and - . _ ~ + / (then = padding); found %q", c)
		}
	}
	return nil
}

func checkTenantID(id string) error {
	if id == "" {
		return fmt.Errorf("empty tenant ID after \"tenant:\"")
	}
	if strings.ContainsFunc(id, func(c rune) bool { return c == ',' || unicode.IsSpace(c) || unicode.IsControl(c) }) {
		return fmt.Errorf("tenant ID %q has a blank, comma or control character", id)
	}
	return nil
}

// principal is who a request acts for.
type principal struct {
	admin  bool
	tenant string // for a tenant token: the one tenant it may see
}

// mayAccess reports whether p may see, retry and delete e: an admin any
// entry, a tenant token only an entry of a known tenant that is its own.
func (p principal) mayAccess(e eventbus.FailedEvent) bool {
	if p.admin {
		return true
	}
	tenant, known := e.VerifiedTenant()
	return known && tenant == p.tenant
}

func (p principal) String() string {
	if p.admin {
		return "admin"
	}
	return "tenant:" + p.tenant
}

// credential is one configured token, kept as its SHA-256 so that every
// comparison is of equal length and constant time.
type credential struct {
	sum [sha256.Size]byte
	who principal
}

type authenticator struct {
	creds []credential
	// anonymous is the principal of a request without credentials, when
	// Options.AllowUnauthenticated lets one in.
	anonymous *principal
}

func newAuthenticator(opts Options) (*authenticator, error) {
	a := &authenticator{}
	seen := map[string]bool{}
	for i, token := range opts.AdminTokens {
		if err := checkToken(token); err != nil {
			return nil, fmt.Errorf("%w: Options.AdminTokens[%d]: %v", eventbus.ErrInvalidConfig, i, err)
		}
		if !seen[token] {
			seen[token] = true
			a.creds = append(a.creds, credential{sha256.Sum256([]byte(token)), principal{admin: true}})
		}
	}
	for token, tenantID := range opts.TenantTokens {
		if err := checkToken(token); err != nil {
			return nil, fmt.Errorf("%w: Options.TenantTokens: a token for tenant %q: %v", eventbus.ErrInvalidConfig, tenantID, err)
		}
		if err := checkTenantID(tenantID); err != nil {
			return nil, fmt.Errorf("%w: Options.TenantTokens: %v", eventbus.ErrInvalidConfig, err)
		}
		if seen[token] {
			return nil, fmt.Errorf("%w: Options.TenantTokens: the token for tenant %q is also an admin token", eventbus.ErrInvalidConfig, tenantID)
		}
		a.creds = append(a.creds, credential{sha256.Sum256([]byte(token)), principal{tenant: tenantID}})
	}
	if len(a.creds) == 0 && !opts.AllowUnauthenticated {
		return nil, fmt.Errorf("%w: dlqhttp needs at least one admin or tenant token (or AllowUnauthenticated, for local development only)", eventbus.ErrInvalidConfig)
	}
	if opts.AllowUnauthenticated {
		a.anonymous = &principal{admin: true}
	}
	return a, nil
}

// authFailure says why a request was not let in.
type authFailure int

const (
	authOK authFailure = iota
	authMissing
	authInvalid
)

// authenticate finds the principal of r. With no tokens configured (and
// AllowUnauthenticated), everyone is admin. With tokens, a request without
// credentials is admin only under AllowUnauthenticated, and presented
// credentials must always be valid.
func (a *authenticator) authenticate(r *http.Request) (principal, authFailure) {
	if a.anonymous != nil && len(a.creds) == 0 {
		return *a.anonymous, authOK
	}
	header := r.Header.Get("Authorization")
	if header == "" {
		if a.anonymous != nil {
			return *a.anonymous, authOK
		}
		return principal{}, authMissing
	}
	scheme, token, _ := strings.Cut(header, " ")
	token = strings.TrimSpace(token)
	if !strings.EqualFold(scheme, "Bearer") || token == "" {
		return principal{}, authInvalid
	}
	sum := sha256.Sum256([]byte(token))
	var who principal
	found := 0
	for _, c := range a.creds { // no early exit: the time taken does not depend on which token matched
		if subtle.ConstantTimeCompare(sum[:], c.sum[:]) == 1 {
			who, found = c.who, 1
		}
	}
	if found == 0 {
		return principal{}, authInvalid
	}
	return who, authOK
}
