package smtp

import "testing"

// TestParsePathAllocs: the MAIL and RCPT paths of every message are
// checked without allocating.
func TestParsePathAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	if n := testing.AllocsPerRun(100, func() {
		if _, err := ParsePath("first.last@mail.example.com", false); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Errorf("ParsePath allocates %v times", n)
	}
}
