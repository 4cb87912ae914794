package cli

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Settings of `eventbus serve` for bounded memory and fast restarts.
const (
	// EnvBrokerMaxBytes is serve's --broker-max-bytes.
	EnvBrokerMaxBytes = "EVENTBUS_BROKER_MAX_BYTES"
	// EnvInstanceID is serve's --instance-id: set it to the pod name.
	EnvInstanceID = "EVENTBUS_INSTANCE_ID"
	// DefaultBrokerMaxBytes caps what the embedded broker retains, all
	// topics together (see embedded.Config.MaxBytes).
	DefaultBrokerMaxBytes = "512MiB"
)

// byteUnits are the suffixes parseByteSize accepts, longest first.
var byteUnits = []struct {
	suffix string
	factor int64
}{
	{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40},
	{"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"TB", 1e12},
	{"K", 1 << 10}, {"M", 1 << 20}, {"G", 1 << 30}, {"T", 1 << 40},
	{"B", 1},
}

// parseByteSize reads a size such as "512MiB", "2GB", "1048576" or "0".
// KiB, MiB, GiB, TiB (and K, M, G, T) are powers of 1024; KB, MB, GB, TB
// powers of 1000.
func parseByteSize(s string) (int64, error) {
	t := strings.TrimSpace(s)
	factor := int64(1)
	for _, u := range byteUnits {
		if rest, ok := strings.CutSuffix(t, u.suffix); ok {
			t, factor = strings.TrimSpace(rest), u.factor
			break
		}
	}
	n, err := strconv.ParseInt(t, 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("%q is not a size: want a number of bytes, optionally with a unit (e.g. 512MiB, 2GiB, 0)", s)
	}
	if n > math.MaxInt64/factor {
		return 0, fmt.Errorf("%q is too large", s)
	}
	return n * factor, nil
}
