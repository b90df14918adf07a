package tracking_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mailgate/mailgate/event"
	"github.com/mailgate/mailgate/internal/wait"
	"github.com/mailgate/mailgate/maillog"

	"github.com/mailgate/mailgate/tracking"
)

// logBuffer is the feed's slog output, read while the feed writes it.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// gapStore is a flakyStore whose AddGap fails the first refuse times.
type gapStore struct {
	*flakyStore
	refuse atomic.Int64
}

func (g *gapStore) AddGap(ctx context.Context, gap tracking.Gap) error {
	if g.refuse.Add(-1) >= 0 {
		return errDown
	}
	return g.flakyStore.AddGap(ctx, gap)
}

// logHolds reports whether the mail log's files still hold s.
func logHolds(t *testing.T, logPath, s string) bool {
	rolled, err := maillog.RolledFiles(logPath)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range append(rolled, logPath) {
		b, err := os.ReadFile(name)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			t.Fatal(err)
		}
		if bytes.Contains(b, []byte(s)) {
			return true
		}
	}
	return false
}

// TestFeedRecordsGap: while the store is down, the mail log rolls the
// lines it misses away (a few small files). The feed cannot read them
// back: it records the stretch lost in the store, says so once in the
// gateway's log and counts it; every message is stored or in the gap.
func TestFeedRecordsGap(t *testing.T) {
	dir := t.TempDir()
	logPath := filepath.Join(dir, "mail.current")
	w, err := maillog.Open(logPath, maillog.Options{MaxSize: 8 << 10, MaxFiles: 2, FlushInterval: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	// The first gap cannot be recorded at once: the feed tries again.
	store := &gapStore{flakyStore: &flakyStore{Store: openTemp(t)}}
	store.refuse.Store(1)
	var logs logBuffer
	f := tracking.NewFeed(tracking.FeedOptions{Host: "gw1", LogPath: logPath, Flush: w.Flush, Removed: w.Removed, Buffer: 64,
		Interval: 20 * time.Millisecond, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	sink := event.Multi{w, f}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.Run(ctx, store) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	found := func(mid uint64) bool {
		_, _, err := store.Find(context.Background(), "gw1", mid)
		if err != nil && !errors.Is(err, tracking.ErrNotFound) {
			t.Fatal(err)
		}
		return err == nil
	}
	emitted := map[uint64]time.Time{}
	emit := func(mid uint64) {
		emitted[mid] = time.Now()
		emitMessage(sink, mid)
	}
	emit(1)
	wait.Until(t, "message 1 stored", func() bool { return found(1) })

	store.down.Store(true)
	const last = 300
	for mid := uint64(2); mid < last; mid++ {
		emit(mid)
	}
	wait.Until(t, "two calls of the feed fail", func() bool { return store.failed.Load() >= 2 })
	wait.Until(t, "the mail log rolls message 2 away", func() bool { return !logHolds(t, logPath, "Start MID 2 ICID") })
	store.down.Store(false)
	emit(last)

	var gaps []tracking.Gap
	defer func() {
		if t.Failed() {
			t.Log(logs.String())
		}
	}()
	wait.Until(t, "a gap recorded and the last message stored", func() bool {
		if gaps, err = store.Gaps(context.Background(), time.Time{}, time.Time{}); err != nil {
			t.Fatal(err)
		}
		return len(gaps) > 0 && found(last)
	})
	if len(gaps) != 1 {
		t.Fatalf("gaps %v, want one", gaps)
	}
	g := gaps[0]
	if g.Host != "gw1" || g.From.After(emitted[2]) || !g.To.After(g.From) {
		t.Errorf("gap %+v: want gw1's, from at most %v (message 2)", g, emitted[2])
	}
	if f.Lost() < 1 {
		t.Errorf("Lost() = %d, want the gap counted", f.Lost())
	}
	if n := strings.Count(logs.String(), "rolled away lines before they were stored"); n != int(f.Lost()) || !strings.Contains(logs.String(), "level=WARN") {
		t.Errorf("the gateway's log tells of %d gaps, Lost() %d:\n%s", n, f.Lost(), logs.String())
	}
	// No silent loss: a message the store misses is in the gap (the log's
	// times are to the second).
	missing := 0
	for mid, at := range emitted {
		if found(mid) {
			continue
		}
		missing++
		if at.Before(g.From) || !at.Before(g.To.Add(time.Second)) {
			t.Errorf("message %d (%v) is neither stored nor in the gap %v - %v", mid, at, g.From, g.To)
		}
	}
	if missing == 0 {
		t.Error("no message missing: the test does not test a loss")
	}
}

// TestFeedRecordsGapAtStart: the store's newest line of this gateway is
// older than the mail log's oldest (a previous run's files were rolled
// away, which the writer of this run cannot tell): the feed records the
// gap when it starts.
func TestFeedRecordsGapAtStart(t *testing.T) {
	logPath := filepath.Join(t.TempDir(), "mail.current")
	w, err := maillog.Open(logPath, maillog.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	store := openTemp(t)
	stored := time.Now().Add(-time.Hour).Truncate(time.Second)
	if err := store.Write(context.Background(), &tracking.Batch{Watermarks: map[string]time.Time{"gw1": stored}}); err != nil {
		t.Fatal(err)
	}
	var logs logBuffer
	f := tracking.NewFeed(tracking.FeedOptions{Host: "gw1", LogPath: logPath, Flush: w.Flush, Removed: w.Removed,
		Interval: 20 * time.Millisecond, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	emitMessage(event.Multi{w, f}, 1)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.Run(ctx, store) }()
	var gaps []tracking.Gap
	wait.Until(t, "a gap recorded", func() bool {
		if gaps, err = store.Gaps(context.Background(), time.Time{}, time.Time{}); err != nil {
			t.Fatal(err)
		}
		return len(gaps) > 0
	})
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if len(gaps) != 1 || !gaps[0].From.Equal(stored) || gaps[0].To.Before(stored.Add(time.Hour-time.Second)) {
		t.Errorf("gaps %v, want one from %v to about an hour later", gaps, stored)
	}
	if f.Lost() != 1 || strings.Count(logs.String(), "rolled away lines before they were stored") != 1 {
		t.Errorf("Lost() = %d; the gateway's log:\n%s", f.Lost(), logs.String())
	}
}
