package outbound_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mailgate/mailgate/event"
	"github.com/mailgate/mailgate/internal/smtptest"
	"github.com/mailgate/mailgate/queue"
)

// BenchmarkDelivery measures delivery to Postfix's smtp-sink through an
// SMTP route: b.N messages of 1 KB waiting in the spool (fsync on, as in
// production) are delivered with 20 and 100 connections. msgs/s counts
// from Start to the last message recorded finished in the spool.
func BenchmarkDelivery(b *testing.B) {
	for _, conns := range []int{20, 100} {
		b.Run(fmt.Sprintf("conns=%d", conns), func(b *testing.B) {
			sink := smtptest.Sink(b, "127.0.0.1:0")
			finished := &countFinished{want: b.N, done: make(chan struct{})}
			g := newGateway(b, setup{defer_: true, events: finished, yaml: fmt.Sprintf(
				"delivery:\n  max_concurrency: %d\n  destinations: [{domain: default, max_connections: %d}]\nroutes: [{domain: ALL, hosts: [%q]}]\n",
				conns, conns, sink)})
			body := []byte("From: <alice@gw.test>\r\nTo: <bob@d.test>\r\nSubject: benchmark\r\n\r\n" + strings.Repeat("0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ=\r\n", 15))
			commitAll(b, g, b.N, body)
			b.ResetTimer()
			start := time.Now()
			g.start()
			select {
			case <-finished.done:
			case <-time.After(10 * time.Minute):
				b.Fatalf("after 10 minutes: %+v", g.m.Status())
			}
			elapsed := time.Since(start)
			b.StopTimer()
			b.ReportMetric(float64(b.N)/elapsed.Seconds(), "msgs/s")
		})
	}
}

// countFinished is an event sink that closes done at the want-th
// "Message finished", logged once the spool has recorded it.
type countFinished struct {
	mu   sync.Mutex
	n    int
	want int
	done chan struct{}
}

func (c *countFinished) Emit(e event.Entry) {
	if _, ok := e.Event.(event.MessageFinished); !ok {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n++; c.n == c.want {
		close(c.done)
	}
}

// commitAll puts n messages in the spool from 32 goroutines, so that
// their commits share fsyncs.
func commitAll(b *testing.B, g *gateway, n int, body []byte) {
	var wg sync.WaitGroup
	work := make(chan int)
	for w := 0; w < 32; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				mid, err := g.ids.Next(queue.MID)
				if err != nil {
					b.Error(err)
					return
				}
				env := &queue.Envelope{MID: mid, From: "alice@gw.test", Received: time.Now(),
					Rcpts: []queue.Recipient{{RID: 0, Addr: fmt.Sprintf("bob%d@d.test", i)}}}
				if err := g.spool.Commit(context.Background(), env, body); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	for i := 0; i < n; i++ {
		work <- i
	}
	close(work)
	wg.Wait()
}
