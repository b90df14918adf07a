package main

import (
	"fmt"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/mailgate/mailgate/tracking"
)

// With an allow list, the gateway tracks a sender's lines under the host
// name configured for it, not the one the lines claim, and drops (and
// logs) what another address sends.
func TestTrackingSyslogSenders(t *testing.T) {
	g := newGW(t, "5s")
	sl := freePort(t)
	cfg := fmt.Sprintf(`hostname: mx.test
data_dir: %s
listeners:
  - {name: InboundMail, interface: Management, address: %s}
tracking:
  syslog:
    address: "%s"
    allow: [{address: 127.0.0.1, host: esa1.mapped.example}]
http: {address: ""}
`, g.dir, g.addr, sl)
	if err := os.WriteFile(g.config, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	g.start()
	stamp := time.Now().Format("Jan _2 15:04:05")
	send := func(from, claimed string, mid int) {
		t.Helper()
		c, err := (&net.Dialer{LocalAddr: &net.UDPAddr{IP: net.ParseIP(from)}}).Dial("udp", sl)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		for _, l := range []string{
			fmt.Sprintf("Start MID %d ICID 7", mid),
			fmt.Sprintf("MID %d ICID 7 From: <news@example.org>", mid),
			fmt.Sprintf("MID %d Subject 'from %s'", mid, from),
			fmt.Sprintf("MID %d queued for delivery", mid),
		} {
			fmt.Fprintf(c, "<166>%s %s mail_logs: Info: %s", stamp, claimed, l)
		}
	}
	send("127.0.0.2", "esa1.mapped.example", 9) // not allowed, even naming an allowed host
	send("127.0.0.1", "esa2.claimed.example", 8)
	for i := 0; ; i++ {
		ms := trackJSON(t, g, "--host", "esa1.mapped.example")
		if len(ms) == 1 && ms[0].Status == tracking.Queued {
			if ms[0].MID != 8 || ms[0].Subject != "from 127.0.0.1" {
				t.Errorf("tracked %+v", ms[0])
			}
			break
		}
		if i == 100 {
			t.Fatalf("syslog lines not tracked: %+v\n%s", ms, g.stderr)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if ms := trackJSON(t, g, "--host", "esa2.claimed.example"); len(ms) != 0 {
		t.Errorf("tracked under the claimed host name: %+v", ms)
	}
	if ms := trackJSON(t, g, "--mid", "9"); len(ms) != 0 {
		t.Errorf("tracked what 127.0.0.2 sent: %+v", ms)
	}
	if !strings.Contains(g.stderr.String(), "syslog: dropped what a sender not allowed sent") {
		t.Errorf("the drop is not logged:\n%s", g.stderr)
	}
}
