package epidemic

import (
	"math/rand/v2"
	"strings"
	"testing"
)

func TestParseEnums(t *testing.T) {
	tests := []struct {
		in      string
		parse   func(string) (string, error)
		wantErr string
	}{
		{"rumor", wrap(ParseMode), ""},
		{"anti-entropy", wrap(ParseMode), ""},
		{"antientropy", wrap(ParseMode), "rumor or anti-entropy"},
		{"", wrap(ParseMode), "invalid mode"},
		{"push", wrap(ParseDirection), ""},
		{"pull", wrap(ParseDirection), ""},
		{"push-pull", wrap(ParseDirection), ""},
		{"pushpull", wrap(ParseDirection), "push, pull or push-pull"},
		{"Push", wrap(ParseDirection), "invalid direction"},
		{"feedback", wrap(ParseLoss), ""},
		{"blind", wrap(ParseLoss), ""},
		{"deaf", wrap(ParseLoss), "feedback or blind"},
		{"counter", wrap(ParseStop), ""},
		{"coin", wrap(ParseStop), ""},
		{"dice", wrap(ParseStop), "counter or coin"},
	}
	for _, tt := range tests {
		got, err := tt.parse(tt.in)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("parse(%q) error = %v, want containing %q", tt.in, err, tt.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("parse(%q): %v", tt.in, err)
			continue
		}
		if got != tt.in {
			t.Errorf("parse(%q).String() = %q, want round trip", tt.in, got)
		}
	}
}

func wrap[T interface{ String() string }](f func(string) (T, error)) func(string) (string, error) {
	return func(s string) (string, error) {
		v, err := f(s)
		return v.String(), err
	}
}

func TestSetKeepsValueOnError(t *testing.T) {
	d := PushPull
	if err := d.Set("sideways"); err == nil {
		t.Fatal("Set(sideways) succeeded")
	}
	if d != PushPull {
		t.Fatalf("failed Set changed value to %v", d)
	}
	if err := d.Set("pull"); err != nil || d != Pull {
		t.Fatalf("Set(pull) = %v, value %v", err, d)
	}
}

func TestOutOfRangeString(t *testing.T) {
	if got := Mode(7).String(); got != "Mode(7)" {
		t.Errorf("Mode(7) = %q", got)
	}
	if got := Stop(9).String(); got != "Stop(9)" {
		t.Errorf("Stop(9) = %q", got)
	}
}

func TestPolicyValidate(t *testing.T) {
	tests := []struct {
		name    string
		p       Policy
		wantErr []string
	}{
		{"default", DefaultPolicy(), nil},
		{"anti-entropy ignores k", Policy{Mode: AntiEntropy, Direction: Pull, Fanout: 1}, nil},
		{"rumor k=0", Policy{Mode: Rumor, K: 0, Fanout: 1}, []string{"invalid k 0"}},
		{"fanout 0", Policy{Mode: AntiEntropy, Fanout: 0}, []string{"invalid fanout 0"}},
		{"bad enums", Policy{Mode: 2, Direction: 3, Loss: 2, Stop: 2, K: 1, Fanout: 1},
			[]string{"invalid mode 2", "invalid direction 3", "invalid loss 2", "invalid stop 2"}},
	}
	for _, tt := range tests {
		err := tt.p.Validate()
		if len(tt.wantErr) == 0 {
			if err != nil {
				t.Errorf("%s: Validate() = %v", tt.name, err)
			}
			continue
		}
		if err == nil {
			t.Errorf("%s: Validate() = nil, want errors", tt.name)
			continue
		}
		for _, w := range tt.wantErr {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: Validate() = %v, want containing %q", tt.name, err, w)
			}
		}
	}
}

func TestPolicyString(t *testing.T) {
	if got, want := DefaultPolicy().String(), "rumor push feedback counter k=2 fanout=1"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
	p := Policy{Mode: AntiEntropy, Direction: PushPull, Fanout: 2}
	if got, want := p.String(), "anti-entropy push-pull fanout=2"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
}

func TestRumorCounterFeedback(t *testing.T) {
	p := Policy{Mode: Rumor, Direction: Push, Loss: Feedback, Stop: Counter, K: 2, Fanout: 1}
	var r RumorState
	if r.Hot() || !r.Receive() || !r.Hot() || r.Receive() {
		t.Fatal("susceptible -> infective transition wrong")
	}
	rng := rand.New(rand.NewPCG(1, 2))
	if !r.OnContact(&p, true, rng) { // 1 of 2
		t.Fatal("went cold after one unnecessary contact with k=2")
	}
	if !r.OnContact(&p, false, rng) { // news: resets
		t.Fatal("went cold on a necessary contact")
	}
	if !r.OnContact(&p, true, rng) { // 1 of 2 again after reset
		t.Fatal("reset did not happen")
	}
	if r.OnContact(&p, true, rng) {
		t.Fatal("still hot after two consecutive unnecessary contacts")
	}
	if r.Phase != Removed || r.OnContact(&p, true, rng) || r.Receive() {
		t.Fatal("removed site changed")
	}
}

func TestRumorRoundFeedback(t *testing.T) {
	p := Policy{Mode: Rumor, Loss: Feedback, Stop: Counter, K: 1, Fanout: 1}
	var r RumorState
	r.Receive()
	if !r.EndRound(&p, 3, 1, nil) {
		t.Fatal("a round with one necessary contact must keep the rumor hot")
	}
	if !r.EndRound(&p, 0, 0, nil) {
		t.Fatal("a round without sends must not count")
	}
	if r.EndRound(&p, 3, 0, nil) {
		t.Fatal("an all-unnecessary round must count with k=1")
	}
}

func TestRumorBlindCounter(t *testing.T) {
	p := Policy{Mode: Rumor, Loss: Blind, Stop: Counter, K: 3, Fanout: 1}
	var r RumorState
	r.Receive()
	if !r.EndRound(&p, 2, 2, nil) { // blind: news does not matter, 2 of 3
		t.Fatal("cold too early")
	}
	if r.Count != 2 {
		t.Fatalf("count = %d, want 2", r.Count)
	}
	if r.OnContact(&p, false, nil) {
		t.Fatal("still hot after 3 transmissions")
	}
}

func TestRumorCoin(t *testing.T) {
	p := Policy{Mode: Rumor, Loss: Blind, Stop: Coin, K: 4, Fanout: 1}
	rng := rand.New(rand.NewPCG(7, 7))
	const trials = 20000
	cold := 0
	for range trials {
		var r RumorState
		r.Receive()
		if !r.OnContact(&p, true, rng) {
			cold++
		}
	}
	if f := float64(cold) / trials; f < 0.23 || f > 0.27 {
		t.Fatalf("coin 1/4 lost interest in %.3f of contacts", f)
	}
}

func TestRumorContact(t *testing.T) {
	tests := []struct {
		d                  Direction
		init, part         Phase
		wantPush, wantPull bool
	}{
		{Push, Infective, Susceptible, true, false},
		{Push, Removed, Susceptible, false, false},
		{Push, Susceptible, Infective, false, false},
		{Pull, Susceptible, Infective, false, true},
		{Pull, Infective, Susceptible, false, false},
		{Pull, Susceptible, Removed, false, false},
		{PushPull, Infective, Infective, true, true},
		{PushPull, Susceptible, Infective, false, true},
	}
	for _, tt := range tests {
		p := Policy{Mode: Rumor, Direction: tt.d}
		push, pull := p.RumorContact(tt.init, tt.part)
		if push != tt.wantPush || pull != tt.wantPull {
			t.Errorf("%v %v->%v = %v,%v want %v,%v", tt.d, tt.init, tt.part, push, pull, tt.wantPush, tt.wantPull)
		}
	}
	push := Policy{Mode: Rumor, Direction: Push}
	pull := Policy{Mode: Rumor, Direction: Pull}
	ae := Policy{Mode: AntiEntropy, Direction: Push}
	if push.Initiates(Susceptible) || !push.Initiates(Infective) || push.Initiates(Removed) {
		t.Error("push rumor: only hot sites initiate")
	}
	if !pull.Initiates(Susceptible) || !pull.Initiates(Removed) || !ae.Initiates(Susceptible) {
		t.Error("pull rumor and anti-entropy: every site initiates")
	}
}

func TestAntiEntropy(t *testing.T) {
	if v, sent := AntiEntropyPush(2, 1); v != 2 || !sent {
		t.Error("push newer")
	}
	if v, sent := AntiEntropyPush(1, 2); v != 2 || sent {
		t.Error("push older must not send")
	}
	if v, sent := AntiEntropyPull(0, 3); v != 3 || !sent {
		t.Error("pull newer")
	}
	if v, sent := AntiEntropyPull(3, 0); v != 3 || sent {
		t.Error("pull older must not send")
	}
	if a, b, pu, pl := AntiEntropyPushPull(1, 5); a != 5 || b != 5 || pu || !pl {
		t.Error("push-pull partner newer")
	}
	if a, b, pu, pl := AntiEntropyPushPull(5, 1); a != 5 || b != 5 || !pu || pl {
		t.Error("push-pull initiator newer")
	}
	if _, _, pu, pl := AntiEntropyPushPull(4, 4); pu || pl {
		t.Error("push-pull equal sends nothing")
	}
	for _, tt := range []struct {
		d          Direction
		a, b       Version
		push, pull bool
	}{
		{Push, 1, 0, true, false}, {Push, 0, 1, false, false},
		{Pull, 1, 0, false, false}, {Pull, 0, 1, false, true},
		{PushPull, 1, 0, true, false}, {PushPull, 0, 1, false, true}, {PushPull, 1, 1, false, false},
	} {
		push, pull := AntiEntropyContact(tt.d, tt.a, tt.b)
		if push != tt.push || pull != tt.pull {
			t.Errorf("AntiEntropyContact(%v, %d, %d) = %v,%v", tt.d, tt.a, tt.b, push, pull)
		}
	}
	if Merge(3, 2) != 3 || Merge(2, 3) != 3 {
		t.Error("Merge")
	}
}
