package web

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

const chromiumPath = "/usr/bin/chromium"

// TestPageInChromium checks the page as an administrator sees it: it
// serves the fixture store with an access token and runs e2e/page.mjs,
// which drives Debian's Chromium through playwright-core (installed by
// `npm ci` in web/e2e). Without node, Chromium or the node modules the
// test is skipped, except in CI (CI=1), where it must run.
func TestPageInChromium(t *testing.T) {
	node := needBrowser(t)

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	token := rand.Text()
	h := Handler(Options{Store: fixtureStore(t), Token: token, Now: func() time.Time { return fixtureNow }})
	srvCtx, stop := context.WithCancel(ctx)
	served := make(chan error, 1)
	go func() { served <- Serve(srvCtx, ln, h) }()
	defer func() {
		stop()
		if err := <-served; err != nil {
			t.Errorf("Serve: %v", err)
		}
	}()

	var out bytes.Buffer
	cmd := exec.CommandContext(ctx, node, "e2e/page.mjs", "http://"+ln.Addr().String(), token)
	cmd.Stdout, cmd.Stderr = &out, &out
	// SIGTERM lets playwright close Chromium; a killed node would leave it
	// running.
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 15 * time.Second
	err = cmd.Run()
	t.Logf("node e2e/page.mjs:\n%s", out.Bytes())
	if err != nil {
		if ctx.Err() != nil {
			err = errors.Join(err, ctx.Err())
		}
		t.Fatalf("the browser checks failed (screenshots in web/e2e/out/): %v", err)
	}
}

// needBrowser returns node's path, or skips the test when the browser test
// cannot run here.
func needBrowser(t *testing.T) string {
	t.Helper()
	missing := func(what string) {
		t.Helper()
		if os.Getenv("CI") == "1" {
			t.Fatalf("CI=1 and %s: the browser test must run in CI (see .ci/run)", what)
		}
		t.Skipf("%s: skipping the browser test (apt-get install chromium; cd web/e2e && npm ci)", what)
	}
	node, err := exec.LookPath("node")
	if err != nil {
		missing("no node")
	}
	if v, err := exec.Command(node, "--version").Output(); err != nil || nodeMajor(string(v)) < 20 {
		missing(fmt.Sprintf("node %s is older than 20, which playwright-core needs", bytes.TrimSpace(v)))
	}
	if _, err := os.Stat(chromiumPath); err != nil {
		missing("no " + chromiumPath)
	}
	if _, err := os.Stat("e2e/node_modules/playwright-core/package.json"); err != nil {
		missing("no web/e2e/node_modules")
	}
	return node
}

// nodeMajor reads the major version of `node --version` ("v20.20.2").
func nodeMajor(v string) int {
	major, _, _ := strings.Cut(strings.TrimPrefix(strings.TrimSpace(v), "v"), ".")
	n, _ := strconv.Atoi(major)
	return n
}
