// Command crm runs the crm example plugin (package
// github.com/plexica/eventbus/examples/crm) next to `eventbus serve`:
//
//	go run ./examples/crm/cmd/crm -brokers 127.0.0.1:9092 -tenants acme,globex -follow
//
// Set EVENTBUS_INSTANCE_ID (or -instance-id) to the pod name for restarts
// that take the partitions back at once.
package main

import (
	"github.com/plexica/eventbus/examples/crm"
	"github.com/plexica/eventbus/pluginrun"
)

func main() { pluginrun.Main(crm.PluginID, crm.NewCRM, crm.Handlers) }
