// Package slotclient is a cluster client for tests that must count
// redirects exactly: it keeps its own slot map, follows MOVED by updating
// it and retrying, and records every other error (ASK, TRYAGAIN, a lost
// connection) instead of hiding it. go-redis's ClusterClient reloads its
// map in the background after a redirect and can take two MOVED for one
// handoff, so it cannot check "at most one MOVED per slot".
package slotclient

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hearsay/hearsay/ring"
)

// Client is safe for concurrent use.
type Client struct {
	mu      sync.Mutex
	owner   [ring.Slots]string
	clients map[string]*redis.Client
	changes map[uint16]int // times a MOVED changed the slot's owner
	errs    []string
}

// New reads the slot map from CLUSTER SHARDS on entry.
func New(ctx context.Context, entry string) (*Client, error) {
	c := &Client{clients: map[string]*redis.Client{}, changes: map[uint16]int{}}
	shards, err := c.conn(entry).ClusterShards(ctx).Result()
	if err != nil {
		return nil, err
	}
	for _, sh := range shards {
		addr := ""
		for _, n := range sh.Nodes {
			if n.Role == "master" {
				addr = n.IP + ":" + strconv.FormatInt(n.Port, 10)
			}
		}
		for _, r := range sh.Slots {
			for s := r.Start; s <= r.End; s++ {
				c.owner[s] = addr
			}
		}
	}
	return c, nil
}

func (c *Client) conn(addr string) *redis.Client {
	c.mu.Lock()
	defer c.mu.Unlock()
	rc := c.clients[addr]
	if rc == nil {
		rc = redis.NewClient(&redis.Options{Addr: addr, Protocol: 2, DisableIdentity: true, MaxRetries: -1,
			DialTimeout: time.Second, ReadTimeout: 5 * time.Second})
		c.clients[addr] = rc
	}
	return rc
}

// Do sends args to the owner of key's slot, following up to four MOVED
// replies; any other error is recorded and returned.
func (c *Client) Do(ctx context.Context, key string, args ...any) error {
	slot := ring.KeySlot([]byte(key))
	for range 5 {
		c.mu.Lock()
		addr := c.owner[slot]
		c.mu.Unlock()
		err := c.conn(addr).Do(ctx, args...).Err()
		if err == nil {
			return nil
		}
		if f := strings.Fields(err.Error()); len(f) == 3 && f[0] == "MOVED" {
			// Requests in flight together may all see the MOVED of one
			// handoff; what counts is how often the slot changed hands.
			c.mu.Lock()
			if c.owner[slot] != f[2] {
				c.changes[slot]++
				c.owner[slot] = f[2]
			}
			c.mu.Unlock()
			continue
		}
		c.record(fmt.Sprintf("%v on %s: %v", args[0], addr, err))
		return err
	}
	err := fmt.Errorf("too many redirects for %s", key)
	c.record(err.Error())
	return err
}

func (c *Client) record(e string) {
	c.mu.Lock()
	c.errs = append(c.errs, e)
	c.mu.Unlock()
}

// Moved returns, per slot, how many times a MOVED changed its owner.
func (c *Client) Moved() map[uint16]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[uint16]int, len(c.changes))
	for s, n := range c.changes {
		out[s] = n
	}
	return out
}

// Errors returns every error other than MOVED, in order.
func (c *Client) Errors() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.errs...)
}

// Close closes the connections.
func (c *Client) Close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, rc := range c.clients {
		_ = rc.Close()
	}
}
