//go:build kafkacluster && unix

// The broker fault tests on a real 3-node Apache Kafka cluster: a broker is
// stopped and restarted while events are published under load, and the
// leader of a consumed partition is killed (SIGKILL) while a consumer group
// handles and commits; the figures reported are events lost (must be 0)
// and duplicates seen.
//
// It needs the cluster that scripts/kafka.sh starts, so it only builds with
// the kafkacluster tag:
//
//	EVENTBUS_TEST_CLUSTER=$(scripts/kafka.sh start --nodes 3) \
//	  go test -race -count=1 -tags kafkacluster -run TestKafkaCluster -v .
//	scripts/kafka.sh stop
//
// .ci/run does exactly this. EVENTBUS_TEST_FAULT=kill replaces the graceful
// stop with a SIGKILL of the broker's JVM.

package eventbus_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/plexica/eventbus"
	"github.com/plexica/eventbus/breaker"
	"github.com/plexica/eventbus/eventbustest"
	"github.com/plexica/eventbus/topic"
)

// clusterEnv names the bootstrap list of the 3-node cluster.
const clusterEnv = "EVENTBUS_TEST_CLUSTER"

// faultEnv picks how broker 2 goes down: "stop" (the default) runs
// scripts/kafka.sh stop-node, a SIGTERM and so a controlled shutdown that
// moves partition leadership away first; "kill" sends SIGKILL to the
// broker's JVM, so that in-flight requests to its leaders fail.
const faultEnv = "EVENTBUS_TEST_FAULT"

const (
	faultNode       = 2 // the broker stopped under load
	faultTotal      = 10_000
	faultWorkers    = 3
	faultTenants    = 7
	faultStopAt     = 2_000           // acked events before node 2 is stopped
	faultRestartAt  = 6_000           // acked events before node 2 is started again
	faultDownGate   = 4_000           // no event past this is sent before node 2 is down,
	faultBackGate   = 8_000           // nor past this before node 2 is back: each phase gets traffic
	faultPublishFor = 2 * time.Minute // publishing alone (~15 s on 2 cores); the fault steps have their own bounds
	faultDrainFor   = 120 * time.Second
	scriptStopFor   = 90 * time.Second  // kafka.sh waits KAFKA_STOP_TIMEOUT (30 s) before SIGKILL
	scriptStartFor  = 150 * time.Second // kafka.sh waits KAFKA_START_TIMEOUT (90 s)
)

// kafkaScript runs scripts/kafka.sh with args, bounded by timeout, and
// returns its stdout; its stderr (progress) goes to the test log.
func kafkaScript(t *testing.T, timeout time.Duration, args ...string) (string, error) {
	t.Helper()
	script, err := filepath.Abs(filepath.Join("scripts", "kafka.sh"))
	if err != nil {
		return "", err
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", append([]string{script}, args...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.WaitDelay = 5 * time.Second
	err = cmd.Run()
	for _, line := range strings.Split(strings.TrimSpace(stderr.String()), "\n") {
		if line != "" {
			t.Logf("  %s", line)
		}
	}
	if err != nil {
		return stdout.String(), fmt.Errorf("scripts/kafka.sh %s: %w", strings.Join(args, " "), err)
	}
	return stdout.String(), nil
}

// killNode sends SIGKILL to node n of the 3-node cluster (scripts/kafka.sh
// kill-node, which returns once the JVM is gone).
func killNode(t *testing.T, n int) error {
	t.Helper()
	if !nodeRunning(t, n) {
		return fmt.Errorf("node %d is not running", n)
	}
	if _, err := kafkaScript(t, scriptStopFor, "kill-node", fmt.Sprint(n), "--nodes", "3"); err != nil {
		return err
	}
	t.Logf("  sent SIGKILL to node %d", n)
	return nil
}

// nodeRunning asks scripts/kafka.sh status whether node n of the 3-node
// cluster runs.
func nodeRunning(t *testing.T, n int) bool {
	t.Helper()
	out, err := kafkaScript(t, 30*time.Second, "status")
	if err != nil {
		return false
	}
	return strings.Contains(out, fmt.Sprintf("cluster3 node %d: running", n))
}

// leaders describes each partition of topic: "p0:leader 3 isr [3 1 2], ...".
func leaders(ctx context.Context, client *eventbus.Client, tp string) string {
	adm, err := client.Admin()
	if err != nil {
		return err.Error()
	}
	td, err := adm.ListTopics(ctx, tp)
	if err != nil {
		return err.Error()
	}
	d := td[tp]
	if d.Err != nil {
		return d.Err.Error()
	}
	var parts []string
	for _, p := range d.Partitions.Sorted() {
		parts = append(parts, fmt.Sprintf("p%d:leader %d isr %v", p.Partition, p.Leader, p.ISR))
	}
	return strings.Join(parts, ", ")
}

// A broker of a 3-node cluster is stopped under load and restarted; a topic
// with replication factor 3 and min.insync.replicas=2 loses no acknowledged
// event, and the consumer group sees every one of them.
func TestKafkaClusterBrokerStoppedUnderLoad(t *testing.T) {
	bootstrap := strings.TrimSpace(os.Getenv(clusterEnv))
	if bootstrap == "" {
		t.Fatalf("%s is not set: this test (build tag kafkacluster) needs a 3-node Kafka cluster; "+
			"start one with `scripts/kafka.sh start --nodes 3` and set %s to the bootstrap list it prints "+
			"(e.g. 127.0.0.1:29092,127.0.0.1:29093,127.0.0.1:29094)", clusterEnv, clusterEnv)
	}
	brokers := strings.Split(bootstrap, ",")
	mode := strings.TrimSpace(os.Getenv(faultEnv))
	switch mode {
	case "", "stop":
		mode = "stop"
	case "kill":
	default:
		t.Fatalf("%s=%q: want stop (the default) or kill", faultEnv, mode)
	}
	if len(brokers) != 3 {
		t.Fatalf("%s=%q names %d brokers; this test stops broker %d of a 3-node cluster", clusterEnv, bootstrap, len(brokers), faultNode)
	}
	// Whatever happens, leave node 2 running for whoever comes next.
	t.Cleanup(func() {
		if nodeRunning(t, faultNode) {
			return
		}
		t.Logf("cleanup: node %d is down; starting it again", faultNode)
		if _, err := kafkaScript(t, scriptStartFor, "start-node", fmt.Sprint(faultNode), "--nodes", "3"); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	if !nodeRunning(t, faultNode) {
		t.Fatalf("scripts/kafka.sh status does not show cluster3 node %d running at the start (the cleanup starts it; run again), or no cluster was started with scripts/kafka.sh start --nodes 3", faultNode)
	}

	// Bounds publishing and the fault steps; the drain below has its own bound.
	ctx, cancel := context.WithTimeout(context.Background(), faultPublishFor+scriptStopFor+scriptStartFor)
	defer cancel()

	pubClient := eventbustest.NewClient(t, brokers...)
	tp := replicatedTopic(ctx, t, pubClient, topic.DefaultPartitions)
	t.Logf("topic %s: %s", tp, leaders(ctx, pubClient, tp))

	// The consumer: its own client and bus, one group, from the beginning.
	var (
		seenMu sync.Mutex
		seen   = map[string]int{}
	)
	consumer := eventbustest.NewBus(t, eventbus.Config{}, brokers...)
	eventbustest.MustSubscribe(t, consumer, tp, func(_ context.Context, ev eventbus.RawEvent) error {
		seenMu.Lock()
		seen[ev.ID]++
		seenMu.Unlock()
		return nil
	}, eventbus.InGroup(eventbustest.UniqueID("fault")), eventbus.WithDelivery(eventbus.Delivery{FromBeginning: true}))

	// The publisher. A short breaker timeout: if the breaker opens while the
	// leaders move, the test's retries get through again within a second.
	pub := eventbustest.NewBusOn(t, pubClient, eventbus.Config{
		Breaker: breaker.Config{OpenTimeout: time.Second},
	})

	var (
		claimed       atomic.Int64 // events handed to workers (batch starts)
		acked         atomic.Int64 // events the broker acknowledged
		failedCalls   atomic.Int64 // PublishBatch calls that returned an error
		resentEvents  atomic.Int64 // events sent again after a failed call
		breakerOpen   atomic.Int64 // of the failed calls, refused by the open breaker
		errMu         sync.Mutex
		errSamples    = map[string]int{} // failure causes, counted
		nodeDown      = make(chan struct{})
		nodeBack      = make(chan struct{})
		stoppedAt     string
		restartedAt   string
		stopErr       error
		startErr      error
		start         = time.Now()
		ackedIDs      = make([][]string, faultWorkers)
		publishFailed atomic.Bool
	)
	verb := map[string]string{"stop": "stopped", "kill": "killed (SIGKILL)"}[mode]
	since := func() string { return fmt.Sprintf("+%.1fs", time.Since(start).Seconds()) }

	// The fault: stop node 2 after ~2,000 acked events, start it again
	// after ~6,000, while the workers keep publishing.
	waitAcked := func(n int64) bool {
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for acked.Load() < n {
			select {
			case <-ctx.Done():
				return false
			case <-tick.C:
			}
		}
		return true
	}
	var faultWG sync.WaitGroup
	faultWG.Add(1)
	go func() {
		defer faultWG.Done()
		defer close(nodeBack)
		downOnce := sync.OnceFunc(func() { close(nodeDown) })
		defer downOnce()
		if !waitAcked(faultStopAt) {
			stopErr = errors.New("publishing never reached the stop point")
			return
		}
		at, when, t0 := acked.Load(), since(), time.Now()
		if mode == "kill" {
			stopErr = killNode(t, faultNode)
		} else {
			_, stopErr = kafkaScript(t, scriptStopFor, "stop-node", fmt.Sprint(faultNode), "--nodes", "3")
		}
		if stopErr != nil {
			return
		}
		stoppedAt = fmt.Sprintf("%d acked (%s, down %.1fs later)", at, when, time.Since(t0).Seconds())
		t.Logf("broker %d %s at %s; topic: %s", faultNode, verb, stoppedAt, leaders(ctx, pubClient, tp))
		downOnce()
		if !waitAcked(faultRestartAt) {
			startErr = errors.New("publishing never reached the restart point")
			return
		}
		at, when, t0 = acked.Load(), since(), time.Now()
		if _, startErr = kafkaScript(t, scriptStartFor, "start-node", fmt.Sprint(faultNode), "--nodes", "3"); startErr != nil {
			return
		}
		restartedAt = fmt.Sprintf("%d acked (%s, serving %.1fs later)", at, when, time.Since(t0).Seconds())
		t.Logf("broker %d restarted at %s; topic: %s", faultNode, restartedAt, leaders(ctx, pubClient, tp))
	}()

	// The workers: batches of 100 over several tenants; a failed call is
	// retried, for its failed events only and under their own IDs, until
	// every event is acked.
	publishBatch := func(w int, events []eventbus.BatchEvent) bool {
		backoff := 50 * time.Millisecond
		for {
			cctx, ccancel := context.WithTimeout(ctx, time.Minute)
			res, err := pub.PublishBatch(cctx, events)
			ccancel()
			if err == nil {
				for _, r := range res {
					ackedIDs[w] = append(ackedIDs[w], r.EventID)
				}
				acked.Add(int64(len(res)))
				return true
			}
			failedCalls.Add(1)
			if errors.Is(err, eventbus.ErrCircuitOpen) {
				breakerOpen.Add(1)
			}
			if len(res) != len(events) {
				t.Errorf("worker %d: PublishBatch failed without per-event results: %v", w, err)
				return false
			}
			var retry []eventbus.BatchEvent
			for i, r := range res {
				if r.Err == nil {
					ackedIDs[w] = append(ackedIDs[w], r.EventID)
					acked.Add(1)
					continue
				}
				ev := events[i]
				ev.Options = []eventbus.PublishOption{eventbus.WithEventID(r.EventID)}
				retry = append(retry, ev)
				errMu.Lock()
				cause := r.Err.Error()
				if len(cause) > 160 {
					cause = cause[:160] + "..."
				}
				errSamples[cause]++
				errMu.Unlock()
			}
			resentEvents.Add(int64(len(retry)))
			events = retry
			select {
			case <-ctx.Done():
				t.Errorf("worker %d: %d events still not acked when time ran out; last error: %v", w, len(events), err)
				return false
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, 2*time.Second)
		}
	}
	gate := func(from int64) bool {
		var ch chan struct{}
		switch {
		case from >= faultBackGate:
			ch = nodeBack
		case from >= faultDownGate:
			ch = nodeDown
		default:
			return true
		}
		select {
		case <-ch:
			return true
		case <-ctx.Done():
			return false
		}
	}
	var workers sync.WaitGroup
	for w := range faultWorkers {
		workers.Add(1)
		go func() {
			defer workers.Done()
			for {
				from := claimed.Add(eventbus.MaxBatchSize) - eventbus.MaxBatchSize
				if from >= faultTotal {
					return
				}
				if !gate(from) {
					t.Errorf("worker %d: waited too long for the fault step before event %d", w, from)
					publishFailed.Store(true)
					return
				}
				batch := make([]eventbus.BatchEvent, 0, eventbus.MaxBatchSize)
				for i := from; i < min(from+eventbus.MaxBatchSize, faultTotal); i++ {
					batch = append(batch, eventbus.BatchEvent{
						EventType: tp,
						Data:      map[string]any{"order": i, "worker": w},
						Metadata:  eventbus.PublishMetadata{TenantID: fmt.Sprintf("tenant-%d", i%faultTenants)},
					})
				}
				if !publishBatch(w, batch) {
					publishFailed.Store(true)
					return
				}
			}
		}()
	}
	workers.Wait()
	published := time.Since(start)
	faultWG.Wait()
	if stopErr != nil {
		t.Fatalf("stopping broker %d: %v", faultNode, stopErr)
	}
	if startErr != nil {
		t.Fatalf("restarting broker %d: %v", faultNode, startErr)
	}
	if publishFailed.Load() {
		t.Fatalf("publishing did not finish: %d of %d events acked", acked.Load(), faultTotal)
	}
	var ids []string
	for _, w := range ackedIDs {
		ids = append(ids, w...)
	}
	if len(ids) != faultTotal {
		t.Fatalf("%d events acked, want %d", len(ids), faultTotal)
	}
	t.Logf("published %d events in %.1fs; %d PublishBatch calls failed (%d refused by the open breaker), %d events resent",
		len(ids), published.Seconds(), failedCalls.Load(), breakerOpen.Load(), resentEvents.Load())
	if len(errSamples) > 0 {
		causes := make([]string, 0, len(errSamples))
		for c, n := range errSamples {
			causes = append(causes, fmt.Sprintf("%dx %s", n, c))
		}
		sort.Strings(causes)
		t.Logf("publish failure causes:\n  %s", strings.Join(causes, "\n  "))
	}

	// Every acked event must reach the consumer group.
	missing := func() int {
		seenMu.Lock()
		defer seenMu.Unlock()
		n := 0
		for _, id := range ids {
			if seen[id] == 0 {
				n++
			}
		}
		return n
	}
	drain := time.NewTimer(faultDrainFor)
	defer drain.Stop()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	lost := missing()
	for lost > 0 {
		select {
		case <-drain.C:
			t.Fatalf("fault test: %d published, %d lost: not seen by the consumer group %s after publishing ended", len(ids), lost, faultDrainFor)
		case <-tick.C:
		}
		lost = missing()
	}
	seenMu.Lock()
	dups, distinct := 0, len(seen)
	for _, n := range seen {
		dups += n - 1
	}
	seenMu.Unlock()
	if distinct != len(ids) {
		t.Errorf("consumer saw %d distinct event IDs, %d were published", distinct, len(ids))
	}
	t.Logf("fault test: %d published, %d lost, %d duplicates seen, %d publish retries, broker %d %s at %s, restarted at %s",
		len(ids), lost, dups, failedCalls.Load(), faultNode, verb, stoppedAt, restartedAt)
}

const (
	leaderKillTotal      = 6_000
	leaderKillPartitions = 6
	leaderKillHandle     = 4 * time.Millisecond // per event: consuming spans the failover
	leaderKillAt         = leaderKillTotal / 5  // handled events before the leader is killed
)

// partitionLeaders returns the node that leads each partition of topic.
func partitionLeaders(ctx context.Context, client *eventbus.Client, tp string) (map[int32]int32, error) {
	adm, err := client.Admin()
	if err != nil {
		return nil, err
	}
	td, err := adm.ListTopics(ctx, tp)
	if err != nil {
		return nil, err
	}
	d := td[tp]
	if d.Err != nil {
		return nil, d.Err
	}
	out := make(map[int32]int32, len(d.Partitions))
	for p, pd := range d.Partitions {
		out[p] = pd.Leader
	}
	return out, nil
}

// uncommittedRecords returns how many records of topic tp lie past the
// group's commit, over its partitions.
func uncommittedRecords(ctx context.Context, client *eventbus.Client, group, tp string) (int64, error) {
	adm, err := client.Admin()
	if err != nil {
		return 0, err
	}
	ends, err := adm.ListEndOffsets(ctx, tp)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return 0, err
	}
	committed, err := adm.FetchOffsets(ctx, group)
	if err == nil {
		err = committed.Error()
	}
	if err != nil {
		return 0, err
	}
	var n int64
	ends.Each(func(end kadm.ListedOffset) {
		at := int64(0)
		if c, ok := committed.Lookup(tp, end.Partition); ok {
			at = max(c.At, 0)
		}
		n += max(end.Offset-at, 0)
	})
	return n, nil
}

// groupCoordinator returns the node that coordinates group.
func groupCoordinator(ctx context.Context, client *eventbus.Client, group string) (int32, error) {
	adm, err := client.Admin()
	if err != nil {
		return -1, err
	}
	r := adm.FindGroupCoordinators(ctx, group)
	c, ok := r[group]
	if !ok {
		return -1, fmt.Errorf("no coordinator found for group %s", group)
	}
	if c.Err != nil {
		return -1, c.Err
	}
	return c.NodeID, nil
}

// The leader of a consumed partition is killed (SIGKILL, no controlled
// shutdown) while a consumer group handles and commits: the partition's
// leadership moves to a replica in sync, the group goes on, and it handles
// every event; what it handled twice is reported. The node killed is the
// group's coordinator when that node leads one of the topic's partitions
// (it does with 6 partitions on 3 nodes, unless leadership is skewed):
// the group then loses its coordinator and that partition's leader at
// once, the worst case for duplicates.
func TestKafkaClusterLeaderKilledWhileConsuming(t *testing.T) {
	killed := -1
	brokers := threeLiveNodes(t, &killed)
	ctx, cancel := context.WithTimeout(context.Background(), faultPublishFor+scriptStopFor+faultDrainFor)
	defer cancel()

	client := eventbustest.NewClient(t, brokers...)
	tp := replicatedTopic(ctx, t, client, leaderKillPartitions)
	// Everything is published (and acknowledged by two replicas at
	// least) before the group starts, so that what is tested is consuming.
	pub := eventbustest.NewBusOn(t, client, eventbus.Config{})
	ids := make([]string, 0, leaderKillTotal)
	for from := 0; from < leaderKillTotal; from += eventbus.MaxBatchSize {
		batch := make([]eventbus.BatchEvent, 0, eventbus.MaxBatchSize)
		for i := from; i < min(from+eventbus.MaxBatchSize, leaderKillTotal); i++ {
			batch = append(batch, eventbus.BatchEvent{
				EventType: tp,
				Data:      map[string]any{"order": i},
				Metadata:  eventbus.PublishMetadata{TenantID: fmt.Sprintf("tenant-%d", i%faultTenants)},
				Options:   []eventbus.PublishOption{eventbus.WithPartitionKey(fmt.Sprintf("order-%d", i))},
			})
		}
		res, err := pub.PublishBatch(ctx, batch)
		if err != nil {
			t.Fatalf("publish: %v", err)
		}
		for _, r := range res {
			ids = append(ids, r.EventID)
		}
	}
	t.Logf("published %d events; topic %s: %s", len(ids), tp, leaders(ctx, client, tp))

	var (
		seenMu  sync.Mutex
		seen    = map[string]int{}
		handled atomic.Int64
	)
	group := eventbustest.UniqueID("leaderkill")
	consumer := eventbustest.NewBus(t, eventbus.Config{}, brokers...)
	start := time.Now()
	eventbustest.MustSubscribe(t, consumer, tp, func(ctx context.Context, ev eventbus.RawEvent) error {
		select {
		case <-time.After(leaderKillHandle):
		case <-ctx.Done():
			return ctx.Err()
		}
		seenMu.Lock()
		seen[ev.ID]++
		seenMu.Unlock()
		handled.Add(1)
		return nil
	}, eventbus.InGroup(group), eventbus.WithDelivery(eventbus.Delivery{FromBeginning: true}))

	// The fault: once a fifth is handled, kill the leader of a partition,
	// on the group coordinator's node if it leads one.
	for handled.Load() < leaderKillAt {
		if ctx.Err() != nil {
			t.Fatalf("the group handled %d events, never %d", handled.Load(), leaderKillAt)
		}
		time.Sleep(5 * time.Millisecond)
	}
	led, err := partitionLeaders(ctx, client, tp)
	if err != nil {
		t.Fatal(err)
	}
	coordinator, err := groupCoordinator(ctx, client, group)
	if err != nil {
		t.Fatal(err)
	}
	partition := int32(0)
	for p := range int32(leaderKillPartitions) {
		if led[p] == coordinator {
			partition = p
			break
		}
	}
	leader := led[partition]
	role := "not the group coordinator"
	if leader == coordinator {
		role = "also the group coordinator"
	}
	atHandled, killedAt := handled.Load(), time.Since(start)
	killed = int(leader)
	if err := killNode(t, killed); err != nil {
		t.Fatalf("killing node %d, leader of partition %d: %v", killed, partition, err)
	}
	t.Logf("node %d, leader of partition %d and %s, killed (SIGKILL) at %d handled (+%.1fs)", killed, partition, role, atHandled, killedAt.Seconds())
	newLeader := leader
	for newLeader == leader || newLeader < 0 {
		if ctx.Err() != nil {
			t.Fatalf("partition %d has no new leader after node %d was killed: %s", partition, killed, leaders(ctx, client, tp))
		}
		time.Sleep(100 * time.Millisecond)
		if now, err := partitionLeaders(ctx, client, tp); err == nil {
			newLeader = now[partition]
		}
	}
	failover := time.Since(start) - killedAt
	t.Logf("partition %d led by node %d %.1fs after the kill; topic: %s", partition, newLeader, failover.Seconds(), leaders(ctx, client, tp))

	missing := func() int {
		seenMu.Lock()
		defer seenMu.Unlock()
		n := 0
		for _, id := range ids {
			if seen[id] == 0 {
				n++
			}
		}
		return n
	}
	drain := time.NewTimer(faultDrainFor)
	defer drain.Stop()
	lost := missing()
	for lost > 0 {
		select {
		case <-drain.C:
			t.Fatalf("fault test (leader killed while consuming): %d published, %d lost: not handled by the group %s after the kill", len(ids), lost, faultDrainFor)
		case <-time.After(100 * time.Millisecond):
		}
		lost = missing()
	}
	all := time.Since(start)
	// Duplicates are counted once the group's commit reached the end of
	// every partition: an event that comes again (to a member whose
	// session ended with the coordinator, say) is handled before the
	// commit passes it, possibly after every event was seen once.
	for {
		n, err := uncommittedRecords(ctx, client, group, tp)
		if err == nil && n == 0 {
			break
		}
		select {
		case <-drain.C:
			t.Fatalf("the group handled every event but its commit is still %d records (%v) short of the end %s after the kill", n, err, faultDrainFor)
		case <-time.After(100 * time.Millisecond):
		}
	}
	seenMu.Lock()
	dups := 0
	for _, n := range seen {
		dups += n - 1
	}
	distinct := len(seen)
	seenMu.Unlock()
	if distinct != len(ids) {
		t.Errorf("the group handled %d distinct event IDs, %d were published", distinct, len(ids))
	}
	t.Logf("fault test (leader killed while consuming): %d published, %d lost, %d duplicates handled (%.2f%%), node %d (leader of partition %d, %s) killed at %d handled, new leader after %.1fs, all handled %.1fs after the group started",
		len(ids), lost, dups, 100*float64(dups)/float64(len(ids)), killed, partition, role, atHandled, failover.Seconds(), all.Seconds())

	if _, err := kafkaScript(t, scriptStartFor, "start-node", fmt.Sprint(killed), "--nodes", "3"); err != nil {
		t.Fatalf("restarting node %d: %v", killed, err)
	}
}

// threeLiveNodes returns the bootstrap list of the 3-node cluster named by
// EVENTBUS_TEST_CLUSTER, with every node running (one an earlier test left
// down is started), and starts node *killed again when the test ends if
// the test killed it (*killed ≥ 0) and left it down.
func threeLiveNodes(t *testing.T, killed *int) []string {
	t.Helper()
	bootstrap := strings.TrimSpace(os.Getenv(clusterEnv))
	if bootstrap == "" {
		t.Fatalf("%s is not set: this test (build tag kafkacluster) needs a 3-node Kafka cluster; "+
			"start one with `scripts/kafka.sh start --nodes 3` and set %s to the bootstrap list it prints", clusterEnv, clusterEnv)
	}
	brokers := strings.Split(bootstrap, ",")
	if len(brokers) != 3 {
		t.Fatalf("%s=%q names %d brokers; this test kills a leader of a 3-node cluster", clusterEnv, bootstrap, len(brokers))
	}
	for n := 1; n <= 3; n++ {
		if !nodeRunning(t, n) {
			t.Logf("node %d is down (an earlier test?); starting it", n)
			if _, err := kafkaScript(t, scriptStartFor, "start-node", fmt.Sprint(n), "--nodes", "3"); err != nil {
				t.Fatal(err)
			}
		}
	}
	t.Cleanup(func() {
		if *killed < 0 || nodeRunning(t, *killed) {
			return
		}
		t.Logf("cleanup: node %d is down; starting it again", *killed)
		if _, err := kafkaScript(t, scriptStartFor, "start-node", fmt.Sprint(*killed), "--nodes", "3"); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	return brokers
}

// replicatedTopic creates a new core.order.placed topic of the test with
// partitions partitions on all three nodes (RF 3, min.insync.replicas 2),
// so that a write survives one node's loss.
func replicatedTopic(ctx context.Context, t *testing.T, client *eventbus.Client, partitions int) string {
	t.Helper()
	tp := eventbustest.UniqueTopic(t, "core.order.placed")
	ectx, cancel := context.WithTimeout(ctx, eventbustest.WaitTimeout)
	defer cancel()
	err := client.Topics().Ensure(ectx, tp, topic.WithPartitions(partitions),
		topic.WithReplicationFactor(3), topic.WithConfig("min.insync.replicas", "2"))
	if err != nil {
		t.Fatalf("ensure %s: %v", tp, err)
	}
	return tp
}
