package outbound_test

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/mail"
	"net/textproto"
	"strings"
	"testing"

	"github.com/mailgate/mailgate/internal/smtptest"
	"github.com/mailgate/mailgate/smtp"
)

// mxZone gives domain an MX host per address, in preference order 10, 20, ...
func mxZone(domain string, ips ...string) []string {
	var z []string
	for i, ip := range ips {
		host := fmt.Sprintf("mx%d.%s", i+1, domain)
		z = append(z, fmt.Sprintf("%s. 60 IN MX %d %s.", domain, 10*(i+1), host), fmt.Sprintf("%s. 60 IN A %s", host, ip))
	}
	return z
}

func deliveryYAML(port int, extra string) string {
	return fmt.Sprintf("delivery:\n  port: %d\n%s", port, extra)
}

// TestDeliveredLogSequence checks the whole mail log of a message delivered
// by MX to two recipients in one transaction.
func TestDeliveredLogSequence(t *testing.T) {
	port, lns := smtptest.ListenSamePort(t, "127.0.0.2")
	h := newHop(t).serve(lns...)
	g := newGateway(t, setup{zone: mxZone("d.test", "127.0.0.2"), yaml: deliveryYAML(port, "")})
	mid := g.message("alice@gw.test", "x@d.test", "y@d.test")
	g.finished(mid)
	g.lines.WaitFor(t, `^DCID \d+ close$`)
	compareGolden(t, "testdata/delivered.golden", g.linesOf(mid))
	got := h.messages()
	if len(got) != 1 || got[0].from != "alice@gw.test" || strings.Join(got[0].to, ",") != "x@d.test,y@d.test" {
		t.Fatalf("the next hop got %+v, want one message from alice@gw.test to x@d.test and y@d.test", got)
	}
	if !strings.Contains(string(got[0].data), "\r\n.A line with a leading dot.\r\n") {
		t.Errorf("message arrived as %q", got[0].data)
	}
	st := g.m.Status()
	if st.Delivered != 2 || st.Active != 0 {
		t.Errorf("Status: %+v, want 2 delivered, none active", st)
	}
}

// TestMixedRecipients gives each recipient of one transaction a different
// reply: delivered, deferred, bounced.
func TestMixedRecipients(t *testing.T) {
	port, lns := smtptest.ListenSamePort(t, "127.0.0.2", "127.0.0.3")
	h := newHop(t)
	h.rcpt = func(to string) smtp.Reply {
		switch {
		case strings.HasPrefix(to, "later@"):
			return smtp.Reply{Code: 450, Enhanced: "4.2.1", Text: "Mailbox busy, try later"}
		case strings.HasPrefix(to, "nobody@"):
			return smtp.Reply{Code: 550, Enhanced: "5.1.1", Text: "<nobody@d.test>: Recipient address rejected: User unknown"}
		}
		return smtp.Reply{}
	}
	h.serve(lns[0])
	senders := newHop(t).serve(lns[1])
	zone := append(mxZone("d.test", "127.0.0.2"), mxZone("s.test", "127.0.0.3")...)
	g := newGateway(t, setup{zone: zone, yaml: deliveryYAML(port, "  bounce: {initial_retry: 1h, max_retry: 2h}\n")})
	mid := g.message("alice@s.test", "ok@d.test", "later@d.test", "nobody@d.test")

	g.lines.WaitFor(t, fmt.Sprintf(`^MID %d to RID \[1\] pending till`, mid))
	g.lines.WaitFor(t, `^Message finished MID \d+ done$`) // the DSN
	for _, want := range []string{
		fmt.Sprintf(`^Delivery start DCID \d+ MID %d to RID \[0, 1, 2\]$`, mid),
		fmt.Sprintf(`^Message done DCID \d+ MID %d to RID \[0\]$`, mid),
		fmt.Sprintf(`^MID %d RID \[0\] Response '2.0.0 Ok: queued as 1'$`, mid),
		fmt.Sprintf(`^Delayed: DCID \d+ MID %d From: <alice@s.test> To: <later@d.test> RID 1 - 4.2.1 - Mailbox disabled, not accepting messages \('450', \['4.2.1 Mailbox busy, try later'\]\)$`, mid),
		fmt.Sprintf(`^Bounced: DCID \d+ MID %d From: <alice@s.test> To: <nobody@d.test> RID 2 - 5.1.1 - Bad destination email address \('550', \['5.1.1 <nobody@d.test>: Recipient address rejected: User unknown'\]\)$`, mid),
		fmt.Sprintf(`^MID \d+ generated for bounce of MID %d$`, mid),
	} {
		if len(g.lines.Grep(want)) != 1 {
			t.Errorf("no line matches %s", want)
		}
	}
	if n := len(g.lines.Grep(fmt.Sprintf(`^Message finished MID %d`, mid))); n != 0 {
		t.Errorf("MID %d finished with a recipient pending", mid)
	}
	dsns := senders.messages()
	if len(dsns) != 1 || dsns[0].from != "" || strings.Join(dsns[0].to, ",") != "alice@s.test" {
		t.Fatalf("the sender's host got %+v, want one DSN from <> to alice@s.test", dsns)
	}
	checkDSN(t, dsns[0].data, map[string]string{"nobody@d.test": "5.1.1"})
}

// checkDSN reads a DSN as a mail reader would: a multipart/report of three
// parts whose delivery-status gives each failed recipient its status, and
// whose last part is the original header. want maps recipients to status.
func checkDSN(t *testing.T, data []byte, want map[string]string) {
	t.Helper()
	msg, err := mail.ReadMessage(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("DSN: %v\n%s", err, data)
	}
	if msg.Header.Get("Auto-Submitted") == "" || !strings.HasPrefix(msg.Header.Get("Subject"), "Delivery Status Notification") {
		t.Errorf("DSN header: %v", msg.Header)
	}
	mt, params, err := mime.ParseMediaType(msg.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/report" || params["report-type"] != "delivery-status" {
		t.Fatalf("DSN Content-Type %q (%v)", msg.Header.Get("Content-Type"), err)
	}
	mr := multipart.NewReader(msg.Body, params["boundary"])
	var types []string
	got := map[string]string{}
	var original string
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("DSN part: %v", err)
		}
		ct, _, _ := mime.ParseMediaType(p.Header.Get("Content-Type"))
		types = append(types, ct)
		body, _ := io.ReadAll(p)
		switch ct {
		case "message/delivery-status":
			r := textproto.NewReader(bufio.NewReader(bytes.NewReader(body)))
			if _, err := r.ReadMIMEHeader(); err != nil { // per-message fields
				t.Fatalf("delivery-status: %v", err)
			}
			for {
				h, err := r.ReadMIMEHeader()
				if len(h) > 0 {
					_, addr, _ := strings.Cut(h.Get("Final-Recipient"), ";")
					got[strings.TrimSpace(addr)] = h.Get("Status")
					if h.Get("Action") != "failed" {
						t.Errorf("Action %q for %s", h.Get("Action"), addr)
					}
				}
				if err != nil {
					break
				}
			}
		case "text/rfc822-headers":
			original = string(body)
		}
	}
	if strings.Join(types, " ") != "text/plain message/delivery-status text/rfc822-headers" {
		t.Errorf("DSN parts %v", types)
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("DSN recipients and statuses %v, want %v", got, want)
	}
	if !strings.Contains(original, "Subject: test ") {
		t.Errorf("DSN does not carry the original header: %q", original)
	}
}
