package epidemic

import (
	"math/rand/v2"
	"slices"
	"testing"
)

func take(q *Queue[string], n int) []string {
	var out []string
	q.Take(n, func(k string) { out = append(out, k) })
	return out
}

func TestRetransmitBudget(t *testing.T) {
	tests := []struct{ lambda, n, want int }{
		{3, 0, 1}, {0, 100, 1}, {-1, 100, 1},
		{1, 1, 1}, {1, 2, 2}, {1, 3, 2}, {1, 4, 3}, {1, 7, 3}, {1, 8, 4},
		{3, 1000, 30}, {4, 10000, 56}, {3, 1023, 30}, {3, 1024, 33},
	}
	for _, tt := range tests {
		if got := RetransmitBudget(tt.lambda, tt.n); got != tt.want {
			t.Errorf("RetransmitBudget(%d, %d) = %d, want %d", tt.lambda, tt.n, got, tt.want)
		}
	}
}

func TestQueueBudgetDrop(t *testing.T) {
	q := NewQueue[string](3)
	q.Add("a")
	for i := 1; i <= 3; i++ {
		if got := take(q, 10); !slices.Equal(got, []string{"a"}) {
			t.Fatalf("take %d = %v", i, got)
		}
		if sent, ok := q.Sent("a"); i < 3 && (!ok || sent != i) {
			t.Fatalf("after %d takes Sent = %d,%v", i, sent, ok)
		}
	}
	if q.Contains("a") || q.Len() != 0 {
		t.Fatal("rumor not dropped after budget transmissions")
	}
	if got := take(q, 10); len(got) != 0 {
		t.Fatalf("empty queue handed out %v", got)
	}
}

func TestQueueFewestSentFirst(t *testing.T) {
	q := NewQueue[string](10)
	q.Add("old")
	q.Add("mid")
	q.Add("new")
	// Most recent first among never-sent.
	if got := take(q, 2); !slices.Equal(got, []string{"new", "mid"}) {
		t.Fatalf("first take = %v", got)
	}
	// "old" has been sent 0 times: it goes first, then the once-sent, newest first.
	if got := take(q, 3); !slices.Equal(got, []string{"old", "new", "mid"}) {
		t.Fatalf("second take = %v", got)
	}
	// All sent once now except new/mid twice: old first.
	if got := take(q, 1); !slices.Equal(got, []string{"old"}) {
		t.Fatalf("third take = %v", got)
	}
	// Refresh resets the count and makes it the most recent.
	q.Add("mid")
	if s, _ := q.Sent("mid"); s != 0 {
		t.Fatalf("refresh left sent = %d", s)
	}
	if got := take(q, 4); !slices.Equal(got, []string{"mid", "new", "old"}) {
		t.Fatalf("after refresh take = %v", got)
	}
}

func TestQueueRemoveContains(t *testing.T) {
	q := NewQueue[string](5)
	for _, k := range []string{"a", "b", "c", "d"} {
		q.Add(k)
	}
	if !q.Remove("b") || q.Remove("b") || q.Contains("b") || !q.Contains("c") || q.Len() != 3 {
		t.Fatal("Remove/Contains")
	}
	if got := take(q, 10); !slices.Equal(got, []string{"d", "c", "a"}) {
		t.Fatalf("take = %v", got)
	}
	q.Add("b") // slot reuse
	if got := take(q, 1); !slices.Equal(got, []string{"b"}) {
		t.Fatalf("take = %v", got)
	}
}

func TestQueueSetBudget(t *testing.T) {
	q := NewQueue[string](10)
	q.Add("a")
	q.Add("b")
	take(q, 1) // b sent once
	take(q, 1) // a sent once
	take(q, 1) // b sent twice
	q.SetBudget(2)
	if q.Contains("b") || !q.Contains("a") || q.Budget() != 2 {
		t.Fatal("SetBudget must drop rumors at or over the new budget")
	}
	q.SetBudget(0)
	if q.Budget() != 1 || q.Len() != 0 {
		t.Fatalf("SetBudget(0): budget %d len %d", q.Budget(), q.Len())
	}
}

func TestQueueLimitEvictsMostSent(t *testing.T) {
	q := NewQueue[string](10)
	q.SetLimit(3)
	q.Add("a")
	q.Add("b")
	q.Add("c")
	take(q, 2) // c, b sent once
	q.Add("d") // evicts the most-sent oldest: b
	if q.Contains("b") || q.Len() != 3 {
		t.Fatalf("evicted wrong: contains b=%v len=%d", q.Contains("b"), q.Len())
	}
	q.SetLimit(1) // keeps the best: d (0 sends, newest)
	if !q.Contains("d") || q.Len() != 1 {
		t.Fatal("SetLimit shrink kept the wrong rumor")
	}
}

func TestQueueZeroValue(t *testing.T) {
	var q Queue[int]
	q.Add(1)
	n := q.Take(5, func(int) {})
	if n != 1 || q.Len() != 0 {
		t.Fatalf("zero-value queue: took %d, len %d (budget 1)", n, q.Len())
	}
}

// TestQueueMatchesModel drives the queue with random operations and checks
// every Take against a straightforward sort of all entries.
func TestQueueMatchesModel(t *testing.T) {
	type ent struct {
		key  int
		sent int
		seq  int
	}
	rng := rand.New(rand.NewPCG(3, 4))
	q := NewQueue[int](4)
	var model []ent
	seq := 0
	find := func(k int) int { return slices.IndexFunc(model, func(e ent) bool { return e.key == k }) }
	for step := range 20000 {
		switch op := rng.IntN(10); {
		case op < 5:
			k := rng.IntN(40)
			seq++
			q.Add(k)
			if i := find(k); i >= 0 {
				model[i].sent, model[i].seq = 0, seq
			} else {
				model = append(model, ent{k, 0, seq})
			}
		case op < 6:
			k := rng.IntN(40)
			i := find(k)
			if q.Remove(k) != (i >= 0) {
				t.Fatalf("step %d: Remove(%d) disagrees", step, k)
			}
			if i >= 0 {
				model = slices.Delete(model, i, i+1)
			}
		default:
			n := rng.IntN(6)
			slices.SortFunc(model, func(a, b ent) int {
				if a.sent != b.sent {
					return a.sent - b.sent
				}
				return b.seq - a.seq
			})
			var want []int
			for i := 0; i < n && i < len(model); i++ {
				want = append(want, model[i].key)
				model[i].sent++
			}
			model = slices.DeleteFunc(model, func(e ent) bool { return e.sent >= 4 })
			var got []int
			q.Take(n, func(k int) { got = append(got, k) })
			if !slices.Equal(got, want) {
				t.Fatalf("step %d: Take(%d) = %v, want %v", step, n, got, want)
			}
		}
		if q.Len() != len(model) {
			t.Fatalf("step %d: Len %d, model %d", step, q.Len(), len(model))
		}
	}
}

func TestQueueSteadyStateNoAllocs(t *testing.T) {
	q := NewQueue[uint64](8)
	emit := func(uint64) {}
	// Warm up to working size.
	for i := range 100000 {
		q.Add(uint64(i % 512))
		q.Take(4, emit)
	}
	i := 0
	allocs := testing.AllocsPerRun(10000, func() {
		q.Add(uint64(i % 512))
		q.Take(4, emit)
		i++
	})
	if allocs != 0 {
		t.Fatalf("Add+Take allocates %.2f per op in steady state", allocs)
	}
}

// BenchmarkQueueAddTake is the steady state of a gossip section: one rumor
// added or refreshed and a section of 8 taken per message, over a working set
// of 1024 keys with a budget of 30 (λ=3, n=1000).
func BenchmarkQueueAddTake(b *testing.B) {
	q := NewQueue[uint64](RetransmitBudget(3, 1000))
	var sink uint64
	emit := func(k uint64) { sink += k }
	for i := range 200000 {
		q.Add(uint64(i % 1024))
		q.Take(8, emit)
	}
	b.ReportAllocs()
	b.ResetTimer()
	i := 0
	for b.Loop() {
		q.Add(uint64(i % 1024))
		q.Take(8, emit)
		i++
	}
	b.ReportMetric(float64(b.N*8)/b.Elapsed().Seconds(), "rumors/s")
	_ = sink
}
