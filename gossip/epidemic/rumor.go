package epidemic

import "math/rand/v2"

// Phase is where one site stands with respect to one update, in the
// terms of the SIR epidemic model Demers et al. borrow.
type Phase uint8

const (
	// Susceptible: the site does not know the update.
	Susceptible Phase = iota
	// Infective: the site knows the update and it is hot: the site still
	// spreads it.
	Infective
	// Removed: the site knows the update but has lost interest in it.
	Removed
)

// String returns "susceptible", "infective" or "removed".
func (p Phase) String() string {
	switch p {
	case Susceptible:
		return "susceptible"
	case Infective:
		return "infective"
	case Removed:
		return "removed"
	}
	return "Phase(?)"
}

// Knows reports whether a site in this phase has the update.
func (p Phase) Knows() bool { return p != Susceptible }

// RumorState is one site's state for one rumor. The zero value is
// susceptible. It is small (8 bytes) so a driver can hold one per site per
// update.
type RumorState struct {
	Phase Phase
	// Count is the number of loss events counted so far (only meaningful
	// with the Counter stop rule; Feedback resets it on a round that was
	// news to someone).
	Count int32
}

// Hot reports whether the site is still spreading the rumor.
func (r *RumorState) Hot() bool { return r.Phase == Infective }

// Receive delivers the rumor to the site. A susceptible site becomes
// infective with a fresh count and Receive returns true; a site that already
// knew is unchanged and Receive returns false.
func (r *RumorState) Receive() (newlyInfected bool) {
	if r.Phase != Susceptible {
		return false
	}
	r.Phase = Infective
	r.Count = 0
	return true
}

// EndRound applies loss of interest at the end of one gossip round (one
// cycle) in which the site, hot at the start of the round, carried the rumor
// to sent other sites (it pushed to them, or answered their pulls), of which
// necessary did not know it yet. It returns whether the rumor is still hot.
// Calling it on a site that is not hot changes nothing and returns false.
//
// Blind loss counts every transmission: sent loss events, each spending one
// unit of the counter (Counter) or tossing a 1/K coin (Coin). This is exactly
// what Queue does per message.
//
// Feedback loss looks at the round as a whole, as Demers et al. do: if any
// contact was necessary the rumor is evidently still news, and the counter
// is reset; if every contact found the recipient already knowing, that is
// one loss event (one count, or one 1/K coin). With Counter the rumor thus
// goes cold after K consecutive rounds in which it was news to nobody, which
// is the rule behind the paper's traffic bound k(2m-1) ("each unnecessary
// message was sent by a site that, within the last k cycles, sent a necessary
// message, or newly discovered the update") and which reproduces its
// published tables; counting every unnecessary contact ever, without the
// reset, gives a visibly worse residue (0.048 instead of 0.037 at k=2).
//
// rng is used only by the Coin rule.
func (r *RumorState) EndRound(p *Policy, sent, necessary int, rng *rand.Rand) (stillHot bool) {
	if r.Phase != Infective {
		return false
	}
	if sent <= 0 {
		return true
	}
	events := sent
	if p.Loss == Feedback {
		if necessary > 0 {
			r.Count = 0
			return true
		}
		events = 1
	}
	for range events {
		if r.lose(p, rng) {
			r.Phase = Removed
			return false
		}
	}
	return true
}

// OnContact is EndRound for a round of a single contact: the site carried
// the rumor to one other site, which already knew it if recipientKnew.
func (r *RumorState) OnContact(p *Policy, recipientKnew bool, rng *rand.Rand) (stillHot bool) {
	necessary := 1
	if recipientKnew {
		necessary = 0
	}
	return r.EndRound(p, 1, necessary, rng)
}

// lose applies one loss event under the stop rule and reports whether the
// rumor went cold.
func (r *RumorState) lose(p *Policy, rng *rand.Rand) bool {
	if p.Stop == Coin {
		return p.K <= 1 || rng.IntN(p.K) == 0
	}
	return spend(&r.Count, p.K)
}

// spend records one counted transmission against budget and reports whether
// the budget is now used up. It is the one counter used by both the
// experiment's counter rule (RumorState.OnContact) and the production Queue,
// so that blind+counter rumor mongering with k = budget and the piggyback
// queue are the same algorithm.
func spend(count *int32, budget int) (exhausted bool) {
	*count++
	return int(*count) >= budget
}

// Initiates reports whether a site in phase ph opens contacts in a cycle
// under p. With push rumor mongering only hot sites have anything to say;
// with pull and push-pull every site asks (it cannot know what it is
// missing), and under anti-entropy every site reconciles every cycle.
func (p *Policy) Initiates(ph Phase) bool {
	if p.Mode == Rumor && p.Direction == Push {
		return ph == Infective
	}
	return true
}

// RumorContact decides, from the phases both sites had at the start of the
// cycle, which way the rumor travels on one contact: push is true when the
// initiator sends it to the partner, pull when the partner sends it back.
// Each true result is one update-carrying message; the driver tallies, per
// sender, the messages sent and how many reached a site that did not know
// the rumor (the other side's start-of-cycle phase), and calls EndRound on
// each sender once the cycle's contacts are done.
func (p *Policy) RumorContact(initiator, partner Phase) (push, pull bool) {
	push = p.Direction.Pushes() && initiator == Infective
	pull = p.Direction.Pulls() && partner == Infective
	return push, pull
}
