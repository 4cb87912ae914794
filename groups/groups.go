// Package groups inspects the cluster's consumer groups and moves their
// committed offsets: what the console's groups page, its REST API and
// `eventbus groups` show and do.
//
// Describe answers a group's state, members and, per partition, the
// committed offset, the end offset and the lag between them. PlanReset
// computes where a reset would move each partition and how many events
// that delivers again (or skips), without changing anything; Reset applies
// a plan. A reset is refused while the group has members: the members'
// own commits would overwrite it (kafka-consumer-groups refuses it too).
//
// Everything here uses only Kafka APIs that Apache Kafka, Redpanda and the
// embedded broker all answer: ListGroups, DescribeGroups, OffsetFetch,
// ListOffsets and OffsetCommit (through franz-go's kadm).
package groups

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
)

// Errors of this package; each is wrapped with what was wrong.
var (
	// ErrGroupNotFound: the cluster knows no such group (no members, no
	// committed offsets).
	ErrGroupNotFound = errors.New("consumer group not found")
	// ErrGroupActive: the group has members, so its offsets cannot be reset.
	ErrGroupActive = errors.New("consumer group has active members")
	// ErrInvalidTarget: a reset target that cannot be parsed or applied.
	ErrInvalidTarget = errors.New("invalid reset target")
)

// Summary is one group of List.
type Summary struct {
	Group    string `json:"group"`
	State    string `json:"state"`
	Protocol string `json:"protocol,omitempty"`
	Members  int    `json:"members"`
	// Topics the group has committed offsets on or is assigned.
	Topics []string `json:"topics"`
	// Lag is the group's total lag, the sum of its partitions' lag.
	Lag int64 `json:"lag"`
}

// Member is one member of a group.
type Member struct {
	ID         string `json:"id"`
	InstanceID string `json:"instanceId,omitempty"`
	ClientID   string `json:"clientId"`
	Host       string `json:"host"`
	// Assigned lists the member's partitions as "topic/partition".
	Assigned []string `json:"assigned"`
}

// Partition is the progress of a group on one partition.
type Partition struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	// Committed is the group's committed offset; -1 when it has none.
	Committed int64 `json:"committed"`
	// End is the partition's end offset (the next offset to be written).
	End int64 `json:"end"`
	// Lag is End minus Committed (minus the start offset when nothing is
	// committed); -1 when it could not be computed.
	Lag int64 `json:"lag"`
	// Member is the ID of the member assigned the partition, if any.
	Member string `json:"member,omitempty"`
}

// Group is the full description of one group.
type Group struct {
	Group      string      `json:"group"`
	State      string      `json:"state"`
	Protocol   string      `json:"protocol,omitempty"`
	Members    []Member    `json:"members"`
	Partitions []Partition `json:"partitions"`
	Lag        int64       `json:"lag"`
}

// List answers every consumer group of the cluster, sorted by name.
func List(ctx context.Context, adm *kadm.Client) ([]Summary, error) {
	listed, err := adm.ListGroups(ctx)
	if err != nil {
		return nil, fmt.Errorf("list consumer groups: %w", err)
	}
	names := listed.Groups()
	if len(names) == 0 {
		return []Summary{}, nil
	}
	lags, err := adm.Lag(ctx, names...)
	if err != nil {
		return nil, fmt.Errorf("describe consumer groups: %w", err)
	}
	out := make([]Summary, 0, len(names))
	for _, name := range names {
		l, ok := lags[name]
		if !ok {
			continue
		}
		g := describe(l)
		s := Summary{Group: name, State: g.State, Protocol: g.Protocol, Members: len(g.Members), Lag: g.Lag, Topics: []string{}}
		for _, p := range g.Partitions {
			if !slices.Contains(s.Topics, p.Topic) {
				s.Topics = append(s.Topics, p.Topic)
			}
		}
		out = append(out, s)
	}
	return out, nil
}

// Describe answers group's state, members and per-partition progress. It
// fails with ErrGroupNotFound when the cluster does not know the group.
func Describe(ctx context.Context, adm *kadm.Client, group string) (Group, error) {
	if group == "" {
		return Group{}, fmt.Errorf("%w: empty group name", ErrGroupNotFound)
	}
	lags, err := adm.Lag(ctx, group)
	if err != nil {
		return Group{}, fmt.Errorf("describe consumer group %q: %w", group, err)
	}
	l, ok := lags[group]
	if !ok {
		return Group{}, fmt.Errorf("%w: %q", ErrGroupNotFound, group)
	}
	if errors.Is(l.DescribeErr, kerr.GroupIDNotFound) {
		return Group{}, fmt.Errorf("%w: %q (list the groups with eventbus groups list)", ErrGroupNotFound, group)
	}
	if l.DescribeErr != nil {
		return Group{}, fmt.Errorf("describe consumer group %q: %w", group, l.DescribeErr)
	}
	if l.FetchErr != nil {
		return Group{}, fmt.Errorf("fetch the offsets of consumer group %q: %w", group, l.FetchErr)
	}
	g := describe(l)
	if (g.State == "Dead" || g.State == "") && len(g.Members) == 0 && len(g.Partitions) == 0 {
		return Group{}, fmt.Errorf("%w: %q (list the groups with eventbus groups list)", ErrGroupNotFound, group)
	}
	return g, nil
}

func describe(l kadm.DescribedGroupLag) Group {
	g := Group{Group: l.Group, State: l.State, Protocol: l.Protocol, Members: []Member{}, Partitions: []Partition{}}
	for _, m := range l.Members {
		mem := Member{ID: m.MemberID, ClientID: m.ClientID, Host: m.ClientHost, Assigned: []string{}}
		if m.InstanceID != nil {
			mem.InstanceID = *m.InstanceID
		}
		if c, ok := m.Assigned.AsConsumer(); ok {
			for _, t := range c.Topics {
				for _, p := range t.Partitions {
					mem.Assigned = append(mem.Assigned, t.Topic+"/"+strconv.Itoa(int(p)))
				}
			}
		}
		g.Members = append(g.Members, mem)
	}
	for _, p := range l.Lag.Sorted() {
		part := Partition{Topic: p.Topic, Partition: p.Partition, Committed: p.Commit.At, End: p.End.Offset, Lag: p.Lag}
		if p.Err != nil {
			part.Lag = -1
		}
		if p.Member != nil {
			part.Member = p.Member.MemberID
		}
		if part.Lag > 0 {
			g.Lag += part.Lag
		}
		g.Partitions = append(g.Partitions, part)
	}
	return g
}

// TargetKind says where a reset moves offsets.
type TargetKind string

// Reset targets.
const (
	// ToEarliest: the oldest retained event (everything delivered again).
	ToEarliest TargetKind = "earliest"
	// ToLatest: the end (everything not yet handled is skipped).
	ToLatest TargetKind = "latest"
	// ToOffset: one offset on every partition, clamped to what is retained.
	ToOffset TargetKind = "offset"
	// ToTime: the first event at or after a time, per partition.
	ToTime TargetKind = "time"
)

// Target is where a reset moves a group's offsets.
type Target struct {
	Kind   TargetKind `json:"kind"`
	Offset int64      `json:"offset,omitempty"`
	Time   time.Time  `json:"time,omitzero"`
}

// String is t as ParseTarget reads it.
func (t Target) String() string {
	switch t.Kind {
	case ToOffset:
		return "offset:" + strconv.FormatInt(t.Offset, 10)
	case ToTime:
		return "time:" + t.Time.UTC().Format(time.RFC3339Nano)
	}
	return string(t.Kind)
}

// ParseTarget reads a reset target: "earliest", "latest", "offset:<n>",
// "time:<RFC 3339 time>" or "ago:<duration>" (a time that long before now,
// e.g. ago:30m). Errors wrap ErrInvalidTarget.
func ParseTarget(s string, now time.Time) (Target, error) {
	kind, arg, _ := strings.Cut(strings.TrimSpace(s), ":")
	switch TargetKind(kind) {
	case ToEarliest, ToLatest:
		if arg != "" {
			break
		}
		return Target{Kind: TargetKind(kind)}, nil
	case ToOffset:
		n, err := strconv.ParseInt(arg, 10, 64)
		if err != nil || n < 0 {
			return Target{}, fmt.Errorf("%w: %q: want a non-negative offset, e.g. offset:1200", ErrInvalidTarget, s)
		}
		return Target{Kind: ToOffset, Offset: n}, nil
	case ToTime:
		t, err := time.Parse(time.RFC3339Nano, arg)
		if err != nil {
			return Target{}, fmt.Errorf("%w: %q: want an RFC 3339 time, e.g. time:2026-12-07T06:00:00Z", ErrInvalidTarget, s)
		}
		return Target{Kind: ToTime, Time: t}, nil
	case "ago":
		d, err := time.ParseDuration(arg)
		if err != nil || d <= 0 {
			return Target{}, fmt.Errorf("%w: %q: want a positive duration, e.g. ago:30m", ErrInvalidTarget, s)
		}
		return Target{Kind: ToTime, Time: now.Add(-d)}, nil
	}
	return Target{}, fmt.Errorf("%w: %q: want earliest, latest, offset:<n>, time:<RFC 3339 time> or ago:<duration>", ErrInvalidTarget, s)
}

// PartitionReset is one partition of a ResetPlan.
type PartitionReset struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	// Current is the committed offset now; -1 when there is none.
	Current int64 `json:"current"`
	// New is the offset the reset commits.
	New   int64 `json:"new"`
	Start int64 `json:"start"`
	End   int64 `json:"end"`
	// Redeliver is how many events the group will handle again (New
	// before Current; with no commit, from New to the end); Skip how many
	// it will never handle (New after Current).
	Redeliver int64 `json:"redeliver"`
	Skip      int64 `json:"skip"`
}

// ResetPlan is what a reset would do; Reset applies it.
type ResetPlan struct {
	Group      string           `json:"group"`
	State      string           `json:"state"`
	Target     Target           `json:"target"`
	Partitions []PartitionReset `json:"partitions"`
	Redeliver  int64            `json:"redeliver"`
	Skip       int64            `json:"skip"`
}

// PlanReset computes where a reset of group to target would move its
// offsets on topics (every topic it has committed offsets on when none are
// given; every partition of a given topic), without changing anything. It
// fails with ErrGroupActive when the group has members, ErrGroupNotFound
// when it is unknown and no topic is given.
func PlanReset(ctx context.Context, adm *kadm.Client, group string, topics []string, target Target) (ResetPlan, error) {
	plan := ResetPlan{Group: group, Target: target, Partitions: []PartitionReset{}}
	if group == "" {
		return plan, fmt.Errorf("%w: empty group name", ErrGroupNotFound)
	}
	switch target.Kind {
	case ToEarliest, ToLatest, ToTime:
	case ToOffset:
		if target.Offset < 0 {
			return plan, fmt.Errorf("%w: offset %d is negative", ErrInvalidTarget, target.Offset)
		}
	default:
		return plan, fmt.Errorf("%w: kind %q is not earliest, latest, offset or time", ErrInvalidTarget, target.Kind)
	}
	described, err := adm.DescribeGroups(ctx, group)
	if err != nil {
		return plan, fmt.Errorf("describe consumer group %q: %w", group, err)
	}
	d := described[group]
	switch {
	case errors.Is(d.Err, kerr.GroupIDNotFound): // some brokers say so of a group without members or offsets
		d.State = "Dead"
	case d.Err != nil:
		return plan, fmt.Errorf("describe consumer group %q: %w", group, d.Err)
	}
	plan.State = d.State
	if len(d.Members) > 0 {
		return plan, fmt.Errorf("%w: %q has %d (state %s); stop its consumers first, then reset", ErrGroupActive, group, len(d.Members), d.State)
	}
	committed, err := adm.FetchOffsets(ctx, group)
	if err == nil {
		err = committed.Error()
	}
	if errors.Is(err, kerr.GroupIDNotFound) {
		committed, err = kadm.OffsetResponses{}, nil
	}
	if err != nil {
		return plan, fmt.Errorf("fetch the offsets of consumer group %q: %w", group, err)
	}
	if len(topics) == 0 {
		for t := range committed {
			topics = append(topics, t)
		}
		if len(topics) == 0 {
			return plan, fmt.Errorf("%w: %q has no committed offsets; name the topics to reset", ErrGroupNotFound, group)
		}
	}
	slices.Sort(topics)
	topics = slices.Compact(topics)
	// Past the admin client's metadata cache: a topic created a moment ago
	// is found.
	ctx = kadm.WithAuthorizedOps(ctx)
	starts, err := adm.ListStartOffsets(ctx, topics...)
	if err == nil {
		err = starts.Error()
	}
	if errors.Is(err, kerr.UnknownTopicOrPartition) {
		return plan, fmt.Errorf("%w: a topic of %s does not exist (eventbus topics list shows them)", ErrInvalidTarget, strings.Join(topics, ", "))
	}
	if err != nil {
		return plan, fmt.Errorf("list the start offsets of %s: %w", strings.Join(topics, ", "), err)
	}
	ends, err := adm.ListEndOffsets(ctx, topics...)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return plan, fmt.Errorf("list the end offsets of %s: %w", strings.Join(topics, ", "), err)
	}
	var atTime kadm.ListedOffsets
	if target.Kind == ToTime {
		if atTime, err = adm.ListOffsetsAfterMilli(ctx, target.Time.UnixMilli(), topics...); err == nil {
			err = atTime.Error()
		}
		if err != nil {
			return plan, fmt.Errorf("find the offsets at %s: %w", target.Time.Format(time.RFC3339), err)
		}
	}
	for _, t := range topics {
		if len(ends[t]) == 0 {
			return plan, fmt.Errorf("%w: topic %q does not exist", ErrInvalidTarget, t)
		}
	}
	ends.Each(func(end kadm.ListedOffset) {
		start, _ := starts.Lookup(end.Topic, end.Partition)
		p := PartitionReset{Topic: end.Topic, Partition: end.Partition, Current: -1, Start: start.Offset, End: end.Offset}
		if c, ok := committed.Lookup(end.Topic, end.Partition); ok {
			p.Current = c.At
		}
		switch target.Kind {
		case ToEarliest:
			p.New = p.Start
		case ToLatest:
			p.New = p.End
		case ToOffset:
			p.New = min(max(target.Offset, p.Start), p.End)
		case ToTime:
			p.New = p.End
			if o, ok := atTime.Lookup(end.Topic, end.Partition); ok && o.Offset >= 0 {
				p.New = min(max(o.Offset, p.Start), p.End)
			}
		}
		switch {
		case p.Current < 0:
			p.Redeliver = p.End - p.New
		case p.New < p.Current:
			p.Redeliver = p.Current - p.New
		default:
			p.Skip = p.New - p.Current
		}
		plan.Redeliver += p.Redeliver
		plan.Skip += p.Skip
		plan.Partitions = append(plan.Partitions, p)
	})
	slices.SortFunc(plan.Partitions, func(a, b PartitionReset) int {
		if c := strings.Compare(a.Topic, b.Topic); c != 0 {
			return c
		}
		return int(a.Partition - b.Partition)
	})
	return plan, nil
}

// Reset commits plan's offsets for its group. It checks again that the
// group has no members, and fails with ErrGroupActive if one joined since
// the plan was made; the broker refuses the commit too if one joins in
// between.
func Reset(ctx context.Context, adm *kadm.Client, plan ResetPlan) error {
	described, err := adm.DescribeGroups(ctx, plan.Group)
	if err != nil {
		return fmt.Errorf("describe consumer group %q: %w", plan.Group, err)
	}
	if d := described[plan.Group]; d.Err != nil && !errors.Is(d.Err, kerr.GroupIDNotFound) {
		return fmt.Errorf("describe consumer group %q: %w", plan.Group, d.Err)
	} else if len(d.Members) > 0 {
		return fmt.Errorf("%w: %q has %d since the plan was made (state %s); nothing was changed", ErrGroupActive, plan.Group, len(d.Members), d.State)
	}
	offsets := kadm.Offsets{}
	for _, p := range plan.Partitions {
		offsets.Add(kadm.Offset{Topic: p.Topic, Partition: p.Partition, At: p.New, LeaderEpoch: -1})
	}
	resp, err := adm.CommitOffsets(ctx, plan.Group, offsets)
	if err == nil {
		err = resp.Error()
	}
	if err != nil {
		return fmt.Errorf("commit the reset offsets of consumer group %q: %w", plan.Group, err)
	}
	return nil
}
