package dsn

import (
	"bytes"
	"flag"
	"net/mail"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

var (
	cet     = time.FixedZone("CET", 3600)
	arrived = time.Date(2026, 3, 5, 14, 21, 4, 0, cet)
	bounced = arrived.Add(90 * time.Second)
)

const original = "Received: from client.example.org (client.example.org [192.0.2.7])\r\n" +
	"\tby mx.example.com with ESMTP id 64855; Thu, 05 Mar 2026 14:21:04 +0100\r\n" +
	"Message-ID: <op.zfdwolzf0ubsb2@client.example.org>\r\n" +
	"From: Alice <alice@example.org>\r\n" +
	"To: Joe <joe@example.net>\r\n" +
	"Subject: Quarterly figures\r\n" +
	"Date: Thu, 05 Mar 2026 14:20:58 +0100\r\n" +
	"\r\n" +
	"The figures are attached.\r\n"

// failure is the common case: one recipient refused with 5.1.1.
func failure() Report {
	return Report{
		ReportingMTA: "mx.example.com",
		To:           "alice@example.org",
		MID:          64855,
		ArrivalDate:  arrived,
		Date:         bounced,
		Original:     []byte(original),
		Recipients: []Recipient{{
			Original:    "joe@example.net",
			Action:      Failed,
			Status:      "5.1.1",
			RemoteMTA:   "mx1.example.net",
			Diagnostic:  "550 5.1.1 <joe@example.net>: Recipient address rejected: User unknown in virtual mailbox table",
			LastAttempt: bounced,
		}},
	}
}

// hostileReply is a remote reply made to break a report: line breaks that
// would start fields and parts, a fake boundary, a lone dot, NUL, 8-bit
// bytes, and a token longer than a line may be.
var hostileReply = "550-5.1.1 first line\r\n550 second\r\n\r\n--=_mailgate_\r\nContent-Type: text/html\r\n\r\n.\r\n" +
	"Final-Recipient: rfc822; victim@example.com\nAction: delivered\rStatus: 2.0.0\x00\x1b[31m \xff\xfe caf\xc3\xa9 " +
	strings.Repeat("A", 3000) + " end"

var cases = []struct {
	name string
	r    func() Report
}{
	{"failure", failure},
	{"delay", func() Report {
		r := failure()
		r.Recipients = []Recipient{{
			Original: "joe@example.net", Action: Delayed, Status: "4.3.2", RemoteMTA: "192.0.2.25",
			Diagnostic: "421 4.3.2 Service shutting down, try again later", LastAttempt: bounced,
			WillRetryUntil: arrived.Add(72 * time.Hour),
		}}
		return r
	}},
	{"mixed", func() Report {
		r := failure()
		r.From = "Postmaster <postmaster@example.com>"
		r.Recipients = append(r.Recipients,
			Recipient{Original: "ann@nowhere.example", Action: Failed, Status: "5.1.2",
				Diagnostic: "DNS Hard Error looking up nowhere.example (MX): NXDomain"},
			Recipient{Original: "bob@slow.example", Action: Failed, Status: "5.4.7", LastAttempt: bounced},
			Recipient{Original: "carol@busy.example", Action: Delayed, Status: "4.4.0", RemoteMTA: "2001:db8::25",
				Diagnostic: "Connection reset by peer", WillRetryUntil: arrived.Add(72 * time.Hour)},
		)
		return r
	}},
	{"smtputf8", func() Report {
		r := failure()
		r.SMTPUTF8 = true
		r.To = "ålice@exämple.org"
		r.Original = []byte("Message-ID: <x1@exämple.org>\r\nFrom: Ålice <ålice@exämple.org>\r\nTo: <jöe+tag@example.net>\r\nSubject: Grüße aus Köln\r\n\r\nHallo\r\n")
		r.Recipients[0].Original = "jöe+tag@example.net"
		r.Recipients[0].Diagnostic = "550 5.1.1 <jöe+tag@example.net>: Benutzer unbekannt"
		return r
	}},
	{"utf8-recipient", func() Report {
		// The sender is ASCII and the report plain: the UTF-8 recipient is
		// written in RFC 6533's escaped form, the text part in UTF-8.
		r := failure()
		r.Recipients[0].Original = "jöe=x@example.net"
		r.Recipients[0].Diagnostic = "553 5.6.7 <jöe=x@example.net>: SMTPUTF8 required"
		r.Recipients[0].Status = "5.6.7"
		return r
	}},
	{"hostile", func() Report {
		r := failure()
		r.Recipients[0].Diagnostic = hostileReply
		r.Recipients[0].RemoteMTA = "mx1.example.net\r\nX-Injected: yes"
		r.To = "alice@example.org>\r\nBcc: <everyone@example.com"
		// A header with no body, LF line endings, a bare CR and Latin-1.
		r.Original = []byte("Subject: Gr\xfc\xdfe\nFrom: alice@example.org\rX-Evil: 1\nX-Long: " + strings.Repeat("b", 1200) + "\n")
		return r
	}},
}

// TestGolden compares each report with its golden file (go test -update
// rewrites them) and checks that a reader gets it back whole.
func TestGolden(t *testing.T) {
	for _, tt := range cases {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Build(tt.r())
			if err != nil {
				t.Fatal(err)
			}
			golden := filepath.Join("testdata", tt.name+".golden")
			if *update {
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("report differs from %s (go test -update rewrites it):\n%s", golden, got)
			}
			if _, err := readReport(got); err != nil {
				t.Errorf("report does not read back: %v", err)
			}
			again, _ := Build(tt.r())
			if !bytes.Equal(got, again) {
				t.Error("building the same report twice gives two messages")
			}
		})
	}
}

// TestReadBack checks, field by field, what a sender's mail program and a
// bounce processor read from a report.
func TestReadBack(t *testing.T) {
	r := failure()
	msg, err := Build(r)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := readReport(msg)
	if err != nil {
		t.Fatal(err)
	}
	h := rep.header
	from, err := h.AddressList("From")
	if err != nil || len(from) != 1 || from[0].Address != "MAILER-DAEMON@mx.example.com" || from[0].Name != "Mail Delivery System" {
		t.Errorf("From = %v (%v)", from, err)
	}
	to, err := h.AddressList("To")
	if err != nil || len(to) != 1 || to[0].Address != "alice@example.org" {
		t.Errorf("To = %v (%v)", to, err)
	}
	if d, err := h.Date(); err != nil || !d.Equal(bounced) {
		t.Errorf("Date = %v (%v), want %v", d, err, bounced)
	}
	for k, want := range map[string]string{
		"Subject":                 "Delivery Status Notification (Failure)",
		"Auto-Submitted":          "auto-replied",
		"MIME-Version":            "1.0",
		"X-Mailgate-Original-MID": "64855",
		"In-Reply-To":             "<op.zfdwolzf0ubsb2@client.example.org>",
		"References":              "<op.zfdwolzf0ubsb2@client.example.org>",
	} {
		if got := h.Get(k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	id := h.Get("Message-ID")
	if !strings.HasPrefix(id, "<") || !strings.HasSuffix(id, ".64855@mx.example.com>") || strings.ContainsAny(id[1:len(id)-1], "<> ") {
		t.Errorf("Message-ID = %q", id)
	}

	text := rep.parts[0]
	if text.params["charset"] != "us-ascii" || text.cte != "7bit" {
		t.Errorf("text part: charset %q, encoding %q", text.params["charset"], text.cte)
	}
	body := string(text.body)
	for _, want := range []string{
		"mx.example.com", `"Quarterly figures"`, "could not be delivered", "<joe@example.net>",
		"Bad destination email address (5.1.1)", "does not exist", "mx1.example.net answered:",
		"550 5.1.1 <joe@example.net>: Recipient address rejected: User unknown", "MID 64855",
		"Thu, 05 Mar 2026 14:21:04 +0100",
	} {
		if !strings.Contains(unwrapText(body), want) {
			t.Errorf("text part lacks %q:\n%s", want, body)
		}
	}

	pm := rep.perMessage
	if pm.Get("Reporting-MTA") != "dns; mx.example.com" || pm.Get("Arrival-Date") != "Thu, 05 Mar 2026 14:21:04 +0100" ||
		pm.Get("X-Mailgate-MID") != "64855" {
		t.Errorf("per-message fields = %v", pm)
	}
	if _, err := mail.ParseDate(pm.Get("Arrival-Date")); err != nil {
		t.Errorf("Arrival-Date: %v", err)
	}
	if len(rep.perRecipient) != 1 {
		t.Fatalf("%d recipient blocks", len(rep.perRecipient))
	}
	pr := rep.perRecipient[0]
	for k, want := range map[string]string{
		"Original-Recipient": "rfc822; joe@example.net",
		"Final-Recipient":    "rfc822; joe@example.net",
		"Action":             "failed",
		"Status":             "5.1.1",
		"Remote-MTA":         "dns; mx1.example.net",
		"Diagnostic-Code":    "smtp; 550 5.1.1 <joe@example.net>: Recipient address rejected: User unknown in virtual mailbox table",
		"Last-Attempt-Date":  "Thu, 05 Mar 2026 14:22:34 +0100",
		"Will-Retry-Until":   "",
	} {
		if got := unfold(pr.Get(k)); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}

	hdr := rep.parts[2]
	wantHeader := original[:strings.Index(original, "\r\n\r\n")+2]
	if string(hdr.body) != wantHeader || hdr.cte != "7bit" {
		t.Errorf("attached header (%s) =\n%q\nwant\n%q", hdr.cte, hdr.body, wantHeader)
	}
	if bytes.Contains(msg, []byte("The figures are attached.")) {
		t.Error("the original's body is in the report")
	}
}

// TestSeveralRecipients checks the blocks of a report on several
// recipients and what its text and fields say of each.
func TestSeveralRecipients(t *testing.T) {
	r := cases[2].r() // mixed
	msg, err := Build(r)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := readReport(msg)
	if err != nil {
		t.Fatal(err)
	}
	if got := rep.header.Get("Subject"); got != "Delivery Status Notification (Failure)" {
		t.Errorf("Subject = %q", got)
	}
	if from, err := rep.header.AddressList("From"); err != nil || from[0].String() != `"Postmaster" <postmaster@example.com>` {
		t.Errorf("From = %v (%v)", from, err)
	}
	want := []map[string]string{
		{"Final-Recipient": "rfc822; joe@example.net", "Action": "failed", "Status": "5.1.1", "Remote-MTA": "dns; mx1.example.net"},
		{"Final-Recipient": "rfc822; ann@nowhere.example", "Action": "failed", "Status": "5.1.2", "Remote-MTA": "",
			"Diagnostic-Code": "X-Mailgate; DNS Hard Error looking up nowhere.example (MX): NXDomain"},
		{"Final-Recipient": "rfc822; bob@slow.example", "Action": "failed", "Status": "5.4.7", "Diagnostic-Code": "",
			"Last-Attempt-Date": "Thu, 05 Mar 2026 14:22:34 +0100"},
		{"Final-Recipient": "rfc822; carol@busy.example", "Action": "delayed", "Status": "4.4.0",
			"Remote-MTA": "dns; [IPv6:2001:db8::25]", "Diagnostic-Code": "X-Mailgate; Connection reset by peer",
			"Will-Retry-Until": "Sun, 08 Mar 2026 14:21:04 +0100"},
	}
	if len(rep.perRecipient) != len(want) {
		t.Fatalf("%d recipient blocks, want %d", len(rep.perRecipient), len(want))
	}
	for i, w := range want {
		for k, v := range w {
			if got := unfold(rep.perRecipient[i].Get(k)); got != v {
				t.Errorf("recipient %d %s = %q, want %q", i, k, got, v)
			}
		}
	}
	text := unwrapText(string(rep.parts[0].body))
	for _, s := range []string{
		"could not be delivered to the 3 recipients below", "has not yet been delivered to the recipient below",
		"Bad destination host (5.1.2)", "Details: DNS Hard Error looking up nowhere.example (MX): NXDomain",
		"Delivery expired (message too old) (5.4.7)", "Other network problem (4.4.0)",
		"will keep trying until Sun, 08 Mar 2026 14:21:04 +0100",
	} {
		if !strings.Contains(text, s) {
			t.Errorf("text lacks %q:\n%s", s, rep.parts[0].body)
		}
	}
	// The failures come before the delay in the text, in the order given.
	if i, j := strings.Index(text, "joe@example.net"), strings.Index(text, "carol@busy.example"); i < 0 || j < i {
		t.Errorf("text order: failures at %d, delay at %d", i, j)
	}

	r.Recipients = r.Recipients[3:]
	msg, _ = Build(r)
	if rep, err := readReport(msg); err != nil || rep.header.Get("Subject") != "Delivery Status Notification (Delay)" {
		t.Errorf("a delay-only report: Subject %q (%v)", rep.header.Get("Subject"), err)
	}
}

// TestHostileInput checks that a remote reply, a remote host name, an
// address and an original header made to break the report leave it whole:
// three parts, no injected field or part, nothing beyond ASCII.
func TestHostileInput(t *testing.T) {
	msg, err := Build(cases[5].r())
	if err != nil {
		t.Fatal(err)
	}
	rep, err := readReport(msg)
	if err != nil {
		t.Fatal(err)
	}
	if !isASCII(string(msg)) {
		t.Error("a plain report holds 8-bit bytes")
	}
	if rep.header.Get("Bcc") != "" || rep.header.Get("X-Injected") != "" {
		t.Errorf("injected fields in the report's header: %v", rep.header)
	}
	if len(rep.perRecipient) != 1 {
		t.Fatalf("%d recipient blocks, want 1 (fields injected?)", len(rep.perRecipient))
	}
	pr := rep.perRecipient[0]
	if pr.Get("Action") != "failed" || pr.Get("Status") != "5.1.1" || len(pr["Action"]) != 1 || len(pr["Final-Recipient"]) != 1 {
		t.Errorf("recipient block = %v", pr)
	}
	diag := unfold(pr.Get("Diagnostic-Code"))
	if !strings.HasPrefix(diag, "smtp; 550-5.1.1 first line 550 second --=_mailgate_ Content-Type: text/html . Final-Recipient: rfc822; victim@example.com Action: delivered Status: 2.0.0 [31m ?? caf?? AAAA") ||
		!strings.HasSuffix(diag, "A end") {
		t.Errorf("Diagnostic-Code = %.300q", diag)
	}
	if got := strings.Count(diag, "A"); got < 3000 {
		t.Errorf("the long token lost letters: %d of 3000", got)
	}
	if got := pr.Get("Remote-MTA"); got != "dns; mx1.example.net X-Injected: yes" {
		t.Errorf("Remote-MTA = %q", got)
	}
	// The header part is quoted-printable (8-bit, a 1200-octet line) and
	// decodes to the original header, lines ending in CRLF, the bare CR
	// dropped.
	hdr := rep.parts[2]
	want := "Subject: Gr\xfc\xdfe\r\nFrom: alice@example.orgX-Evil: 1\r\nX-Long: " + strings.Repeat("b", 1200) + "\r\n"
	if hdr.cte != "quoted-printable" || string(hdr.body) != want {
		t.Errorf("header part (%s) = %q", hdr.cte, hdr.body)
	}
}

// TestUTF8 checks the RFC 6533 forms: a global report for an SMTPUTF8
// message, and a plain report with an escaped UTF-8 recipient.
func TestUTF8(t *testing.T) {
	msg, err := Build(cases[3].r())
	if err != nil {
		t.Fatal(err)
	}
	rep, err := readReport(msg)
	if err != nil {
		t.Fatal(err)
	}
	if rep.reportType != "global-delivery-status" {
		t.Errorf("report-type %q", rep.reportType)
	}
	if to, err := rep.header.AddressList("To"); err != nil || to[0].Address != "ålice@exämple.org" {
		t.Errorf("To = %v (%v)", to, err)
	}
	pr := rep.perRecipient[0]
	if got := pr.Get("Final-Recipient"); got != `utf-8; jöe\x{2B}tag@example.net` {
		t.Errorf("Final-Recipient = %q", got)
	}
	if got := pr.Get("Diagnostic-Code"); got != "smtp; 550 5.1.1 <jöe+tag@example.net>: Benutzer unbekannt" {
		t.Errorf("Diagnostic-Code = %q", got)
	}
	if p := rep.parts[0]; p.params["charset"] != "utf-8" || p.cte != "8bit" || !strings.Contains(string(p.body), `"Grüße aus Köln"`) {
		t.Errorf("text part (%s, %s):\n%s", p.params["charset"], p.cte, p.body)
	}
	if p := rep.parts[2]; p.cte != "8bit" || !strings.Contains(string(p.body), "Subject: Grüße aus Köln\r\n") {
		t.Errorf("header part (%s): %q", p.cte, p.body)
	}

	msg, err = Build(cases[4].r())
	if err != nil {
		t.Fatal(err)
	}
	if !isASCII(string(msg)) {
		t.Error("a plain report holds 8-bit bytes")
	}
	rep, err = readReport(msg)
	if err != nil {
		t.Fatal(err)
	}
	pr = rep.perRecipient[0]
	if got := pr.Get("Final-Recipient"); got != `utf-8; j\x{F6}e\x{3D}x@example.net` {
		t.Errorf("Final-Recipient = %q", got)
	}
	if got := pr.Get("Diagnostic-Code"); got != "smtp; 553 5.6.7 <j??e=x@example.net>: SMTPUTF8 required" {
		t.Errorf("Diagnostic-Code = %q", got)
	}
	if p := rep.parts[0]; p.params["charset"] != "utf-8" || p.cte != "quoted-printable" || !strings.Contains(string(p.body), "<jöe=x@example.net>") {
		t.Errorf("text part (%s, %s):\n%s", p.params["charset"], p.cte, p.body)
	}
}

func TestOriginalHeader(t *testing.T) {
	field := "X-Filler: " + strings.Repeat("f", 70) + "\r\n"
	var big strings.Builder
	for big.Len() < MaxOriginalHeader-len(field)-10 {
		big.WriteString(field)
	}
	fits := big.String()
	tests := []struct{ name, in, want string }{
		{"message", original, original[:strings.Index(original, "\r\n\r\n")+2]},
		{"header only, no final line break", "Subject: a\r\nFrom: b", "Subject: a\r\nFrom: b\r\n"},
		{"LF endings", "Subject: a\n folded\nFrom: b\n\nbody\n", "Subject: a\r\n folded\r\nFrom: b\r\n"},
		{"blank line with CR", "Subject: a\r\n\r\n", "Subject: a\r\n"},
		{"blank line of bare CRs", "Subject: a\r\n\r\r\nX: body\r\n", "Subject: a\r\n"},
		{"bare CRs only", "\r\r", ""},
		{"no header", "\r\nbody\r\n", ""},
		{"empty", "", ""},
		{"cut before a field", fits + "Subject: " + strings.Repeat("s", 100) + "\r\nX: y\r\n", fits},
		{"cut before a folded field", fits + "Subject: s\r\n" + strings.Repeat(" more words\r\n", 20), fits},
		{"one field too big", "X-Huge: " + strings.Repeat("h", MaxOriginalHeader) + "\r\nSubject: a\r\n", ""},
		// 800 LF lines fit the cap, and do not once made CRLF.
		{"cut after LF endings are made CRLF", strings.Repeat(strings.TrimSuffix(field, "\r\n")+"\n", 800), strings.Repeat(field, 799)},
		// The header ends at a line that is not a field: the body a
		// broken mailer wrote without the blank line is not attached.
		{"no blank line before the body", "Subject: a\r\nDear Bob,\r\nX: y\r\n", "Subject: a\r\n"},
	}
	for _, tt := range tests {
		if got := string(originalHeader([]byte(tt.in))); got != tt.want || len(got) > MaxOriginalHeader {
			t.Errorf("%s: got %d octets %.80q..., want %d octets %.80q...", tt.name, len(got), got, len(tt.want), tt.want)
		}
	}
}

func TestErrors(t *testing.T) {
	tests := []struct {
		name string
		edit func(*Report)
		want string
	}{
		{"null sender", func(r *Report) { r.To = "" }, "null sender"},
		{"UTF-8 sender, plain report", func(r *Report) { r.To = "ålice@example.org" }, "not ASCII"},
		{"UTF-8 From, plain report", func(r *Report) { r.From = "bö@example.com" }, "not ASCII"},
		{"bad From", func(r *Report) { r.From = "not an address" }, "From"},
		{"no reporting MTA", func(r *Report) { r.ReportingMTA = " ; " }, "reporting MTA"},
		{"no recipients", func(r *Report) { r.Recipients = nil }, "at least one recipient"},
		{"recipient without address", func(r *Report) { r.Recipients[0].Original = " " }, "no address"},
		{"unknown action", func(r *Report) { r.Recipients[0].Action = "delivered" }, `action "delivered"`},
		{"bad status", func(r *Report) { r.Recipients[0].Status = "550" }, `status "550"`},
		{"leading zero", func(r *Report) { r.Recipients[0].Status = "5.01.1" }, `status "5.01.1"`},
		{"status of another class", func(r *Report) { r.Recipients[0].Status = "4.1.1" }, "does not fit action failed"},
		{"delay with 5xx", func(r *Report) { r.Recipients[0].Action = Delayed }, "does not fit action delayed"},
	}
	for _, tt := range tests {
		r := failure()
		tt.edit(&r)
		if _, err := Build(r); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: error %v, want one with %q", tt.name, err, tt.want)
		}
	}
}

func TestDefaults(t *testing.T) {
	r := failure()
	r.Date = time.Time{}
	r.ReportingMTA = "dns; mx.example.com"
	before := time.Now().Add(-time.Second)
	msg, err := Build(r)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := readReport(msg)
	if err != nil {
		t.Fatal(err)
	}
	if d, err := rep.header.Date(); err != nil || d.Before(before) || d.After(time.Now().Add(time.Second)) {
		t.Errorf("Date = %v (%v), want now", d, err)
	}
	if got := rep.perMessage.Get("Reporting-MTA"); got != "dns; mx.example.com" {
		t.Errorf("Reporting-MTA given with its type = %q", got)
	}
	if from, _ := rep.header.AddressList("From"); len(from) != 1 || from[0].Address != "MAILER-DAEMON@mx.example.com" {
		t.Errorf("From = %v", from)
	}

	// Another MID, another Message-ID; another moment, another too.
	id := func(r Report) string {
		msg, err := Build(r)
		if err != nil {
			t.Fatal(err)
		}
		m, _ := mail.ReadMessage(bytes.NewReader(msg))
		return m.Header.Get("Message-ID")
	}
	a := failure()
	b := failure()
	b.MID++
	c := failure()
	c.Date = c.Date.Add(time.Nanosecond)
	if id(a) == id(b) || id(a) == id(c) || id(a) != id(failure()) {
		t.Errorf("Message-IDs %s %s %s", id(a), id(b), id(c))
	}
}

// TestReasonText: the bounce words each recipient's status as the mail
// log's Bounced and Delayed lines do, on the codes where the two once
// differed too.
func TestReasonText(t *testing.T) {
	for _, tt := range []struct{ status, want string }{
		{"5.0.0", "Other undefined Status"},
		{"5.1.6", "Destination mailbox has moved, No forwarding address"},
		{"5.1.10", "Recipient address has null MX"},
		{"5.1.99", "Unknown address error"},
		{"5.3.2", "Not accepting messages at this time"},
		{"5.4.9", "Other network problem"},
		{"5.6.5", "Conversion Failed"},
		{"4.4.1", "No answer from host"},
	} {
		r := failure()
		r.Recipients[0].Status = tt.status
		if tt.status[0] == '4' {
			r.Recipients[0].Action = Delayed
		}
		msg, err := Build(r)
		if err != nil {
			t.Fatalf("%s: %v", tt.status, err)
		}
		rep, err := readReport(msg)
		if err != nil {
			t.Fatalf("%s: %v", tt.status, err)
		}
		if text, want := unwrapText(string(rep.parts[0].body)), tt.want+" ("+tt.status+")."; !strings.Contains(text, want) {
			t.Errorf("text lacks %q:\n%s", want, rep.parts[0].body)
		}
	}
}

func TestWriteField(t *testing.T) {
	long := strings.Repeat("x", 2500)
	for _, tt := range []struct{ value, want string }{
		{"short", "Name: short\r\n"},
		{strings.Repeat("word ", 20) + "end",
			"Name: word word word word word word word word word word word word word word\r\n word word word word word word end\r\n"},
		{"a " + long, "Name: a\r\n " + long[:997] + "\r\n " + long[997:1994] + "\r\n " + long[1994:] + "\r\n"},
		{"ééé " + strings.Repeat("é", 600), "Name: ééé\r\n " + strings.Repeat("é", 498) + "\r\n " + strings.Repeat("é", 102) + "\r\n"},
	} {
		var b bytes.Buffer
		writeField(&b, "Name", tt.value)
		if b.String() != tt.want {
			t.Errorf("writeField(%.40q...) =\n%.200q\nwant\n%.200q", tt.value, b.String(), tt.want)
		}
		if err := checkLines(b.Bytes()); err != nil {
			t.Errorf("writeField(%.40q...): %v", tt.value, err)
		}
	}
}

func TestClean(t *testing.T) {
	for _, tt := range []struct {
		in     string
		utf8ok bool
		want   string
	}{
		{"  550  user\r\n unknown\t ", false, "550 user unknown"},
		{"a\x00b\x7fc\x1bd", false, "a b c d"},
		{"café \xff", false, "caf?? ?"},
		{"café \xff", true, "café \ufffd"},
		{"a\u0085b", true, "a b"}, // NEL, a C1 control
		{"\r\n", true, ""},
	} {
		if got := clean(tt.in, tt.utf8ok); got != tt.want {
			t.Errorf("clean(%q, %v) = %q, want %q", tt.in, tt.utf8ok, got, tt.want)
		}
	}
}

// unfold undoes folding as RFC 5322 says: CRLF before white space goes.
// textproto already unfolds; this also serves the text part.
func unfold(s string) string { return strings.ReplaceAll(s, "\r\n ", " ") }

// unwrapText joins the lines of the text part with single spaces, so that
// a phrase can be found across a line break.
func unwrapText(s string) string { return strings.Join(strings.Fields(s), " ") }

func BenchmarkBuild(b *testing.B) {
	r := failure()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Build(r); err != nil {
			b.Fatal(err)
		}
	}
}
