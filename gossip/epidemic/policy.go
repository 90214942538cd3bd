package epidemic

import (
	"errors"
	"fmt"
)

// Mode selects the family of dissemination algorithm.
type Mode uint8

const (
	// Rumor is rumor mongering: a site gossips an update while it is hot and
	// loses interest according to the Loss and Stop rules.
	Rumor Mode = iota
	// AntiEntropy is periodic reconciliation of whole database state with a
	// random partner; it never stops.
	AntiEntropy
)

// Direction selects which way an update flows on a contact.
type Direction uint8

const (
	// Push: the initiator sends what it has to the partner.
	Push Direction = iota
	// Pull: the initiator asks the partner, which replies with what it has.
	Pull
	// PushPull: both at once.
	PushPull
)

// Loss selects which contacts count towards losing interest in a rumor.
type Loss uint8

const (
	// Feedback: only contacts where the recipient already knew the rumor count.
	Feedback Loss = iota
	// Blind: every contact counts, whatever the recipient knew.
	Blind
)

// Stop selects how counted contacts turn a hot rumor cold.
type Stop uint8

const (
	// Counter: the rumor goes cold after K counted contacts.
	Counter Stop = iota
	// Coin: each counted contact turns the rumor cold with probability 1/K.
	Coin
)

var (
	modeNames      = [...]string{Rumor: "rumor", AntiEntropy: "anti-entropy"}
	directionNames = [...]string{Push: "push", Pull: "pull", PushPull: "push-pull"}
	lossNames      = [...]string{Feedback: "feedback", Blind: "blind"}
	stopNames      = [...]string{Counter: "counter", Coin: "coin"}
)

func enumString[T ~uint8](names []string, v T, kind string) string {
	if int(v) < len(names) {
		return names[v]
	}
	return fmt.Sprintf("%s(%d)", kind, uint8(v))
}

func enumParse[T ~uint8](names []string, s, kind string) (T, error) {
	for i, n := range names {
		if s == n {
			return T(i), nil
		}
	}
	return 0, fmt.Errorf("invalid %s %q: want one of %s", kind, s, joinNames(names))
}

// setParsed is the flag.Value Set of every enum: *dst changes only when s
// parses.
func setParsed[T any](dst *T, parse func(string) (T, error), s string) error {
	v, err := parse(s)
	if err == nil {
		*dst = v
	}
	return err
}

func joinNames(names []string) string {
	out := ""
	for i, n := range names {
		switch {
		case i == 0:
		case i == len(names)-1:
			out += " or "
		default:
			out += ", "
		}
		out += n
	}
	return out
}

// String returns the flag spelling: "rumor" or "anti-entropy".
func (m Mode) String() string { return enumString(modeNames[:], m, "Mode") }

// String returns the flag spelling: "push", "pull" or "push-pull".
func (d Direction) String() string { return enumString(directionNames[:], d, "Direction") }

// String returns the flag spelling: "feedback" or "blind".
func (l Loss) String() string { return enumString(lossNames[:], l, "Loss") }

// String returns the flag spelling: "counter" or "coin".
func (s Stop) String() string { return enumString(stopNames[:], s, "Stop") }

// ParseMode parses "rumor" or "anti-entropy".
func ParseMode(s string) (Mode, error) { return enumParse[Mode](modeNames[:], s, "mode") }

// ParseDirection parses "push", "pull" or "push-pull".
func ParseDirection(s string) (Direction, error) {
	return enumParse[Direction](directionNames[:], s, "direction")
}

// ParseLoss parses "feedback" or "blind".
func ParseLoss(s string) (Loss, error) { return enumParse[Loss](lossNames[:], s, "loss") }

// ParseStop parses "counter" or "coin".
func ParseStop(s string) (Stop, error) { return enumParse[Stop](stopNames[:], s, "stop") }

// Set implements flag.Value.
func (m *Mode) Set(s string) error { return setParsed(m, ParseMode, s) }

// Set implements flag.Value.
func (d *Direction) Set(s string) error { return setParsed(d, ParseDirection, s) }

// Set implements flag.Value.
func (l *Loss) Set(s string) error { return setParsed(l, ParseLoss, s) }

// Set implements flag.Value.
func (s *Stop) Set(str string) error { return setParsed(s, ParseStop, str) }

// Pushes reports whether updates flow from initiator to partner.
func (d Direction) Pushes() bool { return d == Push || d == PushPull }

// Pulls reports whether updates flow from partner back to initiator.
func (d Direction) Pulls() bool { return d == Pull || d == PushPull }

// Policy is one complete choice of dissemination strategy.
//
// K is the loss-of-interest parameter of rumor mongering (counter limit, or
// the coin is 1/K); it is ignored by anti-entropy. Fanout is how many distinct
// random partners a site contacts per cycle.
type Policy struct {
	Mode      Mode
	Direction Direction
	Loss      Loss
	Stop      Stop
	K         int
	Fanout    int
}

// DefaultPolicy is push rumor mongering with feedback and counter k=2, fanout 1.
func DefaultPolicy() Policy {
	return Policy{Mode: Rumor, Direction: Push, Loss: Feedback, Stop: Counter, K: 2, Fanout: 1}
}

// String renders the policy in flag spelling, e.g.
// "rumor push feedback counter k=2 fanout=1" or "anti-entropy pull fanout=1".
func (p Policy) String() string {
	if p.Mode == AntiEntropy {
		return fmt.Sprintf("%s %s fanout=%d", p.Mode, p.Direction, p.Fanout)
	}
	return fmt.Sprintf("%s %s %s %s k=%d fanout=%d", p.Mode, p.Direction, p.Loss, p.Stop, p.K, p.Fanout)
}

// Validate reports every field that is out of range.
func (p Policy) Validate() error {
	var errs []error
	if int(p.Mode) >= len(modeNames) {
		errs = append(errs, fmt.Errorf("invalid mode %d: want %s", p.Mode, joinNames(modeNames[:])))
	}
	if int(p.Direction) >= len(directionNames) {
		errs = append(errs, fmt.Errorf("invalid direction %d: want %s", p.Direction, joinNames(directionNames[:])))
	}
	if int(p.Loss) >= len(lossNames) {
		errs = append(errs, fmt.Errorf("invalid loss %d: want %s", p.Loss, joinNames(lossNames[:])))
	}
	if int(p.Stop) >= len(stopNames) {
		errs = append(errs, fmt.Errorf("invalid stop %d: want %s", p.Stop, joinNames(stopNames[:])))
	}
	if p.Mode == Rumor && p.K < 1 {
		errs = append(errs, fmt.Errorf("invalid k %d: rumor mongering needs k >= 1", p.K))
	}
	if p.Fanout < 1 {
		errs = append(errs, fmt.Errorf("invalid fanout %d: need fanout >= 1", p.Fanout))
	}
	return errors.Join(errs...)
}
