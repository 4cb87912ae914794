package eventbus

import "testing"

// BenchmarkPrepare measures validating and encoding one event for publish,
// without a broker.
func BenchmarkPrepare(b *testing.B) {
	c, err := NewClient(ClientConfig{Brokers: []string{"127.0.0.1:1"}})
	if err != nil {
		b.Fatal(err)
	}
	cfg := Config{}.withDefaults(c.logger)
	if err := cfg.validate(); err != nil {
		b.Fatal(err)
	}
	bus := &Bus{client: c, cfg: cfg, breaker: newBreaker(cfg.Breaker)}
	type payload struct {
		UserID string `json:"userId"`
		Email  string `json:"email"`
		Name   string `json:"name"`
		Plan   string `json:"plan"`
		Seats  int    `json:"seats"`
	}
	data := payload{"user-0001", "ada@acme.test", "Ada Lovelace", "enterprise", 25}
	meta := PublishMetadata{TenantID: "tenant-acme", WorkspaceID: "ws-1", UserID: "admin"}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := bus.prepare("core.user.created", data, meta, nil); err != nil {
			b.Fatal(err)
		}
	}
}
