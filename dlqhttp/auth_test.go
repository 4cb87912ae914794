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
	a, err := newAuthenticator(Options{AdminTokens: []string{"adm"}, TenantTokens: map[string]string{"ten": "acme"}})
	if err != nil {
		t.Fatal(err)
	}
	check := func(header string, want principal, wantFail authFailure) {
		t.Helper()
		r := httptest.NewRequest("GET", "/api/dlq/stats", nil)
		if header != "" {
			r.Header.Set("Authorization", header)
		}
		who, fail := a.authenticate(r)
		if who != want || fail != wantFail {
			t.Errorf("%q: %+v %v, want %+v %v", header, who, fail, want, wantFail)
		}
	}
	check("", principal{}, authMissing)
	check("Bearer adm", principal{admin: true}, authOK)
	check("bearer  adm ", principal{admin: true}, authOK)
	check("Bearer ten", principal{tenant: "acme"}, authOK)
	check("Bearer ad", principal{}, authInvalid)
	check("Bearer adm2", principal{}, authInvalid)
	check("Bearer", principal{}, authInvalid)
	check("Basic adm", principal{}, authInvalid)
	check("adm", principal{}, authInvalid)

	// AllowUnauthenticated with tokens: no credentials is admin, bad ones are not.
	a, err = newAuthenticator(Options{AdminTokens: []string{"adm"}, AllowUnauthenticated: true})
	if err != nil {
		t.Fatal(err)
	}
	check("", principal{admin: true}, authOK)
	check("Bearer nope", principal{}, authInvalid)
	// Without tokens, everyone is admin.
	a, err = newAuthenticator(Options{AllowUnauthenticated: true})
	if err != nil {
		t.Fatal(err)
	}
	check("", principal{admin: true}, authOK)
	check("Bearer whatever", principal{admin: true}, authOK)
}

func TestNewAuthenticatorErrors(t *testing.T) {
	for name, opts := range map[string]Options{
		"no tokens":            {},
		"empty admin token":    {AdminTokens: []string{""}},
		"bad admin token":      {AdminTokens: []string{"a b"}},
		"empty tenant":         {TenantTokens: map[string]string{"ten": ""}},
		"bad tenant token":     {TenantTokens: map[string]string{"a,b": "acme"}},
		"admin and tenant too": {AdminTokens: []string{"tok"}, TenantTokens: map[string]string{"tok": "acme"}},
	} {
		if _, err := newAuthenticator(opts); !errors.Is(err, eventbus.ErrInvalidConfig) {
			t.Errorf("%s: %v, want ErrInvalidConfig", name, err)
		}
	}
}
