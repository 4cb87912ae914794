package cli

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/plexica/eventbus/gateway"
)

func (a *app) subscriptionsCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "subscriptions",
		Short: "List, add and remove the HTTP gateway's push subscriptions through a running serve",
		Long: `List, add and remove push subscriptions: each delivers events to an HTTP
endpoint (see docs/gateway.md). They talk to a running "eventbus serve" (--api,
env ` + EnvAPI + `) with the bearer token of --token (env ` + EnvToken + `). A subscription
added here is kept in the brokers: every serve sharing them runs it, and it
survives restarts. Those of serve's --subscriptions file are listed too, and
are changed in the file.`,
		Example: `  export EVENTBUS_API=http://127.0.0.1:8080 EVENTBUS_TOKEN=k8Qz1vXw9mR2pL7a
  eventbus subscriptions list
  eventbus subscriptions add crm-users --events core.user.created --endpoint http://crm:3000/events --tenant acme
  eventbus subscriptions remove crm-users`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return usageErrorf("subscriptions needs a subcommand: list, add NAME or remove NAME")
		},
	}
	pf := cmd.PersistentFlags()
	pf.String("api", DefaultAPI, "HTTP address of eventbus serve (env "+EnvAPI+")")
	pf.String("token", "", "bearer token (env "+EnvToken+")")
	pf.Bool("json", false, "print JSON instead of a table")
	cmd.AddCommand(a.subscriptionsListCmd(), a.subscriptionsAddCmd(), a.subscriptionsRemoveCmd())
	return cmd
}

// gatewayClient resolves --api and --token.
func (a *app) gatewayClient(cmd *cobra.Command) (*gateway.Client, string, error) {
	api := strings.TrimSpace(a.stringSetting(cmd, "api", EnvAPI))
	if !strings.Contains(api, "://") {
		api = "http://" + api
	}
	u, err := url.Parse(api)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, "", usageErrorf("--api %q is not an http(s) address, e.g. %s", api, DefaultAPI)
	}
	base := u.Scheme + "://" + u.Host
	c, err := gateway.NewClient(base, strings.TrimSpace(a.stringSetting(cmd, "token", EnvToken)), &http.Client{Timeout: apiTimeout})
	if err != nil {
		return nil, "", usageErrorf("%v", err)
	}
	return c, base, nil
}

// explainGateway turns a failed call into one line saying what to do.
func explainGateway(base string, err error) error {
	var answer *gateway.APIError
	var unsent *url.Error
	switch {
	case errors.As(err, &answer) && answer.Status == http.StatusUnauthorized:
		return fmt.Errorf("gateway: %v; pass a token with --token or %s (eventbus serve prints the admin token it generated)", answer, EnvToken)
	case errors.As(err, &answer):
		return fmt.Errorf("gateway: %v", answer)
	case errors.As(err, &unsent):
		return fmt.Errorf("cannot reach eventbus serve at %s: %v; start it, or point --api or %s at its HTTP address (the EVENTBUS_HTTP= line it prints)", base, unsent.Err, EnvAPI)
	}
	return err
}

func (a *app) subscriptionsListCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List the push subscriptions the token may see",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, base, err := a.gatewayClient(cmd)
			if err != nil {
				return err
			}
			subs, err := c.List(cmd.Context())
			if err != nil {
				return explainGateway(base, err)
			}
			if asJSON, _ := cmd.Flags().GetBool("json"); asJSON {
				return writeJSON(a.stdout, subs)
			}
			if len(subs) == 0 {
				fmt.Fprintln(a.stdout, "no push subscriptions")
				return nil
			}
			tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tEVENTS\tENDPOINT\tTENANT\tORDERING\tCONCURRENCY\tTIMEOUT")
			for _, s := range subs {
				tenant := s.TenantID
				if tenant == "" {
					tenant = "*"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%s\n", s.Name, strings.Join(s.Events, ","), s.Endpoint, tenant,
					s.Ordering, s.MaxConcurrency, time.Duration(s.Timeout))
			}
			return tw.Flush()
		},
	}
}

func (a *app) subscriptionsAddCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "add NAME --events TYPE[,TYPE...] --endpoint URL",
		Short: "Add (or replace) a push subscription",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			f := cmd.Flags()
			events, _ := f.GetString("events")
			endpoint, _ := f.GetString("endpoint")
			tenant, _ := f.GetString("tenant")
			workspace, _ := f.GetString("workspace")
			ordering, _ := f.GetString("ordering")
			concurrency, _ := f.GetInt("max-concurrency")
			timeout, _ := f.GetDuration("timeout")
			body, _ := f.GetString("body")
			fromBeginning, _ := f.GetBool("from-beginning")
			if events == "" || endpoint == "" {
				return usageErrorf("add needs --events and --endpoint")
			}
			c, base, err := a.gatewayClient(cmd)
			if err != nil {
				return err
			}
			sub, err := c.Declare(cmd.Context(), gateway.Subscription{
				Name: args[0], Events: splitList(events), Endpoint: endpoint, TenantID: tenant, WorkspaceID: workspace,
				Ordering: ordering, MaxConcurrency: concurrency, Timeout: gateway.Duration(timeout), Body: body, FromBeginning: fromBeginning,
			})
			if err != nil {
				return explainGateway(base, err)
			}
			if asJSON, _ := f.GetBool("json"); asJSON {
				return writeJSON(a.stdout, sub)
			}
			fmt.Fprintf(a.stdout, "push subscription %s: %s -> %s (group %s)\n", sub.Name, strings.Join(sub.Events, ","), sub.Endpoint, sub.Group)
			return nil
		},
	}
	f := cmd.Flags()
	f.String("events", "", "event types to deliver, comma separated (core.user.created,core.user.deleted)")
	f.String("endpoint", "", "http or https URL each event is POSTed to")
	f.String("tenant", "", "deliver only this tenant's events")
	f.String("workspace", "", "deliver only this workspace's events (needs --tenant)")
	f.String("ordering", "", "per-key (default), per-partition or none")
	f.Int("max-concurrency", 0, fmt.Sprintf("requests in flight per serve (default %d)", gateway.DefaultMaxConcurrency))
	f.Duration("timeout", 0, fmt.Sprintf("bound of one request (default %s)", gateway.DefaultTimeout))
	f.String("body", "", "event (default: the bus's envelope) or data (the data alone)")
	f.Bool("from-beginning", false, "start at the oldest retained event instead of now")
	return cmd
}

func (a *app) subscriptionsRemoveCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "remove NAME",
		Short: "Remove a push subscription added with add",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, base, err := a.gatewayClient(cmd)
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), apiTimeout)
			defer cancel()
			if err := c.Remove(ctx, args[0]); err != nil {
				return explainGateway(base, err)
			}
			fmt.Fprintf(a.stdout, "push subscription %s removed\n", args[0])
			return nil
		},
	}
}
