package pluginrun_test

import (
	"flag"
	"slices"
	"testing"

	"github.com/plexica/eventbus/pluginrun"
)

func TestFlagConfig(t *testing.T) {
	t.Setenv(pluginrun.EnvInstanceID, "pod-7")
	fs := flag.NewFlagSet("crm", flag.ContinueOnError)
	cfg := pluginrun.FlagConfig(fs, "crm")
	if err := fs.Parse([]string{"-brokers", "a:9092, b:9092,", "-tenants", "acme,,globex", "-follow"}); err != nil {
		t.Fatal(err)
	}
	c := cfg()
	if c.PluginID != "crm" || !slices.Equal(c.Client.Brokers, []string{"a:9092", "b:9092"}) ||
		!slices.Equal(c.Tenants, []string{"acme", "globex"}) || !c.Follow || c.Bus.Consumer.InstanceID != "pod-7" {
		t.Fatalf("config %+v", c)
	}
	fs = flag.NewFlagSet("crm", flag.ContinueOnError)
	cfg = pluginrun.FlagConfig(fs, "crm")
	if err := fs.Parse([]string{"-instance-id", "pod-8", "-tenants", ""}); err != nil {
		t.Fatal(err)
	}
	if c := cfg(); c.Bus.Consumer.InstanceID != "pod-8" || len(c.Tenants) != 0 || c.Follow ||
		!slices.Equal(c.Client.Brokers, []string{"127.0.0.1:9092"}) {
		t.Fatalf("config %+v", c)
	}
}
