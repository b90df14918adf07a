package control_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mailgate/mailgate/control"
	"github.com/mailgate/mailgate/internal/smtptest"
	"github.com/mailgate/mailgate/outbound"
)

// fakeQueue answers the API with canned values and remembers the calls;
// err, when set, is what every call that can fail returns.
type fakeQueue struct {
	mu    sync.Mutex
	calls []string
	err   error
}

func (q *fakeQueue) called(f string, a ...any) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.calls = append(q.calls, fmt.Sprintf(f, a...))
}

func (q *fakeQueue) reset() {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.calls = nil
}

func (q *fakeQueue) took() []string {
	q.mu.Lock()
	defer q.mu.Unlock()
	return append([]string(nil), q.calls...)
}

var (
	received = time.Date(2026, 12, 7, 8, 0, 0, 0, time.UTC)
	queued   = outbound.QueuedMessage{MID: 7, ICID: 3, Received: received, Size: 1234, From: "alice@example.org",
		Subject: "hello", MessageID: "<1@example.org>", ClientIP: "192.0.2.1",
		Recipients: []outbound.QueuedRecipient{{RID: 0, Addr: "bob@example.com", Destination: "example.com", Status: "pending", Attempts: 2, Reason: "451 later"}}}
)

func (q *fakeQueue) WorkQueue() outbound.WorkQueue {
	q.called("WorkQueue")
	return outbound.WorkQueue{Messages: 2, Recipients: 3, Oldest: received, OldestMID: 7, Status: outbound.Status{Active: 1, Delivered: 10}}
}

func (q *fakeQueue) Messages(domain string, limit int) ([]outbound.QueuedMessage, int, error) {
	q.called("Messages %q %d", domain, limit)
	if q.err != nil {
		return nil, 0, q.err
	}
	return []outbound.QueuedMessage{queued}, 5, nil
}

func (q *fakeQueue) Message(mid uint64) (outbound.QueuedMessage, error) {
	q.called("Message %d", mid)
	if q.err != nil {
		return outbound.QueuedMessage{}, q.err
	}
	m := queued
	m.MID = mid
	return m, nil
}

func (q *fakeQueue) DeliverNow(domain string) (int, int, error) {
	q.called("DeliverNow %q", domain)
	return 4, 6, q.err
}

func (q *fakeQueue) Bounce(mid uint64) (int, error) {
	q.called("Bounce %d", mid)
	return 2, q.err
}

func (q *fakeQueue) Delete(mid uint64) (int, error) {
	q.called("Delete %d", mid)
	return 1, q.err
}

// start serves the API for q on a socket in dir and returns its path and
// the server's log.
func start(t *testing.T, dir string, q control.Queue) (string, *smtptest.Log) {
	t.Helper()
	path := control.SocketPath(dir)
	log := smtptest.NewLog()
	s, err := control.Listen(path, q, slog.New(slog.NewTextHandler(log, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(context.Background()); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return path, log
}

// call is one call of the client, with its answer as JSON.
type call struct {
	name string
	do   func(ctx context.Context, c *control.Client) (any, error)
	want string // the Queue call it makes
}

var calls = []call{
	{"workqueue", func(ctx context.Context, c *control.Client) (any, error) { return c.WorkQueue(ctx) }, `WorkQueue`},
	{"messages", func(ctx context.Context, c *control.Client) (any, error) { return c.Messages(ctx, "", 0) }, `Messages "" 0`},
	{"messages of a domain", func(ctx context.Context, c *control.Client) (any, error) { return c.Messages(ctx, "example.com", 10) }, `Messages "example.com" 10`},
	{"message", func(ctx context.Context, c *control.Client) (any, error) { return c.Message(ctx, 42) }, `Message 42`},
	{"deliver now", func(ctx context.Context, c *control.Client) (any, error) { return c.DeliverNow(ctx, "") }, `DeliverNow ""`},
	{"deliver now for a domain", func(ctx context.Context, c *control.Client) (any, error) { return c.DeliverNow(ctx, "example.com") }, `DeliverNow "example.com"`},
	{"bounce", func(ctx context.Context, c *control.Client) (any, error) { return c.Bounce(ctx, 42) }, `Bounce 42`},
	{"delete", func(ctx context.Context, c *control.Client) (any, error) { return c.Delete(ctx, 18446744073709551615) }, `Delete 18446744073709551615`},
}

// TestAPI: each call of the client reaches the queue with its arguments,
// and its answer comes back whole.
func TestAPI(t *testing.T) {
	q := &fakeQueue{}
	path, _ := start(t, t.TempDir(), q)
	c := control.NewClient(path)
	wq := q.WorkQueue()
	list, total, _ := q.Messages("", 0)
	m, _ := q.Message(42)
	q.reset()
	answers := map[string]any{
		"workqueue":                wq,
		"messages":                 control.MessageList{Total: total, Messages: list},
		"messages of a domain":     control.MessageList{Total: total, Messages: list},
		"message":                  m,
		"deliver now":              control.DeliverNowResult{Ready: 4, Woken: 6},
		"deliver now for a domain": control.DeliverNowResult{Ready: 4, Woken: 6},
		"bounce":                   control.Removed{MID: 42, Recipients: 2},
		"delete":                   control.Removed{MID: 18446744073709551615, Recipients: 1},
	}
	for _, tc := range calls {
		t.Run(tc.name, func(t *testing.T) {
			q.reset()
			got, err := tc.do(context.Background(), c)
			if err != nil {
				t.Fatal(err)
			}
			if calls := q.took(); len(calls) != 1 || calls[0] != tc.want {
				t.Errorf("queue calls %q, want %q", calls, tc.want)
			}
			g, _ := json.Marshal(got)
			w, _ := json.Marshal(answers[tc.name])
			if string(g) != string(w) {
				t.Errorf("answer\n%s\nwant\n%s", g, w)
			}
		})
	}
}

// TestAPIErrors: the queue's errors reach the client as an Error with the
// status that tells them apart, and their text.
func TestAPIErrors(t *testing.T) {
	cases := []struct {
		err    error
		status int
	}{
		{fmt.Errorf("outbound: MID 42: %w", outbound.ErrNoMessage), http.StatusNotFound},
		{outbound.ErrBusy, http.StatusConflict},
		{fmt.Errorf("outbound: deliver now: %w", outbound.ErrSuspended), http.StatusConflict},
		{errors.New("queue: spool closed"), http.StatusInternalServerError},
	}
	q := &fakeQueue{}
	path, _ := start(t, t.TempDir(), q)
	c := control.NewClient(path)
	for _, tc := range cases {
		q.err = tc.err
		for _, cl := range calls {
			if cl.name == "workqueue" {
				continue // it cannot fail
			}
			t.Run(fmt.Sprintf("%d/%s", tc.status, cl.name), func(t *testing.T) {
				_, err := cl.do(context.Background(), c)
				var e *control.Error
				if !errors.As(err, &e) || e.Status != tc.status || e.Message != tc.err.Error() || control.IsUnserved(err) {
					t.Errorf("error %#v, want status %d and %q", err, tc.status, tc.err)
				}
			})
		}
	}
}

// TestBadRequests: what the client never sends is refused before it
// reaches the queue.
func TestBadRequests(t *testing.T) {
	q := &fakeQueue{}
	path, _ := start(t, t.TempDir(), q)
	hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", path)
	}}}
	cases := []struct {
		method, target string
		status         int
		body           string
	}{
		{"GET", "/v1/messages?limit=ten", http.StatusBadRequest, `{"error":"limit \"ten\": not a count"}`},
		{"GET", "/v1/messages?limit=-1", http.StatusBadRequest, `{"error":"limit \"-1\": not a count"}`},
		{"GET", "/v1/messages/x7", http.StatusBadRequest, `{"error":"MID \"x7\": not a number"}`},
		{"POST", "/v1/messages/-1/bounce", http.StatusBadRequest, `{"error":"MID \"-1\": not a number"}`},
		{"GET", "/v1/messages/7/delete", http.StatusMethodNotAllowed, ""},
		{"POST", "/v1/workqueue", http.StatusMethodNotAllowed, ""},
		{"GET", "/v1/nothing", http.StatusNotFound, ""},
	}
	for _, tc := range cases {
		t.Run(tc.method+" "+tc.target, func(t *testing.T) {
			req, err := http.NewRequest(tc.method, "http://mailgate"+tc.target, nil)
			if err != nil {
				t.Fatal(err)
			}
			resp, err := hc.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.status || tc.body != "" && strings.TrimSpace(string(body)) != tc.body {
				t.Errorf("%d %s, want %d %s", resp.StatusCode, body, tc.status, tc.body)
			}
		})
	}
	if calls := q.took(); len(calls) != 0 {
		t.Errorf("the queue was called: %q", calls)
	}
}

// TestNotRunning: no socket, or a socket nobody serves, is ErrNotRunning;
// Close removes the socket.
func TestNotRunning(t *testing.T) {
	dir := t.TempDir()
	path := control.SocketPath(dir)
	if _, err := control.NewClient(path).WorkQueue(context.Background()); !errors.Is(err, control.ErrNotRunning) {
		t.Errorf("no socket: %v", err)
	}

	s, err := control.Listen(path, &fakeQueue{}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := control.NewClient(path).WorkQueue(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("after Close: %v", err)
	}

	// A socket file left by a process that died, with nobody listening.
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	ln.SetUnlinkOnClose(false)
	ln.Close()
	if _, err := control.NewClient(path).WorkQueue(context.Background()); !errors.Is(err, control.ErrNotRunning) {
		t.Errorf("stale socket: %v", err)
	}
}

// TestStaleSocket: Listen replaces a socket a gateway left behind, and
// the new one is for its owner only (0600).
func TestStaleSocket(t *testing.T) {
	dir := t.TempDir()
	path := control.SocketPath(dir)
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	ln.SetUnlinkOnClose(false)
	ln.Close()
	q := &fakeQueue{}
	start(t, dir, q)
	fi, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode()&os.ModeSocket == 0 || fi.Mode().Perm() != 0o600 {
		t.Errorf("socket mode %v, want a socket of mode 0600", fi.Mode())
	}
	if _, err := control.NewClient(path).WorkQueue(context.Background()); err != nil {
		t.Fatal(err)
	}

	// Not a socket: left alone, and Listen fails.
	file := filepath.Join(dir, "file.sock")
	if err := os.WriteFile(file, []byte("data"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := control.Listen(file, q, slog.New(slog.DiscardHandler)); err == nil {
		t.Error("Listen over a regular file succeeded")
	}
	if b, err := os.ReadFile(file); err != nil || string(b) != "data" {
		t.Errorf("the file after Listen: %q, %v", b, err)
	}
}

// TestOtherUserRefused: a connection from another user is closed at once,
// whatever the socket's mode. Root runs a client as nobody.
func TestOtherUserRefused(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root, to connect as another user")
	}
	const python = "/usr/bin/python3" // the system's: nobody may run it
	if _, err := os.Stat(python); err != nil {
		t.Skip(err)
	}
	dir, err := os.MkdirTemp("", "control")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	q := &fakeQueue{}
	path, log := start(t, dir, q)
	// Let nobody reach the socket, so that only the server can refuse.
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o666); err != nil {
		t.Fatal(err)
	}
	const client = `
import socket, sys
s = socket.socket(socket.AF_UNIX)
s.settimeout(20)
s.connect(sys.argv[1])
print("connected")
try:
    s.sendall(b"GET /v1/workqueue HTTP/1.0\r\n\r\n")
    print(repr(s.recv(100)))
except (BrokenPipeError, ConnectionResetError):
    print("closed")
`
	cmd := exec.Command(python, "-c", client, path)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("client as nobody: %v\n%s", err, out)
	}
	// Closed without an answer: the read ends with nothing, or the
	// request meets the closed socket.
	if got := string(out); got != "connected\nb''\n" && got != "connected\nclosed\n" {
		t.Errorf("client as nobody got %q, want the connection closed unanswered", got)
	}
	log.Wait(t, `msg="control: connection refused" uid=65534`)
	if calls := q.took(); len(calls) != 0 {
		t.Errorf("the queue was called: %q", calls)
	}
	// Its own user still gets in.
	if _, err := control.NewClient(path).WorkQueue(context.Background()); err != nil {
		t.Fatal(err)
	}
}
