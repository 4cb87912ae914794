package eventbus

import "github.com/google/uuid"

// newUUID returns a new UUIDv7 string: IDs sort by creation time.
func newUUID() string {
	id, err := uuid.NewV7()
	if err != nil { // only when the system's random source fails
		return uuid.NewString()
	}
	return id.String()
}
