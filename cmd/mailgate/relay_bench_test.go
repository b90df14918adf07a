package main

import (
	"fmt"
	"io"
	"log/slog"
	"os/exec"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/mailgate/mailgate/config"
	"github.com/mailgate/mailgate/internal/smtptest"
	"github.com/mailgate/mailgate/stats"
)

// sourcePath is Postfix's smtp-source, the client of bench/relay.sh.
const sourcePath = "/usr/sbin/smtp-source"

// BenchmarkRelay is bench/relay.sh's mailgate in this process: the same
// configuration (a relay listener, a route ALL to Postfix's smtp-sink, 20
// delivery connections, the mail log and tracking on, the spool's fsyncs
// on), and smtp-source's load (20 sessions of 1 KB, one message a
// connection, no pipelining), both of them processes of their own. So
// cpu-us/msg is the gateway's CPU alone (getrusage of this process; a
// shared machine's noise moves it less than it moves the time), and
// allocs/op the gateway's allocations per relayed message. An op ends
// when the last message is delivered and its tracking records written.
//
//	go test -run '^$' -bench Relay -benchtime 5000x -count 6 ./cmd/mailgate
func BenchmarkRelay(b *testing.B) {
	if _, err := exec.LookPath(sourcePath); err != nil {
		b.Skipf("smtp-source is not installed (scripts/test-deps.sh installs it): %v", err)
	}
	sink := smtptest.Sink(b, "127.0.0.1:0")
	dir := b.TempDir()
	cfg, err := config.Parse([]byte(fmt.Sprintf(`
hostname: relay.localdomain
data_dir: %s
listeners:
  - name: Relay
    address: 127.0.0.1:0
    max_connections: 5000
    hat:
      policy_defaults: {max_concurrency_per_ip: 5000, max_message_size: 50MB}
      sender_groups:
        - {name: RELAY_SG, match: [127.0.0.0/8], policy: RELAYED}
routes:
  - {domain: ALL, hosts: [%q]}
delivery:
  destinations: [{domain: default, max_connections: 20, max_messages_per_connection: 50}]
http: {address: ""}
`, dir, sink)), "relay.yaml")
	if err != nil {
		b.Fatal(err)
	}
	g, err := start(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		b.Fatal(err)
	}
	defer func() {
		if err := g.stop(); err != nil {
			b.Error(err)
		}
	}()
	addr := g.listeners[0].Addr().String()
	relayed := 0
	relay := func(n int) {
		out, err := exec.Command(sourcePath, "-s", "20", "-l", "1024", "-m", strconv.Itoa(n),
			"-f", "sender@example.com", "-t", "rcpt@example.net", addr).CombinedOutput()
		if err != nil {
			b.Fatalf("smtp-source: %v: %s", err, out)
		}
		relayed += n
		// Delivered: nothing left in the spool. Tracked: the feed holds
		// nothing it has not written.
		deadline := time.Now().Add(5 * time.Minute)
		for g.spool.Stats().Messages > 0 || g.tracking.feed.Lag(time.Now()) > 0 {
			if time.Now().After(deadline) {
				b.Fatalf("not relayed after 5 minutes: %+v", g.spool.Stats())
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	relay(2000) // warm up: connections, caches, buffers grown, the tracking store's pages and statements
	b.ReportAllocs()
	cpu0 := cpuTime(b)
	b.ResetTimer()
	relay(b.N)
	b.StopTimer()
	b.ReportMetric(float64((cpuTime(b)-cpu0).Microseconds())/float64(b.N), "cpu-us/msg")
	if n := g.stats.Status(false).Counter(stats.DeliveredRecips).Uptime; n != uint64(relayed) {
		b.Fatalf("%d recipients delivered, %d messages relayed", n, relayed)
	}
}

// cpuTime is the user and system CPU time of this process so far.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
