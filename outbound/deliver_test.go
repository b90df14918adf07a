package outbound_test

import (
	"bufio"
	"fmt"
	"net"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/mailgate/mailgate/config"
	"github.com/mailgate/mailgate/internal/debuglog"
	"github.com/mailgate/mailgate/internal/smtptest"
	"github.com/mailgate/mailgate/smtp"
)

// inOrder checks that lines matching each pattern appear, in this order.
func inOrder(t *testing.T, all []string, patterns ...string) {
	t.Helper()
	i := 0
	for _, p := range patterns {
		rx := regexp.MustCompile(p)
		for i < len(all) && !rx.MatchString(all[i]) {
			i++
		}
		if i == len(all) {
			t.Fatalf("no line matching %q (in order); lines:\n%s", p, strings.Join(all, "\n"))
		}
		i++
	}
}

// TestMXFallback: the most preferred MX refuses connections, the next
// greets with 421; the third takes the message. Each failure is logged.
func TestMXFallback(t *testing.T) {
	port, lns := smtptest.ListenSamePort(t, "127.0.0.2", "127.0.0.3", "127.0.0.4")
	lns[0].Close()
	busy := newHop(t)
	busy.cfg.Greeting = smtp.Reply{Code: 421, Enhanced: "4.3.2", Text: "try again later"}
	busy.serve(lns[1])
	good := newHop(t).serve(lns[2])
	g := newGateway(t, setup{zone: mxZone("d.test", "127.0.0.2", "127.0.0.3", "127.0.0.4"), yaml: deliveryYAML(port, "")})
	mid := g.message("alice@gw.test", "bob@d.test")
	g.finished(mid)
	p := fmt.Sprint(port)
	inOrder(t, g.lines.Snapshot(),
		`^Connection Error: DCID \d+ domain: d.test IP: 127.0.0.2 port: `+p+` details: \[Errno 111\] Connection refused interface: 127.0.0.1 reason: network error$`,
		`^New SMTP DCID \d+ interface 127.0.0.1 address 127.0.0.3 port `+p+`$`,
		`^Connection Error: DCID \d+ domain: d.test IP: 127.0.0.3 port: `+p+` details: #4.3.2 try again later interface: 127.0.0.1 reason: unexpected SMTP response$`,
		`^DCID \d+ close$`,
		`^New SMTP DCID \d+ interface 127.0.0.1 address 127.0.0.4 port `+p+`$`,
		`^Delivery start DCID \d+ MID \d+ to RID \[0\]$`,
		`^Message done `,
	)
	if got := good.messages(); len(got) != 1 {
		t.Errorf("the third MX got %d messages", len(got))
	}
}

// TestRefusedOpeningDefers: a host that refuses the session with a 5xx
// greeting, EHLO, or EHLO and then HELO refuses a connection, not the
// recipients: the next address is tried, and when none takes the message
// its recipient waits for a retry (a 4.x.x "Delayed:"), never bounced.
func TestRefusedOpeningDefers(t *testing.T) {
	refuse := smtp.Reply{Code: 554, Enhanced: "5.7.1", Text: "go away"}
	cases := []struct {
		name     string
		greeting smtp.Reply
		hello    func(verb string) smtp.Reply
		details  string   // of the Connection Error
		status   string   // of the Delayed line
		verbs    []string // the hellos each host was sent
	}{
		{"554 greeting", smtp.Reply{Code: 554, Text: "no SMTP service here"}, nil,
			`no SMTP service here`, `4\.3\.2`, nil},
		{"EHLO and HELO refused", smtp.Reply{}, func(string) smtp.Reply { return refuse },
			`#5\.7\.1 go away`, `4\.7\.1`, []string{"ehlo", "helo"}},
		{"EHLO unknown, HELO refused", smtp.Reply{}, func(verb string) smtp.Reply {
			if verb == "ehlo" {
				return smtp.Reply{Code: 502, Enhanced: "5.5.1", Text: "command not implemented"}
			}
			return refuse
		}, `#5\.7\.1 go away`, `4\.7\.1`, []string{"ehlo", "helo"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			port, lns := smtptest.ListenSamePort(t, "127.0.0.2", "127.0.0.3")
			var hops []*hop
			verbs := make([][]string, len(lns))
			for i, ln := range lns {
				h := newHop(t)
				h.cfg.Greeting = tc.greeting
				h.cfg.BadCommandLimit = 10 // a refused EHLO is not the end
				if tc.hello != nil {
					h.hello = func(verb string) smtp.Reply {
						h.mu.Lock()
						verbs[i] = append(verbs[i], verb)
						h.mu.Unlock()
						return tc.hello(verb)
					}
				}
				hops = append(hops, h.serve(ln))
			}
			g := newGateway(t, setup{zone: mxZone("d.test", "127.0.0.2", "127.0.0.3"), yaml: deliveryYAML(port, "  bounce: {initial_retry: 1h}\n")})
			mid := g.message("alice@gw.test", "bob@d.test")
			// The attempt's outcome: one Delayed or Bounced line.
			if o := g.lines.WaitFor(t, fmt.Sprintf(`^(Delayed|Bounced): DCID \d+ MID %d `, mid)); strings.HasPrefix(o, "Bounced") {
				t.Fatalf("bounced: %s", o)
			}
			g.lines.WaitFor(t, fmt.Sprintf(`^MID %d to RID \[0\] pending till `, mid))
			p := fmt.Sprint(port)
			inOrder(t, g.lines.Snapshot(),
				`^Connection Error: DCID \d+ domain: d.test IP: 127.0.0.2 port: `+p+` details: `+tc.details+` interface: 127.0.0.1 reason: unexpected SMTP response$`,
				`^Connection Error: DCID \d+ domain: d.test IP: 127.0.0.3 port: `+p+` details: `+tc.details+` interface: 127.0.0.1 reason: unexpected SMTP response$`,
				fmt.Sprintf(`^Delayed: DCID \d+ MID %d From: <alice@gw.test> To: <bob@d.test> RID 0 - %s - `, mid, tc.status),
				fmt.Sprintf(`^MID %d to RID \[0\] pending till `, mid),
			)
			for i, h := range hops {
				if conns, _ := h.stats(); conns != 1 {
					t.Errorf("host %d got %d connections, want 1", i+1, conns)
				}
				h.mu.Lock()
				if !slices.Equal(verbs[i], tc.verbs) {
					t.Errorf("host %d was sent %q, want %q", i+1, verbs[i], tc.verbs)
				}
				h.mu.Unlock()
			}
			q, err := g.m.Message(mid)
			if err != nil {
				t.Fatal(err)
			}
			if r := q.Recipients[0]; r.Status != "pending" || r.Attempts != 1 {
				t.Errorf("recipient %+v, want pending after 1 attempt", r)
			}
		})
	}
}

// TestMXPreference: all MX hosts up, the most preferred gets everything;
// hosts of equal preference share the load.
func TestMXPreference(t *testing.T) {
	port, lns := smtptest.ListenSamePort(t, "127.0.0.2", "127.0.0.3", "127.0.0.4")
	h := newHop(t).serve(lns...)
	zone := []string{
		"d.test. 60 IN MX 10 a.d.test.", "a.d.test. 60 IN A 127.0.0.2",
		"d.test. 60 IN MX 20 b.d.test.", "b.d.test. 60 IN A 127.0.0.3",
		"e.test. 60 IN MX 10 c.e.test.", "c.e.test. 60 IN A 127.0.0.3",
		"e.test. 60 IN MX 10 d.e.test.", "d.e.test. 60 IN A 127.0.0.4",
	}
	g := newGateway(t, setup{zone: zone, yaml: deliveryYAML(port, "  destinations: [{domain: default, max_messages_per_connection: 1}]\n")})
	var last uint64
	for i := 0; i < 5; i++ {
		last = g.message("alice@gw.test", "bob@d.test")
	}
	for i := 0; i < 5; i++ {
		g.finished(last - uint64(i))
	}
	for _, m := range h.messages() {
		if m.at != "127.0.0.2" {
			t.Errorf("a message for d.test went to %s, not its preferred MX", m.at)
		}
	}
	for i := 0; i < 30; i++ {
		last = g.message("alice@gw.test", "bob@e.test")
	}
	for i := 0; i < 30; i++ {
		g.finished(last - uint64(i))
	}
	at := map[string]int{}
	for _, m := range h.messages()[5:] {
		at[m.at]++
	}
	if at["127.0.0.3"] == 0 || at["127.0.0.4"] == 0 || len(at) != 2 {
		t.Errorf("messages for e.test by host: %v, want both MX of preference 10", at)
	}
}

// TestImplicitMX: a domain without MX records gets its mail at its own
// address (RFC 5321 5.1).
func TestImplicitMX(t *testing.T) {
	port, lns := smtptest.ListenSamePort(t, "127.0.0.2")
	h := newHop(t).serve(lns...)
	g := newGateway(t, setup{zone: []string{"d.test. 60 IN A 127.0.0.2"}, yaml: deliveryYAML(port, "")})
	mid := g.message("alice@gw.test", "bob@d.test")
	g.finished(mid)
	if got := h.messages(); len(got) != 1 || got[0].at != "127.0.0.2" {
		t.Errorf("got %+v", got)
	}
}

// TestAddressLiteral: a recipient at an address literal is delivered to
// that address, without DNS.
func TestAddressLiteral(t *testing.T) {
	port, lns := smtptest.ListenSamePort(t, "127.0.0.2")
	h := newHop(t).serve(lns...)
	g := newGateway(t, setup{yaml: deliveryYAML(port, "")})
	mid := g.message("alice@gw.test", "bob@[127.0.0.2]")
	g.finished(mid)
	if got := h.messages(); len(got) != 1 || got[0].to[0] != "bob@[127.0.0.2]" {
		t.Errorf("got %+v", got)
	}
}

// TestRoutes: SMTP routes take precedence over MX, exact domains over
// subdomain routes over ALL; lower priority first, the next on failure;
// a route's host is looked up by address, never routed again.
func TestRoutes(t *testing.T) {
	cases := []struct {
		name   string
		routes string // %[1]d is the port
		rcpt   string
		at     string
		errors int // Connection Error lines
	}{
		{"over-mx", `[{domain: d.test, hosts: ["127.0.0.5:%[1]d"]}]`, "bob@d.test", "127.0.0.5", 0},
		{"subdomains", `[{domain: .d.test, hosts: ["127.0.0.5:%[1]d"]}, {domain: d.test, hosts: ["127.0.0.6:%[1]d"]}]`, "bob@x.d.test", "127.0.0.5", 0},
		{"exact-first", `[{domain: ALL, hosts: ["127.0.0.6:%[1]d"]}, {domain: d.test, hosts: ["127.0.0.5:%[1]d"]}]`, "bob@d.test", "127.0.0.5", 0},
		{"all", `[{domain: ALL, hosts: ["127.0.0.5:%[1]d"]}]`, "bob@unknown.test", "127.0.0.5", 0},
		{"no-route", `[{domain: other.test, hosts: ["127.0.0.5:%[1]d"]}]`, "bob@d.test", "127.0.0.2", 0},
		{"priority", `[{domain: d.test, hosts: [{host: 127.0.0.6, port: %[1]d, priority: 20}, {host: 127.0.0.5, port: %[1]d, priority: 10}]}]`, "bob@d.test", "127.0.0.5", 0},
		{"next-priority", `[{domain: d.test, hosts: [{host: 127.0.0.7, port: %[1]d, priority: 10}, {host: 127.0.0.5, port: %[1]d, priority: 20}]}]`, "bob@d.test", "127.0.0.5", 1},
		{"not-recursive", `[{domain: d.test, hosts: ["relay.r.test:%[1]d"]}, {domain: .r.test, hosts: ["127.0.0.6:%[1]d"]}]`, "bob@d.test", "127.0.0.5", 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			port, lns := smtptest.ListenSamePort(t, "127.0.0.2", "127.0.0.5", "127.0.0.6", "127.0.0.7")
			lns[3].Close()
			h := newHop(t).serve(lns[:3]...)
			zone := append(mxZone("d.test", "127.0.0.2"), "relay.r.test. 60 IN A 127.0.0.5", "relay.r.test. 60 IN MX 10 mx1.d.test.")
			g := newGateway(t, setup{zone: zone, yaml: deliveryYAML(port, "") + "routes: " + fmt.Sprintf(c.routes, port) + "\n"})
			mid := g.message("alice@gw.test", c.rcpt)
			g.finished(mid)
			if got := h.messages(); len(got) != 1 || got[0].at != c.at {
				t.Errorf("delivered %+v, want one message at %s", got, c.at)
			}
			if n := len(g.lines.Grep(`^Connection Error: `)); n != c.errors {
				t.Errorf("%d Connection Error lines, want %d", n, c.errors)
			}
		})
	}
}

// TestRouteRoundRobin: hosts of equal priority take connections in turn.
func TestRouteRoundRobin(t *testing.T) {
	port, lns := smtptest.ListenSamePort(t, "127.0.0.5", "127.0.0.6")
	h := newHop(t).serve(lns...)
	g := newGateway(t, setup{yaml: deliveryYAML(port, "  destinations: [{domain: default, max_messages_per_connection: 1, max_connections: 1}]\n") +
		fmt.Sprintf("routes: [{domain: ALL, hosts: [\"127.0.0.5:%d\", \"127.0.0.6:%d\"]}]\n", port, port)})
	var mids []uint64
	for i := 0; i < 6; i++ {
		mids = append(mids, g.message("alice@gw.test", "bob@d.test"))
	}
	for _, mid := range mids {
		g.finished(mid)
	}
	at := map[string]int{}
	for _, m := range h.messages() {
		at[m.at]++
	}
	if at["127.0.0.5"] != 3 || at["127.0.0.6"] != 3 {
		t.Errorf("messages by host %v, want 3 and 3", at)
	}
}

// TestSTARTTLS: the destination's tls control against next hops with and
// without STARTTLS and with certificates for the right and wrong names.
func TestSTARTTLS(t *testing.T) {
	ca := smtptest.NewCA(t)
	cases := []struct {
		name      string
		mode      string
		certFor   string // "" : no STARTTLS
		delivered bool
		want      string // a line that must be logged
	}{
		{"required-verify", "required-verify", "mx1.d.test", true, `^DCID \d+ TLS success protocol TLSv1.3 cipher TLS_\w+$`},
		{"required-verify-wrong-name", "required-verify", "other.test", false, `^DCID \d+ TLS failed: .*certificate is valid for other.test, not mx1.d.test`},
		{"required-no-starttls", "required", "", false, `^DCID \d+ TLS failed: .*STARTTLS`},
		{"required-unverified", "required", "other.test", true, `^DCID \d+ TLS success `},
		{"preferred-no-starttls", "preferred", "", true, `^Message done `},
		{"off", "off", "mx1.d.test", true, `^Message done `},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			port, lns := smtptest.ListenSamePort(t, "127.0.0.2")
			h := newHop(t)
			if c.certFor != "" {
				h.cfg.TLS = ca.Server(t, c.certFor)
			}
			h.serve(lns...)
			g := newGateway(t, setup{zone: mxZone("d.test", "127.0.0.2"), yaml: deliveryYAML(port, fmt.Sprintf(
				"  tls_ca_file: %s\n  destinations: [{domain: d.test, tls: %s}]\n  bounce: {initial_retry: 1h, max_retry: 1h}\n", ca.CertFile, c.mode))})
			mid := g.message("alice@gw.test", "bob@d.test")
			if c.delivered {
				g.finished(mid)
			} else {
				got := g.lines.WaitFor(t, fmt.Sprintf(`^Delayed: DCID \d+ MID %d `, mid))
				if !strings.Contains(got, " - 4.7.0 - Other or undefined security status ('000', ['TLS failed: ") {
					t.Errorf("Delayed line %q", got)
				}
			}
			g.lines.WaitFor(t, c.want)
			if c.mode == "off" && len(g.lines.Grep(`TLS`)) != 0 {
				t.Errorf("TLS with tls: off: %q", g.lines.Grep(`TLS`))
			}
			if n := len(h.messages()); c.delivered != (n == 1) {
				t.Errorf("%d messages delivered", n)
			}
		})
	}
}

// TestDomainDebugLog records the conversation with a chosen domain, for
// the number of sessions asked.
func TestDomainDebugLog(t *testing.T) {
	port, lns := smtptest.ListenSamePort(t, "127.0.0.2")
	newHop(t).serve(lns...)
	debug := smtptest.NewLines()
	g := newGateway(t, setup{zone: append(mxZone("d.test", "127.0.0.2"), mxZone("e.test", "127.0.0.2")...),
		yaml: deliveryYAML(port, ""), debug: []*debuglog.Log[string]{debuglog.New((&config.DomainDebug{Domains: []string{"d.test"}}).Match, 1, debug)}})
	m1 := g.message("alice@gw.test", "bob@e.test")
	g.finished(m1)
	m2 := g.message("alice@gw.test", "bob@d.test")
	g.finished(m2)
	g.lines.WaitN(t, 2, `^DCID \d+ close$`)
	m3 := g.message("alice@gw.test", "carol@d.test")
	g.finished(m3)
	dcid := regexp.MustCompile(`Delivery start DCID (\d+) MID ` + fmt.Sprint(m2)).FindStringSubmatch(strings.Join(g.lines.Snapshot(), "\n"))[1]
	all := debug.Snapshot()
	inOrder(t, all,
		`^`+dcid+` Rcvd: '220 hop.test ESMTP'$`,
		`^`+dcid+` Sent: 'EHLO gw.test'$`,
		`^`+dcid+` Rcvd: '250-hop.test'$`,
		`^`+dcid+` Sent: 'MAIL FROM:<alice@gw.test>`,
		`^`+dcid+` Sent: 'RCPT TO:<bob@d.test>'$`,
		`^`+dcid+` Sent: 'DATA'$`,
		`^`+dcid+` Sent: '\.\.A line with a leading dot\.'$`, // dot-stuffed, as on the wire
		`^`+dcid+` Rcvd: '250 2.0.0 Ok: queued as \d+'$`,
		`^`+dcid+` Sent: 'QUIT'$`,
	)
	for _, l := range all {
		if !strings.HasPrefix(l, dcid+" ") {
			t.Errorf("debug line of another session: %q", l)
		}
	}
}

// rawHop is a next hop that accepts the message, then resets the
// connection instead of replying after the dot, on its first connection
// only; later connections get a normal dialogue.
func rawHop(t *testing.T, ln net.Listener) (messages func() int) {
	var mu sync.Mutex
	n, got := 0, 0
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			n++
			first := n == 1
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				r := bufio.NewReader(c)
				c.Write([]byte("220 raw.test ESMTP\r\n"))
				inData := false
				for {
					line, err := r.ReadString('\n')
					if err != nil {
						return
					}
					line = strings.TrimRight(line, "\r\n")
					switch {
					case inData && line == ".":
						inData = false
						mu.Lock()
						got++
						mu.Unlock()
						if first {
							c.(*net.TCPConn).SetLinger(0)
							return
						}
						c.Write([]byte("250 ok\r\n"))
					case inData:
					case strings.HasPrefix(line, "EHLO"):
						c.Write([]byte("250-raw.test\r\n250 8BITMIME\r\n"))
					case line == "DATA":
						inData = true
						c.Write([]byte("354 go\r\n"))
					case line == "QUIT":
						c.Write([]byte("221 bye\r\n"))
						return
					default:
						c.Write([]byte("250 ok\r\n"))
					}
				}
			}()
		}
	}()
	return func() int { mu.Lock(); defer mu.Unlock(); return got }
}

// TestPossibleDelivery: the connection is lost after the whole message
// went out and before the reply. The ESA logs "Possible Delivery"; the
// message is retried, and the next hop has it twice.
func TestPossibleDelivery(t *testing.T) {
	port, lns := smtptest.ListenSamePort(t, "127.0.0.2")
	got := rawHop(t, lns[0])
	g := newGateway(t, setup{zone: mxZone("d.test", "127.0.0.2"), yaml: deliveryYAML(port, "  bounce: {initial_retry: 20ms, max_retry: 20ms}\n")})
	mid := g.message("alice@gw.test", "bob@d.test")
	g.finished(mid)
	inOrder(t, g.lines.Snapshot(),
		fmt.Sprintf(`^Possible Delivery: DCID: \d+ MID %d to \[0\]$`, mid),
		fmt.Sprintf(`^Delayed: DCID \d+ MID %d From: <alice@gw.test> To: <bob@d.test> RID 0 - 4.4.0 - Other network problem \('000', \['\[Errno 104\] Connection reset by peer \(data-done\)'\]\)$`, mid),
		fmt.Sprintf(`^Message done DCID \d+ MID %d to RID \[0\]$`, mid),
	)
	if n := got(); n != 2 {
		t.Errorf("the next hop got the message %d times, want 2 (the duplicate of a possible delivery)", n)
	}
}
