package tracking_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/mailgate/mailgate/event"
	"github.com/mailgate/mailgate/internal/wait"
	"github.com/mailgate/mailgate/maillog"
	"github.com/mailgate/mailgate/tracking"
)

// Lag is the age of the oldest entry not in the store: it grows while
// the store is not written (before Run, and while the store is down), and
// is 0 once everything is written.
func TestFeedLag(t *testing.T) {
	logPath := filepath.Join(t.TempDir(), "mail.current")
	w, err := maillog.Open(logPath, maillog.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	store := &flakyStore{Store: openTemp(t)}
	f := tracking.NewFeed(tracking.FeedOptions{Host: "gw1", LogPath: logPath, Flush: w.Flush, Interval: 20 * time.Millisecond})
	now := time.Now()
	if lag := f.Lag(now); lag != 0 {
		t.Errorf("Lag of an empty feed = %v", lag)
	}
	f.Emit(event.Entry{Time: now.Add(-5 * time.Second), Level: event.Info, Event: event.StartMID{MID: 1, ICID: 1}})
	f.Emit(event.Entry{Time: now.Add(-time.Second), Level: event.Info, Event: event.Queued{MID: 1}})
	if lag := f.Lag(now); lag != 5*time.Second {
		t.Errorf("Lag before Run = %v, want 5s (the oldest entry)", lag)
	}

	store.down.Store(true)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.Run(ctx, store) }()
	defer func() {
		cancel()
		<-done
	}()
	wait.Until(t, "a write of the feed fails", func() bool { return store.failed.Load() >= 2 })
	if lag := f.Lag(now); lag < 5*time.Second {
		t.Errorf("Lag with the store down = %v, want at least 5s", lag)
	}
	store.down.Store(false)
	wait.Until(t, "the feed catches up", func() bool { return f.Lag(time.Now()) == 0 })
}
