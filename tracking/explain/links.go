package explain

import (
	"fmt"
	"slices"
	"strings"

	"github.com/mailgate/mailgate/event"
	"github.com/mailgate/mailgate/maillog"
	"github.com/mailgate/mailgate/tracking"
)

// Link is another message of the same gateway that this one is related to:
// the one it was made from, or one made from it.
type Link struct {
	MID      uint64 `json:"mid"`
	Relation string `json:"relation"` // what the other message is to this one: "bounce", "bounce of", ...
	Line     string `json:"line"`     // the log line that links them
}

// Relations, as the other message is to this one.
const (
	RelBounce        = "bounce"          // the DSN the gateway generated for this message
	RelBounceOf      = "bounce of"       // this message is the DSN of that one
	RelSplitInto     = "split off"       // some recipients went on as that message
	RelSplitFrom     = "split from"      // this message holds recipients split off that one
	RelRewrittenAs   = "rewritten as"    // this message went on as that one
	RelRewrittenFrom = "rewritten from"  // this message is that one, rewritten
	RelGenerated     = "generated copy"  // a copy made from this message (bcc, notification)
	RelGeneratedFrom = "generated from"  // this message was made from that one
	RelReinjectedAs  = "reinjected as"   // released from the spam quarantine as that message
	RelReinjectedOf  = "reinjected from" // this message is that one, released from the spam quarantine
)

// Links returns the messages m is linked to by its own lines, in the
// order they were logged. A line that links two MIDs is in the timeline of
// both (tracking files it under each), so both sides find the link.
func Links(m *tracking.Message) []Link {
	var out []Link
	add := func(mid uint64, rel, line string) {
		if mid == 0 || mid == m.MID {
			return
		}
		l := Link{MID: mid, Relation: rel, Line: line}
		if !slices.Contains(out, l) {
			out = append(out, l)
		}
	}
	for _, l := range m.Lines {
		switch ev := maillog.ParseMessage(l.Text).(type) {
		case event.BounceGenerated:
			if ev.MID == m.MID {
				add(ev.OrigMID, RelBounceOf, l.Text)
			} else {
				add(ev.MID, RelBounce, l.Text)
			}
		default:
			if mid, rel, ok := pipelineLink(m.MID, ev); ok {
				add(mid, rel, l.Text)
			}
		}
	}
	if m.BounceOf != 0 && !slices.ContainsFunc(out, func(l Link) bool { return l.MID == m.BounceOf }) {
		out = append(out, Link{MID: m.BounceOf, Relation: RelBounceOf})
	}
	return out
}

// pipelineLink reads the link an ESA work-queue line makes between this
// message (self) and another: a split, a rewrite, a generated copy, a
// reinjection from the spam quarantine.
func pipelineLink(self uint64, ev event.Event) (uint64, string, bool) {
	pick := func(from, to uint64, fromRel, toRel string) (uint64, string, bool) {
		if self == from {
			return to, fromRel, true
		}
		return from, toRel, true
	}
	switch e := ev.(type) {
	case event.Split:
		return pick(e.MID, e.NewMID, RelSplitInto, RelSplitFrom)
	case event.Rewritten:
		return pick(e.MID, e.NewMID, RelRewrittenAs, RelRewrittenFrom)
	case event.Generated:
		return pick(e.OrigMID, e.MID, RelGenerated, RelGeneratedFrom)
	case event.SpamReinjected:
		return pick(e.MID, e.NewMID, RelReinjectedAs, RelReinjectedOf)
	}
	return 0, "", false
}

// linksText is the Why line that names the linked messages.
func linksText(ls []Link) string {
	if len(ls) == 0 {
		return ""
	}
	var parts []string
	for _, l := range ls {
		parts = append(parts, fmt.Sprintf("MID %d (%s)", l.MID, l.Relation))
	}
	return "Related messages (mailgate track --mid N): " + strings.Join(parts, ", ") + "."
}

// wentOn is the message m went on as, whole (a rewrite, a reinjection
// from the spam quarantine), or no Link.
func wentOn(m *tracking.Message) Link {
	for _, l := range Links(m) {
		if l.Relation == RelRewrittenAs || l.Relation == RelReinjectedAs {
			return l
		}
	}
	return Link{}
}
