package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"

	"github.com/hearsay/hearsay/gossip/wire"
	"github.com/hearsay/hearsay/node/admin"
	"github.com/hearsay/hearsay/node/clusterview"
	"github.com/hearsay/hearsay/ring"
)

func init() {
	subcommands["cluster"] = subcommand{
		summary: "manage a cluster: create, check, info, add-node, del-node, failover, nodes, reshard, rebalance, fix",
		run:     runCluster,
	}
}

const clusterUsage = `usage: hearsay cluster <command> [arguments]

commands:
  create host:port... [--replicas R] [--yes]   make a cluster of empty nodes
  check host:port                              check slots coverage and agreement
  info host:port                               keys, slots and replicas per master
  add-node new:port existing:port [--replica-of id|host:port]
                                               add an empty node to a cluster
  del-node host:port id                        remove a node without slots
  failover host:port [id] [--force|--takeover] promote a replica (host:port itself, or
                                               replica id): CLUSTER FAILOVER, then wait
  nodes host:port                              the node table as host:port sees it
  reshard host:port --from id --to id --slots N [--pipeline K]
                                               move N slots (the source's lowest) with the
                                               atomic path (CLUSTER MIGRATESLOTS), as K
                                               migrations at once (default 1)
  rebalance host:port [--weight id=w ...] [--threshold pct] [--use-empty-masters]
           [--pipeline K]                      spread the slots over the masters by weight
                                               (default 1); nothing moves unless a master is
                                               more than pct (default 2) off its share
  fix host:port                                close slots left open by an interrupted
                                               SETSLOT/MIGRATE move; assign uncovered slots

An id may be a node ID, a unique prefix of one (4 characters or more) or
host:port.

Any node of the cluster can be the host:port to talk to.

options of every command:
  -a, --password <password>   AUTH with this password, for nodes started with
                              --requirepass (default: $REDISCLI_AUTH, as redis-cli)
  --no-auth-warning           do not warn that -a on the command line may be seen
`

func runCluster(args []string) int {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	return clusterMain(ctx, args, os.Stdin, os.Stdout, os.Stderr, detectMode(os.Stdout))
}

// usageError prints msg and the usage text and returns exit code 2.
func usageError(stderr io.Writer, msg string) int {
	fmt.Fprintf(stderr, "hearsay cluster: %s\n\n%s", msg, clusterUsage)
	return 2
}

// parseArgs parses flags that may come before, between or after the
// positional arguments, as redis-cli allows.
func parseArgs(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

func clusterMain(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer, mode outMode) int {
	if len(args) == 0 {
		return usageError(stderr, "missing command")
	}
	op := args[0]
	if op == "-h" || op == "--help" || op == "help" {
		fmt.Fprint(stdout, clusterUsage)
		return 0
	}
	fs := flag.NewFlagSet("hearsay cluster "+op, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	replicas := fs.Int("replicas", 0, "replicas per master (create)")
	yes := fs.Bool("yes", false, "do not ask for confirmation (create)")
	replicaOf := fs.String("replica-of", "", "master to replicate (add-node)")
	force := fs.Bool("force", false, "fail over without the master's agreement (failover)")
	takeover := fs.Bool("takeover", false, "take the slots without votes (failover)")
	wait := fs.Duration("wait", 0, "how long to wait for the nodes to agree (default 60s)")
	mo := moveOpts{weights: weightFlags{}}
	fs.StringVar(&mo.from, "from", "", "source master (reshard)")
	fs.StringVar(&mo.to, "to", "", "target master (reshard)")
	fs.IntVar(&mo.slots, "slots", 0, "how many slots to move (reshard)")
	fs.IntVar(&mo.pipeline, "pipeline", 1, "migrations run at once (reshard, rebalance)")
	fs.Var(mo.weights, "weight", "id=weight, repeatable (rebalance)")
	fs.Float64Var(&mo.threshold, "threshold", 2, "percent off its share that makes a master move slots (rebalance)")
	fs.BoolVar(&mo.useEmpty, "use-empty-masters", false, "give slots to masters that have none (rebalance)")
	var password string
	fs.StringVar(&password, "a", "", "password for AUTH")
	fs.StringVar(&password, "password", "", "password for AUTH")
	noAuthWarning := fs.Bool("no-auth-warning", false, "no warning about -a on the command line")
	pos, err := parseArgs(fs, args[1:])
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprint(stdout, clusterUsage)
		return 0
	}
	if err != nil {
		return usageError(stderr, err.Error())
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	allowed := map[string][]string{"create": {"replicas", "yes", "wait"}, "add-node": {"replica-of", "wait"}, "failover": {"force", "takeover", "wait"},
		"reshard":   {"from", "to", "slots", "pipeline", "wait"},
		"rebalance": {"weight", "threshold", "use-empty-masters", "pipeline", "wait"},
		"fix":       {"wait"}}
	for name := range set {
		ok := name == "wait" && op == "del-node" || name == "a" || name == "password" || name == "no-auth-warning"
		for _, a := range allowed[op] {
			ok = ok || a == name
		}
		if !ok {
			return usageError(stderr, fmt.Sprintf("%s does not take --%s", op, name))
		}
	}
	nargs := map[string][2]int{"create": {1, 1 << 20}, "check": {1, 1}, "info": {1, 1}, "add-node": {2, 2}, "del-node": {2, 2}, "failover": {1, 2}, "nodes": {1, 1},
		"reshard": {1, 1}, "rebalance": {1, 1}, "fix": {1, 1}}
	n, known := nargs[op]
	if !known {
		return usageError(stderr, fmt.Sprintf("unknown command %q", op))
	}
	if len(pos) < n[0] || len(pos) > n[1] {
		return usageError(stderr, fmt.Sprintf("%s: wrong number of arguments (%d)", op, len(pos)))
	}
	for i, a := range pos {
		if (op == "del-node" || op == "failover") && i == 1 {
			continue
		}
		if err := checkHostPort(a); err != nil {
			return usageError(stderr, fmt.Sprintf("%s: %v", op, err))
		}
	}
	if *force && *takeover {
		return usageError(stderr, "failover takes --force or --takeover, not both")
	}
	if *replicas < 0 {
		return usageError(stderr, "--replicas must be 0 or more")
	}
	if op == "reshard" && (mo.from == "" || mo.to == "" || !set["slots"]) {
		return usageError(stderr, "reshard needs --from, --to and --slots")
	}
	if set["slots"] && mo.slots < 1 {
		return usageError(stderr, "--slots must be 1 or more")
	}
	if mo.pipeline < 1 {
		return usageError(stderr, "--pipeline must be 1 or more")
	}
	if mo.threshold < 0 {
		return usageError(stderr, "--threshold must be 0 or more")
	}

	if password != "" && !*noAuthWarning {
		// redis-cli's own warning, word for word.
		fmt.Fprintln(stderr, "Warning: Using a password with '-a' or '-u' option on the command line interface may not be safe.")
	}
	if password == "" {
		password = os.Getenv("REDISCLI_AUTH")
	}

	p := newPrinter(stdout, mode)
	defer p.endBar()
	tool := &admin.Tool{Wait: *wait, Password: password, Progress: p.step, Count: p.count}
	fail := func(err error) int {
		p.errorf("%v", err)
		return 1
	}
	switch op {
	case "create":
		plan, err := admin.MakePlan(pos, *replicas)
		if err != nil {
			return fail(err)
		}
		p.headf("Performing hash slots allocation on %d nodes...", len(pos))
		printPlan(p, plan)
		if !*yes {
			fmt.Fprint(stdout, "Can I set the above configuration? (type 'yes' to accept): ")
			line, _ := bufio.NewReader(stdin).ReadString('\n')
			if strings.TrimSpace(line) != "yes" {
				p.errorf("aborted: nothing was changed")
				return 1
			}
		}
		if _, err := tool.Create(ctx, pos, *replicas); err != nil {
			return fail(err)
		}
		return checkAndPrint(ctx, p, tool, pos[0])
	case "check":
		return checkAndPrint(ctx, p, tool, pos[0])
	case "info":
		cl, err := tool.Info(ctx, pos[0])
		if err != nil {
			return fail(err)
		}
		printInfo(p, cl)
		return 0
	case "add-node":
		id, err := tool.AddNode(ctx, pos[0], pos[1], *replicaOf)
		if err != nil {
			return fail(err)
		}
		if *replicaOf != "" {
			p.okf("%s (%s) joined the cluster as a replica of %s", pos[0], id.String()[:8], *replicaOf)
		} else {
			p.okf("%s (%s) joined the cluster as a master without slots", pos[0], id.String()[:8])
		}
		return 0
	case "del-node":
		if err := tool.DelNode(ctx, pos[0], pos[1]); err != nil {
			return fail(err)
		}
		p.okf("node %s removed from the cluster", pos[1])
		return 0
	case "failover":
		mode := admin.FailoverDefault
		switch {
		case *force:
			mode = admin.FailoverForce
		case *takeover:
			mode = admin.FailoverTakeover
		}
		replica := pos[0]
		if len(pos) == 2 {
			replica = pos[1]
		}
		old, err := tool.Failover(ctx, pos[0], replica, mode)
		if err != nil {
			return fail(err)
		}
		p.okf("%s is now a master in place of %s", replica, old.String()[:8])
		return 0
	case "reshard":
		return runReshard(ctx, p, tool, pos[0], mo)
	case "rebalance":
		return runRebalance(ctx, p, tool, pos[0], mo)
	case "fix":
		return runFix(ctx, p, tool, pos[0])
	case "nodes":
		lines, err := tool.Nodes(ctx, pos[0])
		if err != nil {
			return fail(err)
		}
		printNodes(p, lines)
		return 0
	}
	return 2
}

// checkHostPort checks a host:port argument.
func checkHostPort(a string) error {
	i := strings.LastIndexByte(a, ':')
	if i <= 0 {
		return fmt.Errorf("%q is not host:port", a)
	}
	if port, err := strconv.Atoi(a[i+1:]); err != nil || port < 1 || port > 65535 {
		return fmt.Errorf("%q: port must be 1-65535", a)
	}
	return nil
}

// checkAndPrint runs Check and prints the cluster table and the verdict;
// it returns 1 when the check found errors.
func checkAndPrint(ctx context.Context, p *printer, tool *admin.Tool, addr string) int {
	rep, err := tool.Check(ctx, addr)
	if err != nil {
		p.errorf("%v", err)
		return 1
	}
	printCluster(p, rep.Cluster)
	printVerdict(p, rep)
	if !rep.OK() {
		return 1
	}
	return 0
}

// printVerdict prints a report's warnings and errors, then the summary.
func printVerdict(p *printer, rep *admin.Report) {
	for _, w := range rep.Warnings {
		p.warnf("%s", w)
	}
	for _, e := range rep.Errors {
		p.errorf("%s", e)
	}
	masters := 0
	for _, sh := range rep.Cluster.Shards() {
		if sh.Master.SlotCount() > 0 {
			masters++
		}
	}
	if rep.OK() {
		p.okf("%d nodes agree about the slot configuration; all %d slots covered by %d masters.", len(rep.Cluster.Nodes), ring.Slots, masters)
	} else {
		p.errorf("cluster check found %d error(s)", len(rep.Errors))
	}
}

func printPlan(p *printer, plan *admin.Plan) {
	var t table
	t.header("ROLE", "ADDRESS", "SLOTS", "COUNT", "REPLICA OF")
	for _, m := range plan.Masters {
		t.row(cell{"master", bold}, cell{m.Addr, ""}, cell{m.Slots.String(), ""}, cell{strconv.Itoa(m.Slots.Len()), ""}, cell{"-", dim})
		for _, r := range plan.ReplicaAddrs(m.Addr) {
			t.row(cell{"replica", ""}, cell{r, ""}, cell{"", ""}, cell{"", ""}, cell{m.Addr, ""})
		}
	}
	t.write(p, 3) // COUNT is right-aligned
}

// printCluster prints every node, grouped by shard: master first, then its
// replicas.
func printCluster(p *printer, cl *admin.Cluster) {
	var t table
	t.header("ADDRESS", "ID", "ROLE", "SLOTS", "COUNT", "KEYS", "EPOCH", "STATUS")
	seen := map[wire.NodeID]bool{}
	add := func(n admin.Node) {
		seen[n.ID] = true
		role := cell{"master", bold}
		if n.IsReplica() {
			role = cell{"replica", ""}
		}
		slots, count := ring.FormatRanges(n.Slots), ""
		if n.IsMaster() {
			count = strconv.Itoa(n.SlotCount())
		}
		if len(slots) > 40 {
			slots = slots[:37] + "..."
		}
		keys := ""
		if n.Keys >= 0 {
			keys = strconv.FormatInt(n.Keys, 10)
		}
		t.row(cell{n.Addr(), ""}, cell{n.ShortID(), dim}, role, cell{slots, ""}, cell{count, ""}, cell{keys, ""},
			cell{strconv.FormatUint(n.ConfigEpoch, 10), ""}, status(n))
	}
	for _, sh := range cl.Shards() {
		add(sh.Master)
		for _, r := range sh.Replicas {
			add(r)
		}
	}
	for _, n := range cl.Nodes {
		if !seen[n.ID] {
			add(n)
		}
	}
	t.write(p, 4, 5, 6)
}

func status(n admin.Node) cell {
	switch {
	case n.Err != nil:
		return cell{"unreachable", red}
	case n.Flags&wire.FlagFail != 0:
		return cell{"fail", red}
	case n.Flags&wire.FlagPFail != 0:
		return cell{"fail?", yellow}
	case n.Flags&wire.FlagHandshake != 0:
		return cell{"handshake", yellow}
	}
	return cell{"ok", green}
}

func printInfo(p *printer, cl *admin.Cluster) {
	var t table
	t.header("MASTER", "ID", "KEYS", "SLOTS", "SHARE", "REPLICAS")
	var keys int64
	shards := cl.Shards()
	for _, sh := range shards {
		m := sh.Master
		k := ""
		if m.Keys >= 0 {
			k = strconv.FormatInt(m.Keys, 10)
			keys += m.Keys
		}
		var reps []string
		for _, r := range sh.Replicas {
			reps = append(reps, r.Addr())
		}
		if len(reps) == 0 {
			reps = []string{"-"}
		}
		t.row(cell{m.Addr(), bold}, cell{m.ShortID(), dim}, cell{k, ""}, cell{strconv.Itoa(m.SlotCount()), ""},
			cell{fmt.Sprintf("%.2f%%", 100*float64(m.SlotCount())/ring.Slots), ""}, cell{strings.Join(reps, ","), ""})
	}
	t.write(p, 2, 3, 4)
	p.okf("%d keys in %d masters, %.2f keys per slot on average.", keys, len(shards), float64(keys)/ring.Slots)
	for _, n := range cl.Nodes {
		if n.Err != nil {
			p.warnf("%v", n.Err)
		}
	}
}

func printNodes(p *printer, lines []clusterview.NodeLine) {
	var t table
	t.header("ID", "ADDRESS", "FLAGS", "MASTER", "EPOCH", "LINK", "SLOTS")
	for _, l := range lines {
		flags := string(clusterview.AppendFlags(nil, l.Myself, l.Flags))
		fc := cell{flags, ""}
		switch {
		case l.Flags&wire.FlagFail != 0:
			fc.color = red
		case l.Flags&(wire.FlagPFail|wire.FlagHandshake) != 0:
			fc.color = yellow
		case l.Myself:
			fc.color = bold
		}
		master := "-"
		if !l.Master.IsZero() {
			master = l.Master.String()[:8]
		}
		link := cell{"connected", green}
		if !l.Connected {
			link = cell{"disconnected", red}
		}
		slots := ring.FormatRanges(l.Slots)
		for _, o := range l.Open {
			if o.Migrating {
				slots += fmt.Sprintf(" [%d->-%s]", o.Slot, o.Peer.String()[:8])
			} else {
				slots += fmt.Sprintf(" [%d-<-%s]", o.Slot, o.Peer.String()[:8])
			}
		}
		t.row(cell{l.ID.String(), dim}, cell{l.Addr(), ""}, fc, cell{master, ""},
			cell{strconv.FormatUint(l.ConfigEpoch, 10), ""}, link, cell{strings.TrimSpace(slots), ""})
	}
	t.write(p, 4)
}
