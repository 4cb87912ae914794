package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/plexica/eventbus"
	"github.com/plexica/eventbus/deadletter"
	"github.com/plexica/eventbus/topic"
)

func (a *app) topicsCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "topics",
		Short: "List, create and check topics",
		Long: `List and create topics, and check names against the bus's topic rules:

  core.<domain>.<action>                core.user.created
  plugin.<pluginId>.<entity>.<action>   plugin.crm.contact.created
  dlq.<topic>                           dlq.core.user.created

Segments are lowercase ([a-z][a-z0-9_]*; plugin IDs kebab-case), and actions are
past tense, regular or irregular (created, member_added, held, sold, written,
read) or on the allowed list (login, logout, request, error, ...).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return usageErrorf("topics needs a subcommand: list, create NAME or check NAME")
		},
	}
	cmd.AddCommand(a.topicsListCmd(), a.topicsCreateCmd(), a.topicsCheckCmd())
	return cmd
}

// topicInfo is one row of `eventbus topics list`.
type topicInfo struct {
	Name        string `json:"name"`
	Kind        string `json:"kind"`
	Partitions  int    `json:"partitions"`
	Replication int    `json:"replicationFactor"`
}

func (a *app) topicsListCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "list [PREFIX]",
		Short: "List the cluster's topics (internal ones left out)",
		Long: `List the cluster's topics with their kind (core, plugin, dlq; "-" for a name
that is not a bus topic), partitions and replication factor. With PREFIX, only
the topics whose names start with it.`,
		Example: `  eventbus topics list
  eventbus topics list plugin.crm.
  eventbus topics list --json`,
		Args: argsUsage(0, 1, "at most one prefix", "eventbus topics list core.user."),
		RunE: func(cmd *cobra.Command, args []string) error {
			bs, err := a.resolveBrokers(cmd)
			if err != nil {
				return err
			}
			asJSON, _ := cmd.Flags().GetBool("json")
			prefix := ""
			if len(args) == 1 {
				prefix = strings.TrimSuffix(args[0], "*")
			}
			return a.topicsList(cmd.Context(), bs, prefix, asJSON)
		},
	}
	cmd.Flags().Bool("json", false, "print the list as JSON")
	addBrokerFlags(cmd)
	return cmd
}

func (a *app) topicsList(ctx context.Context, bs brokerSettings, prefix string, asJSON bool) error {
	client, adm, err := a.connectAdmin(ctx, bs)
	if err != nil {
		return err
	}
	defer client.Close()
	details, err := adm.ListTopics(fresh(ctx))
	if err != nil {
		return fmt.Errorf("list topics: %w", err)
	}
	infos := []topicInfo{}
	for _, d := range details.Sorted() {
		if d.IsInternal || strings.HasPrefix(d.Topic, "__") || !strings.HasPrefix(d.Topic, prefix) {
			continue
		}
		kind := "-"
		if t, err := client.Topics().Rules().Parse(d.Topic); err == nil {
			kind = t.Kind.String()
		}
		infos = append(infos, topicInfo{Name: d.Topic, Kind: kind, Partitions: len(d.Partitions), Replication: d.Partitions.NumReplicas()})
	}
	if asJSON {
		return writeJSON(a.stdout, infos)
	}
	if len(infos) == 0 {
		if prefix != "" {
			fmt.Fprintf(a.stdout, "no topic starts with %s\n", prefix)
		} else {
			fmt.Fprintln(a.stdout, "no topics yet: they are created when first published to, or with `eventbus topics create NAME`")
		}
		return nil
	}
	tw := tabwriter.NewWriter(a.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tKIND\tPARTITIONS\tREPLICATION")
	for _, i := range infos {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\n", i.Name, i.Kind, i.Partitions, i.Replication)
	}
	return tw.Flush()
}

func (a *app) topicsCreateCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "create NAME",
		Short: "Create a topic with the bus's defaults (if it does not exist)",
		Long: fmt.Sprintf(`Create topic NAME after checking it against the topic rules, with %d partitions,
replication factor min(%d, brokers) and %d-day retention (dlq.* topics: %d days,
cleanup.policy %s) unless flags say otherwise. A topic that exists is left as it is.`,
			topic.DefaultPartitions, topic.DefaultReplicationFactor, days(topic.DefaultRetention),
			days(deadletter.DefaultRetention), deadletter.DefaultCleanupPolicy),
		Example: `  eventbus topics create core.invoice.paid
  eventbus topics create plugin.crm.contact.created --partitions 12 --replication 3`,
		Args: argsUsage(1, 1, "one topic name", "eventbus topics create core.invoice.paid"),
		RunE: func(cmd *cobra.Command, args []string) error {
			f := cmd.Flags()
			name := args[0]
			if _, err := topic.Parse(name); err != nil {
				return usageErrorf("%v", err)
			}
			partitions, _ := f.GetInt("partitions")
			replication, _ := f.GetInt("replication")
			retention, _ := f.GetDuration("retention")
			switch {
			case partitions < 0:
				return usageErrorf("--partitions %d is negative; give at least 1 (0: the default, %d)", partitions, topic.DefaultPartitions)
			case replication < 0:
				return usageErrorf("--replication %d is negative; give at least 1 (0: min(%d, brokers))", replication, topic.DefaultReplicationFactor)
			case retention < 0:
				return usageErrorf("--retention %s is negative; give e.g. 168h (0: the default)", retention)
			}
			bs, err := a.resolveBrokers(cmd)
			if err != nil {
				return err
			}
			return a.topicsCreate(cmd.Context(), bs, name, partitions, replication, retention)
		},
	}
	f := cmd.Flags()
	f.Int("partitions", 0, fmt.Sprintf("number of partitions (0: %d)", topic.DefaultPartitions))
	f.Int("replication", 0, fmt.Sprintf("replication factor (0: min(%d, brokers))", topic.DefaultReplicationFactor))
	f.Duration("retention", 0, fmt.Sprintf("retention, e.g. 720h (0: %d days; %d days for dlq.* topics)",
		days(topic.DefaultRetention), days(deadletter.DefaultRetention)))
	addBrokerFlags(cmd)
	return cmd
}

func (a *app) topicsCreate(ctx context.Context, bs brokerSettings, name string, partitions, replication int, retention time.Duration) error {
	client, adm, err := a.connectAdmin(ctx, bs)
	if err != nil {
		return err
	}
	defer client.Close()
	existed, err := client.Topics().Exists(ctx, name)
	if err != nil {
		return fmt.Errorf("check whether %s exists: %w", name, err)
	}
	if !existed {
		if replication > 0 {
			brokers, err := adm.ListBrokers(ctx)
			if err == nil && replication > len(brokers) {
				return fmt.Errorf("--replication %d is more than the cluster's %d broker(s); give at most %d (or leave it out for min(%d, brokers))",
					replication, len(brokers), len(brokers), topic.DefaultReplicationFactor)
			}
		}
		var opts []topic.Option
		if partitions > 0 {
			opts = append(opts, topic.WithPartitions(partitions))
		}
		if replication > 0 {
			opts = append(opts, topic.WithReplicationFactor(replication))
		}
		if retention > 0 {
			opts = append(opts, topic.WithRetention(retention))
		}
		if err := client.Topics().Ensure(ctx, name, opts...); err != nil {
			return fmt.Errorf("create %s: %w", name, err)
		}
	}
	details, err := adm.ListTopics(fresh(ctx), name)
	if err != nil {
		return fmt.Errorf("describe %s: %w", name, err)
	}
	d := details[name]
	if existed {
		fmt.Fprintf(a.stdout, "eventbus: topic %s already exists (%d partitions, replication %d); left as it is\n", name, len(d.Partitions), d.Partitions.NumReplicas())
		return nil
	}
	fmt.Fprintf(a.stdout, "eventbus: created topic %s (%d partitions, replication %d)\n", name, len(d.Partitions), d.Partitions.NumReplicas())
	return nil
}

func (a *app) topicsCheckCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "check NAME",
		Short: "Check a name against the topic rules and show its parts",
		Long: `Check NAME against the bus's topic rules, without a broker. A valid name is shown
with its parts (kind, domain or plugin, entity, action); an invalid one exits
with status 1 and a message that names the rule it breaks and, when one can be
derived, the valid name to use instead.`,
		Example: `  eventbus topics check core.user.created
  eventbus topics check core.user.create     # suggests core.user.created
  eventbus topics check core.payment.hold    # suggests core.payment.held
  eventbus topics check plugin.crm.deal.sync --allow-action sync`,
		Args: argsUsage(1, 1, "one topic name", "eventbus topics check core.user.created"),
		RunE: func(cmd *cobra.Command, args []string) error {
			extra, _ := cmd.Flags().GetStringSlice("allow-action")
			rules, err := topic.NewRules(extra...)
			if err != nil {
				return usageErrorf("--allow-action: %v", err)
			}
			t, err := rules.Parse(args[0])
			if err != nil {
				return err
			}
			printTopic(a.stdout, t)
			return nil
		},
	}
	cmd.Flags().StringSlice("allow-action", nil, "also allow these actions although they are not past tenses (as topic.NewRules does)")
	return cmd
}

// printTopic shows a valid topic's parts.
func printTopic(w io.Writer, t topic.Topic) {
	fmt.Fprintf(w, "%s is a valid %s topic\n", t.Name, t.Kind)
	tw := tabwriter.NewWriter(w, 0, 0, 1, ' ', 0)
	parts := func(t topic.Topic, indent string) {
		fmt.Fprintf(tw, "%skind:\t%s\n", indent, t.Kind)
		switch t.Kind {
		case topic.KindCore:
			fmt.Fprintf(tw, "%sdomain:\t%s\n", indent, t.Domain)
			fmt.Fprintf(tw, "%saction:\t%s\n", indent, t.Action)
		case topic.KindPlugin:
			fmt.Fprintf(tw, "%splugin:\t%s\n", indent, t.PluginID)
			fmt.Fprintf(tw, "%sentity:\t%s\n", indent, t.Entity)
			fmt.Fprintf(tw, "%saction:\t%s\n", indent, t.Action)
		}
	}
	parts(t, "  ")
	if t.Kind == topic.KindDLQ && t.Original != nil {
		fmt.Fprintf(tw, "  holds failures of:\t%s\n", t.Original.Name)
		parts(*t.Original, "    ")
	} else {
		fmt.Fprintf(tw, "  dead-letter topic:\tdlq.%s\n", t.Name)
	}
	_ = tw.Flush()
}

// writeJSON writes v as indented JSON.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// connectAdmin connects for a topics command and returns the client (to
// close) and its admin client.
func (a *app) connectAdmin(ctx context.Context, bs brokerSettings) (*eventbus.Client, *kadm.Client, error) {
	client, err := a.connect(ctx, bs, "eventbus-topics")
	if err != nil {
		return nil, nil, err
	}
	adm, err := client.Admin()
	if err != nil {
		client.Close()
		return nil, nil, err
	}
	return client, adm, nil
}

// days is d in whole days, as the help says the topic defaults.
func days(d time.Duration) int { return int(d / (24 * time.Hour)) }
