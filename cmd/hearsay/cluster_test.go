package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

func TestClusterUsageErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "missing command"},
		{[]string{"bogus"}, `unknown command "bogus"`},
		{[]string{"check"}, "check: wrong number of arguments (0)"},
		{[]string{"check", "a:1", "b:2"}, "check: wrong number of arguments (2)"},
		{[]string{"check", "nohost"}, `"nohost" is not host:port`},
		{[]string{"check", "h:99999"}, "port must be 1-65535"},
		{[]string{"check", "h:1", "--yes"}, "check does not take --yes"},
		{[]string{"create", "h:1", "h:2", "h:3", "--replicas", "x"}, `invalid value "x"`},
		{[]string{"create", "h:1", "--replicas", "-1"}, "--replicas must be 0 or more"},
		{[]string{"add-node", "h:1"}, "add-node: wrong number of arguments (1)"},
		{[]string{"del-node", "h:1", "id", "--replica-of", "x"}, "del-node does not take --replica-of"},
		{[]string{"nodes", "h:1", "--nope"}, "flag provided but not defined: -nope"},
		{[]string{"failover", "h:1", "--force", "--takeover"}, "failover takes --force or --takeover, not both"},
		{[]string{"failover", "h:1", "id", "x"}, "failover: wrong number of arguments (3)"},
		{[]string{"failover", "h:1", "--replicas", "1"}, "failover does not take --replicas"},
		{[]string{"reshard", "h:1", "--from", "a", "--to", "b"}, "reshard needs --from, --to and --slots"},
		{[]string{"reshard", "h:1", "--from", "a", "--to", "b", "--slots", "0"}, "--slots must be 1 or more"},
		{[]string{"reshard", "h:1", "--from", "a", "--to", "b", "--slots", "5", "--pipeline", "0"}, "--pipeline must be 1 or more"},
		{[]string{"reshard", "h:1", "--from", "a", "--to", "b", "--slots", "5", "--weight", "a=1"}, "reshard does not take --weight"},
		{[]string{"rebalance", "h:1", "--weight", "a"}, `"a" is not id=weight`},
		{[]string{"rebalance", "h:1", "--weight", "a=-2"}, "the weight must be a number of 0 or more"},
		{[]string{"rebalance", "h:1", "--threshold", "-1"}, "--threshold must be 0 or more"},
		{[]string{"rebalance", "h:1", "--slots", "3"}, "rebalance does not take --slots"},
		{[]string{"fix", "h:1", "h:2"}, "fix: wrong number of arguments (2)"},
		{[]string{"fix", "h:1", "--pipeline", "2"}, "fix does not take --pipeline"},
	} {
		var out, errb bytes.Buffer
		code := clusterMain(context.Background(), tc.args, strings.NewReader(""), &out, &errb, modePlain)
		if code != 2 || !strings.Contains(errb.String(), tc.want) || !strings.Contains(errb.String(), "usage: hearsay cluster") {
			t.Errorf("cluster %q: exit %d, stderr %q; want exit 2 and %q", tc.args, code, errb.String(), tc.want)
		}
	}
}

func TestClusterCreateAbortsWithoutYes(t *testing.T) {
	var out, errb bytes.Buffer
	code := clusterMain(context.Background(), []string{"create", "127.0.0.1:1", "127.0.0.1:2", "127.0.0.1:3"},
		strings.NewReader("no\n"), &out, &errb, modePlain)
	if code != 1 || !strings.Contains(out.String(), "aborted: nothing was changed") || !strings.Contains(out.String(), "0-5460") {
		t.Errorf("exit %d, output:\n%s", code, out.String())
	}
}
