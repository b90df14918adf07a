package explain

import (
	"strings"

	"github.com/mailgate/mailgate/tracking"
)

var kindWords = map[string]string{"antispam": "anti-spam", "antivirus": "anti-virus", "graymail": "graymail",
	"outbreak": "outbreak filters", "amp": "AMP"}

// verdictWords is one verdict in words: "anti-virus: ClamAV found
// 'Eicar-Test-Signature'", "anti-spam: RSPAMD says spam positive".
func verdictWords(v tracking.Verdict) string {
	kind := kindWords[v.Kind]
	if kind == "" {
		kind = v.Kind
	}
	engine := v.Engine
	if engine == "" {
		engine = "the engine"
	}
	switch {
	case v.Verdict == "too big":
		return kind + ": the message was too big (" + v.Detail + " bytes) for scanning by " + engine + ", so it was not scanned"
	case v.Kind == "antivirus" && v.Verdict == "positive":
		return kind + ": " + engine + " found '" + v.Detail + "'"
	case v.Kind == "antivirus":
		return kind + ": " + engine + " says " + v.Verdict
	case v.Kind == "antispam":
		return kind + ": " + engine + " says spam " + v.Verdict
	}
	s := kind + ": " + engine + " says " + v.Verdict
	if v.Detail != "" {
		s += " (" + v.Detail + ")"
	}
	return s
}

// verdictsText is the sentence of every verdict; "" without any.
func verdictsText(m *tracking.Message) string {
	if len(m.Verdicts) == 0 {
		return ""
	}
	parts := make([]string, len(m.Verdicts))
	for i, v := range m.Verdicts {
		parts[i] = verdictWords(v)
	}
	return "Scanning verdicts: " + strings.Join(parts, "; ") + "."
}

// droppedByEngine is the summary of a message an engine's verdict dropped
// ("Dropped by antivirus", "Dropped by RSPAMD"); "" when the drop was not
// an engine's or the record has no verdict for it.
func droppedByEngine(m *tracking.Message) string {
	by, ok := strings.CutPrefix(m.AbortReason, "Dropped by ")
	if !ok {
		return ""
	}
	for _, v := range m.Verdicts {
		if (by == "antivirus" && v.Kind == "antivirus") || (by != "antivirus" && v.Engine == by) {
			return "Dropped by " + verdictWords(v) + "; the sender was not told; release is not possible because a dropped message is not kept (a quarantine action keeps it)."
		}
	}
	return ""
}
