package cli

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/plexica/eventbus/audit"
	"github.com/plexica/eventbus/consoleapi"
)

func (a *app) auditCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "audit",
		Short: "Show the audit trail: who retried, deleted or reset what, newest first",
		Long: `Show the operators' audit trail kept by eventbus serve (topic ` + audit.Topic + `): every
dead-letter retry and delete, and every consumer group reset and replay, with the name of
the token that asked (serve's --admin-token NAME:TOKEN), newest first. Through
the REST API of a running serve (--api, env ` + EnvAPI + `; --token, env ` + EnvToken + `);
a tenant token sees its tenant's entries only.`,
		Example: `  eventbus audit
  eventbus audit --actor ana --action group.reset
  eventbus audit --limit 200 --json`,
		Args: argsUsage(0, 0, "no arguments (filters are flags)", "eventbus audit --actor ana"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			f := cmd.Flags()
			var q audit.Query
			q.Actor, _ = f.GetString("actor")
			q.Action, _ = f.GetString("action")
			q.TenantID, _ = f.GetString("tenant")
			q.Limit, _ = f.GetInt("limit")
			q.Before, _ = f.GetInt64("before")
			asJSON, _ := f.GetBool("json")
			if q.Limit < 1 || q.Limit > audit.MaxLimit {
				return usageErrorf("--limit must be between 1 and %d", audit.MaxLimit)
			}
			actions := []string{audit.ActionDLQRetry, audit.ActionDLQRetryTopic, audit.ActionDLQDelete, audit.ActionGroupReset, audit.ActionGroupReplay}
			if q.Action != "" && !slices.Contains(actions, q.Action) {
				return usageErrorf("--action %q is not one of %s", q.Action, strings.Join(actions, ", "))
			}
			base, token, err := a.apiSettings(cmd)
			if err != nil {
				return err
			}
			page, err := consoleapi.NewClient(base, token, &http.Client{Timeout: apiTimeout}).Audit(cmd.Context(), q)
			if err != nil {
				return fmt.Errorf("audit trail at %s: %w", base, err)
			}
			if asJSON {
				return writeJSON(a.stdout, page)
			}
			if len(page.Items) == 0 {
				fmt.Fprintln(a.stdout, "no audit entries")
				return nil
			}
			tw := tabwriter.NewWriter(a.stdout, 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "TIME\tACTOR\tACTION\tTARGET\tTENANT\tOUTCOME\tDETAIL")
			for _, e := range page.Items {
				var detail []string
				for _, k := range slices.Sorted(func(yield func(string) bool) {
					for k := range e.Detail {
						if !yield(k) {
							return
						}
					}
				}) {
					detail = append(detail, k+"="+e.Detail[k])
				}
				outcome := e.Outcome
				if e.Error != "" {
					outcome += ": " + e.Error
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", e.Time.Local().Format(time.DateTime), e.Actor, e.Action, e.Target, dash(e.TenantID), outcome, strings.Join(detail, " "))
			}
			if err := tw.Flush(); err != nil {
				return err
			}
			if page.Next != 0 {
				fmt.Fprintf(a.stdout, "older entries: --before %d\n", page.Next)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.String("api", DefaultAPI, "HTTP address of eventbus serve (env "+EnvAPI+")")
	f.String("token", "", "bearer token (env "+EnvToken+")")
	f.String("actor", "", "only the entries of this token name")
	f.String("action", "", "only this action: dlq.retry, dlq.retry-topic, dlq.delete, group.reset or group.replay")
	f.String("tenant", "", "only the entries concerning this tenant")
	f.Int("limit", audit.DefaultLimit, "entries to show")
	f.Int64("before", 0, "show entries older than this offset (the --before an earlier page printed)")
	f.Bool("json", false, "print the page as JSON")
	return cmd
}

// apiSettings resolves --api and --token of a command that calls serve's
// REST API.
func (a *app) apiSettings(cmd *cobra.Command) (base, token string, err error) {
	token = strings.TrimSpace(a.stringSetting(cmd, "token", EnvToken))
	base, err = apiBase(a.stringSetting(cmd, "api", EnvAPI))
	return base, token, err
}

// apiBase checks the address of eventbus serve and returns its base URL.
func apiBase(api string) (string, error) {
	api = strings.TrimSpace(api)
	if api == "" {
		return "", usageErrorf("--api is empty; give the HTTP address of eventbus serve, e.g. %s", DefaultAPI)
	}
	if !strings.Contains(api, "://") {
		api = "http://" + api // serve prints host:port
	}
	u, err := url.Parse(api)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", usageErrorf("--api %q is not an http(s) address, e.g. %s", api, DefaultAPI)
	}
	return u.Scheme + "://" + u.Host + strings.TrimSuffix(u.EscapedPath(), "/"), nil
}
