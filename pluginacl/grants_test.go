package pluginacl

import (
	"errors"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kmsg"
)

var errBadName = errors.New("bad topic name")

func validTopic(name string) error {
	if strings.Count(name, ".") < 2 {
		return errBadName
	}
	return nil
}

func TestForGrantsTheOwnSpaceAndTheReadableTopics(t *testing.T) {
	gs, err := grantsFor("crm", []string{"core.user.created", "core.workspace."}, []string{"plugin.billing.invoice.paid"}, validTopic)
	if err != nil {
		t.Fatal(err)
	}
	has := func(g grant) bool {
		for _, h := range gs {
			if h == g {
				return true
			}
		}
		return false
	}
	for _, want := range []grant{
		{kmsg.ACLResourceTypeTopic, "plugin.crm.", kadm.ACLPatternPrefixed, kadm.OpWrite},
		{kmsg.ACLResourceTypeTopic, "dlq.plugin.crm.", kadm.ACLPatternPrefixed, kadm.OpCreate},
		{kmsg.ACLResourceTypeGroup, "plugin.crm.", kadm.ACLPatternPrefixed, kadm.OpRead},
		{kmsg.ACLResourceTypeCluster, "kafka-cluster", kadm.ACLPatternLiteral, kadm.OpIdempotentWrite},
		{kmsg.ACLResourceTypeTopic, "core.user.created", kadm.ACLPatternLiteral, kadm.OpRead},
		{kmsg.ACLResourceTypeTopic, "core.workspace.", kadm.ACLPatternPrefixed, kadm.OpDescribe},
		{kmsg.ACLResourceTypeTopic, "plugin.billing.invoice.paid", kadm.ACLPatternLiteral, kadm.OpRead},
	} {
		if !has(want) {
			t.Errorf("missing grant %v", want)
		}
	}
	for _, g := range gs {
		if g.Type == kmsg.ACLResourceTypeTopic && g.Op != kadm.OpRead && g.Op != kadm.OpDescribe &&
			!strings.HasPrefix(g.Name, "plugin.crm.") && !strings.HasPrefix(g.Name, "dlq.plugin.crm.") {
			t.Errorf("grant %v writes outside the plugin's own space", g)
		}
	}
}

func TestForRefusesWhatItCannotGrant(t *testing.T) {
	for _, tt := range []struct {
		core, plugin []string
		want         string
	}{
		{[]string{"plugin.crm.contact.created"}, nil, "Access.CoreTopics"},
		{nil, []string{"plugin.crm.contact.created"}, "own topic space"},
		{nil, []string{"core.user.created"}, `must start with "plugin."`},
		{[]string{"core.User."}, nil, "lowercase dot-separated"},
		{[]string{"core.user"}, nil, errBadName.Error()},
	} {
		_, err := grantsFor("crm", tt.core, tt.plugin, validTopic)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("grantsFor(core %v, plugin %v) = %v, want an error containing %q", tt.core, tt.plugin, err, tt.want)
		}
	}
}
