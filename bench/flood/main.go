// Command flood is the backpressure scenario of issue 17: it offers mail
// to a relay at a fixed rate, open loop, for a bounded time, while acting
// as the relay's next hop, which accepts at most a fixed rate (a token per
// message's final reply). At the end it waits for the relay to deliver what
// it acknowledged and prints one line: offered, acknowledged (250),
// refused (4xx, by reply), delivered (distinct Message-IDs), duplicates,
// and whether every acknowledged message arrived.
//
//	flood -relay 127.0.0.1:2537 -sink 127.0.0.1:2536 -offer 2000 -accept 100 -for 60s
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

type flood struct {
	relay, sink      string
	offer, accept    float64
	dur, wait        time.Duration
	sessions, length int

	acked, refused, failed, delivered, dups atomic.Int64
	mu                                      sync.Mutex
	seen                                    map[string]bool
	acks                                    map[string]bool
	codes                                   map[string]int
}

func main() {
	f := &flood{seen: map[string]bool{}, acks: map[string]bool{}, codes: map[string]int{}}
	flag.StringVar(&f.relay, "relay", "127.0.0.1:2537", "the relay to send to")
	flag.StringVar(&f.sink, "sink", "127.0.0.1:2536", "where to listen as the relay's next hop")
	flag.Float64Var(&f.offer, "offer", 2000, "messages per second offered")
	flag.Float64Var(&f.accept, "accept", 100, "messages per second the next hop accepts at most")
	flag.DurationVar(&f.dur, "for", 60*time.Second, "how long mail is offered")
	flag.DurationVar(&f.wait, "wait", 15*time.Minute, "how long to wait afterwards for the acknowledged mail to arrive")
	flag.IntVar(&f.sessions, "s", 200, "client sessions at most at once (an offer they cannot keep up with is counted as failed)")
	flag.IntVar(&f.length, "l", 1024, "payload bytes per message")
	flag.Parse()
	if f.offer <= 0 || f.accept <= 0 || f.dur <= 0 || f.sessions < 1 || flag.NArg() > 0 {
		flag.Usage()
		os.Exit(2)
	}
	ok, err := f.run()
	if err != nil {
		fmt.Fprintln(os.Stderr, "flood:", err)
		os.Exit(1)
	}
	if !ok {
		os.Exit(3)
	}
}

func (f *flood) run() (bool, error) {
	ln, err := net.Listen("tcp", f.sink)
	if err != nil {
		return false, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), f.dur+f.wait+time.Minute)
	defer cancel()
	tokens := make(chan struct{}, 1) // the next hop's rate: one final reply per token
	go func() {
		t := time.NewTicker(time.Duration(float64(time.Second) / f.accept))
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				select {
				case tokens <- struct{}{}:
				default:
				}
			}
		}
	}()
	var sinkWG sync.WaitGroup
	sinkWG.Add(1)
	go func() {
		defer sinkWG.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			sinkWG.Add(1)
			go func() { defer sinkWG.Done(); f.hop(ctx, c, tokens) }()
		}
	}()

	// The offer: open loop, bounded by -for and by -s sessions at once.
	start := time.Now()
	slots := make(chan struct{}, f.sessions)
	var wg sync.WaitGroup
	every := time.Duration(float64(time.Second) / f.offer)
	offered := 0
	for i := 0; ; i++ {
		at := start.Add(time.Duration(i) * every)
		if at.Sub(start) >= f.dur {
			break
		}
		time.Sleep(time.Until(at))
		offered++
		select {
		case slots <- struct{}{}:
		default:
			f.fail("no session free: the offer outran the relay")
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-slots }()
			f.send(ctx, i)
		}()
	}
	wg.Wait()
	offerEnd := time.Since(start)
	// Then every acknowledged message must arrive.
	deadline := time.Now().Add(f.wait)
	for f.missing() > 0 && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	ln.Close()
	cancel()
	sinkWG.Wait()
	missing := f.missing()
	f.mu.Lock()
	var codes []string
	for c, n := range f.codes {
		codes = append(codes, fmt.Sprintf("%q:%d", c, n))
	}
	f.mu.Unlock()
	sort.Strings(codes)
	fmt.Printf("offered=%d offer_s=%.1f acked=%d refused=%d failed=%d delivered=%d dups=%d missing=%d drained_s=%.1f refusals=[%s]\n",
		offered, offerEnd.Seconds(), f.acked.Load(), f.refused.Load(), f.failed.Load(), f.delivered.Load(), f.dups.Load(), missing,
		time.Since(start).Seconds(), strings.Join(codes, " "))
	return missing == 0 && f.dups.Load() == 0, nil
}

// fail counts a failure; the first is printed, for the reason.
func (f *flood) fail(why string) {
	if f.failed.Add(1) == 1 {
		fmt.Fprintln(os.Stderr, "flood: first failure:", why)
	}
}

// missing is how many acknowledged messages have not arrived.
func (f *flood) missing() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for id := range f.acks {
		if !f.seen[id] {
			n++
		}
	}
	return n
}

func (f *flood) send(ctx context.Context, i int) {
	d := net.Dialer{Timeout: 10 * time.Second}
	c, err := d.DialContext(ctx, "tcp", f.relay)
	if err != nil {
		f.fail(err.Error())
		return
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(2 * time.Minute))
	br := bufio.NewReader(c)
	id := fmt.Sprintf("<flood.%d.%d@flood.test>", os.Getpid(), i)
	step := func(cmd string) (int, string) {
		if cmd != "" {
			if _, err := c.Write([]byte(cmd + "\r\n")); err != nil {
				return 0, err.Error()
			}
		}
		code, text, err := reply(br)
		if err != nil {
			return 0, err.Error()
		}
		return code, text
	}
	for _, s := range []struct {
		cmd  string
		want int
	}{{"", 220}, {"EHLO flood.test", 250}, {"MAIL FROM:<flood@flood.test>", 250}, {"RCPT TO:<sink@sink.test>", 250}, {"DATA", 354},
		{fmt.Sprintf("Message-ID: %s\r\nSubject: flood %d\r\n\r\n%s.", id, i, f.payload()), 250}} {
		code, text := step(s.cmd)
		if code == s.want {
			continue
		}
		if code/100 == 4 {
			f.refused.Add(1)
			f.mu.Lock()
			f.codes[fmt.Sprintf("%d %s", code, text)]++
			f.mu.Unlock()
		} else {
			f.fail(fmt.Sprintf("after %.20q: %d %s", s.cmd, code, text))
		}
		step("QUIT")
		return
	}
	f.mu.Lock()
	f.acks[id] = true
	f.mu.Unlock()
	f.acked.Add(1)
	step("QUIT")
}

// payload is -l bytes of text in lines of 76 characters, CRLF included.
func (f *flood) payload() string {
	var b strings.Builder
	for b.Len() < f.length {
		n := min(76, f.length-b.Len()) - 2
		b.WriteString(strings.Repeat("x", max(n, 0)))
		b.WriteString("\r\n")
	}
	return b.String()
}

// hop is the next hop's session: the final reply of each message waits
// for a token.
func (f *flood) hop(ctx context.Context, c net.Conn, tokens <-chan struct{}) {
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	br := bufio.NewReaderSize(c, 64<<10)
	w := func(s string) bool { _, err := c.Write([]byte(s + "\r\n")); return err == nil }
	w("220 flood-sink ESMTP")
	for {
		c.SetReadDeadline(time.Now().Add(5 * time.Minute))
		line, err := br.ReadString('\n')
		if err != nil {
			return
		}
		cmd := strings.ToUpper(strings.TrimRight(line, "\r\n"))
		switch {
		case strings.HasPrefix(cmd, "EHLO"):
			w("250-flood-sink\r\n250 PIPELINING")
		case cmd == "DATA":
			w("354 go ahead")
			id := ""
			for {
				l, err := br.ReadString('\n')
				if err != nil {
					return
				}
				l = strings.TrimRight(l, "\r\n")
				if l == "." {
					break
				}
				if v, ok := strings.CutPrefix(l, "Message-ID: "); ok && id == "" {
					id = v
				}
			}
			select {
			case <-tokens:
			case <-ctx.Done():
				return
			}
			f.mu.Lock()
			if f.seen[id] {
				f.dups.Add(1)
			} else {
				f.seen[id] = true
				f.delivered.Add(1)
			}
			f.mu.Unlock()
			w("250 2.0.0 Ok")
		case cmd == "QUIT":
			w("221 bye")
			return
		default:
			w("250 ok")
		}
	}
}

func reply(br *bufio.Reader) (int, string, error) {
	var text []string
	for range 100 {
		line, err := br.ReadString('\n')
		if err != nil {
			return 0, "", err
		}
		line = strings.TrimRight(line, "\r\n")
		if len(line) < 3 {
			return 0, "", fmt.Errorf("bad reply %q", line)
		}
		code, err := strconv.Atoi(line[:3])
		if err != nil {
			return 0, "", fmt.Errorf("bad reply %q", line)
		}
		text = append(text, line[min(4, len(line)):])
		if len(line) == 3 || line[3] != '-' {
			return code, strings.Join(text, " / "), nil
		}
	}
	return 0, "", errors.New("reply of more than 100 lines")
}
