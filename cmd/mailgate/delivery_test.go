package main

// Process-level tests of the delivery side: the gateway relays to a next
// hop on loopback that records what it accepts, and is killed while it
// delivers.

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mailgate/mailgate/internal/wait"
	"github.com/mailgate/mailgate/queue"
	"github.com/mailgate/mailgate/smtp"
)

// nextHop is an SMTP server built on mailgate's own engine that accepts
// everything (or refuses the recipients it is told to) and records each
// message it acknowledged, by the token on its "X-Token:" line.
type nextHop struct {
	addr   string
	delay  time.Duration // before the 250 that ends DATA
	refuse map[string]bool

	mu       sync.Mutex
	tokens   map[string]int // token -> times acknowledged
	messages []hopMessage
}

type hopMessage struct {
	from string
	to   []string
	data []byte
}

func startNextHop(t *testing.T, delay time.Duration, refuse ...string) *nextHop {
	t.Helper()
	return startNextHopAt(t, "127.0.0.1:0", delay, refuse...)
}

// startNextHopAt starts a next hop on a given address.
func startNextHopAt(t *testing.T, addr string, delay time.Duration, refuse ...string) *nextHop {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	h := &nextHop{addr: ln.Addr().String(), delay: delay, refuse: map[string]bool{}, tokens: map[string]int{}}
	for _, r := range refuse {
		h.refuse[r] = true
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() { cancel(); ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				s := smtp.NewSession(c, &hopSession{h: h}, smtp.Config{Hostname: "nexthop.test", BadCommandLimit: 10,
					TotalTimeout: time.Minute})
				s.Serve(ctx)
			}()
		}
	}()
	return h
}

type hopSession struct {
	h    *nextHop
	from string
	to   []string
}

func (s *hopSession) Hello(string, string) smtp.Reply { return smtp.Reply{} }
func (s *hopSession) Mail(from smtp.Path, _ smtp.MailParams) smtp.Reply {
	s.from, s.to = from.String(), nil
	return smtp.Reply{}
}
func (s *hopSession) Rcpt(to smtp.Path) smtp.Reply {
	if s.h.refuse[to.String()] {
		return smtp.Reply{Code: 550, Enhanced: "5.1.1", Text: "<" + to.String() + ">: Recipient address rejected: User unknown"}
	}
	s.to = append(s.to, to.String())
	return smtp.Reply{}
}
func (s *hopSession) Data(r io.Reader) smtp.Reply {
	msg, err := io.ReadAll(r)
	if err != nil {
		return smtp.Reply{} // the engine refuses it
	}
	time.Sleep(s.h.delay) // a slow host is the test's subject
	s.h.mu.Lock()
	defer s.h.mu.Unlock()
	if m := tokenRe.FindSubmatch(msg); m != nil {
		s.h.tokens[string(m[1])]++
	}
	s.h.messages = append(s.h.messages, hopMessage{s.from, s.to, append([]byte(nil), msg...)})
	return smtp.Reply{Code: 250, Enhanced: "2.0.0", Text: "Ok: queued"}
}
func (s *hopSession) DataFailed(error)                            {}
func (s *hopSession) Reset()                                      {}
func (s *hopSession) TLS(tls.ConnectionState)                     {}
func (s *hopSession) BadCommand(smtp.BadKind, string, smtp.Reply) {}
func (s *hopSession) PlaintextDiscarded(int)                      {}

var tokenRe = regexp.MustCompile(`(?m)^X-Token: (\S+)\r$`)

func (h *nextHop) delivered() (tokens map[string]int, messages []hopMessage) {
	h.mu.Lock()
	defer h.mu.Unlock()
	tokens = make(map[string]int, len(h.tokens))
	for k, v := range h.tokens {
		tokens[k] = v
	}
	return tokens, append([]hopMessage(nil), h.messages...)
}

// relayConfig relays everything to the next hop with fast retries.
func relayGW(t *testing.T, hop string, extra string) *gw {
	t.Helper()
	g := newGW(t, "5s")
	cfg := fmt.Sprintf(`hostname: mx.test
data_dir: %s
shutdown_timeout: 5s
listeners:
  - name: InboundMail
    interface: Management
    address: %s
    max_connections: 2000
    hat:
      policy_defaults: {max_concurrency_per_ip: 2000}
      sender_groups:
        - {name: RELAY_SG, match: [127.0.0.0/8], policy: RELAYED}
routes:
  - {domain: ALL, hosts: ["%s"]}
delivery:
  destinations:
    - {domain: default, max_connections: 10, max_messages_per_connection: 50, tls: off}
  bounce: {initial_retry: 200ms, max_retry: 1s}
%s
http: {address: ""}
`, g.dir, g.addr, hop, extra)
	if err := os.WriteFile(g.config, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	return g
}

func sendToken(addr, from, to, token string) (uint64, error) {
	return sendRawEnvelope(addr, from, to, fmt.Sprintf("Subject: %s\r\nX-Token: %s\r\n\r\nbody of %s\r\n", token, token, token))
}

// A message relayed, one refused by the next hop and bounced: the DSN goes
// back to the sender through the same route, and the log tells it all.
func TestRelayAndBounce(t *testing.T) {
	hop := startNextHop(t, 0, "nobody@example.net")
	g := relayGW(t, hop.addr, "")
	g.start()
	if _, err := sendToken(g.addr, "alice@example.org", "bob@example.net", "ok-1"); err != nil {
		t.Fatal(err)
	}
	if _, err := sendToken(g.addr, "alice@example.org", "nobody@example.net", "refused-1"); err != nil {
		t.Fatal(err)
	}
	g.waitLog(`(?s)generated for bounce of MID 2.*Message finished MID 3 done`)
	// A delivery connection closes when it has been idle for the
	// connection cache's time (2 s), after the messages it carried.
	log := g.waitLog(`DCID \d+ close`)
	for _, re := range []string{
		`New SMTP DCID \d+ interface 127\.0\.0\.1 address 127\.0\.0\.1 port \d+`,
		`Delivery start DCID \d+ MID 1 to RID \[0\]`,
		`Message done DCID \d+ MID 1 to RID \[0\]`,
		`MID 1 RID \[0\] Response '2\.0\.0 Ok: queued'`,
		`Message finished MID 1 done`,
		`Bounced: DCID \d+ MID 2 From: <alice@example\.org> To: <nobody@example\.net> RID 0 - 5\.1\.1 - Bad destination email address \('550', \['5\.1\.1 <nobody@example\.net>: Recipient address rejected: User unknown'\]\)`,
		`Start MID 3 ICID 0`,
		`MID 3 generated for bounce of MID 2`,
		`MID 3 ICID 0 From: <>`,
		`MID 3 ICID 0 RID 0 To: <alice@example\.org>`,
		`Message finished MID 2 done`,
		`DCID \d+ close`,
	} {
		if !regexp.MustCompile(re).MatchString(log) {
			t.Errorf("no line matching %s in:\n%s", re, log)
		}
	}
	_, msgs := hop.delivered()
	var dsn *hopMessage
	for i := range msgs {
		if msgs[i].from == "" {
			dsn = &msgs[i]
		}
	}
	if dsn == nil || len(dsn.to) != 1 || dsn.to[0] != "alice@example.org" {
		t.Fatalf("no DSN to the sender among %d messages", len(msgs))
	}
	for _, want := range []string{"multipart/report; report-type=delivery-status", "Final-Recipient: rfc822; nobody@example.net",
		"Action: failed", "Status: 5.1.1", "Diagnostic-Code: smtp; 550 5.1.1", "X-Token: refused-1"} {
		if !bytes.Contains(dsn.data, []byte(want)) {
			t.Errorf("DSN lacks %q:\n%s", want, dsn.data)
		}
	}
}

// The design's restart rule for delivery: kill -9 while messages are being
// delivered; after restart every acknowledged message reaches the next
// hop, and a duplicate is possible only for a delivery cut after the next
// hop's 250 and before the spool recorded it: at most one per connection.
func TestSIGKILLDuringDelivery(t *testing.T) {
	hop := startNextHop(t, 20*time.Millisecond)
	g := relayGW(t, hop.addr, "")
	g.start()

	const senders, perSender = 8, 40
	var mu sync.Mutex
	acked := map[string]bool{}
	var wg sync.WaitGroup
	for w := range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range perSender {
				token := fmt.Sprintf("w%d-m%d", w, i)
				if _, err := sendToken(g.addr, "a@example.org", "b@example.net", token); err != nil {
					return // the gateway was killed
				}
				mu.Lock()
				acked[token] = true
				mu.Unlock()
			}
		}()
	}
	// Kill once deliveries are well under way.
	wait.Until(t, "60 messages delivered", func() bool {
		tokens, _ := hop.delivered()
		return len(tokens) >= 60
	})
	g.cmd.Process.Signal(syscall.SIGKILL)
	g.wait()
	wg.Wait()
	before, _ := hop.delivered()

	g.start()
	wait.UntilWithin(t, time.Minute, "every acknowledged message reaches the next hop", func() bool {
		tokens, _ := hop.delivered()
		mu.Lock()
		defer mu.Unlock()
		for tok := range acked {
			if tokens[tok] == 0 {
				return false
			}
		}
		return true
	})
	g.signal(syscall.SIGTERM)
	g.wait()

	tokens, _ := hop.delivered()
	dups := 0
	for _, n := range tokens {
		dups += n - 1
	}
	t.Logf("killed with %d of %d acknowledged messages delivered; after restart all delivered, %d duplicate(s)",
		len(before), len(acked), dups)
	if dups > 10 { // max_connections: one cut delivery per connection at most
		t.Errorf("%d duplicates: more than the 10 deliveries that can be in flight", dups)
	}
	s, err := queue.Open(filepath.Join(g.dir, "spool"), queue.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if n := len(s.Messages()); n != 0 {
		t.Errorf("%d messages left in the spool after everything was delivered", n)
	}
}

// Two gateways in a chain: the first relays by an SMTP route to the
// second, over STARTTLS (the second's self-signed certificate, so the
// first does not verify it), and the second takes the message into its
// own spool and log.
func TestRelayToSecondMailgate(t *testing.T) {
	second := newGW(t, "5s") // delivery suspended: it keeps what it gets
	second.start()
	first := relayGW(t, second.addr, "")
	cfg, _ := os.ReadFile(first.config)
	cfg = bytes.Replace(cfg, []byte("tls: off"), []byte("tls: preferred"), 1)
	if err := os.WriteFile(first.config, cfg, 0o644); err != nil {
		t.Fatal(err)
	}
	first.start()
	if _, err := sendToken(first.addr, "alice@example.org", "bob@example.net", "chained"); err != nil {
		t.Fatal(err)
	}
	log := first.waitLog(`Message finished MID 1 done`)
	for _, re := range []string{
		`New SMTP DCID 1 interface 127\.0\.0\.1 address 127\.0\.0\.1 port \d+`,
		`DCID 1 TLS success protocol TLSv1\.3 cipher TLS_\w+`,
		`Delivery start DCID 1 MID 1 to RID \[0\]`,
		`MID 1 RID \[0\] Response '2\.0\.0 ok:  Message 1 accepted'`,
	} {
		if !regexp.MustCompile(re).MatchString(log) {
			t.Errorf("first gateway's log lacks %s:\n%s", re, log)
		}
	}
	log = second.waitLog(`MID 1 queued for delivery`)
	for _, re := range []string{
		`ICID 1 TLS success protocol TLSv1\.3`,
		`MID 1 ICID 1 From: <alice@example\.org>`,
		`MID 1 ICID 1 RID 0 To: <bob@example\.net>`,
		`MID 1 Subject 'chained'`,
	} {
		if !regexp.MustCompile(re).MatchString(log) {
			t.Errorf("second gateway's log lacks %s:\n%s", re, log)
		}
	}
	// The second gateway's spool holds the message with the first's
	// Received: header on top of its own.
	second.signal(syscall.SIGTERM)
	second.wait()
	s, err := queue.Open(filepath.Join(second.dir, "spool"), queue.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	_, body, err := s.Read(1)
	if err != nil {
		t.Fatal(err)
	}
	if n := bytes.Count(body, []byte("Received: from ")); n != 2 || !bytes.Contains(body, []byte("X-Token: chained")) {
		t.Errorf("second gateway's spool copy (%d Received: headers):\n%s", n, body)
	}
}
