package tracking

import (
	"fmt"
	"testing"
)

// The verdict lines of mailgate and of an ESA give a record's verdicts:
// the final one of each kind, the anti-virus engine from its interim
// line.
func TestVerdictsFromLines(t *testing.T) {
	for _, c := range []struct {
		name  string
		lines []string
		want  string
	}{
		{"mailgate", []string{
			"MID 5 interim verdict using engine: RSPAMD spam positive",
			"MID 5 using engine: RSPAMD spam positive",
			"MID 5 interim AV verdict using ClamAV VIRAL",
			"MID 5 antivirus positive 'Eicar-Test-Signature.UNOFFICIAL'",
			"Message aborted MID 5 Dropped by antivirus",
		}, "[{antispam RSPAMD positive } {antivirus ClamAV positive Eicar-Test-Signature.UNOFFICIAL}]"},
		{"ESA", []string{
			"MID 68119155 interim verdict using engine: CASE bulk",
			"MID 68119155 using engine: CASE spam negative",
			"MID 68119155 interim AV verdict using Sophos CLEAN",
			"MID 68119155 antivirus negative",
			"MID 68119155 AMP file reputation verdict : SKIPPED (no attachment in message)",
			"MID 68119155 using engine: GRAYMAIL positive",
			"MID 68119155 Outbreak Filters: verdict negative",
		}, "[{antispam CASE negative } {antivirus Sophos negative } {amp AMP skipped no attachment in message} {graymail GRAYMAIL positive } {outbreak Outbreak Filters negative }]"},
		{"too big", []string{"MID 824 was too big (455698/120000) for scanning by BRIGHTMAIL"},
			"[{antispam BRIGHTMAIL too big 455698/120000}]"},
		{"final without interim", []string{"MID 256 antivirus positive 'EICAR-AV-Test'"}, "[{antivirus  positive EICAR-AV-Test}]"},
		{"none", []string{"MID 1 queued for delivery"}, "[]"},
		// An interim verdict is one engine's, not the one acted on.
		{"interim only", []string{"MID 7 interim verdict using engine: CASE spam positive"}, "[]"},
	} {
		t.Run(c.name, func(t *testing.T) {
			m := &Message{}
			for _, l := range c.lines {
				m.Lines = append(m.Lines, Line{Text: l})
			}
			m.VerdictsFromLines()
			if got := fmt.Sprint(m.Verdicts); got != c.want {
				t.Errorf("verdicts\n%s\nwant\n%s", got, c.want)
			}
		})
	}
}
