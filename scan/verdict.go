package scan

import (
	"strings"
)

// SpamClass is the ESA's anti-spam verdict: what a mail policy acts on.
type SpamClass int

// The classes, from least to most spammy. The zero SpamClass is none of
// them: a verdict returned with an error is not "negative" by mistake.
const (
	Negative SpamClass = iota + 1 // not spam
	Suspect                       // maybe spam: the policy's "suspected spam" actions
	Positive                      // spam
)

// String returns the ESA's word: "negative", "suspect", "positive".
func (c SpamClass) String() string {
	switch c {
	case Negative:
		return "negative"
	case Suspect:
		return "suspect"
	case Positive:
		return "positive"
	}
	return "unknown"
}

// SpamVerdict is an anti-spam engine's answer.
type SpamVerdict struct {
	Class    SpamClass
	Score    float64 // the engine's score
	Required float64 // the engine's own spam threshold (rspamd's required_score, spamd's "/ 5.0")
	// Action is the engine's own decision, verbatim: rspamd's action
	// ("reject", "add header", "no action", ...); spamd's "spam" or "ham".
	Action string
	// Symbols are the rules that matched, for diagnosis, by descending
	// score (spamd gives no scores: its order).
	Symbols []Symbol
}

// Symbol is one rule an engine matched.
type Symbol struct {
	Name    string
	Score   float64
	Options []string // rspamd's details (the matched domain, the MIME type, ...)
}

// Names returns the symbols' names.
func (v SpamVerdict) Names() []string {
	out := make([]string, len(v.Symbols))
	for i, s := range v.Symbols {
		out[i] = s.Name
	}
	return out
}

// Thresholds turn an engine's score into a class where the engine's own
// decision is not wanted. A nil field keeps the engine's decision for its
// class; a set one replaces it: Positive when score >= *Positive, Suspect
// when score >= *Suspect.
type Thresholds struct {
	Suspect  *float64
	Positive *float64
}

// Classify returns the class of a score: positive and suspect are the
// engine's own decisions for those classes, each replaced by its
// threshold when that is set.
func (t Thresholds) Classify(score float64, positive, suspect bool) SpamClass {
	if t.Positive != nil {
		positive = score >= *t.Positive
	}
	if t.Suspect != nil {
		suspect = score >= *t.Suspect
	}
	switch {
	case positive:
		return Positive
	case suspect:
		return Suspect
	}
	return Negative
}

// VirusClass is an anti-virus verdict's category; each has its actions in
// a mail policy, as on the ESA.
type VirusClass int

// The classes. The zero VirusClass is none of them: a verdict returned
// with an error is not "clean" by mistake.
const (
	Clean       VirusClass = iota + 1 // nothing found
	Viral                             // a virus (or a test signature) found
	Unscannable                       // the engine could not look inside (limits exceeded, broken archive)
	Encrypted                         // an encrypted archive or document: it could not be scanned
)

// String returns the word of the ESA's interim line ("interim AV verdict
// using ClamAV VIRAL"): CLEAN, VIRAL, UNSCANNABLE, ENCRYPTED.
func (c VirusClass) String() string {
	switch c {
	case Clean:
		return "CLEAN"
	case Viral:
		return "VIRAL"
	case Unscannable:
		return "UNSCANNABLE"
	case Encrypted:
		return "ENCRYPTED"
	}
	return "UNKNOWN"
}

// VirusVerdict is an anti-virus engine's answer.
type VirusVerdict struct {
	Class VirusClass
	// Name is what the engine found ("Eicar-Test-Signature.UNOFFICIAL",
	// "Heuristics.Encrypted.Zip"); "" when Clean.
	Name string
}

// Final returns the verdict word and detail of the ESA's final line
// "antivirus <verdict>[ <detail>]": negative; positive 'name'; unscannable;
// encrypted.
func (v VirusVerdict) Final() (verdict, detail string) {
	switch v.Class {
	case Viral:
		// The name is quoted as the ESA quotes it; a quote in it would
		// end the name early for a reader of the line.
		return "positive", "'" + strings.ReplaceAll(v.Name, "'", "") + "'"
	case Unscannable:
		return "unscannable", ""
	case Encrypted:
		return "encrypted", ""
	case Clean:
		return "negative", ""
	}
	return "unknown", ""
}
