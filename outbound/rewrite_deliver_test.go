package outbound_test

import (
	"context"
	"fmt"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mailgate/mailgate/internal/smtptest"
	"github.com/mailgate/mailgate/internal/wait"
	"github.com/mailgate/mailgate/queue"
)

// TestWorkRewritesDelivered: a message whose work outcome has an
// alternate host and recipient and header rewrites goes to that host, to
// that address, rewritten; after a restart too (the outcome is the
// spool's).
func TestWorkRewritesDelivered(t *testing.T) {
	port, lns := smtptest.ListenSamePort(t, "127.0.0.2")
	usual := newHop(t).serve(lns...)
	ln, err := net.Listen("tcp", "127.0.0.3:0")
	if err != nil {
		t.Fatal(err)
	}
	alt := newHop(t).serve(ln)
	dir := t.TempDir()
	yaml := deliveryYAML(port, "") + fmt.Sprintf("routes: [{domain: ALL, hosts: [\"127.0.0.2:%d\"]}]\n", port)
	g := newGateway(t, setup{dir: dir, yaml: yaml, defer_: true})
	w := queue.Work{Headers: "X-Added: 1\r\n", Strip: []string{"x-secret"}, TagSubject: "[EXT] ",
		Route: ln.Addr().String(), Rcpt: "review@example.org"}
	commit := func(to ...string) uint64 {
		mid, err := g.ids.Next(queue.MID)
		if err != nil {
			t.Fatal(err)
		}
		env := &queue.Envelope{MID: mid, ICID: 1, From: "alice@gw.test", Received: time.Now()}
		for i, a := range to {
			env.Rcpts = append(env.Rcpts, queue.Recipient{RID: i, Addr: a})
		}
		body := fmt.Sprintf("From: <alice@gw.test>\r\nSubject: report %d\r\nX-Secret: 42\r\n\r\nHello.\r\nX-Secret: in the body stays\r\n", mid)
		if err := g.spool.Commit(context.Background(), env, []byte(body)); err != nil {
			t.Fatal(err)
		}
		if err := g.spool.SetWork(context.Background(), mid, w); err != nil {
			t.Fatal(err)
		}
		return mid
	}
	// Committed before the start: delivery takes it from the spool, as
	// after a restart.
	first := commit("bob@d.test")
	g.start()
	second := commit("carol@d.test", "dan@d.test")
	env, _, _, err := g.spool.Head(second, 0)
	if err != nil {
		t.Fatal(err)
	}
	g.m.Enqueue(env)
	g.finished(first)
	g.finished(second)
	wait.Until(t, "both at the alternate host", func() bool { return len(alt.messages()) == 2 })
	if n := len(usual.messages()); n != 0 {
		t.Errorf("%d messages at the usual route's host", n)
	}
	for _, m := range alt.messages() {
		// One RCPT per RID: the second message had two recipients.
		want := []string{"review@example.org"}
		if strings.Contains(string(m.data), fmt.Sprintf("report %d\r\n", second)) {
			want = append(want, "review@example.org")
		}
		if !slices.Equal(m.to, want) {
			t.Errorf("delivered to %v, want %v", m.to, want)
		}
		got := string(m.data)
		if !strings.HasPrefix(got, "X-Added: 1\r\n") || !strings.Contains(got, "\r\nSubject: [EXT] report ") ||
			strings.Contains(got, "X-Secret: 42") || !strings.Contains(got, "X-Secret: in the body stays") {
			t.Errorf("delivered message:\n%s", got)
		}
	}
	// The lines name the RID as received.
	if l := g.linesOf(first); !slices.ContainsFunc(l, func(s string) bool { return strings.Contains(s, "to RID [0]") }) {
		t.Errorf("lines of MID %d:\n%s", first, strings.Join(l, "\n"))
	}
}
