package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/plexica/eventbus/deadletter"
	"github.com/plexica/eventbus/dlqhttp"
	"github.com/plexica/eventbus/topic"
)

// Environment variables of the dlq commands.
const (
	// EnvAPI is the HTTP address of `eventbus serve` (its EVENTBUS_HTTP=
	// line) that the dlq commands talk to.
	EnvAPI = "EVENTBUS_API"
	// EnvToken is the bearer token the dlq commands present.
	EnvToken = "EVENTBUS_TOKEN"
)

// DefaultAPI is where the dlq commands look for `eventbus serve`.
const DefaultAPI = "http://" + DefaultHTTPAddr

// stackLines is how much of a panic's stack trace `dlq show` prints.
const stackLines = 16

// apiTimeout bounds one DLQ API request.
const apiTimeout = 30 * time.Second

// dlqAPI is the DLQ REST API of `eventbus serve`, as the dlq commands
// call it.
type dlqAPI struct {
	*dlqhttp.Client
	base   string // http://host:port, no trailing slash, for messages
	asJSON bool   // --json
}

func (a *app) dlqCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "dlq",
		Short: "Inspect, retry and delete dead-lettered events through a running serve",
		Long: `Inspect, retry and delete the events consumer groups failed to handle, through
the DLQ REST API of a running "eventbus serve" (--api, env ` + EnvAPI + `; serve prints
its address as EVENTBUS_HTTP=...). Every request presents the bearer token of
--token (env ` + EnvToken + `): one of serve's --admin-token list, or the admin token
it generated and printed at start.

Tables by default; --json prints JSON instead: for stats, list, show and
retry-topic, the API's answer as this command decoded it, written again
(indented); for retry and delete, {"id", "status"} and {"id", "deleted"}.`,
		Example: `  export EVENTBUS_API=http://127.0.0.1:8080 EVENTBUS_TOKEN=k8Qz1vXw9mR2pL7a
  eventbus dlq stats
  eventbus dlq list --status max-retries-exceeded --topic core.user.created
  eventbus dlq show 5f0c2a9e81d4b7c3a6e2f19b0d8c4e71
  eventbus dlq retry 5f0c2a9e81d4b7c3a6e2f19b0d8c4e71
  eventbus dlq retry-topic core.user.created
  eventbus dlq delete 5f0c2a9e81d4b7c3a6e2f19b0d8c4e71`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return usageErrorf("dlq needs a subcommand: stats, list, show ID, retry ID, retry-topic TOPIC or delete ID")
		},
	}
	pf := cmd.PersistentFlags()
	pf.String("api", DefaultAPI, "HTTP address of eventbus serve (env "+EnvAPI+")")
	pf.String("token", "", "bearer token for the DLQ API (env "+EnvToken+")")
	pf.Bool("json", false, "print JSON instead of tables (see the command's help)")
	cmd.AddCommand(
		a.dlqStatsCmd(), a.dlqListCmd(), a.dlqShowCmd(),
		a.dlqRetryCmd(), a.dlqRetryTopicCmd(), a.dlqDeleteCmd(),
	)
	return cmd
}

// dlqSetup resolves --api, --token and --json.
func (a *app) dlqSetup(cmd *cobra.Command) (*dlqAPI, error) {
	api := strings.TrimSpace(a.stringSetting(cmd, "api", EnvAPI))
	token := strings.TrimSpace(a.stringSetting(cmd, "token", EnvToken))
	asJSON, _ := cmd.Flags().GetBool("json")
	if api == "" {
		return nil, usageErrorf("--api is empty; give the HTTP address of eventbus serve, e.g. %s", DefaultAPI)
	}
	if !strings.Contains(api, "://") {
		api = "http://" + api // serve prints host:port
	}
	u, err := url.Parse(api)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, usageErrorf("--api %q is not an http(s) address, e.g. %s", api, DefaultAPI)
	}
	base := strings.TrimSuffix(u.Scheme+"://"+u.Host+strings.TrimSuffix(u.EscapedPath(), "/"), "/api/dlq")
	c, err := dlqhttp.NewClient(base, token, &http.Client{Timeout: apiTimeout})
	if err != nil {
		return nil, usageErrorf("%v", err)
	}
	return &dlqAPI{Client: c, base: base, asJSON: asJSON}, nil
}

// explain turns an error of a DLQ API call into one line saying what to
// do; ctx is the call's.
func (d *dlqAPI) explain(ctx context.Context, err error) error {
	var (
		answer  *dlqhttp.APIError
		unsent  *url.Error
		syntax  *json.SyntaxError
		badType *json.UnmarshalTypeError
	)
	switch {
	case errors.As(err, &answer):
		msg := fmt.Sprintf("DLQ API: %d %s", answer.Status, answer.Code)
		if answer.Code == "" {
			// Not the DLQ API's error format: some other server, or a
			// route this server does not have.
			msg = fmt.Sprintf("DLQ API: %d %s: %s answered %q, which is not the DLQ API; is --api the address eventbus serve prints as EVENTBUS_HTTP=?",
				answer.Status, strings.ToLower(strings.ReplaceAll(http.StatusText(answer.Status), " ", "_")), d.base, answer.Message)
		} else if answer.Message != "" {
			msg += ": " + answer.Message
		}
		switch answer.Status {
		case http.StatusUnauthorized:
			msg += fmt.Sprintf("; pass a token with --token or %s (eventbus serve prints the admin token it generated, or set one with --admin-token)", EnvToken)
		case http.StatusForbidden:
			msg += "; this token is scoped to another tenant: use an admin token or that tenant's"
		}
		return errors.New(msg)
	case ctx.Err() != nil:
		return errInterrupted
	case errors.As(err, &unsent):
		return fmt.Errorf("cannot reach the DLQ API at %s: %v; start `eventbus serve`, or point --api or %s at its HTTP address (the EVENTBUS_HTTP= line it prints)",
			d.base, unsent.Err, EnvAPI)
	case errors.As(err, &syntax), errors.As(err, &badType):
		var cause error = badType
		if syntax != nil {
			cause = syntax
		}
		return fmt.Errorf("the DLQ API at %s answered something that is not its JSON (%v); is --api the address of eventbus serve?", d.base, cause)
	}
	return err
}

func (a *app) dlqStatsCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "stats",
		Short: "Count dead-letter entries by status, topic and reason",
		Args:  argsUsage(0, 0, "no arguments (filters are flags)", "eventbus dlq stats --tenant acme"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			f := cmd.Flags()
			topic, _ := f.GetString("topic")
			status, _ := f.GetString("status")
			tenant, _ := f.GetString("tenant")
			if status != "" && !deadletter.Status(status).Valid() {
				return usageErrorf("--status %q is not a status; use pending, retrying, resolved or max-retries-exceeded", status)
			}
			api, err := a.dlqSetup(cmd)
			if err != nil {
				return err
			}
			stats, err := api.Stats(cmd.Context(), deadletter.Query{Topic: topic, Status: deadletter.Status(status), TenantID: tenant})
			if err != nil {
				return api.explain(cmd.Context(), err)
			}
			if api.asJSON {
				return writeJSON(a.stdout, stats)
			}
			return writeStats(a.stdout, stats)
		},
	}
	f := cmd.Flags()
	f.String("topic", "", "count only entries of this topic")
	f.String("status", "", "count only entries in this status: pending, retrying, resolved, max-retries-exceeded")
	f.String("tenant", "", "count only this tenant's entries")
	return cmd
}

func writeStats(w io.Writer, s deadletter.Stats) error {
	fmt.Fprintf(w, "dead-letter entries: %d\n", s.Total)
	if s.Total == 0 {
		return nil
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	section := func(title string, counts map[string]int, order []string) {
		fmt.Fprintf(tw, "\n%s\tCOUNT\n", title)
		seen := map[string]bool{}
		for _, k := range order {
			seen[k] = true
			fmt.Fprintf(tw, "%s\t%d\n", k, counts[k])
		}
		for _, k := range sortedKeys(counts) {
			if !seen[k] && counts[k] > 0 {
				fmt.Fprintf(tw, "%s\t%d\n", oneLine(k, 80), counts[k])
			}
		}
	}
	section("STATUS", s.ByStatus, []string{
		string(deadletter.StatusPending), string(deadletter.StatusRetrying),
		string(deadletter.StatusResolved), string(deadletter.StatusMaxRetriesExceeded),
	})
	section("TOPIC", s.ByTopic, nil)
	section("REASON", s.ByReason, nil)
	return tw.Flush()
}

func (a *app) dlqListCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List dead-letter entries, newest failure first",
		Example: `  eventbus dlq list
  eventbus dlq list --topic core.user.created --status pending --tenant acme
  eventbus dlq list --page 2 --page-size 50`,
		Args: argsUsage(0, 0, "no arguments (filters are flags)", "eventbus dlq list --status pending"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			f := cmd.Flags()
			topic, _ := f.GetString("topic")
			status, _ := f.GetString("status")
			tenant, _ := f.GetString("tenant")
			page, _ := f.GetInt("page")
			size, _ := f.GetInt("page-size")
			if status != "" && !deadletter.Status(status).Valid() {
				return usageErrorf("--status %q is not a status; use pending, retrying, resolved or max-retries-exceeded", status)
			}
			if page < 1 {
				return usageErrorf("--page must be at least 1")
			}
			if size < 1 || size > dlqhttp.MaxPageSize {
				return usageErrorf("--page-size must be between 1 and %d", dlqhttp.MaxPageSize)
			}
			if page-1 > math.MaxInt/size {
				return usageErrorf("--page %d is past any entry", page)
			}
			api, err := a.dlqSetup(cmd)
			if err != nil {
				return err
			}
			// One page of the API: an offset that is a multiple of a limit
			// of at most MaxPageSize is one request.
			items, total, err := api.List(cmd.Context(), deadletter.Query{
				Topic: topic, Status: deadletter.Status(status), TenantID: tenant, Offset: (page - 1) * size, Limit: size,
			})
			if err != nil {
				return api.explain(cmd.Context(), err)
			}
			p := dlqhttp.Page{Items: items, Total: total, Page: page, PageSize: size, TotalPages: (total + size - 1) / size}
			if api.asJSON {
				return writeJSON(a.stdout, p)
			}
			return writeList(a.stdout, p)
		},
	}
	f := cmd.Flags()
	f.String("topic", "", "only entries of this topic")
	f.String("status", "", "only entries in this status: pending, retrying, resolved, max-retries-exceeded")
	f.String("tenant", "", "only this tenant's entries")
	f.Int("page", 1, "page to show, from 1")
	f.Int("page-size", dlqhttp.DefaultPageSize, fmt.Sprintf("entries per page, at most %d", dlqhttp.MaxPageSize))
	return cmd
}

func writeList(w io.Writer, p dlqhttp.Page) error {
	if p.Total == 0 {
		fmt.Fprintln(w, "no dead-letter entries match")
		return nil
	}
	if len(p.Items) == 0 {
		fmt.Fprintf(w, "page %d is past the last page (%d) of %s\n", p.Page, p.TotalPages, entries(p.Total))
		return nil
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSTATUS\tTOPIC\tTENANT\tGROUP\tRETRIES\tFAILED AT\tREASON")
	for _, e := range p.Items {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d/%d\t%s\t%s\n", e.ID, e.Status, e.OriginalTopic, scopeOf(e.TenantID, e.WorkspaceID),
			e.ConsumerGroup, e.RetryCount, e.MaxRetries, formatTime(e.FailedAt), oneLine(e.FailureReason, 60))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(w, "page %d of %d, %s\n", p.Page, p.TotalPages, entries(p.Total))
	return nil
}

func entries(n int) string {
	if n == 1 {
		return "1 entry"
	}
	return fmt.Sprintf("%d entries", n)
}

func (a *app) dlqShowCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "show ID",
		Short: "Show one dead-letter entry with its history and original event",
		Args:  argsUsage(1, 1, "one entry ID", "eventbus dlq show 5f0c2a9e81d4b7c3a6e2f19b0d8c4e71"),
		RunE: func(cmd *cobra.Command, args []string) error {
			api, err := a.dlqSetup(cmd)
			if err != nil {
				return err
			}
			e, err := api.Get(cmd.Context(), args[0])
			if err != nil {
				return api.explain(cmd.Context(), err)
			}
			if api.asJSON {
				return writeJSON(a.stdout, e)
			}
			return writeEntry(a.stdout, e)
		},
	}
}

func writeEntry(w io.Writer, e deadletter.Entry) error {
	tw := tabwriter.NewWriter(w, 0, 0, 1, ' ', 0)
	row := func(k, v string) {
		if v != "" {
			fmt.Fprintf(tw, "%s:\t%s\n", k, v)
		}
	}
	row("ID", e.ID)
	status := string(e.Status)
	if e.Permanent {
		status += " (permanent failure)"
	}
	row("Status", status)
	row("Topic", e.OriginalTopic)
	row("Event", strings.TrimSpace(e.EventID+" "+parens(e.EventType)))
	row("Tenant", scopeOf(e.TenantID, e.WorkspaceID))
	row("Group", e.ConsumerGroup)
	if e.Origin == deadletter.OriginTypeScript {
		row("Written by", "the TypeScript package (a retry goes back to its topic, for every group)")
	}
	row("Position", fmt.Sprintf("partition %d, offset %d", e.Partition, e.Offset))
	row("Failed at", formatTime(e.FailedAt))
	row("Retries", fmt.Sprintf("%d of %d", e.RetryCount, e.MaxRetries))
	if e.NextRetryAt != nil {
		row("Next retry", formatTime(*e.NextRetryAt))
	}
	if e.ResolvedAt != nil {
		row("Resolved at", formatTime(*e.ResolvedAt))
	}
	row("Reason", oneLine(e.FailureReason, 200))
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(e.Attempts) > 0 {
		fmt.Fprintln(w, "History:")
		tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		for _, at := range e.Attempts {
			fmt.Fprintf(tw, "  %s\t%s\t%s\n", formatTime(at.At), at.Kind, oneLine(at.Error, 100))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	if e.StackTrace != "" {
		lines := strings.Split(strings.TrimRight(e.StackTrace, "\n"), "\n")
		more := ""
		if len(lines) > stackLines {
			more = fmt.Sprintf("\n  ... %d more lines (--json shows them all)", len(lines)-stackLines)
			lines = lines[:stackLines]
		}
		fmt.Fprintf(w, "Stack trace:\n%s%s\n", indent(strings.Join(lines, "\n"), "  "), more)
	}
	if len(e.OriginalEvent) > 0 {
		var buf bytes.Buffer
		if json.Indent(&buf, e.OriginalEvent, "  ", "  ") == nil {
			fmt.Fprintf(w, "Original event:\n  %s\n", buf.String())
		} else {
			fmt.Fprintf(w, "Original event:\n  %s\n", e.OriginalEvent)
		}
	}
	return nil
}

func (a *app) dlqRetryCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "retry ID",
		Short: "Retry one entry now (in any status), for the group that failed it only (TypeScript entries: every group)",
		Args:  argsUsage(1, 1, "one entry ID", "eventbus dlq retry 5f0c2a9e81d4b7c3a6e2f19b0d8c4e71"),
		RunE: func(cmd *cobra.Command, args []string) error {
			api, err := a.dlqSetup(cmd)
			if err != nil {
				return err
			}
			if err := api.Retry(cmd.Context(), args[0]); err != nil {
				return api.explain(cmd.Context(), err)
			}
			// The API answers 202 {"id":..., "status":"retrying"}.
			if api.asJSON {
				return writeJSON(a.stdout, struct {
					ID     string            `json:"id"`
					Status deadletter.Status `json:"status"`
				}{args[0], deadletter.StatusRetrying})
			}
			show := args[0]
			if strings.HasPrefix(show, "-") {
				show = "-- " + show
			}
			// The answer does not say who wrote the entry, so the message
			// covers both kinds.
			fmt.Fprintf(a.stdout, "eventbus: retry of %s sent to the group that failed it, or, for an entry of the TypeScript package, "+
				"back to its topic, where every group reads it again (status %s); follow it with: eventbus dlq show %s\n", args[0], deadletter.StatusRetrying, show)
			return nil
		},
	}
}

func (a *app) dlqRetryTopicCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "retry-topic TOPIC",
		Short: "Retry every unresolved entry of a topic now",
		Args:  argsUsage(1, 1, "one topic", "eventbus dlq retry-topic core.user.created"),
		RunE: func(cmd *cobra.Command, args []string) error {
			name := args[0]
			if t, err := topic.Parse(name); err != nil {
				return usageErrorf("%v", err)
			} else if t.Kind == topic.KindDLQ {
				name = t.Original.Name // the entries are filed by their original topic
			}
			api, err := a.dlqSetup(cmd)
			if err != nil {
				return err
			}
			var out dlqhttp.RetryCounts
			out.Succeeded, out.Failed, err = api.RetryAll(cmd.Context(), deadletter.Query{Topic: name})
			if err != nil {
				return api.explain(cmd.Context(), err)
			}
			if api.asJSON {
				if err := writeJSON(a.stdout, out); err != nil {
					return err
				}
			} else {
				fmt.Fprintf(a.stdout, "eventbus: retried %s of %s\n", entries(out.Succeeded), name)
			}
			if out.Failed > 0 {
				return fmt.Errorf("%d entries of %s could not be retried (the brokers refused the retry); run it again, or see the serve logs", out.Failed, name)
			}
			return nil
		},
	}
}

func (a *app) dlqDeleteCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "delete ID",
		Short: "Delete one entry (it will not be retried)",
		Args:  argsUsage(1, 1, "one entry ID", "eventbus dlq delete 5f0c2a9e81d4b7c3a6e2f19b0d8c4e71"),
		RunE: func(cmd *cobra.Command, args []string) error {
			api, err := a.dlqSetup(cmd)
			if err != nil {
				return err
			}
			if err := api.Delete(cmd.Context(), args[0]); err != nil {
				return api.explain(cmd.Context(), err)
			}
			if api.asJSON {
				return writeJSON(a.stdout, map[string]any{"id": args[0], "deleted": true})
			}
			fmt.Fprintf(a.stdout, "eventbus: deleted %s\n", args[0])
			return nil
		},
	}
}

// Formatting helpers shared by the table outputs.

func scopeOf(tenant, workspace string) string {
	if workspace != "" {
		return tenant + "/" + workspace
	}
	if tenant == "" {
		return "-"
	}
	return tenant
}

func formatTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format("2006-01-02T15:04:05.000Z")
}

func parens(s string) string {
	if s == "" {
		return ""
	}
	return "(" + s + ")"
}

// oneLine flattens s to one line of at most n runes.
func oneLine(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}

func indent(s, prefix string) string {
	return prefix + strings.ReplaceAll(strings.TrimRight(s, "\n"), "\n", "\n"+prefix)
}

func sortedKeys(m map[string]int) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
