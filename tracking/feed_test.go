package tracking_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mailgate/mailgate/event"
	"github.com/mailgate/mailgate/internal/wait"
	"github.com/mailgate/mailgate/maillog"

	"github.com/mailgate/mailgate/tracking"
)

// flakyStore fails every call while down is set, and counts the calls
// it failed.
type flakyStore struct {
	tracking.Store
	down   atomic.Bool
	failed atomic.Int64
}

var errDown = errors.New("store down")

func (f *flakyStore) Write(ctx context.Context, b *tracking.Batch) error {
	if f.down.Load() {
		f.failed.Add(1)
		return errDown
	}
	return f.Store.Write(ctx, b)
}

func (f *flakyStore) Load(ctx context.Context, k tracking.Keys) (*tracking.Batch, error) {
	if f.down.Load() {
		f.failed.Add(1)
		return nil, errDown
	}
	return f.Store.Load(ctx, k)
}

// emitMessage emits the lines of one message received and delivered, as
// the gateway does, with real times.
func emitMessage(sink event.Sink, mid uint64) {
	now := time.Now()
	for _, ev := range []event.Event{
		event.NewICID{ICID: mid, Interface: "Management", InterfaceIP: "127.0.0.1", RemoteIP: "127.0.0.1", ReverseHost: "localhost", Verified: true},
		event.StartMID{MID: mid, ICID: mid},
		event.MailFrom{MID: mid, ICID: mid, From: "a@example.org"},
		event.RcptTo{MID: mid, ICID: mid, RID: 0, To: "b@example.net"},
		event.Subject{MID: mid, Subject: "feed test", Quote: '\''},
		event.Ready{MID: mid, Bytes: 100, From: "a@example.org"},
		event.Queued{MID: mid},
		event.ICIDClose{ICID: mid},
		event.NewDCID{DCID: mid, InterfaceIP: "127.0.0.1", RemoteIP: "127.0.0.2", Port: 25},
		event.DeliveryStart{DCID: mid, MID: mid, RIDs: []int{0}},
		event.MessageDone{DCID: mid, MID: mid, RIDs: []int{0}},
		event.MessageFinished{MID: mid, Status: event.FinishedDone},
		event.DCIDClose{DCID: mid},
	} {
		sink.Emit(event.Entry{Time: now, Level: event.Info, Event: ev})
	}
}

func waitDelivered(t *testing.T, s tracking.Store, n int) {
	t.Helper()
	wait.Until(t, fmt.Sprintf("%d messages delivered in the store", n), func() bool {
		ms, err := s.Search(context.Background(), tracking.Query{Status: tracking.Delivered, Limit: 10000})
		if err != nil {
			t.Fatal(err)
		}
		return len(ms) == n
	})
}

// TestFeedCatchesUp: entries that did not fit in the feed's buffer, and
// those held while the store was down, reach the store from the mail log.
func TestFeedCatchesUp(t *testing.T) {
	dir := t.TempDir()
	logPath := filepath.Join(dir, "mail.current")
	// The writer keeps its lines until the feed flushes it before a catch-up.
	w, err := maillog.Open(logPath, maillog.Options{FlushInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	store := &flakyStore{Store: openTemp(t)}
	f := tracking.NewFeed(tracking.FeedOptions{Host: "gw1", LogPath: logPath, Flush: w.Flush, Buffer: 8, Interval: 20 * time.Millisecond})
	sink := event.Multi{w, f}

	// Before Run: the buffer overflows at once.
	for mid := uint64(1); mid <= 20; mid++ {
		emitMessage(sink, mid)
	}
	if f.Dropped() == 0 {
		t.Fatal("nothing dropped: the test does not test the catch-up")
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.Run(ctx, store) }()
	waitDelivered(t, store, 20)

	// Running: a burst overflows the buffer, then the store goes down
	// for a while.
	for mid := uint64(21); mid <= 60; mid++ {
		emitMessage(sink, mid)
	}
	store.down.Store(true)
	for mid := uint64(61); mid <= 80; mid++ {
		emitMessage(sink, mid)
	}
	// Down until the feed has met the outage: a call failed, and the one
	// tried after it.
	wait.Until(t, "two calls of the feed fail", func() bool { return store.failed.Load() >= 2 })
	store.down.Store(false)
	emitMessage(sink, 81)
	waitDelivered(t, store, 81)
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
