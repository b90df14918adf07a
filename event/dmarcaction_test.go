package event

import "testing"

// The DMARC action line reads back as written, and is told apart from
// the DMARC verdict lines (whose reading it must not change).
func TestDMARCAction(t *testing.T) {
	for _, tt := range []struct {
		a    DMARCAction
		text string
	}{
		{DMARCAction{Domain: "example.org", Policy: "quarantine", Applied: "quarantine", Action: DMARCActionQuarantine},
			"Message from domain example.org, policy quarantine, action quarantine"},
		{DMARCAction{Domain: "shop.example", Policy: "reject", Applied: "quarantine", Action: DMARCActionTag},
			"Message from domain shop.example, policy reject, applied quarantine, action tag X-Mailgate-DMARC"},
	} {
		v := DMARCActionVerdict(7, tt.a)
		if v.Text != tt.text || v.MID != 7 {
			t.Errorf("%+v: %q, want %q", tt.a, v.Text, tt.text)
		}
		if got, ok := v.Action(); !ok || got != tt.a {
			t.Errorf("%q reads %+v %v, want %+v", v.Text, got, ok, tt.a)
		}
		if r := v.Verdict(); r != (DMARCResult{}) {
			t.Errorf("%q reads as the verdict %+v", v.Text, r)
		}
	}
	for _, s := range []string{
		"Message from domain example.org, DMARC fail (SPF aligned False, DKIM aligned False)",
		"Message from domain a, DMARC fail, policy quarantine, action quarantine",
		"Verification passed",
		"Message from domain example.org, policy , action quarantine",
		"Message from domain example.org, policy quarantine, action ",
	} {
		if a, ok := (DMARCVerdict{Text: s}).Action(); ok {
			t.Errorf("%q reads as the action %+v", s, a)
		}
	}
}

func FuzzDMARCAction(f *testing.F) {
	f.Add("Message from domain example.org, policy reject, applied quarantine, action tag X-Mailgate-DMARC")
	f.Add("Message from domain example.org, DMARC pass (SPF aligned True, DKIM aligned True)")
	f.Fuzz(func(t *testing.T, s string) {
		v := DMARCVerdict{MID: 1, Text: s}
		a, ok := v.Action()
		if !ok {
			return
		}
		// What reads as an action line is written back the same way.
		back, ok := DMARCActionVerdict(1, a).Action()
		if !ok || back != a {
			t.Errorf("%q reads %+v, written and read again %+v %v", s, a, back, ok)
		}
	})
}
