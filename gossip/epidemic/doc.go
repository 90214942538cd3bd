// Package epidemic implements the dissemination strategies of Demers et al.,
// "Epidemic algorithms for replicated database maintenance" (PODC 1987), as
// deterministic building blocks for the hearsay gossip core and for the
// experiment runner in bench/epidemic.
//
// The package is pure: it reads no clock, uses no global random source,
// starts no goroutines and does no I/O. Whatever randomness a rule needs
// comes in as a *math/rand/v2.Rand from the caller.
//
// # Strategies
//
// Every site periodically (once per cycle) contacts one or more partners
// chosen at random. What flows on a contact depends on the Direction:
//
//   - Push: the initiator sends its update to the partner.
//   - Pull: the initiator asks; the partner replies with its update.
//   - PushPull: both; after the exchange both sites hold the newer state.
//
// Anti-entropy (a "simple epidemic") reconciles whole database state on
// every contact and never stops, so it always reaches every site; its cost
// is that every site works every cycle. For a single update among n sites,
// push needs about log2 n + ln n cycles, pull log2 n + ln ln n, and
// push-pull fewer still, because once most sites know, a susceptible site
// that pulls is almost sure to find the update, while a push must land on
// one of the few remaining susceptible sites by chance. The functions
// AntiEntropyPush, AntiEntropyPull, AntiEntropyPushPull and
// AntiEntropyContact implement one exchange over a single-entry database
// whose state is a Version.
//
// Rumor mongering (a "complex epidemic") spreads only hot updates. With
// respect to one update each site is susceptible (does not know it),
// infective (knows it and spreads it) or removed (knows it but has lost
// interest). RumorState holds that per site and per update. How a site
// loses interest is chosen by two orthogonal rules:
//
//   - Loss: Feedback counts only rounds in which every recipient already
//     knew the rumor (and a round that was news to someone resets the
//     counter); Blind counts every transmission regardless of the recipient.
//   - Stop: Counter loses interest after K counted events; Coin loses it
//     with probability 1/K at each counted event.
//
// A rumor can die out before it reaches everyone, which is why real systems
// back it with occasional anti-entropy; hearsay does exactly that, with
// piggybacked rumors for speed and a periodic push-pull digest exchange for
// repair.
//
// Queue is the production form of rumor mongering used for the gossip
// sections of PING/PONG: blind loss with a counter stop and K = the
// retransmit budget, λ·⌈log2(n+1)⌉ (RetransmitBudget). It shares its counter
// with RumorState, so the experiment's blind/counter results describe it.
//
// # Measures
//
// Demers et al. judge a strategy for one update injected at one site by:
//
//   - residue: the fraction of sites still susceptible when the epidemic
//     ends (no site infective, for rumors; everyone informed, for
//     anti-entropy). Anti-entropy's residue is 0 once it completes.
//   - traffic: the number of messages that carried the update, divided by
//     the number of sites. Requests and digests without the update are not
//     counted.
//   - t_ave: the mean number of cycles from injection until a site receives
//     the update, over the sites that received it.
//   - t_last: the cycle in which the last site received it.
//
// Policy bundles the choices (Mode, Direction, Loss, Stop, K, Fanout) with
// parsing helpers for their flag spellings.
package epidemic
