package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mailgate/mailgate/internal/wait"
	"github.com/mailgate/mailgate/queue"
)

// The binary with the test stages (teststages.go), built once for the
// tests that name them in mail_policies.
var (
	stagesOnce   sync.Once
	stagesBinary string
	stagesErr    error
)

func stagesGW(t *testing.T, hop, policies string) *gw {
	t.Helper()
	stagesOnce.Do(func() {
		stagesBinary = filepath.Join(filepath.Dir(binary), "mailgate-stages")
		stagesErr = buildBinary(stagesBinary, "-tags", "mailgate_teststages")
	})
	if stagesErr != nil {
		t.Fatal(stagesErr)
	}
	g := relayGW(t, hop, policies)
	g.bin = stagesBinary
	return g
}

// sendPolicyMail sends one message with a token to several recipients with Go's
// net/smtp client and returns its MID, from the mail log.
func sendPolicyMail(t *testing.T, g *gw, token string, rcpts ...string) uint64 {
	t.Helper()
	msg := fmt.Sprintf("From: a@example.org\r\nSubject: %s\r\nX-Token: %s\r\n\r\nbody of %s\r\n", token, token, token)
	if err := sendMail(g.addr, "a@example.org", rcpts, msg); err != nil {
		t.Fatalf("send %s: %v", token, err)
	}
	m := regexp.MustCompile(`MID (\d+) Subject '` + token + `'`).FindStringSubmatch(g.waitLog(`Subject '` + token + `'`))
	mid, _ := strconv.ParseUint(m[1], 10, 64)
	return mid
}

// sendMail is one transaction by Go's net/smtp client, in plaintext (the
// listener's certificate is self-signed), with a deadline.
func sendMail(addr, from string, rcpts []string, msg string) error {
	return sendMailFrom("", addr, from, rcpts, msg)
}

// logLines returns the mail log's lines about the MIDs, without their
// timestamps and levels.
func logLines(l string, mids ...uint64) []string {
	var out []string
	for _, line := range strings.Split(l, "\n") {
		_, text, ok := strings.Cut(line, " Info: ")
		if !ok {
			continue
		}
		for _, mid := range mids {
			if regexp.MustCompile(fmt.Sprintf(`MID %d\b`, mid)).MatchString(text) {
				out = append(out, text)
				break
			}
		}
	}
	return out
}

const splitPolicies = `mail_policies:
  outgoing:
    - name: executives
      recipients: [ceo@example.com, cfo@example.com]
      content_filters: [tag1, tag2]
    - name: DEFAULT
      content_filters: [tag3]
`

// A message to three recipients across two policies, over SMTP: split into
// two MIDs with the ESA's line, each policy's stages run in order on its
// own message, each recipient delivered once with its message's headers,
// and the tracking records linked.
func TestWorkQueueSplit(t *testing.T) {
	hop := startNextHop(t, 0)
	g := stagesGW(t, hop.addr, splitPolicies)
	g.start()
	mid := sendPolicyMail(t, g, "split1", "ceo@example.com", "x@example.net", "cfo@example.com")
	l := g.waitLog(`Message finished MID \d+ done(?s:.*)Message finished MID \d+ done`)
	split := regexp.MustCompile(fmt.Sprintf(`MID %d was split creating MID (\d+) due to a per-recipient policy DEFAULT`, mid)).FindStringSubmatch(l)
	if split == nil {
		t.Fatalf("no split line for MID %d:\n%s", mid, l)
	}
	child, _ := strconv.ParseUint(split[1], 10, 64)
	// The parent keeps the policy of its first recipient, as the ESA
	// keeps its MID for the first splinter.
	lines := logLines(l, mid, child)
	for _, want := range [][]string{
		{fmt.Sprintf("MID %d ready", mid), fmt.Sprintf("MID %d was split creating MID %d due to a per-recipient policy DEFAULT", mid, child), fmt.Sprintf("MID %d queued for delivery", mid)},
		{fmt.Sprintf("MID %d was split creating MID %d", mid, child), fmt.Sprintf("MID %d queued for delivery", child), "Delivery start DCID", fmt.Sprintf("Message finished MID %d done", child)},
	} {
		i := 0
		for _, line := range lines {
			if i < len(want) && strings.Contains(line, want[i]) {
				i++
			}
		}
		if i < len(want) {
			t.Errorf("the log lacks %q in order:\n%s", want[i], strings.Join(lines, "\n"))
		}
	}
	if slices.ContainsFunc(lines, func(s string) bool { return strings.Contains(s, "matched all recipients") }) {
		t.Errorf("a split message logged a match of all recipients:\n%s", strings.Join(lines, "\n"))
	}
	_, msgs := hop.delivered()
	if len(msgs) != 2 {
		t.Fatalf("%d messages delivered, want 2", len(msgs))
	}
	got := map[string]string{}
	for _, m := range msgs {
		hdr, _, _ := strings.Cut(string(m.data), "X-Token:")
		var stages []string
		for _, h := range strings.Split(hdr, "\r\n") {
			if strings.HasPrefix(h, "X-Test-Stage: ") {
				stages = append(stages, strings.TrimPrefix(h, "X-Test-Stage: "))
			}
		}
		got[strings.Join(m.to, ",")] = strings.Join(stages, "; ")
	}
	want := map[string]string{
		"ceo@example.com,cfo@example.com": "tag1 executives after 0; tag2 executives after 1",
		"x@example.net":                   "tag3 DEFAULT after 0",
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("delivered (recipients: stage headers) %v, want %v", got, want)
	}

	// Tracking: each record names the other, as explain shows it.
	for _, c := range []struct {
		mid, other uint64
		rel        string
	}{{mid, child, "split off"}, {child, mid, "split from"}} {
		var out string
		want := fmt.Sprintf("Related messages (mailgate track --mid N): MID %d (%s).", c.other, c.rel)
		wait.Until(t, fmt.Sprintf("MID %d tracked with its link", c.mid), func() bool {
			// Not tracked yet is an exit status: tried again.
			b, _ := exec.Command(binary, "explain", "--config", g.config, "--json", fmt.Sprint(c.mid)).Output()
			out = string(b)
			var e struct{ Why []string }
			return json.Unmarshal([]byte(out), &e) == nil && slices.Contains(e.Why, want)
		})
	}
	// The child's record has its delivery.
	var rec string
	wait.Until(t, fmt.Sprintf("MID %d tracked as delivered", child), func() bool {
		b, _ := exec.Command(binary, "track", "--config", g.config, "--json", "--mid", fmt.Sprint(child)).Output()
		rec = string(b)
		return strings.Contains(rec, `"status":"delivered"`)
	})
	t.Logf("track MID %d: %s", child, rec)

	// One policy for all recipients: the ESA's line, no split.
	one := sendPolicyMail(t, g, "single", "ceo@example.com", "cfo@example.com")
	g.waitLog(fmt.Sprintf(`MID %d matched all recipients for per-recipient policy executives in the outbound table`, one))
	g.waitLog(fmt.Sprintf(`Message finished MID %d done`, one))
	g.signal(syscall.SIGTERM)
	g.wait()
}

// The gateway SIGKILLed with messages held in a stage: after the restart
// each recipient is delivered exactly once, the split recipients too.
func TestWorkQueueSIGKILL(t *testing.T) {
	hop := startNextHop(t, 0)
	g := stagesGW(t, hop.addr, `mail_policies:
  workers: 2
  outgoing:
    - name: executives
      recipients: [ceo@example.com]
      content_filters: [tag1]
    - name: DEFAULT
      content_filters: [block]
`)
	block := filepath.Join(g.dir, "block")
	if err := os.WriteFile(block, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	g.start()
	const n = 6
	want := map[string]int{}
	for i := range n {
		tok := fmt.Sprintf("k%d", i)
		sendPolicyMail(t, g, tok, fmt.Sprintf("u%d@example.net", i), "ceo@example.com")
		want[tok+" u"+strconv.Itoa(i)+"@example.net"] = 1
		want[tok+" ceo@example.com"] = 1
	}
	// Two workers block on two messages, the others wait their turn; the
	// executives' halves are delivered.
	wait.Until(t, "two messages blocked in a stage", func() bool { return strings.Count(g.stderr.String(), "teststage: blocking") >= 2 })
	out := mg(t, "workqueue", "--config", g.config)
	if !regexp.MustCompile(`Work queue \(mail policies\):\s+\d+ messages, 2 being worked on`).MatchString(out) ||
		!strings.Contains(out, "Oldest in the work queue:") {
		t.Errorf("workqueue output:\n%s", out)
	}
	g.cmd.Process.Signal(syscall.SIGKILL)
	g.wait()
	if err := os.Remove(block); err != nil {
		t.Fatal(err)
	}
	g.start()
	count := func() map[string]int {
		_, msgs := hop.delivered()
		got := map[string]int{}
		for _, m := range msgs {
			tok := tokenRe.FindSubmatch(m.data)
			for _, to := range m.to {
				got[string(tok[1])+" "+to]++
			}
		}
		return got
	}
	wait.UntilWithin(t, time.Minute, "every recipient delivered", func() bool { return len(count()) == len(want) })
	g.signal(syscall.SIGTERM)
	g.wait()
	if got := count(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("deliveries per (token, recipient) %v, want each once: %v", got, want)
	}
	s, err := queue.Open(filepath.Join(g.dir, "spool"), queue.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if left := s.Messages(); len(left) != 0 {
		t.Errorf("messages left in the spool: %v", left)
	}
}

// The gateway SIGKILLed while it splits messages under load, with delivery
// suspended so that the only window is the work queue's (a cut delivery
// may repeat, by design; a split must not): after the restart with
// delivery on, every recipient of every acknowledged message is delivered
// exactly once.
func TestWorkQueueSIGKILLDuringSplits(t *testing.T) {
	hop := startNextHop(t, 0)
	g := stagesGW(t, hop.addr, splitPolicies)
	cfg, err := os.ReadFile(g.config)
	if err != nil {
		t.Fatal(err)
	}
	suspended := strings.Replace(string(cfg), "delivery:\n", "delivery:\n  suspended: true\n", 1)
	if err := os.WriteFile(g.config, []byte(suspended), 0o644); err != nil {
		t.Fatal(err)
	}
	g.start()
	const senders, perSender = 6, 30
	var mu sync.Mutex
	acked := map[string]bool{}
	var wg sync.WaitGroup
	for w := range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range perSender {
				tok := fmt.Sprintf("w%dm%d", w, i)
				msg := fmt.Sprintf("Subject: %s\r\nX-Token: %s\r\n\r\nbody\r\n", tok, tok)
				rcpts := []string{fmt.Sprintf("u%d@example.net", i), "ceo@example.com", fmt.Sprintf("v%d@example.org", i)}
				if err := sendMail(g.addr, "a@example.org", rcpts, msg); err != nil {
					return // killed
				}
				mu.Lock()
				for _, r := range rcpts {
					acked[tok+" "+r] = true
				}
				mu.Unlock()
			}
		}()
	}
	// Kill while messages arrive and are split.
	wait.Until(t, "30 messages acknowledged", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(acked) >= 90
	})
	g.cmd.Process.Signal(syscall.SIGKILL)
	g.wait()
	wg.Wait()
	splitsBefore := strings.Count(g.mailLog(), "was split creating")
	if err := os.WriteFile(g.config, cfg, 0o644); err != nil {
		t.Fatal(err)
	}
	g.start()
	count := func() map[string]int {
		_, msgs := hop.delivered()
		got := map[string]int{}
		for _, m := range msgs {
			tok := tokenRe.FindSubmatch(m.data)
			for _, to := range m.to {
				got[string(tok[1])+" "+to]++
			}
		}
		return got
	}
	wait.UntilWithin(t, time.Minute, "every acknowledged recipient delivered", func() bool {
		got := count()
		mu.Lock()
		defer mu.Unlock()
		for k := range acked {
			if got[k] == 0 {
				return false
			}
		}
		return true
	})
	g.signal(syscall.SIGTERM)
	g.wait()
	dups := 0
	for k, n := range count() {
		if n > 1 {
			dups++
			t.Errorf("%s delivered %d times", k, n)
		}
	}
	t.Logf("%d recipients acknowledged before the kill (%d splits logged by then, %d after the restart), all delivered after the restart, %d twice",
		len(acked), splitsBefore, strings.Count(g.mailLog(), "was split creating")-splitsBefore, dups)
}
