package upstreams

import "time"

// carryFrom hands prev's live health state to r's targets of the same upstream name and URL. A
// reload builds a new registry even when only a route changed, and without this every target
// would start healthy and not ejected: one that probes had found dead would get traffic again
// for unhealthy_failures × interval, one that passive checks ejected until it failed again.
// r must not be started or serving yet.
//
// prev keeps serving, probing and ejecting until the swap retires it, so a change in that short
// window is not carried; the new registry's own checks find it again.
//
// A circuit breaker with unchanged settings and targets is carried whole (gobreaker has no way to
// set a new one's state): an open circuit stays open, a closed one keeps its counts. The probe
// loop's consecutive counters, which live in the loop, are not: a carried unhealthy target needs
// healthy_successes fresh passes, as after any flip.
func (r *Registry) carryFrom(prev *Registry) {
	if prev == nil {
		return
	}
	now := time.Now()
	for name, u := range r.ups {
		old, ok := prev.ups[name]
		if !ok {
			continue
		}
		u.carryBreaker(old)
		if u.carryFrom(old, now) {
			// Takes the carried targets out of rotation and sets their healthy gauge, which
			// newUpstream's own rebuild had just set to 1.
			u.rebuild()
		}
	}
}

// carryFrom copies old's state into u's matching targets and reports whether any changed.
func (u *Upstream) carryFrom(old *Upstream, now time.Time) (changed bool) {
	// An unhealthy verdict is only as good as the probes behind it, so it is carried only to the
	// very same checks; a new path, interval, timeout or threshold starts afresh, as a new
	// upstream would. Without active checks in u nothing would ever probe the target back, and
	// "healthy" is what having no active checks means, so the verdict is dropped.
	sameActive := u.active != nil && old.active != nil && *u.active == *old.active
	// Passive state is facts about recent calls, valid whatever the thresholds; it is dropped
	// only when u no longer checks passively.
	passive := u.passive != nil && old.passive != nil
	if !sameActive && !passive {
		return false
	}
	byURL := make(map[string]*target, len(old.targets))
	for _, t := range old.targets {
		byURL[t.url] = t
	}
	for _, t := range u.targets {
		ot, ok := byURL[t.url]
		if !ok {
			continue
		}
		if sameActive && !ot.healthy.Load() {
			t.healthy.Store(false)
			changed = true
		}
		if !passive {
			continue
		}
		t.fails.Store(ot.fails.Load())
		until, mono := ot.ejectedUntil.Load(), monoAt(now)
		if until <= mono {
			continue
		}
		// A shortened eject_for applies to a running ejection too: that is what the user asked.
		until = min(until, mono+int64(u.passive.ejectFor))
		t.ejectedUntil.Store(until)
		// old's timer would re-admit the target in old only; u needs its own.
		time.AfterFunc(time.Duration(until-mono), u.rebuild)
		changed = true
	}
	return changed
}

// carryBreaker hands old's breaker to u when both have one with the same settings and the same
// targets. Until the swap retires old, both count into it, which is right: they call the same
// targets. A breaker's state is a verdict on the targets behind it; pointing an upstream at new
// targets is the usual fix for dead ones, and must not inherit the circuit they opened.
func (u *Upstream) carryBreaker(old *Upstream) {
	if u.breaker == nil || old.breaker == nil || u.breakerSet != old.breakerSet || !sameTargetURLs(u.targets, old.targets) {
		return
	}
	u.breaker, u.breakerOwner = old.breaker, old.breakerOwner
	u.breakerOwner.Store(u) // state changes now log and set the gauge for u, which outlives old
	if u.m.breaker != nil {
		u.m.breaker.Set(float64(breakerGaugeValue(u.breaker.State())))
	}
}

// sameTargetURLs reports whether a and b are the same set of targets, in any order and whatever
// their weights. Target URLs are unique within an upstream.
func sameTargetURLs(a, b []*target) bool {
	if len(a) != len(b) {
		return false
	}
	urls := make(map[string]bool, len(a))
	for _, t := range a {
		urls[t.url] = true
	}
	for _, t := range b {
		if !urls[t.url] {
			return false
		}
	}
	return true
}
