package cli

import (
	"context"
	"fmt"
	"os"
	"os/user"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/plexica/eventbus/audit"
	"github.com/plexica/eventbus/consoleapi"
	"github.com/plexica/eventbus/groups"
)

func (a *app) groupsCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "groups",
		Short: "List and describe consumer groups, and reset their offsets",
		Long: `List the cluster's consumer groups, describe one (members, and per partition the
committed offset, the end offset and the lag), and reset a group's offsets to
replay events or skip them. Talks to the brokers directly (--brokers), as
kafka-consumer-groups does.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return usageErrorf("groups needs a subcommand: list, describe GROUP or reset GROUP")
		},
	}
	cmd.AddCommand(a.groupsListCmd(), a.groupsDescribeCmd(), a.groupsResetCmd())
	return cmd
}

func (a *app) groupsListCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "list",
		Short:   "List consumer groups with their state, members and total lag",
		Example: "  eventbus groups list\n  eventbus groups list --json",
		Args:    argsUsage(0, 0, "no arguments", "eventbus groups list"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			bs, err := a.resolveBrokers(cmd)
			if err != nil {
				return err
			}
			asJSON, _ := cmd.Flags().GetBool("json")
			client, adm, err := a.connectAdmin(cmd.Context(), bs)
			if err != nil {
				return err
			}
			defer client.Close()
			list, err := groups.List(cmd.Context(), adm)
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSON(a.stdout, list)
			}
			if len(list) == 0 {
				fmt.Fprintln(a.stdout, "no consumer groups")
				return nil
			}
			tw := tabwriter.NewWriter(a.stdout, 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "GROUP\tSTATE\tMEMBERS\tLAG\tTOPICS")
			for _, g := range list {
				fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%s\n", g.Group, g.State, g.Members, g.Lag, strings.Join(g.Topics, ","))
			}
			return tw.Flush()
		},
	}
	cmd.Flags().Bool("json", false, "print the list as JSON")
	addBrokerFlags(cmd)
	return cmd
}

func (a *app) groupsDescribeCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "describe GROUP",
		Short: "Show a group's members and, per partition, committed offset, end offset and lag",
		Example: `  eventbus groups describe mailer
  eventbus groups describe mailer --json`,
		Args: argsUsage(1, 1, "one group", "eventbus groups describe mailer"),
		RunE: func(cmd *cobra.Command, args []string) error {
			bs, err := a.resolveBrokers(cmd)
			if err != nil {
				return err
			}
			asJSON, _ := cmd.Flags().GetBool("json")
			client, adm, err := a.connectAdmin(cmd.Context(), bs)
			if err != nil {
				return err
			}
			defer client.Close()
			g, err := groups.Describe(cmd.Context(), adm, args[0])
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSON(a.stdout, g)
			}
			fmt.Fprintf(a.stdout, "Consumer group %s: %s, %d members, total lag %d\n\n", g.Group, g.State, len(g.Members), g.Lag)
			hosts := map[string]groups.Member{}
			for _, m := range g.Members {
				hosts[m.ID] = m
			}
			tw := tabwriter.NewWriter(a.stdout, 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "GROUP\tTOPIC\tPARTITION\tCURRENT-OFFSET\tLOG-END-OFFSET\tLAG\tCONSUMER-ID\tHOST\tCLIENT-ID")
			for _, p := range g.Partitions {
				m := hosts[p.Member]
				fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%d\t%s\t%s\t%s\t%s\n", g.Group, p.Topic, p.Partition, offsetText(p.Committed), p.End, offsetText(p.Lag),
					dash(p.Member), dash(m.Host), dash(m.ClientID))
			}
			return tw.Flush()
		},
	}
	cmd.Flags().Bool("json", false, "print the group as JSON")
	addBrokerFlags(cmd)
	return cmd
}

func offsetText(n int64) string {
	if n < 0 {
		return "-"
	}
	return strconv.FormatInt(n, 10)
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func (a *app) groupsResetCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "reset GROUP",
		Short: "Move a group's committed offsets (dry run unless --execute)",
		Long: `Move a consumer group's committed offsets, to replay events (move back) or skip
them (move forward). Give exactly one target: --to-earliest, --to-latest,
--to-offset N, --to-datetime TIME or --by-duration D. The reset covers the
topics given with --topic (every partition), else every topic the group has
committed offsets on.

By default nothing changes: the plan is printed, per partition, with how many
events the group would handle again. --execute applies it. A group with live
members is refused: stop its consumers first. An applied reset is recorded in
the audit trail (eventbus audit) as --actor.`,
		Example: `  eventbus groups reset mailer --to-datetime 2026-12-07T05:00:00Z
  eventbus groups reset mailer --topic core.user.created --to-earliest --execute
  eventbus groups reset mailer --by-duration 30m --execute`,
		Args: argsUsage(1, 1, "one group", "eventbus groups reset mailer --to-earliest"),
		RunE: func(cmd *cobra.Command, args []string) error {
			bs, err := a.resolveBrokers(cmd)
			if err != nil {
				return err
			}
			target, err := resetTarget(cmd, time.Now())
			if err != nil {
				return err
			}
			f := cmd.Flags()
			topics, _ := f.GetStringSlice("topic")
			execute, _ := f.GetBool("execute")
			asJSON, _ := f.GetBool("json")
			actor, _ := f.GetString("actor")
			return a.groupsReset(cmd.Context(), bs, args[0], topics, target, execute, asJSON, actor)
		},
	}
	f := cmd.Flags()
	f.Bool("to-earliest", false, "reset to the oldest retained event")
	f.Bool("to-latest", false, "reset to the end (skip everything not yet handled)")
	f.String("to-offset", "", "reset every partition to this offset (clamped to what it holds)")
	f.String("to-datetime", "", "reset to the first event at or after this RFC 3339 time, e.g. 2026-12-07T05:00:00Z")
	f.String("by-duration", "", "reset to the first event at or after this long ago, e.g. 30m")
	f.StringSlice("topic", nil, "topic to reset (repeatable); default: every topic the group has committed offsets on")
	f.Bool("execute", false, "apply the reset; without it, only print the plan")
	f.Bool("dry-run", true, "print the plan without changing anything (the default; --execute applies)")
	f.Bool("json", false, "print the plan as JSON")
	f.String("actor", defaultActor(), "who the audit trail records as taking the reset")
	addBrokerFlags(cmd)
	return cmd
}

// defaultActor is "cli:" and the OS user and host.
func defaultActor() string {
	name := "unknown"
	if u, err := user.Current(); err == nil && u.Username != "" {
		name = u.Username
	}
	if h, err := os.Hostname(); err == nil && h != "" {
		name += "@" + h
	}
	return "cli:" + name
}

// resetTarget reads the one target flag given.
func resetTarget(cmd *cobra.Command, now time.Time) (groups.Target, error) {
	f := cmd.Flags()
	var specs []string
	if v, _ := f.GetBool("to-earliest"); v {
		specs = append(specs, "earliest")
	}
	if v, _ := f.GetBool("to-latest"); v {
		specs = append(specs, "latest")
	}
	if v, _ := f.GetString("to-offset"); f.Changed("to-offset") {
		specs = append(specs, "offset:"+v)
	}
	if v, _ := f.GetString("to-datetime"); f.Changed("to-datetime") {
		specs = append(specs, "time:"+v)
	}
	if v, _ := f.GetString("by-duration"); f.Changed("by-duration") {
		specs = append(specs, "ago:"+v)
	}
	if len(specs) != 1 {
		return groups.Target{}, usageErrorf("give exactly one of --to-earliest, --to-latest, --to-offset, --to-datetime, --by-duration (got %d)", len(specs))
	}
	t, err := groups.ParseTarget(specs[0], now)
	if err != nil {
		return t, usageErrorf("%v", err)
	}
	return t, nil
}

func (a *app) groupsReset(ctx context.Context, bs brokerSettings, group string, topics []string, target groups.Target, execute, asJSON bool, actor string) error {
	client, adm, err := a.connectAdmin(ctx, bs)
	if err != nil {
		return err
	}
	defer client.Close()
	plan, err := groups.PlanReset(ctx, adm, group, topics, target)
	if err != nil {
		return err
	}
	if execute {
		log, err := audit.Open(ctx, client, audit.Config{})
		if err != nil {
			return fmt.Errorf("the audit trail (topic %s) cannot be opened, so the reset was not applied: %w", audit.Topic, err)
		}
		defer log.Close()
		resetErr := groups.Reset(ctx, adm, plan)
		if err := log.Record(ctx, consoleapi.ResetEntry(actor, plan, resetErr)); err != nil {
			a.log.Error("the audit trail did not take the reset", "group", group, "err", err)
		}
		if resetErr != nil {
			return resetErr
		}
	}
	if asJSON {
		return writeJSON(a.stdout, consoleapi.ResetResponse{ResetPlan: plan, Executed: execute})
	}
	tw := tabwriter.NewWriter(a.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "GROUP\tTOPIC\tPARTITION\tCURRENT-OFFSET\tNEW-OFFSET\tLOG-END-OFFSET\tREDELIVER\tSKIP")
	for _, p := range plan.Partitions {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%d\t%d\t%d\t%d\n", plan.Group, p.Topic, p.Partition, offsetText(p.Current), p.New, p.End, p.Redeliver, p.Skip)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if execute {
		fmt.Fprintf(a.stdout, "\nReset %s to %s: %d events will be delivered again, %d skipped.\n", plan.Group, plan.Target, plan.Redeliver, plan.Skip)
		return nil
	}
	fmt.Fprintf(a.stdout, "\nDry run: nothing changed. Resetting %s to %s would deliver %d events again and skip %d. Add --execute to apply.\n",
		plan.Group, plan.Target, plan.Redeliver, plan.Skip)
	return nil
}
