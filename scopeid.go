package eventbus

import (
	"fmt"
	"strings"
)

// MaxScopeIDLen is the longest tenant or workspace ID, in bytes.
const MaxScopeIDLen = 128

// ValidateTenantID checks that id is a valid tenant ID: 1 to MaxScopeIDLen
// (128) ASCII letters, digits, '-' and '_', such as "acme", "tenant_42" or
// a UUID. No dots: a tenant ID is part of the names of consumer groups
// (see GroupID), where a dot would let two scopes share a group.
// An empty ID fails with ErrTenantRequired; any other rejection wraps
// ErrInvalidTenantID, says what is wrong and shows a valid ID.
//
// Publishing, subscriptions filtered to a tenant, PluginClient and
// PluginHost check tenant IDs with it.
func ValidateTenantID(id string) error {
	if strings.TrimSpace(id) == "" {
		return fmt.Errorf("%w: the tenant ID is empty; every event belongs to a tenant (e.g. %q)", ErrTenantRequired, "acme")
	}
	return validateScopeID("tenant", id, ErrInvalidTenantID, "acme")
}

// ValidateWorkspaceID checks that id is a valid workspace ID, by the rule
// of ValidateTenantID; "" (no workspace) is valid. A rejection wraps
// ErrInvalidWorkspaceID.
func ValidateWorkspaceID(id string) error {
	if id == "" {
		return nil
	}
	return validateScopeID("workspace", id, ErrInvalidWorkspaceID, "ws-1")
}

// validateScopeID checks id against the rule of tenant and workspace IDs.
func validateScopeID(what, id string, sentinel error, example string) error {
	why := scopeIDReason(id)
	if why == "" {
		return nil
	}
	if fix := fixScopeID(id); fix != "" && scopeIDReason(fix) == "" {
		example = fix
	}
	return fmt.Errorf("%w %q: %s (a %s ID is 1 to %d ASCII letters, digits, '-' or '_'); use e.g. %q",
		sentinel, id, why, what, MaxScopeIDLen, example)
}

// scopeIDReason says why id is not a valid tenant or workspace ID, or
// returns "" when it is.
func scopeIDReason(id string) string {
	if id == "" {
		return "it is empty"
	}
	for i := 0; i < len(id); i++ {
		if !isScopeIDByte(id[i]) {
			if id[i] < 0x20 || id[i] >= 0x7f {
				return fmt.Sprintf("it contains the byte %#x", id[i])
			}
			return fmt.Sprintf("it contains %q", id[i])
		}
	}
	if len(id) > MaxScopeIDLen {
		return fmt.Sprintf("it is %d bytes long", len(id))
	}
	return ""
}

func isScopeIDByte(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_'
}

// fixScopeID guesses the valid ID meant by id: other characters made '-',
// cut to MaxScopeIDLen.
func fixScopeID(id string) string {
	s := strings.Map(func(r rune) rune {
		if r < 0x80 && isScopeIDByte(byte(r)) {
			return r
		}
		return '-'
	}, strings.TrimSpace(id))
	s = strings.Trim(s, "-")
	if len(s) > MaxScopeIDLen {
		s = s[:MaxScopeIDLen]
	}
	return s
}

// validateScope checks an event's tenant and workspace IDs.
func validateScope(meta PublishMetadata) error {
	if err := ValidateTenantID(meta.TenantID); err != nil {
		return err
	}
	return ValidateWorkspaceID(meta.WorkspaceID)
}
