package explain

import (
	"fmt"
	"strings"

	"github.com/mailgate/mailgate/event"
	"github.com/mailgate/mailgate/maillog"
	"github.com/mailgate/mailgate/tracking"
)

// splitWhy says where the recipients of a split message went: for the
// parent, which recipients went on as each child and by which line; for a
// child, which message it was split off and with whom.
func (e *ex) splitWhy() []string {
	m := e.m
	var out []string
	for _, l := range Links(m) {
		switch l.Relation {
		case RelSplitInto:
			var went []string
			for _, r := range m.Recipients {
				if tracking.SplitTo(r) == l.MID {
					went = append(went, "<"+r.Address+">")
				}
			}
			if len(went) == 0 {
				out = append(out, fmt.Sprintf("Some recipients went on as MID %d: the log says %s, but not (yet) which.", l.MID, q(l.Line)))
				continue
			}
			out = append(out, fmt.Sprintf("%s went on as MID %d, split off %s: the log says %s; follow MID %d for %s.",
				and(went), l.MID, splitCause(l.Line), q(l.Line), l.MID, pronoun(len(went))))
		case RelGeneratedFrom:
			by := byWhom(l.Line)
			if by == "" {
				by = " (a bcc or a notification)"
			}
			out = append(out, fmt.Sprintf("It is a copy the gateway made from MID %d%s: the log says %s; MID %d went on as well.",
				l.MID, by, q(l.Line), l.MID))
		case RelRewrittenFrom:
			out = append(out, fmt.Sprintf("It is MID %d rewritten%s: the log says %s; MID %d's recipients went on as this message.",
				l.MID, byWhom(l.Line), q(l.Line), l.MID))
		case RelSplitFrom:
			var held []string
			for _, r := range m.Recipients {
				if r.RID >= 0 {
					held = append(held, "<"+r.Address+">")
				}
			}
			with := ""
			if len(held) > 0 {
				with = " with " + and(held)
			}
			out = append(out, fmt.Sprintf("It was split off MID %d%s, %s: the log says %s. It is a copy of MID %d as received (its sender, subject and client are that message's); its own lines say what became of it.",
				l.MID, with, splitCause(l.Line), q(l.Line), l.MID))
		}
	}
	return out
}

// split explains a message every recipient of which went on as another.
func (e *ex) split() Explanation {
	var x Explanation
	var parts []string
	var mids []string
	for _, l := range Links(e.m) {
		if l.Relation != RelSplitInto {
			continue
		}
		var went []string
		for _, r := range e.m.Recipients {
			if tracking.SplitTo(r) == l.MID {
				went = append(went, "<"+r.Address+">")
			}
		}
		parts = append(parts, fmt.Sprintf("MID %d (%s)", l.MID, strings.Join(went, ", ")))
		mids = append(mids, itoa(l.MID))
	}
	x.Summary = "Split: the gateway accepted the message and every recipient went on as another message: " + and(parts) + "; this message itself was not delivered."
	x.Next = append(x.Next, "Follow each of them: "+and(quoteAll("mailgate explain ", mids))+".")
	return x
}

// splitCause is the reason of a split line, as words: "by the
// per-recipient policy tcamp", "by the safelist/blocklist".
func splitCause(line string) string {
	_, reason, ok := strings.Cut(line, " due to ")
	if !ok {
		return "by the gateway"
	}
	reason = strings.TrimPrefix(reason, "a ")
	if strings.HasPrefix(reason, "SL/BL configuration") {
		return "by the end-user safelist/blocklist"
	}
	return "by the " + reason
}

func pronoun(n int) string {
	if n == 1 {
		return "it"
	}
	return "them"
}

// and joins words as a sentence does: "a", "a and b", "a, b and c".
func and(words []string) string {
	switch len(words) {
	case 0:
		return ""
	case 1:
		return words[0]
	}
	return strings.Join(words[:len(words)-1], ", ") + " and " + words[len(words)-1]
}

func quoteAll(prefix string, words []string) []string {
	out := make([]string, len(words))
	for i, w := range words {
		out[i] = "'" + prefix + w + "'"
	}
	return out
}

// wentOnText says how a message went on, whole, as another: MID %d, and
// the agent (" by ...").
var wentOnText = map[string]string{
	RelRewrittenAs:  "it was rewritten as MID %d%s, which holds its recipients",
	RelReinjectedAs: "it was released from the spam quarantine as MID %d%s",
}

// byWhom is " by <agent>" of a rewrite or generated line, or "".
func byWhom(line string) string {
	switch ev := maillog.ParseMessage(line).(type) {
	case event.Rewritten:
		if ev.By != "" {
			return " by " + ev.By
		}
	case event.Generated:
		if ev.By != "" {
			return " by " + ev.By
		}
	}
	return ""
}
