package consoleapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/plexica/eventbus"
	"github.com/plexica/eventbus/audit"
	"github.com/plexica/eventbus/dlqhttp"
	"github.com/plexica/eventbus/internal/httpjson"
	"github.com/plexica/eventbus/topic"
)

// ReplayRequest is the body of POST /api/groups/{group}/replay: the event
// to deliver again, by its place in its topic.
type ReplayRequest struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	Offset    int64  `json:"offset"`
}

// ReplayResponse is the answer of POST /api/groups/{group}/replay.
type ReplayResponse struct {
	// EventID is the replayed event's ID.
	EventID string `json:"eventId"`
	// DLQID is the dead-letter entry the replay goes through; its status
	// says when the group handled the event (resolved).
	DLQID string `json:"dlqId"`
}

// POST /api/groups/{group}/replay delivers one event again to one group
// only, while it runs: the event is recorded as a dead-letter entry of
// that group and retried, the path a failed event takes, which reaches
// that group only. Admin tokens only; recorded in the audit trail.
func (a *api) replay(w http.ResponseWriter, r *http.Request, who dlqhttp.Principal) error {
	if a.DLQ == nil {
		return &httpjson.Error{Status: http.StatusServiceUnavailable, Code: httpjson.CodeUnavailable, Message: "replay is not enabled on this server"}
	}
	var req ReplayRequest
	dec := json.NewDecoder(io.LimitReader(r.Body, maxBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return httpjson.BadRequest("the body is not a replay request (%v); send {\"topic\":\"core.user.created\",\"partition\":0,\"offset\":42}", err)
	}
	t, err := topic.Parse(req.Topic)
	if err != nil {
		return err
	}
	if t.Kind == topic.KindDLQ || req.Partition < 0 || req.Offset < 0 {
		return httpjson.BadRequest("give a core or plugin topic and a partition and offset of at least 0")
	}
	group := r.PathValue("group")
	ev, err := a.readEvent(r.Context(), req)
	if err != nil {
		return err
	}
	out := ReplayResponse{EventID: ev.ID}
	detail := map[string]string{"topic": req.Topic, "partition": strconv.Itoa(int(req.Partition)), "offset": strconv.FormatInt(req.Offset, 10), "eventId": ev.ID}
	out.DLQID, err = a.DLQ.RouteToDLQ(r.Context(), req.Topic, ev, group, eventbus.Permanent(fmt.Errorf("replay to group %s requested by %s", group, who.Name)))
	if err == nil {
		detail["dlqId"] = out.DLQID
		err = a.DLQ.Retry(r.Context(), out.DLQID)
	}
	e := audit.Entry{Actor: who.Name, ActorTenant: who.Tenant, Action: audit.ActionGroupReplay, Target: group, TenantID: ev.TenantID, Outcome: audit.OutcomeOK, Detail: detail}
	if err != nil {
		e.Outcome, e.Error = audit.OutcomeFailed, err.Error()
	}
	actx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), auditTimeout)
	defer cancel()
	if rerr := a.Audit.Record(actx, e); rerr != nil {
		a.Logger.Error("consoleapi: the audit trail did not take a replay", "group", group, "by", who.Name, "err", rerr)
	}
	if err != nil {
		return err
	}
	return httpjson.Write(w, http.StatusAccepted, out)
}

// errNoSuchRecord: the topic has no event at that place.
var errNoSuchRecord = errors.New("no event at that place")

// readEvent reads the event at req's topic, partition and offset.
func (a *api) readEvent(ctx context.Context, req ReplayRequest) (eventbus.RawEvent, error) {
	var ev eventbus.RawEvent
	ctx = fresh(ctx)
	starts, err := a.Admin.ListStartOffsets(ctx, req.Topic)
	if err != nil {
		return ev, err
	}
	ends, err := a.Admin.ListEndOffsets(ctx, req.Topic)
	if err != nil {
		return ev, err
	}
	start, ok1 := starts.Lookup(req.Topic, req.Partition)
	end, ok2 := ends.Lookup(req.Topic, req.Partition)
	if !ok1 || !ok2 || start.Err != nil || end.Err != nil || req.Offset < start.Offset || req.Offset >= end.Offset {
		return ev, &httpjson.Error{Status: http.StatusNotFound, Code: httpjson.CodeNotFound, Message: fmt.Sprintf("%s: %s partition %d offset %d is not retained (or the partition does not exist)", errNoSuchRecord, req.Topic, req.Partition, req.Offset)}
	}
	cl, err := kgo.NewClient(append(a.KafkaOpts[:len(a.KafkaOpts):len(a.KafkaOpts)],
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{req.Topic: {req.Partition: kgo.NewOffset().At(req.Offset)}}))...)
	if err != nil {
		return ev, err
	}
	defer cl.Close()
	for {
		fs := cl.PollRecords(ctx, 1)
		if err := ctx.Err(); err != nil {
			return ev, err
		}
		var ferr error
		fs.EachError(func(_ string, _ int32, err error) { ferr = err })
		if ferr != nil {
			return ev, ferr
		}
		for _, rec := range fs.Records() {
			if rec.Offset != req.Offset {
				return ev, &httpjson.Error{Status: http.StatusNotFound, Code: httpjson.CodeNotFound, Message: fmt.Sprintf("%s: %s partition %d has no record at offset %d", errNoSuchRecord, req.Topic, req.Partition, req.Offset)}
			}
			if err := json.Unmarshal(rec.Value, &ev); err != nil || ev.TenantID == "" {
				return ev, httpjson.BadRequest("the record at %s partition %d offset %d is not an event; it cannot be replayed", req.Topic, req.Partition, req.Offset)
			}
			return ev, nil
		}
	}
}
