package health_test

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/mailgate/mailgate/config"
	"github.com/mailgate/mailgate/event"
	"github.com/mailgate/mailgate/health"
	"github.com/mailgate/mailgate/inbound"
	"github.com/mailgate/mailgate/internal/wait"
	"github.com/mailgate/mailgate/queue"
)

// Readiness with real parts: starting until the spool and listeners are
// given; ready while the listener's accept loop runs; not once it stops,
// nor when the gateway is stopping.
func TestProblems(t *testing.T) {
	dir := t.TempDir()
	var c health.Checker
	if p := c.Problems(); len(p) != 2 {
		t.Errorf("before start: %q, want the spool and the listeners starting", p)
	}
	sp, err := queue.Open(filepath.Join(dir, "spool"), queue.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Close()
	cfg, err := config.Parse([]byte(fmt.Sprintf("data_dir: %s\nlisteners:\n  - {name: In, address: 127.0.0.1:0}\n", dir)), "test.yaml")
	if err != nil {
		t.Fatal(err)
	}
	srv := &inbound.Server{Hostname: "mx.test", Events: event.Discard, Logger: slog.New(slog.DiscardHandler)}
	l, err := srv.Listen(cfg.Listeners[0])
	if err != nil {
		t.Fatal(err)
	}
	c.SetSpool(sp)
	c.SetListeners([]health.Listener{l})
	if p := c.Problems(); !slices.Equal(p, []string{"listener In: not accepting connections"}) {
		t.Errorf("listener not serving: %q", p)
	}
	served := make(chan error, 1)
	go func() { served <- l.Serve() }()
	wait.Until(t, "ready", func() bool { return len(c.Problems()) == 0 })
	c.Stopping()
	if p := c.Problems(); !slices.Equal(p, []string{"shutting down"}) {
		t.Errorf("stopping: %q", p)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	l.Shutdown(ctx)
	<-served
	if p := c.Problems(); len(p) != 2 {
		t.Errorf("after the listener's shutdown: %q", p)
	}
}
