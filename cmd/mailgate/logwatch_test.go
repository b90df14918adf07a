package main

import (
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mailgate/mailgate/event"
	"github.com/mailgate/mailgate/internal/smtptest"
	"github.com/mailgate/mailgate/internal/tmpfs"
	"github.com/mailgate/mailgate/maillog"
)

// A mail log on a full disk: its failures reach the gateway's log, each
// time they grow, not only the first; and its recovery too.
func TestMailLogFailuresLogged(t *testing.T) {
	dir := tmpfs.Mount(t, 1<<20)
	w, err := maillog.Open(filepath.Join(dir, "mail_logs.current"), maillog.Options{FlushInterval: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	out := smtptest.NewLog()
	lw := watchMailLog(w, slog.New(slog.NewTextHandler(out, nil)), 20*time.Millisecond)
	defer lw.close()

	filler := tmpfs.Fill(t, dir, "filler", 0)
	// More than a page: a tmpfs takes a write into a page it has already.
	emit := func() {
		for range 100 {
			w.Emit(event.Entry{Level: event.Info, Event: event.Queued{MID: 1}})
		}
	}
	emit()
	out.Wait(t, "mailgate: mail log writes failing")
	// A second failure, after the first was reported, is reported too.
	n := strings.Count(out.String(), "writes failing")
	emit()
	out.Wait(t, strings.Repeat("writes failing(.|\n)*", n+1))
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	emit()
	out.Wait(t, "mailgate: mail log writes work again")
	if log := out.String(); !strings.Contains(log, "no space left on device") || !strings.Contains(log, "lines_lost=") {
		t.Errorf("the log does not say what failed:\n%s", log)
	}
}
