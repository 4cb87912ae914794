package eventbus

import (
	"math/rand/v2"
	"time"

	"github.com/google/uuid"
)

// newUUID returns a UUIDv7 string: 48 bits of Unix milliseconds, so IDs
// sort by creation time, then 74 random bits. The random bits come from
// math/rand/v2's runtime-seeded ChaCha8 generator, which is enough for
// uniqueness and several times cheaper than reading crypto/rand per event
// (event IDs are not secrets).
func newUUID() string {
	var u uuid.UUID
	ms := uint64(time.Now().UnixMilli())
	r1, r2 := rand.Uint64(), rand.Uint64()
	u[0], u[1], u[2], u[3], u[4], u[5] = byte(ms>>40), byte(ms>>32), byte(ms>>24), byte(ms>>16), byte(ms>>8), byte(ms)
	u[6] = 0x70 | byte(r1>>60)&0x0f // version 7
	u[7] = byte(r1 >> 52)
	u[8] = 0x80 | byte(r2>>56)&0x3f // RFC 4122 variant
	for i := 9; i < 16; i++ {
		u[i] = byte(r2 >> (8 * (15 - i)))
	}
	return u.String()
}
