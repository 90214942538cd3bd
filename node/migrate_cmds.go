package node

import (
	"errors"
	"time"

	"github.com/hearsay/hearsay/migrate"
	"github.com/hearsay/hearsay/node/command"
)

// CLUSTER MIGRATESLOTS, GETSLOTMIGRATIONS and CANCELSLOTMIGRATIONS, with
// Valkey 9's replies and errors (migrate's). They run the table on the
// bus loop, like the other CLUSTER admin commands.

func (n *Node) clusterMigrateSlots(x *command.Ctx) {
	args := make([]string, len(x.Args)-2)
	for i, a := range x.Args[2:] {
		args[i] = string(a)
	}
	reqs, perr := migrate.ParseMigrateSlots(args)
	var err error
	if xerr := n.exec(func(now time.Duration) {
		m := n.mig
		cl := m.cluster()
		// Valkey checks the node's role and the manual marks before the
		// arguments.
		if self, _ := cl.Lookup(cl.Self()); !self.IsMaster {
			err = migrate.ErrNotPrimary
			return
		}
		if mig, imp := cl.LegacyMarks(); mig {
			err = migrate.ErrManualMigrating
			return
		} else if imp {
			err = migrate.ErrManualImporting
			return
		}
		if perr != nil {
			err = perr
			return
		}
		for i := range reqs {
			reqs[i].Name = m.newName()
		}
		var in []migrate.Intent
		if in, err = m.table.MigrateSlots(now, cl, reqs); err != nil {
			return
		}
		if !m.run(now, in) {
			err = errors.New("ERR " + string(errMigrationsWrite))
		}
	}); xerr != nil {
		err = xerr
	}
	replyAdmin(x, err)
}

func (n *Node) clusterCancelSlotMigrations(x *command.Ctx) {
	var err error
	if xerr := n.exec(func(now time.Duration) {
		m := n.mig
		var in []migrate.Intent
		if in, err = m.table.CancelAll(now); err == nil {
			m.run(now, in)
		}
	}); xerr != nil {
		err = xerr
	}
	replyAdmin(x, err)
}

// clusterGetSlotMigrations replies one map per migration, finished ones
// first, with Valkey's field names; times are Unix seconds.
func (n *Node) clusterGetSlotMigrations(x *command.Ctx) {
	var rows []migrate.Status
	if err := n.exec(func(time.Duration) { rows = n.mig.table.Status() }); err != nil {
		x.W.Error(err.Error())
		return
	}
	secs := func(d time.Duration) int64 {
		if d == 0 {
			return 0
		}
		return n.unixMs(d) / 1000
	}
	x.W.Array(len(rows))
	for _, r := range rows {
		x.W.Map(13)
		x.W.BulkString("name")
		x.W.BulkString(r.Name)
		x.W.BulkString("operation")
		x.W.BulkString(r.Operation.String())
		x.W.BulkString("slot_ranges")
		x.W.BulkString(r.Slots.String())
		x.W.BulkString("source_node")
		x.W.BulkString(r.Source.String())
		x.W.BulkString("target_node")
		x.W.BulkString(r.Target.String())
		x.W.BulkString("state")
		x.W.BulkString(r.State.String())
		x.W.BulkString("create_time")
		x.W.Int(secs(r.Created))
		x.W.BulkString("last_update_time")
		x.W.Int(secs(r.Updated))
		x.W.BulkString("last_ack_time")
		x.W.Int(secs(r.LastAck))
		x.W.BulkString("keys")
		x.W.Int(int64(r.Keys))
		x.W.BulkString("bytes")
		x.W.Int(int64(r.Bytes))
		x.W.BulkString("remaining_repl_size")
		x.W.Int(int64(r.Remaining))
		x.W.BulkString("message")
		x.W.BulkString(r.Message)
	}
}
