package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mailgate/mailgate/internal/wait"
	"github.com/mailgate/mailgate/tracking"
	"github.com/mailgate/mailgate/tracking/sqlitestore"
	"github.com/mailgate/mailgate/tracking/storetest"
)

// track warns on stderr when the range it searched spans a gap the feed
// recorded, and only then; stdout (--json) stays the records alone.
func TestTrackWarnsOfGaps(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	cfg := filepath.Join(dir, "mailgate.yaml")
	if err := os.WriteFile(cfg, []byte("hostname: mx.test\ndata_dir: "+dir+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := sqlitestore.Open(ctx, filepath.Join(dir, "tracking.db"))
	if err != nil {
		t.Fatal(err)
	}
	b := storetest.Messages("mx.test", 1, 3, false)
	start := b.Messages[0].Started
	if err := s.Write(ctx, b); err != nil {
		t.Fatal(err)
	}
	if err := s.AddGap(ctx, tracking.Gap{Host: "mx.test", From: start.Add(-time.Hour), To: start.Add(-time.Minute), Noted: start}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	stamp := func(t time.Time) string { return t.Format(time.RFC3339) }
	for _, tt := range []struct {
		args []string
		warn bool
	}{
		{nil, true},
		{[]string{"--json"}, true},
		{[]string{"--since", stamp(start.Add(-2 * time.Hour)), "--until", stamp(start.Add(-30 * time.Minute))}, true},
		{[]string{"--since", stamp(start)}, false},
		{[]string{"--host", "other.test"}, false},
	} {
		var stdout, stderr bytes.Buffer
		trackCmd(append([]string{"--config", cfg}, tt.args...), &stdout, &stderr)
		warned := strings.Contains(stderr.String(), "records of mx.test between") &&
			strings.Contains(stderr.String(), "may be missing or incomplete: the mail log rolled away")
		if warned != tt.warn {
			t.Errorf("track %q: warned %v, want %v; stderr:\n%s", tt.args, warned, tt.warn, stderr.String())
		}
		if strings.Contains(stdout.String(), "rolled away") {
			t.Errorf("track %q: the warning is on stdout", tt.args)
		}
	}
}

// serve prunes the tracking store as tracking.retention says, and its
// feed records the stretch between the store's newest line and the mail
// log's oldest (the log of those old messages is gone): track warns of it.
func TestServePrunesAndRecordsGap(t *testing.T) {
	ctx := context.Background()
	g := newGW(t, "5s")
	cfg, err := os.ReadFile(g.config)
	if err != nil {
		t.Fatal(err)
	}
	cfg = append(cfg, "tracking: {retention: {max_age: 1h}}\n"...)
	if err := os.WriteFile(g.config, cfg, 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := sqlitestore.Open(ctx, filepath.Join(g.dir, "tracking.db"))
	if err != nil {
		t.Fatal(err)
	}
	old := storetest.Messages("mx.test", 1, 50, true) // in 2024
	if err := s.Write(ctx, old); err != nil {
		t.Fatal(err)
	}
	s.Close()
	g.start()
	g.stderr.Wait(t, `level=INFO msg="tracking: retention deleted old records" messages=50`)
	g.stderr.Wait(t, `level=WARN msg="tracking: the mail log rolled away lines before they were stored`)
	// The feed logs the gap, then records it.
	var stdout, stderr bytes.Buffer
	wait.Until(t, "track warns of the gap", func() bool {
		stdout.Reset()
		stderr.Reset()
		trackCmd([]string{"--config", g.config, "--since", "2024-01-01"}, &stdout, &stderr)
		return strings.Contains(stderr.String(), "records of mx.test between")
	})
	if strings.Contains(stdout.String(), "Invoice") {
		t.Errorf("track after pruning:\n%s", stdout.String())
	}
}
