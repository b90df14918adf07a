package outbound_test

import (
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/mailgate/mailgate/internal/smtptest"
	"github.com/mailgate/mailgate/internal/wait"
	"github.com/mailgate/mailgate/outbound"
	"github.com/mailgate/mailgate/smtp"
)

// Options.Attempted hears of every attempt with its destination and what
// it did to the recipients: a transaction with one recipient delivered and
// one refused, a route's host that refuses connections (deferred, no
// transaction), and a domain without MX or address (bounced).
func TestAttempted(t *testing.T) {
	port, lns := smtptest.ListenSamePort(t, "127.0.0.2", "127.0.0.7")
	lns[1].Close() // 127.0.0.7 refuses connections
	h := newHop(t).serve(lns[0])
	h.rcpt = func(to string) smtp.Reply {
		if to == "nobody@d.test" {
			return smtp.Reply{Code: 550, Enhanced: "5.1.1", Text: "unknown user"}
		}
		return smtp.Reply{}
	}
	var mu sync.Mutex
	var got []outbound.Attempt
	g := newGateway(t, setup{zone: mxZone("d.test", "127.0.0.2"),
		yaml: deliveryYAML(port, "  bounce: {initial_retry: 1h}\n") + fmt.Sprintf("routes: [{domain: down.test, hosts: [\"127.0.0.7:%d\"]}]\n", port),
		attempted: func(a outbound.Attempt) {
			mu.Lock()
			defer mu.Unlock()
			got = append(got, a)
		}})
	g.finished(g.message("", "bob@d.test", "nobody@d.test")) // null senders: no DSN attempts
	g.message("", "carol@down.test")
	g.lines.WaitFor(t, `^MID \d+ to RID \[0\] pending till`)
	mid := g.message("", "dave@nxdomain.test")
	g.finished(mid)
	// The hook runs after the attempt's lines are logged.
	wait.Until(t, "three attempts", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(got) >= 3
	})

	mu.Lock()
	defer mu.Unlock()
	slices.SortFunc(got, func(a, b outbound.Attempt) int { return cmpString(a.Destination, b.Destination) })
	if len(got) != 3 {
		t.Fatalf("attempts %+v, want 3", got)
	}
	if a := got[0]; a.Destination != "d.test" || a.Route || a.Delivered != 1 || a.Bounced != 1 || a.Deferred != 0 || a.Transaction <= 0 {
		t.Errorf("d.test attempt %+v", a)
	}
	if a := got[1]; a.Destination != "down.test" || !a.Route || a.Deferred != 1 || a.Delivered+a.Bounced != 0 || a.Transaction != 0 {
		t.Errorf("down.test attempt %+v", a)
	}
	if a := got[2]; a.Destination != "nxdomain.test" || a.Route || a.Bounced != 1 || a.Transaction != 0 {
		t.Errorf("nxdomain.test attempt %+v", a)
	}
}

func cmpString(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
