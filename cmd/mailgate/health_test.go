package main

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/mailgate/mailgate/internal/tmpfs"
	"github.com/mailgate/mailgate/internal/wait"
)

const healthConfig = `hostname: mx.test
data_dir: %s
shutdown_timeout: 10s
min_free_space: 4M
listeners:
  - {name: InboundMail, interface: Management, address: %s}
delivery: {suspended: true}
tracking: {enabled: false}
http: {address: "%s"}
`

// /healthz and /readyz of the running binary: ready; not ready while the
// spool's disk is below its floor, and again ready when space returns;
// not ready during the drain of a shutdown, while /healthz still answers.
func TestReadyz(t *testing.T) {
	mnt := tmpfs.Mount(t, 24<<20)
	g := newGW(t, "10s")
	g.dir = filepath.Join(mnt, "data")
	web := freePort(t)
	if err := os.WriteFile(g.config, []byte(fmt.Sprintf(healthConfig, g.dir, g.addr, web)), 0o644); err != nil {
		t.Fatal(err)
	}
	g.start()
	base := "http://" + web
	readyz := func() (int, string) { return fetch(t, base+"/readyz", "") }
	if code, body := readyz(); code != http.StatusOK || body != "ready\n" {
		t.Fatalf("/readyz: %d %q", code, body)
	}
	if code, body := fetch(t, base+"/healthz", ""); code != http.StatusOK || body != "ok\n" {
		t.Fatalf("/healthz: %d %q", code, body)
	}

	filler := tmpfs.Fill(t, mnt, "filler", 3<<20)
	wait.Until(t, "not ready below the floor", func() bool {
		code, body := readyz()
		return code == http.StatusServiceUnavailable && strings.Contains(body, "disk below its free-space floor")
	})
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	wait.Until(t, "ready again", func() bool { code, _ := readyz(); return code == http.StatusOK })

	// A session in DATA holds the drain (up to shutdown_timeout).
	c := dialSMTP(t, g.addr)
	c.Cmd("EHLO client.test", "250")
	c.Cmd("MAIL FROM:<a@example.org>", "250")
	c.Cmd("RCPT TO:<b@example.net>", "250")
	c.Cmd("DATA", "354")
	g.signal(syscall.SIGTERM)
	wait.Until(t, "not ready while shutting down", func() bool {
		code, body := readyz()
		return code == http.StatusServiceUnavailable && strings.Contains(body, "shutting down")
	})
	if code, _ := fetch(t, base+"/healthz", ""); code != http.StatusOK {
		t.Errorf("/healthz while shutting down: %d", code)
	}
	c.Send("Subject: last\r\n\r\nlast\r\n.\r\n")
	c.Expect("250")
	if err := g.wait(); err != nil {
		t.Errorf("exit: %v", err)
	}
}
