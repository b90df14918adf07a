package tracking

import (
	"fmt"
	"strings"

	"github.com/mailgate/mailgate/event"
	"github.com/mailgate/mailgate/maillog"
)

// Verdict is one scanning engine's final word on a message, as its lines
// say it: the mail policy acted on it. The same lines come from mailgate
// and from an ESA, so an imported ESA log fills them too.
type Verdict struct {
	// Kind is what scanned: antispam, antivirus, graymail, outbreak, amp.
	Kind string `json:"kind"`
	// Engine is the engine as the lines name it (RSPAMD, SPAMASSASSIN,
	// CASE, ClamAV, Sophos, GRAYMAIL); "" when they name none (an ESA's
	// "antivirus positive" without an interim line, Outbreak Filters).
	Engine string `json:"engine"`
	// Verdict is the verdict's word: positive, negative, suspect,
	// marketing, bulk (anti-spam, graymail); negative, positive,
	// unscannable, encrypted, repaired (anti-virus); the AMP verdict;
	// "too big" when the engine skipped the message for its size.
	Verdict string `json:"verdict"`
	// Detail is the rest: the virus's name ('Eicar-Test-Signature'),
	// "455698/120000" for a message too big.
	Detail string `json:"detail,omitempty"`
}

// foldVerdict takes a verdict line into m.Verdicts: a later line of the
// same kind replaces the earlier (a rescan after a quarantine's release
// is the verdict that counts).
func (m *Message) foldVerdict(ev event.Event) {
	var v Verdict
	switch e := ev.(type) {
	case event.EngineVerdict:
		if e.Interim {
			return // the final line follows: it is the one acted on
		}
		v = Verdict{Kind: "antispam", Engine: e.Engine, Verdict: strings.TrimPrefix(e.Verdict, "spam ")}
		if e.Engine == "GRAYMAIL" {
			v.Kind = "graymail"
		}
	case event.AVVerdict:
		if e.Interim {
			// The interim line names the engine; the final one that
			// follows does not.
			m.setVerdict(Verdict{Kind: "antivirus", Engine: e.Engine, Verdict: strings.ToLower(e.Verdict)})
			return
		}
		v = Verdict{Kind: "antivirus", Verdict: e.Verdict, Detail: strings.Trim(e.Detail, "'")}
		for _, old := range m.Verdicts {
			if old.Kind == "antivirus" {
				v.Engine = old.Engine
			}
		}
	case event.OutbreakVerdict:
		v = Verdict{Kind: "outbreak", Engine: "Outbreak Filters", Verdict: e.Verdict}
	case event.AMPVerdict:
		word, detail, _ := strings.Cut(e.Verdict, " ")
		v = Verdict{Kind: "amp", Engine: "AMP", Verdict: strings.ToLower(word), Detail: strings.Trim(detail, "()")}
	case event.TooBig:
		v = Verdict{Kind: tooBigKind(e.Engine), Engine: e.Engine, Verdict: "too big", Detail: fmt.Sprintf("%d/%d", e.Size, e.Limit)}
	default:
		return
	}
	m.setVerdict(v)
}

func (m *Message) setVerdict(v Verdict) {
	for i := range m.Verdicts {
		if m.Verdicts[i].Kind == v.Kind {
			m.Verdicts[i] = v
			return
		}
	}
	m.Verdicts = append(m.Verdicts, v)
}

// tooBigKind is the kind of the engine a "too big" line names.
func tooBigKind(engine string) string {
	switch strings.ToLower(engine) {
	case "clamav", "sophos", "mcafee":
		return "antivirus"
	case "outbreak filters":
		return "outbreak"
	case "graymail":
		return "graymail"
	}
	return "antispam"
}

// VerdictsFromLines fills m.Verdicts from its lines: a record read back
// from a store, whose lines are stored and the verdicts not.
func (m *Message) VerdictsFromLines() {
	m.Verdicts = nil
	for _, l := range m.Lines {
		if !maybeVerdict(l.Text) {
			continue
		}
		m.foldVerdict(maillog.ParseMessage(l.Text))
	}
}

// maybeVerdict is a cheap test before the parse.
func maybeVerdict(text string) bool {
	return strings.Contains(text, " verdict") || strings.Contains(text, " antivirus ") ||
		strings.Contains(text, " using engine: ") || strings.Contains(text, " too big ")
}
