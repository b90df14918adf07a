package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

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
