package tracking

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/mailgate/mailgate/event"
)

// A split ("MID 58 was split creating MID 60 due to a per-recipient policy
// tcamp") makes a child message of some recipients of its parent. The
// child's own lines say little: mailgate's and the ESA's name its
// recipients ("MID 60 ICID 0 RID 1 To: <...>": the ESA numbers them anew,
// mailgate keeps the parent's RIDs), and mailgate's older logs only its
// delivery lines ("to RID [1]", the parent's RIDs). So once both records
// hold the split line, each fills the other: the child takes the parent's
// envelope (sender, subject, Message-ID, size, connection and client), its
// recipients' addresses by RID when its lines name none, and is accepted;
// the parent's recipients that went on get the status Split, not left
// queued for a delivery they will never have in it.
//
// Lines come in any order (a syslog server interleaves them): the fill runs
// again after every line of a linked record, and when the other record is
// not in memory it is loaded at the end of the round (a pending fill).

// splitLink is a split line a record holds, as parent or as child.
type splitLink struct {
	parent, child uint64
	reason        string // "a per-recipient policy tcamp"
	time          time.Time
}

// noteSplit remembers the link a split line makes.
func (r *mrec) noteSplit(ev event.Event, at time.Time) {
	s, ok := ev.(event.Split)
	if !ok {
		return
	}
	for _, l := range r.splits {
		if l.parent == s.MID && l.child == s.NewMID {
			return
		}
	}
	r.splits = append(r.splits, splitLink{parent: s.MID, child: s.NewMID, reason: s.Reason, time: at})
}

// splitFrom is the message this one was split off, or 0.
func (r *mrec) splitFrom() uint64 {
	for _, l := range r.splits {
		if l.child == r.MID {
			return l.parent
		}
	}
	return 0
}

// pendingFill is a split whose other record was not in memory.
type pendingFill struct {
	host string
	l    splitLink
}

// linkSplits runs after an entry is folded into the records of mids: a
// line that links two messages shows both accepted; a split line links
// its two records, and a line of a linked record fills again what each
// holds of the other.
func (t *Tracker) linkSplits(host string, e event.Entry, mids []uint64) {
	for _, mid := range mids {
		r := t.msgs[MessageKey{host, mid}]
		switch e.Event.(type) {
		case event.Split, event.Rewritten, event.Generated, event.SpamReinjected:
			// Both messages a link line names were accepted: one the
			// gateway took in, one it made from that one.
			r.accept(e)
		}
		r.noteSplit(e.Event, e.Time)
		for _, l := range r.splits {
			p, c := t.msgs[MessageKey{host, l.parent}], t.msgs[MessageKey{host, l.child}]
			if p == nil || c == nil {
				t.fills = append(t.fills, pendingFill{host, l})
				continue
			}
			fillSplit(p, c, l)
		}
	}
}

// fillPending loads the records the round's fills missed and fills them.
func (t *Tracker) fillPending(ctx context.Context) error {
	if len(t.fills) == 0 {
		return nil
	}
	var keys Keys
	for _, f := range t.fills {
		for _, mid := range []uint64{f.l.parent, f.l.child} {
			k := MessageKey{f.host, mid}
			if t.msgs[k] == nil && !slices.Contains(keys.Messages, k) {
				keys.Messages = append(keys.Messages, k)
			}
		}
	}
	if len(keys.Messages) > 0 {
		b, err := t.storeLoad(ctx, keys)
		if err != nil {
			return fmt.Errorf("tracking: load %d split messages: %w", len(keys.Messages), err)
		}
		for _, m := range b.Messages {
			r := &mrec{Message: *m}
			r.restore()
			t.msgs[MessageKey{m.Host, m.MID}] = r
		}
	}
	for _, f := range t.fills {
		// A record the store does not hold (pruned) has nothing to give.
		if p, c := t.msgs[MessageKey{f.host, f.l.parent}], t.msgs[MessageKey{f.host, f.l.child}]; p != nil && c != nil {
			fillSplit(p, c, f.l)
		}
	}
	clear(t.fills)
	t.fills = t.fills[:0]
	return nil
}

// fillSplit gives child c what its parent p knows of it, and p's
// recipients that went on as c the status Split. It changes only what is
// missing, so that running it again changes nothing.
func fillSplit(p, c *mrec, l splitLink) {
	changed := false
	str := func(dst *string, v string) {
		if *dst == "" && v != "" {
			*dst, changed = v, true
		}
	}
	str(&c.Sender, p.Sender)
	str(&c.Subject, p.Subject)
	str(&c.MessageID, p.MessageID)
	str(&c.RemoteIP, p.RemoteIP)
	str(&c.RemoteHost, p.RemoteHost)
	str(&c.SenderGroup, p.SenderGroup)
	if c.Size == 0 && p.Size != 0 {
		c.Size, changed = p.Size, true
	}
	// The child came in on its parent's connection (its own lines say
	// ICID 0, the gateway itself); it is not a message begun on it.
	if c.ICID == 0 && p.ICID != 0 {
		c.ICID, changed = p.ICID, true
	}
	// A split copies an accepted message (the split line marked it so):
	// its recipients wait for delivery, though its lines stop short of
	// "queued for delivery" (held in the work queue, a log that ends).
	for i := range c.Recipients {
		if rc := &c.Recipients[i]; rc.Status == Receiving || rc.Status == "" {
			rc.Status, rc.Time, changed = Queued, l.time, true
		}
	}

	// Which recipients went on: those the child's lines name, by address
	// (the ESA numbers the child's RIDs anew) or, when they name no
	// address (mailgate's delivery lines alone), by RID (mailgate's child
	// keeps its parent's RIDs); and those the ESA's SL/BL split names.
	addressed := slices.ContainsFunc(c.Recipients, func(r Recipient) bool { return r.RID >= 0 && r.Address != "" })
	resp := splitResponse(l.child, l.reason)
	pchanged := false
	mark := func(pr *Recipient) {
		if pr == nil || pr.Status.Final() {
			return
		}
		pr.Status, pr.Response, pr.Time, pr.Code, pr.NextRetry = Split, resp, l.time, "", zeroTime
		pchanged = true
	}
	for i := range c.Recipients {
		cr := &c.Recipients[i]
		if cr.RID < 0 {
			continue
		}
		if cr.Address != "" {
			mark(p.byAddress(cr.Address, cr.RID))
			continue
		}
		if addressed {
			continue
		}
		if pr := p.byRID(cr.RID); pr != nil && pr.Address != "" {
			cr.Address, changed = pr.Address, true
			mark(pr)
		}
	}
	for _, a := range splitAddresses(l.reason) {
		mark(p.byAddress(a, -1))
	}
	if changed {
		c.dirty = true
	}
	if pchanged {
		p.dirty = true
	}
}

// byRID is the accepted recipient rid, or nil.
func (m *Message) byRID(rid int) *Recipient {
	for i := range m.Recipients {
		if m.Recipients[i].RID == rid && rid >= 0 {
			return &m.Recipients[i]
		}
	}
	return nil
}

// byAddress is the accepted recipient with the address (any case),
// preferring RID rid when two have it, or nil.
func (m *Message) byAddress(addr string, rid int) *Recipient {
	var found *Recipient
	for i := range m.Recipients {
		r := &m.Recipients[i]
		if r.RID < 0 || !strings.EqualFold(r.Address, addr) {
			continue
		}
		if r.RID == rid {
			return r
		}
		if found == nil {
			found = r
		}
	}
	return found
}

const splitPrefix = "split off to MID "

// splitResponse is the Response of a recipient that went on as MID child:
// "split off to MID 60 (per-recipient policy tcamp)".
func splitResponse(child uint64, reason string) string {
	why := strings.TrimPrefix(reason, "a ")
	why, _, _ = strings.Cut(why, " for following recipients")
	if why == "" {
		return splitPrefix + strconv.FormatUint(child, 10)
	}
	return splitPrefix + strconv.FormatUint(child, 10) + " (" + why + ")"
}

// SplitTo is the MID a recipient in status Split went on as, or 0.
func SplitTo(r Recipient) uint64 {
	if r.Status != Split {
		return 0
	}
	s, ok := strings.CutPrefix(r.Response, splitPrefix)
	if !ok {
		return 0
	}
	num, _, _ := strings.Cut(s, " ")
	mid, _ := strconv.ParseUint(num, 10, 64)
	return mid
}

// splitAddresses are the recipients an ESA's safelist/blocklist split
// names: "a SL/BL configuration for following recipients: a@x, b@x".
func splitAddresses(reason string) []string {
	_, list, ok := strings.Cut(reason, " for following recipients: ")
	if !ok {
		return nil
	}
	var out []string
	for a := range strings.SplitSeq(list, ",") {
		if a = strings.TrimSpace(a); a != "" {
			out = append(out, a)
		}
	}
	return out
}
