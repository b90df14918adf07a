package maillog

import (
	"os"
	"testing"
	"time"

	"github.com/mailgate/mailgate/event"
)

// Removed is zero until the Writer deletes a rolled file, then the last
// write of the newest it deleted: no later than the oldest file kept.
func TestWriterRemoved(t *testing.T) {
	start := time.Now()
	w, path := openTest(t, Options{MaxSize: 1000, MaxFiles: 2})
	defer closeTest(t, w)
	emit := func(from, to int) {
		t.Helper()
		for i := from; i < to; i++ {
			w.Emit(event.Entry{Time: when, Level: event.Info, Event: event.Queued{MID: uint64(i)}})
			if err := w.Flush(); err != nil {
				t.Fatal(err)
			}
		}
	}
	emit(0, 20) // about two files: none deleted
	rolled, err := RolledFiles(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(rolled) > 2 || !w.Removed().IsZero() {
		t.Fatalf("%d rolled files, Removed %v: want none deleted yet", len(rolled), w.Removed())
	}
	emit(20, 200)
	removed := w.Removed()
	rolled, err = RolledFiles(path)
	if err != nil {
		t.Fatal(err)
	}
	oldest, err := os.Stat(rolled[0])
	if err != nil {
		t.Fatal(err)
	}
	if removed.IsZero() || removed.Before(start.Add(-time.Second)) || removed.After(oldest.ModTime()) {
		t.Errorf("Removed %v: want after the start %v and no later than the oldest file kept (%v)", removed, start, oldest.ModTime())
	}
}
