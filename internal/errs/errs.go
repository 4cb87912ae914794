// Package errs holds the sentinel errors that the root package and its
// public sub-packages (topic, pluginacl) share: the root exports them as
// eventbus.ErrInvalidConfig and eventbus.ErrBrokerUnavailable, so a
// sub-package can wrap them without importing the root.
package errs

import (
	"errors"
	"io"
	"net"
	"syscall"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// InvalidConfig is eventbus.ErrInvalidConfig.
var InvalidConfig = errors.New("invalid configuration")

// BrokerUnavailable is eventbus.ErrBrokerUnavailable.
var BrokerUnavailable = errors.New("broker unavailable")

// Unavailable reports whether err (from a broker request or a record's
// delivery) says the cluster cannot be reached or cannot take writes now,
// rather than something about the request.
func Unavailable(err error) bool {
	if errors.Is(err, BrokerUnavailable) || errors.Is(err, kgo.ErrRecordTimeout) ||
		errors.Is(err, kgo.ErrRecordRetries) {
		return true
	}
	for _, k := range []*kerr.Error{
		kerr.NotEnoughReplicas, kerr.NotEnoughReplicasAfterAppend, kerr.LeaderNotAvailable,
		kerr.NotLeaderForPartition, kerr.BrokerNotAvailable, kerr.RequestTimedOut,
		kerr.NetworkException, kerr.KafkaStorageError, kerr.NotController,
		kerr.CoordinatorNotAvailable, kerr.CoordinatorLoadInProgress,
	} {
		if errors.Is(err, k) {
			return true
		}
	}
	if _, ok := errors.AsType[*kgo.ErrFirstReadEOF](err); ok {
		return true
	}
	if _, ok := errors.AsType[net.Error](err); ok {
		return true
	}
	return errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed)
}
