package status

import "testing"

func TestValid(t *testing.T) {
	for _, tt := range []struct {
		s    string
		want bool
	}{
		{"5.1.1", true},
		{"4.3.2", true},
		{"2.0.0", true},
		{"5.1.10", true},
		{"5.999.999", true},
		{"3.1.1", false},    // no such class
		{"5.01.1", false},   // leading zero
		{"5.1.01", false},   // leading zero
		{"5.1.1000", false}, // four digits
		{"5.1", false},
		{"5.1.1.1", false},
		{"5..1", false},
		{"5.1.", false},
		{"5.a.1", false},
		{"55.1.1", false},
		{"550", false},
		{"", false},
	} {
		if got := Valid(tt.s); got != tt.want {
			t.Errorf("Valid(%q) = %v, want %v", tt.s, got, tt.want)
		}
	}
}

// TestReason pins the texts the mail log and the bounce share: the ESA's
// where its logs show them, RFC 3463's otherwise, and the codes on which
// the two once disagreed.
func TestReason(t *testing.T) {
	for _, tt := range []struct{ status, want string }{
		{"5.1.0", "Unknown address error"},
		{"4.1.0", "Unknown address error"},
		{"5.1.1", "Bad destination email address"},
		{"5.1.2", "Bad destination host"},
		{"5.4.7", "Delivery expired (message too old)"},
		{"4.3.2", "Not accepting messages at this time"},
		{"5.3.2", "Not accepting messages at this time"},
		{"4.4.0", "Other network problem"},
		{"4.4.1", "No answer from host"},
		{"4.3.1", "Mail system full"},
		{"5.2.2", "Mailbox full"},
		{"5.7.1", "Delivery not authorized, message refused"},
		{"5.1.6", "Destination mailbox has moved, No forwarding address"},
		{"5.1.10", "Recipient address has null MX"},
		{"5.6.5", "Conversion Failed"},
		{"5.0.0", "Other undefined Status"},
		{"5.1.99", "Unknown address error"},              // unknown detail: its subject's
		{"5.7.99", "Other or undefined security status"}, // likewise
		{"5.9.9", "Other undefined Status"},              // unknown subject
		{"2.0.0", "Other undefined Status"},
		{"550", "Other undefined Status"}, // not a code
		{"5.1", "Other undefined Status"},
		{"", "Other undefined Status"},
		{"junk", "Other undefined Status"},
	} {
		if got := Reason(tt.status); got != tt.want {
			t.Errorf("Reason(%s) = %q, want %q", tt.status, got, tt.want)
		}
	}
}
