// Command idleconns holds many idle SMTP connections open against a gateway
// and reports the gateway's resident memory, for bench/receive.sh.
//
//	idleconns -addr 127.0.0.1:2545 -n 10000 -pid 1234
//
// Each connection reads the greeting, sends EHLO, reads the reply and then
// stays silent, as an idle client would. Connections come from several
// loopback source addresses so that no address runs out of ports.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"time"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:2545", "gateway address")
	n := flag.Int("n", 10000, "connections to hold")
	pid := flag.Int("pid", 0, "gateway process ID, whose VmRSS is reported")
	hold := flag.Duration("hold", 3*time.Second, "how long to hold the connections once all are open")
	par := flag.Int("parallel", 200, "connections opened at once")
	flag.Parse()

	rss0 := rss(*pid)
	conns := make([]net.Conn, *n)
	var failed, done int
	var mu sync.Mutex
	sem := make(chan struct{}, *par)
	var wg sync.WaitGroup
	start := time.Now()
	for i := range conns {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			c, err := open(*addr, i)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				failed++
				if failed <= 3 {
					fmt.Fprintln(os.Stderr, "idleconns:", err)
				}
				return
			}
			conns[i] = c
			done++
		}()
	}
	wg.Wait()
	opened := time.Since(start)
	time.Sleep(*hold / 2)
	rss1 := rss(*pid)
	time.Sleep(*hold / 2)
	rss2 := rss(*pid)
	for _, c := range conns {
		if c != nil {
			c.Close()
		}
	}
	peak := max(rss1, rss2)
	fmt.Printf("IDLE connections %d open (%d failed) in %.1fs; gateway RSS before %.1f MB, holding %.1f MB (%.1f KB per connection)\n",
		done, failed, opened.Seconds(), mb(rss0), mb(peak), float64(peak-rss0)/1024/float64(max(done, 1)))
	if failed > 0 {
		os.Exit(1)
	}
}

// open makes connection i from source address 127.0.0.(1 + i%50).
func open(addr string, i int) (net.Conn, error) {
	d := net.Dialer{Timeout: 10 * time.Second, LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(1+i%50))}}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	c.SetDeadline(time.Now().Add(30 * time.Second))
	r := bufio.NewReader(c)
	if l, err := r.ReadString('\n'); err != nil || !strings.HasPrefix(l, "220") {
		c.Close()
		return nil, fmt.Errorf("greeting %q: %v", l, err)
	}
	fmt.Fprintf(c, "EHLO idle%d.test\r\n", i)
	for {
		l, err := r.ReadString('\n')
		if err != nil {
			c.Close()
			return nil, fmt.Errorf("EHLO: %v", err)
		}
		if len(l) >= 4 && l[3] == ' ' {
			break
		}
	}
	c.SetDeadline(time.Time{})
	return c, nil
}

// rss is the resident set size of a process in bytes, from /proc.
func rss(pid int) int64 {
	if pid == 0 {
		return 0
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "VmRSS:") {
			var kb int64
			fmt.Sscanf(strings.TrimPrefix(l, "VmRSS:"), "%d", &kb)
			return kb * 1024
		}
	}
	return 0
}

func mb(b int64) float64 { return float64(b) / (1 << 20) }
