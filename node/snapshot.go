package node

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hearsay/hearsay/node/command"
)

// saver writes the keyspace to Config.Dir/Config.DBFilename (SAVE, BGSAVE,
// --save-on-shutdown) and loads it at start.
type saver struct {
	n  *Node
	mu sync.Mutex // one save at a time

	bgInProgress atomic.Bool
	lastSave     atomic.Int64 // unix seconds of the last good save
	lastFailed   atomic.Bool  // the last save attempt failed
	lastBytes    atomic.Int64
	lastDur      atomic.Int64 // ns
	saves        atomic.Int64
}

// errBgsaveRunning is Redis's reply when a background save already runs.
var errBgsaveRunning = errors.New("ERR Background save already in progress")

func (s *saver) path() string { return filepath.Join(s.n.cfg.Dir, s.n.cfg.DBFilename) }

// save writes the snapshot atomically: the old file stays whole until the
// new one is complete and durable.
func (s *saver) save() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	t0 := time.Now()
	var size int64
	err := writeAtomic(s.n.cfg.Dir, s.n.cfg.DBFilename, func(w io.Writer) (err error) {
		size, err = s.n.repl.WriteSnapshot(w)
		return err
	})
	s.lastFailed.Store(err != nil)
	if err != nil {
		s.n.log.Warn("snapshot: save failed", "file", s.path(), "err", err)
		return err
	}
	s.saves.Add(1)
	s.lastSave.Store(time.Now().Unix())
	s.lastBytes.Store(size)
	s.lastDur.Store(int64(time.Since(t0)))
	s.n.metrics.snapshotSaved(size, time.Since(t0))
	s.n.log.Info("snapshot: saved", "file", s.path(), "bytes", size, "took", time.Since(t0).Round(time.Millisecond))
	return nil
}

// load reads the snapshot file at start, if there is one. A file that does
// not load whole stops the node: serving part of the data would be worse.
func (s *saver) load() error {
	f, err := os.Open(s.path())
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	defer f.Close()
	t0 := time.Now()
	info, err := s.n.repl.LoadSnapshot(f)
	if err != nil {
		return fmt.Errorf("loading %s: %w", s.path(), err)
	}
	s.lastSave.Store(time.Now().Unix())
	s.n.log.Info("snapshot: loaded", "file", s.path(), "keys", info.Keys, "bytes", info.Bytes, "took", time.Since(t0).Round(time.Millisecond))
	return nil
}

func (s *saver) commands() []*command.Command {
	return []*command.Command{
		{Name: "save", Arity: 1, Flags: command.FlagAdmin, Group: "server", Handler: func(x *command.Ctx) {
			if s.bgInProgress.Load() {
				x.W.Error(errBgsaveRunning.Error())
				return
			}
			if err := s.save(); err != nil {
				x.W.Error("ERR " + err.Error())
				return
			}
			x.W.OK()
		}},
		{Name: "bgsave", Arity: -1, Flags: command.FlagAdmin, Group: "server", Handler: func(x *command.Ctx) {
			if len(x.Args) > 2 || (len(x.Args) == 2 && !eqFold(x.Args[1], "schedule")) {
				x.W.Error("ERR syntax error")
				return
			}
			if !s.bgInProgress.CompareAndSwap(false, true) {
				x.W.Error(errBgsaveRunning.Error())
				return
			}
			go func() {
				defer s.bgInProgress.Store(false)
				defer s.n.cfg.Procs.Busy()()
				_ = s.save()
			}()
			x.W.Simple("Background saving started")
		}},
		{Name: "lastsave", Arity: 1, Flags: command.FlagFast | command.FlagLoading | command.FlagStale, Group: "server", Handler: func(x *command.Ctx) {
			x.W.Int(s.lastSave.Load())
		}},
	}
}

// info appends INFO's persistence section.
func (s *saver) info(b []byte) []byte {
	b = append(b, "# Persistence\r\nloading:0\r\n"...)
	bg := "0"
	if s.bgInProgress.Load() {
		bg = "1"
	}
	status := "ok"
	if s.lastFailed.Load() {
		status = "err"
	}
	b = append(b, "rdb_bgsave_in_progress:"+bg+"\r\n"...)
	b = append(b, "rdb_last_save_time:"+strconv.FormatInt(s.lastSave.Load(), 10)+"\r\n"...)
	b = append(b, "rdb_last_bgsave_status:"+status+"\r\n"...)
	b = append(b, "rdb_last_bgsave_time_sec:"+strconv.FormatInt(int64(time.Duration(s.lastDur.Load()).Seconds()), 10)+"\r\n"...)
	b = append(b, "rdb_last_cow_size:0\r\naof_enabled:0\r\naof_rewrite_in_progress:0\r\n"...)
	return b
}

func eqFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range b {
		c := b[i]
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != s[i] {
			return false
		}
	}
	return true
}
