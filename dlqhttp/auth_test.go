package dlqhttp

import (
	"errors"
	"maps"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/plexica/eventbus"
)

func TestParseTokens(t *testing.T) {
	tests := []struct {
		spec   string
		admin  []string
		tenant map[string]string
	}{
		{"", nil, nil},
		{" , ,", nil, nil},
		{"admin-token-0001", []string{"admin-token-0001"}, nil},
		{" admin-token-0001 , admin-token-0002 ", []string{"admin-token-0001", "admin-token-0002"}, nil},
		{"admin-token-0001,tenant-token-001=tenant:acme", []string{"admin-token-0001"}, map[string]string{"tenant-token-001": "acme"}},
		{" tenant-token-001=tenant:acme ,tenant-token-002=tenant:globex", nil, map[string]string{"tenant-token-001": "acme", "tenant-token-002": "globex"}},
		{"YWJjZGVmZ2hpamtsbW5vcA==,YWJjZGVmZ2hpamtsbW5vcHE==tenant:acme", []string{"YWJjZGVmZ2hpamtsbW5vcA=="}, map[string]string{"YWJjZGVmZ2hpamtsbW5vcHE=": "acme"}}, // base64 padding
		{"a-b.c_d~e+f/g0123", []string{"a-b.c_d~e+f/g0123"}, nil},
		{"admin-token-0001,admin-token-0001,tenant-token-001=tenant:acme,tenant-token-001=tenant:acme", []string{"admin-token-0001"}, map[string]string{"tenant-token-001": "acme"}},
	}
	for _, tt := range tests {
		admin, tenant, err := ParseTokens(tt.spec)
		if err != nil {
			t.Errorf("ParseTokens(%q): %v", tt.spec, err)
			continue
		}
		if !slices.Equal(admin, tt.admin) || !maps.Equal(tenant, tt.tenant) {
			t.Errorf("ParseTokens(%q) = %q, %v; want %q, %v", tt.spec, admin, tenant, tt.admin, tt.tenant)
		}
	}
}

func TestParseTokensErrors(t *testing.T) {
	for _, spec := range []string{
		"=tenant:acme",                       // no token
		"short-token",                        // fewer than MinTokenLength characters
		"s3cret=tenant:",                     // no tenant
		"s3cret=tenent:acme",                 // typo: must not become an admin token
		"s3cret=admin",                       // unknown scope
		"two words",                          // blank in a token
		"s3cret=tenant:ac me",                // blank in a tenant
		"s3cret,s3cret=tenant:acme",          // one token, two scopes
		"s3cret=tenant:acme,s3cret=tenant:b", // one token, two tenants
		"tök",                                // not a b64token
		"==",                                 // padding only
	} {
		_, _, err := ParseTokens(spec)
		if !errors.Is(err, eventbus.ErrInvalidConfig) {
			t.Errorf("ParseTokens(%q): %v, want ErrInvalidConfig", spec, err)
			continue
		}
		if strings.Contains(err.Error(), "s3cret") {
			t.Errorf("ParseTokens(%q): the error shows the token: %v", spec, err)
		}
	}
}

func TestAuthenticator(t *testing.T) {
	a, err := NewAuthenticator(Options{AdminTokens: []string{"adm"}, TenantTokens: map[string]string{"ten": "acme"},
		Tokens: []Token{{Name: "ana", Secret: "ana-secret"}, {Name: "acme-ops", Secret: "ops-secret", Tenant: "acme"}}})
	if err != nil {
		t.Fatal(err)
	}
	check := func(header string, want Principal, wantErr error) {
		t.Helper()
		r := httptest.NewRequest("GET", "/api/dlq/stats", nil)
		if header != "" {
			r.Header.Set("Authorization", header)
		}
		who, err := a.Authenticate(r)
		if who != want || !errors.Is(err, wantErr) || (wantErr == nil) != (err == nil) {
			t.Errorf("%q: %+v %v, want %+v %v", header, who, err, want, wantErr)
		}
	}
	adm := Principal{Name: tokenName(Token{Secret: "adm"})}
	if !strings.HasPrefix(adm.Name, "token-") || len(adm.Name) != len("token-")+8 {
		t.Errorf("an unnamed token is named %q, want token-<8 hex digits>", adm.Name)
	}
	check("", Principal{}, ErrMissingToken)
	check("Bearer adm", adm, nil)
	check("bearer  adm ", adm, nil)
	check("Bearer ten", Principal{Name: tokenName(Token{Secret: "ten"}), Tenant: "acme"}, nil)
	check("Bearer ana-secret", Principal{Name: "ana"}, nil)
	check("Bearer ops-secret", Principal{Name: "acme-ops", Tenant: "acme"}, nil)
	check("Bearer ad", Principal{}, ErrInvalidToken)
	check("Bearer adm2", Principal{}, ErrInvalidToken)
	check("Bearer", Principal{}, ErrInvalidToken)
	check("Basic adm", Principal{}, ErrInvalidToken)
	check("adm", Principal{}, ErrInvalidToken)

	// AllowUnauthenticated with tokens: no credentials is admin, bad ones are not.
	a, err = NewAuthenticator(Options{AdminTokens: []string{"adm"}, AllowUnauthenticated: true})
	if err != nil {
		t.Fatal(err)
	}
	check("", Principal{Name: "anonymous"}, nil)
	check("Bearer nope", Principal{}, ErrInvalidToken)
	// Without tokens, everyone is admin.
	a, err = NewAuthenticator(Options{AllowUnauthenticated: true})
	if err != nil {
		t.Fatal(err)
	}
	check("", Principal{Name: "anonymous"}, nil)
	check("Bearer whatever", Principal{Name: "anonymous"}, nil)
}

func TestParseNamedTokens(t *testing.T) {
	got, err := ParseNamedTokens(" ana:admin-token-0001, acme-ops:tenant-token-001=tenant:acme ,admin-token-0002,ana:admin-token-0001")
	if err != nil {
		t.Fatal(err)
	}
	want := []Token{{Name: "ana", Secret: "admin-token-0001"}, {Name: "acme-ops", Secret: "tenant-token-001", Tenant: "acme"}, {Secret: "admin-token-0002"}}
	if !slices.Equal(got, want) {
		t.Errorf("ParseNamedTokens = %+v, want %+v", got, want)
	}
	for _, spec := range []string{
		":admin-token-0001",                           // empty name
		"an a:admin-token-0001",                       // blank in a name
		"ana:admin-token-0001,ana:admin-token-0002",   // one name, two tokens
		"ana:admin-token-0001,bo:admin-token-0001",    // one token, two names
		strings.Repeat("n", 65) + ":admin-token-0001", // name too long
		"ana:admin-token-0001,token-" + tokenName(Token{Secret: "admin-token-0002"})[6:] + ":admin-token-0003,admin-token-0002", // a name clashing with a fingerprint
	} {
		_, err := ParseNamedTokens(spec)
		if !errors.Is(err, eventbus.ErrInvalidConfig) {
			t.Errorf("ParseNamedTokens(%q): %v, want ErrInvalidConfig", spec, err)
		}
		if err != nil && strings.Contains(err.Error(), "admin-token-000") {
			t.Errorf("ParseNamedTokens(%q): the error shows a token: %v", spec, err)
		}
	}
}

func TestNewAuthenticatorErrors(t *testing.T) {
	for name, opts := range map[string]Options{
		"no tokens":            {},
		"empty admin token":    {AdminTokens: []string{""}},
		"bad admin token":      {AdminTokens: []string{"a b"}},
		"empty tenant":         {TenantTokens: map[string]string{"ten": ""}},
		"bad tenant token":     {TenantTokens: map[string]string{"a,b": "acme"}},
		"admin and tenant too": {AdminTokens: []string{"tok"}, TenantTokens: map[string]string{"tok": "acme"}},
		"bad token name":       {Tokens: []Token{{Name: "a b", Secret: "tok"}}},
		"two names, one token": {Tokens: []Token{{Name: "a", Secret: "tok"}, {Name: "b", Secret: "tok"}}},
		"one name, two tokens": {Tokens: []Token{{Name: "a", Secret: "tok"}, {Name: "a", Secret: "tok2"}}},
	} {
		if _, err := NewAuthenticator(opts); !errors.Is(err, eventbus.ErrInvalidConfig) {
			t.Errorf("%s: %v, want ErrInvalidConfig", name, err)
		}
	}
}
