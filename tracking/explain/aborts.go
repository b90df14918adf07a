package explain

import (
	"cmp"
	"fmt"
	"slices"

	"github.com/mailgate/mailgate/tracking"
)

// AbortReport summarises aborted messages: how many of each kind, from
// which remote hosts, in which SMTP state, and the patterns that point at
// a cause.
type AbortReport struct {
	Total    int       `json:"total"`
	ByKind   []Counted `json:"by_kind"`
	ByHost   []Counted `json:"by_host"`  // remote IP (and name)
	ByState  []Counted `json:"by_state"` // SMTP state at the abort
	Patterns []string  `json:"patterns"`
}

// Counted is one value and how many aborts had it.
type Counted struct {
	Value string `json:"value"`
	Count int    `json:"count"`
}

// Aborts builds the report of the aborted messages in ms (other
// messages are ignored).
func Aborts(ms []tracking.Message) AbortReport {
	var r AbortReport
	kinds, hosts, states := map[string]int{}, map[string]int{}, map[string]int{}
	lostHosts, lostStates, lostBytes := map[string]int{}, map[string]int{}, map[int64]int{}
	lost := 0
	for _, m := range ms {
		if m.Status != tracking.Aborted {
			continue
		}
		r.Total++
		kinds[string(m.Abort)]++
		h := cmp.Or(m.RemoteIP, "unknown")
		if m.RemoteHost != "" && m.RemoteHost != "unknown" {
			h += " (" + m.RemoteHost + ")"
		}
		hosts[h]++
		st := cmp.Or(m.AbortState, "unknown")
		states[st]++
		if lostKind(m.Abort) {
			lost++
			lostHosts[h]++
			lostStates[st]++
			if m.AbortBytes > 0 {
				lostBytes[m.AbortBytes]++
			}
		}
	}
	r.ByKind, r.ByHost, r.ByState = counted(kinds), counted(hosts), counted(states)
	if lost >= 3 {
		if top := counted(lostHosts)[0]; top.Count*2 > lost {
			r.Patterns = append(r.Patterns, fmt.Sprintf("%d of the %d lost connections came from %s: look at that sender and the path to it (its firewall, an SMTP-inspecting device) before anything on the gateway.", top.Count, lost, top.Value))
		}
		if top := counted(lostStates)[0]; top.Value != "unknown" && top.Count*10 >= lost*8 {
			r.Patterns = append(r.Patterns, fmt.Sprintf("%d of the %d lost connections broke in the %s stage: a device that cuts SMTP after a given command (a firewall's SMTP inspection) shows exactly this; an injection debug log of those hosts shows the last command.", top.Count, lost, top.Value))
		}
		if len(lostBytes) > 0 {
			b := counted(map[string]int{})
			for n, c := range lostBytes {
				b = append(b, Counted{fmt.Sprint(n), c})
			}
			slices.SortFunc(b, byCount)
			if b[0].Count >= 3 && b[0].Count*2 > lost {
				r.Patterns = append(r.Patterns, fmt.Sprintf("%d of the %d lost connections broke after exactly %s bytes of DATA: something on the path stops the transfer at that size (an MTU or MSS problem, or a size limit of an inspecting device).", b[0].Count, lost, b[0].Value))
			}
		}
	}
	if n := kinds[string(tracking.AbortSenderQuit)] + kinds[string(tracking.AbortSenderReset)] + kinds[string(tracking.AbortSender)]; n > 0 && n*2 > r.Total && r.Total >= 3 {
		r.Patterns = append(r.Patterns, fmt.Sprintf("%d of the %d aborts were the senders giving up (QUIT, RSET or a new EHLO): their logs say why; address probes (MAIL, RCPT, RSET) look like this.", n, r.Total))
	}
	if n := kinds[string(tracking.AbortTimeout)] + kinds[string(tracking.AbortTimeLimit)] + kinds[string(tracking.AbortIdle)]; n > 0 && n*2 > r.Total && r.Total >= 3 {
		r.Patterns = append(r.Patterns, fmt.Sprintf("%d of the %d aborts were timeouts: clients that stop sending without closing; look for slow links or stuck clients.", n, r.Total))
	}
	return r
}

// lostKind reports whether k is a connection that broke below SMTP.
func lostKind(k tracking.Abort) bool {
	switch k {
	case tracking.AbortLost, tracking.AbortPeerClosed, tracking.AbortPeerReset, tracking.AbortIOError:
		return true
	}
	return false
}

func counted(m map[string]int) []Counted {
	out := make([]Counted, 0, len(m))
	for v, n := range m {
		out = append(out, Counted{v, n})
	}
	slices.SortFunc(out, byCount)
	return out
}

func byCount(a, b Counted) int {
	if c := cmp.Compare(b.Count, a.Count); c != 0 {
		return c
	}
	return cmp.Compare(a.Value, b.Value)
}
