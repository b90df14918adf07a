package enginetest

import (
	"bufio"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mailgate/mailgate/internal/wait"
)

// Peer is a fault peer on loopback: a stand-in for a broken or slow engine,
// where the real one cannot be made to misbehave. It reads each request
// whole with Read (the protocol's framing is the test's), then answers
// Reply and closes the connection, counting the requests in flight.
type Peer struct {
	// Read reads one request; an error closes the connection unanswered.
	Read func(*bufio.Reader) error
	// Reply is written whole after each request: a verdict, garbage, or
	// nothing ("": the peer closes without a reply).
	Reply string
	// Release, when not nil, holds each answer until it gives a value.
	Release chan struct{}

	Addr string // host:port, set by StartPeer
	InFlight
}

// StartPeer starts p on a free loopback port, stopped when the test ends.
func StartPeer(t testing.TB, p *Peer) *Peer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p.Addr = ln.Addr().String()
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() { p.serve(c) })
		}
	})
	return p
}

func (p *Peer) serve(c net.Conn) {
	defer c.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	if p.Read(bufio.NewReader(c)) != nil {
		return
	}
	p.Enter()
	if p.Release != nil {
		select {
		case <-p.Release:
		case <-time.After(30 * time.Second):
		}
	}
	// Out of flight before the reply: the client frees its slot when the
	// reply arrives, and its next request may reach this peer before a
	// deferred Leave would have run.
	p.Leave()
	c.Write([]byte(p.Reply))
}

// InFlight counts the requests a peer is answering, and the most it
// answered at once.
type InFlight struct{ now, most atomic.Int32 }

// Enter counts a request in.
func (f *InFlight) Enter() {
	n := f.now.Add(1)
	for m := f.most.Load(); n > m && !f.most.CompareAndSwap(m, n); m = f.most.Load() {
	}
}

// Leave counts a request out.
func (f *InFlight) Leave() { f.now.Add(-1) }

// Now returns the requests in flight.
func (f *InFlight) Now() int { return int(f.now.Load()) }

// Most returns the most requests there were in flight at once.
func (f *InFlight) Most() int { return int(f.most.Load()) }

// ClosedAddr returns a loopback host:port where nothing listens: an engine
// that is stopped.
func ClosedAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln.Close()
	return ln.Addr().String()
}

// CheckConcurrency sends requests requests at once with do (i is the
// request's number), to a peer that counts them in f and holds each answer
// until release gives a value, and checks that no more than limit are ever
// in flight: it waits each time for as many as the limit allows, then lets
// one finish. Every request must succeed.
func CheckConcurrency(t *testing.T, f *InFlight, release chan<- struct{}, limit, requests int, do func(i int) error) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, requests)
	for i := range requests {
		wg.Go(func() { errs <- do(i) })
	}
	for i := range requests {
		want := min(limit, requests-i)
		wait.Until(t, fmt.Sprintf("%d requests in flight (round %d)", want, i), func() bool { return f.Now() == want })
		release <- struct{}{}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	if f.Most() != limit {
		t.Errorf("at most %d requests in flight, want %d", f.Most(), limit)
	}
}
