package sqlrow

import (
	"reflect"
	"testing"
	"time"

	"github.com/mailgate/mailgate/event"
	"github.com/mailgate/mailgate/tracking"
)

// TestLinesCodec: a line's Prefix (the text before its message, as logged)
// is stored and read back; rows written before prefixes were kept still
// read.
func TestLinesCodec(t *testing.T) {
	at := time.Date(2026, 6, 26, 10, 42, 23, 0, time.UTC)
	lines := []tracking.Line{
		{Time: at, Level: event.Info, Text: "MID 100 queued for delivery", Prefix: "Jun 26 10:42:23 esa1.example.edu mail_logs: Info: "},
		{Time: at.Add(time.Microsecond), Level: event.Info, Text: "MID 100 ready 5 bytes from <a@b>"},
		{Time: at.Add(2 * time.Microsecond), Level: event.Warning, Text: "x+3 y", Prefix: "Warning: "},
	}
	back, err := DecodeLines(EncodeLines(lines))
	if err != nil || !reflect.DeepEqual(back, lines) {
		t.Fatalf("DecodeLines(EncodeLines(%+v)) = %+v, %v", lines, back, err)
	}
	old, err := DecodeLines("1782470543000000000 3 MID 100 queued for delivery\n")
	if err != nil || len(old) != 1 || old[0].Text != "MID 100 queued for delivery" || old[0].Prefix != "" {
		t.Fatalf("old row: %+v, %v", old, err)
	}
	for _, bad := range []string{"1 3+ x\n", "1 3+99 short\n", "1 3+-1 x\n"} {
		if _, err := DecodeLines(bad); err == nil {
			t.Errorf("DecodeLines(%q) took a bad prefix length", bad)
		}
	}
}
