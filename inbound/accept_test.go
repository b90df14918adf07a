package inbound

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/mailgate/mailgate/config"
	"github.com/mailgate/mailgate/event"
	"github.com/mailgate/mailgate/internal/wait"
	"golang.org/x/sys/unix"
)

// The listening socket shut down under the accept loop (as a closed or
// broken descriptor would): Serve returns the error rather than spin or
// carry on without it, and Serving says so. Shutdown afterwards is quiet.
func TestAcceptLoopDies(t *testing.T) {
	cfg, err := config.Parse([]byte(fmt.Sprintf("data_dir: %s\nlisteners:\n  - {name: In, address: 127.0.0.1:0}\n", t.TempDir())), "test.yaml")
	if err != nil {
		t.Fatal(err)
	}
	srv := &Server{Hostname: "mx.test", Events: event.Discard, Logger: slog.New(slog.DiscardHandler)}
	l, err := srv.Listen(cfg.Listeners[0])
	if err != nil {
		t.Fatal(err)
	}
	if l.Serving() {
		t.Error("Serving before Serve")
	}
	served := make(chan error, 1)
	go func() { served <- l.Serve() }()
	wait.Until(t, "the accept loop runs", l.Serving)
	rc, err := l.ln.(*net.TCPListener).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var serr error
	if err := rc.Control(func(fd uintptr) { serr = unix.Shutdown(int(fd), unix.SHUT_RDWR) }); err != nil || serr != nil {
		t.Fatal(err, serr)
	}
	select {
	case err := <-served:
		if err == nil {
			t.Fatal("Serve returned nil after its socket died")
		}
		t.Logf("Serve: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("Serve goes on after its socket died")
	}
	if l.Serving() {
		t.Error("Serving after the loop died")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	l.Shutdown(ctx)
}
