package deadletter_test

import (
	"fmt"

	"github.com/plexica/eventbus/deadletter"
)

// A Config names its defaults; NoRetries turns automatic retries off (a
// failed event waits in the queue for a retry by hand). The bus applies
// WithDefaults and Validate itself (eventbus.Config.DLQ).
func ExampleConfig() {
	c := deadletter.Config{MaxRetries: deadletter.NoRetries, TopicCleanupPolicy: deadletter.CleanupDelete}.WithDefaults()
	fmt.Println(c.MaxRetries == deadletter.NoRetries, c.RetryBackoff, c.MaxRetryBackoff, c.TopicCleanupPolicy)
	fmt.Println(c.Validate())
	// Output:
	// true 1s 1h0m0s delete
	// <nil>
}
