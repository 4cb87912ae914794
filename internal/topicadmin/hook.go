package topicadmin

import "github.com/twmb/franz-go/pkg/kgo"

// Conn returns the connected franz-go client that topics are administered
// through, or an error saying why there is none (not connected yet,
// closed).
type Conn func() (*kgo.Client, error)

// NewManager returns a new *topic.Manager that administers topics through
// conn under rules (a *topic.Rules; nil for the default rules). Package
// topic sets it when it is initialised: the root package builds its
// client's manager with it, and the type is any because package topic
// imports this one.
var NewManager func(conn Conn, rules any) any
