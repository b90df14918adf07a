// Command bigdata measures the gateway's memory while many sessions send a
// large message each at the same time: the memory case (1,000
// sessions × 10 MiB, peak resident memory at most 300 MB).
//
//	go build -o /tmp/mailgate ./cmd/mailgate
//	go run ./bench/bigdata -bin /tmp/mailgate -n 1000 -size 10
//
// It starts `mailgate serve` on a loopback port with delivery suspended and
// a fresh spool in a temporary directory, opens n sessions (from 50
// loopback source addresses), takes each to the 354 after DATA, and only
// when all are there lets them send their message at once, then the end of
// data, and waits for every 250. The gateway's resident memory is sampled
// while they run, and its peak (VmHWM) read at the end. The spool then
// holds n × size: mind the disk. Everything it started it stops, and the
// directory is removed.
package main

import (
	"bufio"
	"bytes"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

func main() {
	bin := flag.String("bin", "mailgate", "the mailgate binary")
	n := flag.Int("n", 1000, "sessions, all in DATA at once")
	size := flag.Int("size", 10, "message size in MiB")
	addr := flag.String("addr", "127.0.0.1:2565", "address for the gateway")
	timeout := flag.Duration("timeout", 15*time.Minute, "bound on the whole run")
	flag.Parse()
	if err := run(*bin, *addr, *n, *size<<20, *timeout); err != nil {
		fmt.Fprintln(os.Stderr, "bigdata:", err)
		os.Exit(1)
	}
}

func run(bin, addr string, n, size int, timeout time.Duration) error {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err == nil && lim.Cur < lim.Max {
		lim.Cur = lim.Max
		syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim) // the gateway inherits it
	}
	dir, err := os.MkdirTemp("", "mailgate-bigdata-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	cfg := fmt.Sprintf(`hostname: bench.localdomain
data_dir: %s
listeners:
  - name: Bench
    address: %s
    max_connections: %d
    hat:
      policy_defaults: {max_concurrency_per_ip: %d, max_message_size: %dMB}
      sender_groups:
        - {name: RELAY_SG, match: [127.0.0.0/8], policy: RELAYED}
delivery: {suspended: true}
tracking: {enabled: false}
http: {address: ""}
`, filepath.Join(dir, "data"), addr, n+100, n+100, size>>20+10)
	cfgPath := filepath.Join(dir, "mailgate.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		return err
	}
	var stderr bytes.Buffer
	gw := exec.Command(bin, "serve", "--config", cfgPath)
	gw.Stderr = &stderr
	if err := gw.Start(); err != nil {
		return err
	}
	defer func() {
		gw.Process.Signal(syscall.SIGTERM)
		gw.Wait()
	}()
	if err := waitListening(addr, 10*time.Second); err != nil {
		return fmt.Errorf("%v\n%s", err, stderr.String())
	}
	pid := gw.Process.Pid
	rss0 := status(pid, "VmRSS")

	deadline := time.Now().Add(timeout)
	block := makeBlock()
	count := (size + len(block) - 1) / len(block)
	var ready sync.WaitGroup
	ready.Add(n)
	start := make(chan struct{})
	var accepted, failed atomic.Int64
	var firstErr atomic.Value
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			err := session(addr, i, deadline, block, count, &ready, start)
			if err != nil {
				failed.Add(1)
				firstErr.CompareAndSwap(nil, err)
				return
			}
			accepted.Add(1)
		})
	}
	ready.Wait()
	t0 := time.Now()
	close(start)
	stop := make(chan struct{})
	sampled := make(chan int64, 1)
	go func() {
		var peak int64
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			peak = max(peak, status(pid, "VmRSS"))
			select {
			case <-stop:
				sampled <- peak
				return
			case <-tick.C:
			}
		}
	}()
	wg.Wait()
	took := time.Since(t0)
	close(stop)
	peak := <-sampled
	hwm := status(pid, "VmHWM")
	fmt.Printf("bigdata: %d sessions × %d MiB in DATA at once: %d accepted, %d failed in %.1fs (%.0f MB/s); gateway RSS before %.1f MB, peak sampled %.1f MB, VmHWM %.1f MB\n",
		n, size>>20, accepted.Load(), failed.Load(), took.Seconds(), float64(accepted.Load())*float64(count*len(block))/took.Seconds()/1e6,
		mb(rss0), mb(peak), mb(hwm))
	if err, _ := firstErr.Load().(error); err != nil {
		return fmt.Errorf("first failure: %w", err)
	}
	return nil
}

// makeBlock is 64 KiB of message lines, sent again and again.
func makeBlock() []byte {
	var b bytes.Buffer
	for i := 0; b.Len() < 64<<10-80; i++ {
		fmt.Fprintf(&b, "line %06d of the benchmark's large message: 0123456789 abcdefghijklmnopqrstuvwxyz\r\n", i)
	}
	return b.Bytes()
}

// session takes one connection to the 354, waits for start, sends the
// message and checks the 250.
func session(addr string, i int, deadline time.Time, block []byte, count int, ready *sync.WaitGroup, start <-chan struct{}) (err error) {
	once := sync.OnceFunc(ready.Done)
	defer once() // a failure before the 354 must not hold the others
	d := net.Dialer{Timeout: 10 * time.Second, LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(1+i%50))}}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(deadline)
	r := bufio.NewReader(c)
	step := func(cmd, want string) error {
		if cmd != "" {
			if _, err := fmt.Fprintf(c, "%s\r\n", cmd); err != nil {
				return err
			}
		}
		for {
			l, err := r.ReadString('\n')
			if err != nil {
				return fmt.Errorf("session %d after %q: %w", i, cmd, err)
			}
			if len(l) >= 4 && l[3] == '-' {
				continue
			}
			if !strings.HasPrefix(l, want) {
				return fmt.Errorf("session %d: %q got %q", i, cmd, strings.TrimSpace(l))
			}
			return nil
		}
	}
	for _, s := range [][2]string{{"", "220"}, {"EHLO bench" + fmt.Sprint(i) + ".test", "250"},
		{"MAIL FROM:<sender@example.com>", "250"}, {"RCPT TO:<rcpt@example.net>", "250"}, {"DATA", "354"}} {
		if err := step(s[0], s[1]); err != nil {
			return err
		}
	}
	once()
	<-start
	fmt.Fprintf(c, "Subject: bigdata %d\r\n\r\n", i)
	for range count {
		if _, err := c.Write(block); err != nil {
			return fmt.Errorf("session %d: %w", i, err)
		}
	}
	return step(".", "250")
}

func waitListening(addr string, within time.Duration) error {
	end := time.Now().Add(within)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return nil
		}
		if time.Now().After(end) {
			return fmt.Errorf("gateway not listening on %s: %w", addr, err)
		}
		time.Sleep(50 * time.Millisecond) // polling a port that has no event to wait on
	}
}

// status reads a size field (kB) of /proc/PID/status, in bytes.
func status(pid int, field string) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, field+":"); ok {
			var kb int64
			fmt.Sscanf(v, "%d", &kb)
			return kb * 1024
		}
	}
	return 0
}

func mb(b int64) float64 { return float64(b) / 1e6 }
