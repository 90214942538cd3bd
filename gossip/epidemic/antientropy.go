package epidemic

// Version is the timestamp of a single-entry database at one site. Zero means
// the site has never seen the update; a larger version is newer.
type Version uint64

// AntiEntropyPush is one push exchange: the initiator compares versions with
// the partner and, when its own copy is newer, sends it. It returns the
// partner's resulting version and whether a message carrying the update was
// sent.
func AntiEntropyPush(initiator, partner Version) (partnerNext Version, sent bool) {
	if initiator > partner {
		return initiator, true
	}
	return partner, false
}

// AntiEntropyPull is one pull exchange: the initiator sends its version (a
// digest, not the update) and the partner replies with its copy when that is
// newer. It returns the initiator's resulting version and whether a message
// carrying the update was sent.
func AntiEntropyPull(initiator, partner Version) (initiatorNext Version, sent bool) {
	if partner > initiator {
		return partner, true
	}
	return initiator, false
}

// AntiEntropyPushPull is one push-pull exchange: after comparing versions,
// whichever side is newer sends its copy to the other. Both sides end with the
// newer version; at most one message carries the update.
func AntiEntropyPushPull(initiator, partner Version) (initiatorNext, partnerNext Version, pushed, pulled bool) {
	switch {
	case initiator > partner:
		return initiator, initiator, true, false
	case partner > initiator:
		return partner, partner, false, true
	}
	return initiator, partner, false, false
}

// AntiEntropyContact applies one anti-entropy exchange in direction d to the
// start-of-cycle versions of initiator and partner. push is true when the
// initiator sent the update, pull when the partner did. In a synchronous cycle
// the driver merges the results into next-cycle state with Merge, so several
// exchanges touching one site in the same cycle all see its start-of-cycle
// version.
func AntiEntropyContact(d Direction, initiator, partner Version) (push, pull bool) {
	switch d {
	case Push:
		_, push = AntiEntropyPush(initiator, partner)
	case Pull:
		_, pull = AntiEntropyPull(initiator, partner)
	case PushPull:
		_, _, push, pull = AntiEntropyPushPull(initiator, partner)
	}
	return push, pull
}

// Merge returns the newer of two versions: the state of a site after it
// receives incoming.
func Merge(current, incoming Version) Version {
	return max(current, incoming)
}
