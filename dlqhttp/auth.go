package dlqhttp

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"unicode"

	"github.com/plexica/eventbus"
	"github.com/plexica/eventbus/deadletter"
	"github.com/plexica/eventbus/internal/httpjson"
)

// Token is one bearer token of the API with its name and scope.
type Token struct {
	// Name says who holds the token; the audit trail records it with
	// every action taken with the token. Letters, digits and - . _ @, at
	// most MaxTokenNameLength characters. Empty: the token's fingerprint,
	// "token-" and the first 8 hex digits of its SHA-256, which names it
	// without revealing it.
	Name string
	// Secret is the bearer token itself (see ParseTokens for its syntax).
	Secret string
	// Tenant, when set, scopes the token to that tenant; empty: an admin token.
	Tenant string
}

// Admin reports whether the token is an admin token.
func (t Token) Admin() bool { return t.Tenant == "" }

// MaxTokenNameLength is the longest token name accepted.
const MaxTokenNameLength = 64

// ParseTokens parses a token list as given by the --admin-token flag or the
// EVENTBUS_ADMIN_TOKENS environment variable into the AdminTokens and
// TenantTokens of Options, dropping the names (see ParseNamedTokens, which
// keeps them).
func ParseTokens(spec string) (admin []string, tenant map[string]string, err error) {
	tokens, err := ParseNamedTokens(spec)
	if err != nil {
		return nil, nil, err
	}
	for _, t := range tokens {
		if t.Admin() {
			admin = append(admin, t.Secret)
			continue
		}
		if tenant == nil {
			tenant = map[string]string{}
		}
		tenant[t.Secret] = t.Tenant
	}
	return admin, tenant, nil
}

// ParseNamedTokens parses a token list as given by the --admin-token flag or
// the EVENTBUS_ADMIN_TOKENS environment variable into the Tokens of Options.
//
// The list is comma separated; blanks around entries are ignored, and so
// are empty entries. Each entry is one of:
//
//	[<name>:]<token>                    an admin token: access to every tenant
//	[<name>:]<token>=tenant:<tenantId>  a token scoped to one tenant
//
// For example "ana:k8Qz1vXw9mR2pL7a,acme-ops:Yt4nB6cD0eF3gH5j=tenant:acme" gives
// an admin token named ana and a token for tenant acme named acme-ops. The
// name is what the audit trail records (see Token.Name; a token without one
// is named by its fingerprint). A token is an RFC 6750 bearer token:
// letters, digits and - . _ ~ + /, optionally ending in = padding (so
// base64 tokens work as they are); it has no colon, so the first colon of
// an entry ends its name. A tenant ID may not contain blanks or commas.
// Listing a token twice is allowed only with the same name and scope; two
// tokens may not share a name.
//
// A token must have at least MinTokenLength characters (before padding).
// Errors wrap eventbus.ErrInvalidConfig and name the entry by position,
// never by its token.
func ParseNamedTokens(spec string) ([]Token, error) {
	var out []Token
	seen := map[string]Token{} // secret -> token
	n := 0
	for raw := range strings.SplitSeq(spec, ",") {
		entry := strings.TrimSpace(raw)
		if entry == "" {
			continue
		}
		n++
		var tok Token
		if name, rest, named := strings.Cut(entry, ":"); named && !strings.Contains(name, "=") {
			tok.Name, entry = strings.TrimSpace(name), rest
			if err := checkTokenName(tok.Name); err != nil {
				return nil, fmt.Errorf("%w: token list entry %d: %v (write [<name>:]<token> or [<name>:]<token>=tenant:<tenantId>)", eventbus.ErrInvalidConfig, n, err)
			}
		}
		secret, tenantID, scoped := strings.Cut(entry, "=tenant:")
		tok.Secret = strings.TrimSpace(secret)
		if err := checkToken(tok.Secret); err != nil {
			return nil, fmt.Errorf("%w: token list entry %d: %v (write [<name>:]<token> or [<name>:]<token>=tenant:<tenantId>)", eventbus.ErrInvalidConfig, n, err)
		}
		if l := len(strings.TrimRight(tok.Secret, "=")); l < MinTokenLength {
			return nil, fmt.Errorf("%w: token list entry %d has %d characters, too easy to guess; use at least %d (for example: openssl rand -base64 24)",
				eventbus.ErrInvalidConfig, n, l, MinTokenLength)
		}
		if scoped {
			tok.Tenant = strings.TrimSpace(tenantID)
			if err := checkTenantID(tok.Tenant); err != nil {
				return nil, fmt.Errorf("%w: token list entry %d: %v", eventbus.ErrInvalidConfig, n, err)
			}
		}
		if prev, dup := seen[tok.Secret]; dup {
			if prev != tok {
				return nil, fmt.Errorf("%w: token list entry %d repeats an earlier token with another name or scope", eventbus.ErrInvalidConfig, n)
			}
			continue
		}
		seen[tok.Secret] = tok
		out = append(out, tok)
	}
	if err := checkUniqueNames(out); err != nil {
		return nil, fmt.Errorf("%w: %v", eventbus.ErrInvalidConfig, err)
	}
	return out, nil
}

// checkTokenName checks a token's name.
func checkTokenName(name string) error {
	if name == "" {
		return fmt.Errorf("empty token name before \":\"")
	}
	if len(name) > MaxTokenNameLength {
		return fmt.Errorf("token name of %d characters; the most is %d", len(name), MaxTokenNameLength)
	}
	for _, c := range name {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', strings.ContainsRune("-._@", c):
		default:
			return fmt.Errorf("a token name may hold only letters, digits and - . _ @; found %q", c)
		}
	}
	return nil
}

// checkUniqueNames fails when two tokens have the same name (after
// unnamed ones are named by fingerprint).
func checkUniqueNames(tokens []Token) error {
	names := map[string]bool{}
	for _, t := range tokens {
		name := tokenName(t)
		if names[name] {
			return fmt.Errorf("two tokens are named %q; give each its own name, so that the audit trail can tell them apart", name)
		}
		names[name] = true
	}
	return nil
}

// tokenName is t's name, or its fingerprint when it has none.
func tokenName(t Token) string {
	if t.Name != "" {
		return t.Name
	}
	sum := sha256.Sum256([]byte(t.Secret))
	return "token-" + hex.EncodeToString(sum[:4])
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

// Principal is who a request acts for: the name and scope of the token it
// presented.
type Principal struct {
	// Name is the token's name (Token.Name, or its fingerprint); "anonymous"
	// for a request let in by Options.AllowUnauthenticated.
	Name string
	// Tenant is the one tenant a tenant token may see; empty for an admin.
	Tenant string
}

// Admin reports whether p has admin access: every tenant, and the
// operations of the cluster (topics, consumer groups).
func (p Principal) Admin() bool { return p.Tenant == "" }

// mayAccess reports whether p may see, retry and delete e: an admin any
// entry, a tenant token only an entry of a known tenant that is its own.
func (p Principal) mayAccess(e deadletter.Entry) bool {
	if p.Admin() {
		return true
	}
	tenant, known := e.VerifiedTenant()
	return known && tenant == p.Tenant
}

// String says who p is: its name and scope, "ana (admin)" or
// "acme-ops (tenant acme)".
func (p Principal) String() string {
	if p.Admin() {
		return p.Name + " (admin)"
	}
	return p.Name + " (tenant " + p.Tenant + ")"
}

// anonymousName is the Principal.Name of a request let in without
// credentials.
const anonymousName = "anonymous"

// credential is one configured token, kept as its SHA-256 so that every
// comparison is of equal length and constant time.
type credential struct {
	sum [sha256.Size]byte
	who Principal
}

// Authenticator checks the bearer tokens of requests against the
// configured ones. One Authenticator serves the DLQ API and, in eventbus
// serve, the console's other APIs, so that the same tokens open both.
type Authenticator struct {
	creds []credential
	// anonymous is the principal of a request without credentials, when
	// Options.AllowUnauthenticated lets one in.
	anonymous *Principal
}

// NewAuthenticator returns the Authenticator of the tokens of opts
// (AdminTokens, TenantTokens, Tokens and AllowUnauthenticated; the other
// fields are not read). It fails as New does.
func NewAuthenticator(opts Options) (*Authenticator, error) {
	a := &Authenticator{}
	tokens := make([]Token, 0, len(opts.AdminTokens)+len(opts.TenantTokens)+len(opts.Tokens))
	for i, token := range opts.AdminTokens {
		if err := checkToken(token); err != nil {
			return nil, fmt.Errorf("%w: Options.AdminTokens[%d]: %v", eventbus.ErrInvalidConfig, i, err)
		}
		tokens = append(tokens, Token{Secret: token})
	}
	for token, tenantID := range opts.TenantTokens {
		if err := checkToken(token); err != nil {
			return nil, fmt.Errorf("%w: Options.TenantTokens: a token for tenant %q: %v", eventbus.ErrInvalidConfig, tenantID, err)
		}
		if err := checkTenantID(tenantID); err != nil {
			return nil, fmt.Errorf("%w: Options.TenantTokens: %v", eventbus.ErrInvalidConfig, err)
		}
		tokens = append(tokens, Token{Secret: token, Tenant: tenantID})
	}
	for i, t := range opts.Tokens {
		if err := checkToken(t.Secret); err != nil {
			return nil, fmt.Errorf("%w: Options.Tokens[%d] (%q): %v", eventbus.ErrInvalidConfig, i, t.Name, err)
		}
		if t.Name != "" {
			if err := checkTokenName(t.Name); err != nil {
				return nil, fmt.Errorf("%w: Options.Tokens[%d]: %v", eventbus.ErrInvalidConfig, i, err)
			}
		}
		if t.Tenant != "" {
			if err := checkTenantID(t.Tenant); err != nil {
				return nil, fmt.Errorf("%w: Options.Tokens[%d] (%q): %v", eventbus.ErrInvalidConfig, i, t.Name, err)
			}
		}
		tokens = append(tokens, t)
	}
	scopes := map[string]Token{}
	var unique []Token
	for _, t := range tokens {
		if prev, seen := scopes[t.Secret]; seen {
			if prev.Tenant != t.Tenant {
				return nil, fmt.Errorf("%w: a token is given both as an admin token and for tenant %q, or for two tenants", eventbus.ErrInvalidConfig, t.Tenant+prev.Tenant)
			}
			if prev.Name != t.Name && t.Name != "" && prev.Name != "" {
				return nil, fmt.Errorf("%w: a token is given twice, named %q and %q", eventbus.ErrInvalidConfig, prev.Name, t.Name)
			}
			continue
		}
		scopes[t.Secret] = t
		unique = append(unique, t)
	}
	if err := checkUniqueNames(unique); err != nil {
		return nil, fmt.Errorf("%w: %v", eventbus.ErrInvalidConfig, err)
	}
	for _, t := range unique {
		a.creds = append(a.creds, credential{sha256.Sum256([]byte(t.Secret)), Principal{Name: tokenName(t), Tenant: t.Tenant}})
	}
	if len(a.creds) == 0 && !opts.AllowUnauthenticated {
		return nil, fmt.Errorf("%w: dlqhttp needs at least one admin or tenant token (or AllowUnauthenticated, for local development only)", eventbus.ErrInvalidConfig)
	}
	if opts.AllowUnauthenticated {
		a.anonymous = &Principal{Name: anonymousName}
	}
	return a, nil
}

// Errors of Authenticator.Authenticate.
var (
	// ErrMissingToken: the request has no Authorization header.
	ErrMissingToken = errors.New("missing bearer token: send Authorization: Bearer <token>")
	// ErrInvalidToken: the request's credentials are not a configured token.
	ErrInvalidToken = errors.New("invalid bearer token")
)

// Authenticate finds the principal of r. With no tokens configured (and
// AllowUnauthenticated), everyone is admin. With tokens, a request without
// credentials is admin only under AllowUnauthenticated, and presented
// credentials must always be valid. It fails with ErrMissingToken or
// ErrInvalidToken.
func (a *Authenticator) Authenticate(r *http.Request) (Principal, error) {
	if a.anonymous != nil && len(a.creds) == 0 {
		return *a.anonymous, nil
	}
	header := r.Header.Get("Authorization")
	if header == "" {
		if a.anonymous != nil {
			return *a.anonymous, nil
		}
		return Principal{}, ErrMissingToken
	}
	scheme, token, _ := strings.Cut(header, " ")
	token = strings.TrimSpace(token)
	if !strings.EqualFold(scheme, "Bearer") || token == "" {
		return Principal{}, ErrInvalidToken
	}
	sum := sha256.Sum256([]byte(token))
	var who Principal
	found := 0
	for _, c := range a.creds { // no early exit: the time taken does not depend on which token matched
		if subtle.ConstantTimeCompare(sum[:], c.sum[:]) == 1 {
			who, found = c.who, 1
		}
	}
	if found == 0 {
		return Principal{}, ErrInvalidToken
	}
	return who, nil
}

// Reject answers a request whose Authenticate failed with err: 401 with
// WWW-Authenticate and the JSON error body of the API.
func Reject(w http.ResponseWriter, err error) {
	if errors.Is(err, ErrMissingToken) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="eventbus"`)
		httpjson.WriteError(w, http.StatusUnauthorized, httpjson.CodeUnauthorized, ErrMissingToken.Error())
		return
	}
	w.Header().Set("WWW-Authenticate", `Bearer realm="eventbus", error="invalid_token"`)
	httpjson.WriteError(w, http.StatusUnauthorized, httpjson.CodeUnauthorized, ErrInvalidToken.Error())
}
