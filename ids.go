package eventbus

import "github.com/google/uuid"

// newUUID returns a new UUIDv7 string: IDs sort by creation time.
func newUUID() string {
	return uuid.Must(uuid.NewV7()).String() // fails only when the system's random source does
}
