package outbound

import (
	"strings"
	"testing"
	"time"

	"github.com/mailgate/mailgate/config"
	"github.com/mailgate/mailgate/queue"
	"github.com/mailgate/mailgate/smtp/status"
)

func TestReplyStatus(t *testing.T) {
	cases := []struct {
		code     int
		enhanced string
		text     string
		st       step
		want     string
	}{
		{550, "5.1.1", "user unknown", stepRcpt, "5.1.1"},
		{550, "", "5.1.1 user unknown", stepRcpt, "5.1.1"},      // ENHANCEDSTATUSCODES not announced
		{553, "", "#5.1.8 Domain of sender", stepMail, "5.1.8"}, // the ESA's way
		{550, "4.1.1", "class disagrees", stepRcpt, "5.1.1"},    // RFC 3463: the basic code wins
		{550, "", "4.7.1 class disagrees", stepRcpt, "5.7.1"},   // same, from the text
		{550, "5.01.1", "leading zero", stepRcpt, "5.1.0"},      // not a valid code: derived
		{550, "", "5.1.1.1 too many parts", stepRcpt, "5.1.0"},  // not a code
		{550, "", "5.1.1234 too long", stepRcpt, "5.1.0"},       // not a code
		{550, "", "Relaying denied", stepRcpt, "5.1.0"},         // the ESA's X.1.0
		{451, "", "try later", stepRcpt, "4.1.0"},
		{501, "", "bad address", stepMail, "5.1.0"},
		{421, "", "closing", stepRcpt, "4.3.2"},
		{421, "", "closing", stepConnect, "4.3.2"},
		{554, "", "no service", stepConnect, "5.3.2"},
		{452, "", "insufficient storage", stepRcpt, "4.3.1"},
		{552, "", "too big", stepData, "5.3.4"},
		{552, "", "mailbox full", stepRcpt, "5.2.2"},
		{530, "", "authentication required", stepMail, "5.7.0"},
		{554, "", "refused", stepData, "5.3.0"},
		{451, "", "local error", stepData, "4.3.0"},
		{250, "", "odd", stepData, "4.3.0"}, // not a failure where one was due: retry
	}
	for _, c := range cases {
		if got := replyStatus(c.code, c.enhanced, c.text, c.st); got != c.want {
			t.Errorf("replyStatus(%d, %q, %q, %d) = %s, want %s", c.code, c.enhanced, c.text, c.st, got, c.want)
		}
	}
}

// FuzzReplyStatus: whatever a server replies, the status is a valid RFC
// 3463 code of the reply's class (a DSN needs one), and its reason text.
func FuzzReplyStatus(f *testing.F) {
	f.Add(550, "5.1.1", "user unknown", uint8(stepRcpt))
	f.Add(421, "", "#4.3.2 later", uint8(stepConnect))
	f.Add(554, "", "5.7.1\nsecond line", uint8(stepData))
	f.Add(0, "x", "", uint8(9))
	f.Fuzz(func(t *testing.T, code int, enhanced, text string, st uint8) {
		s := replyStatus(code, enhanced, text, step(st))
		if !status.Valid(s) {
			t.Fatalf("replyStatus(%d, %q, %q) = %q: not a status code", code, enhanced, text, s)
		}
		want := byte('4')
		if code/100 == 5 {
			want = '5'
		}
		if s[0] != want {
			t.Fatalf("replyStatus(%d, ...) = %s: class differs from the code's", code, s)
		}
		if status.Reason(s) == "" {
			t.Fatalf("no reason for %s", s)
		}
	})
}

func TestRetrySchedule(t *testing.T) {
	d := config.Delivery{Bounce: config.Bounce{InitialRetry: time.Minute, MaxRetry: time.Hour, MaxTimeInQueue: 72 * time.Hour, MaxRetries: 5}}
	m := &Manager{o: Options{Delivery: d}}
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	msg := &message{arrived: now}
	var got []string
	for a := 1; a <= 9; a++ {
		got = append(got, m.retryAt(msg, a, now).Sub(now).String())
	}
	want := "1m0s 2m0s 4m0s 8m0s 16m0s 32m0s 1h0m0s 1h0m0s 1h0m0s"
	if strings.Join(got, " ") != want {
		t.Errorf("retry intervals %s, want %s", strings.Join(got, " "), want)
	}
	// The last try is at the end of the time in queue, not after it.
	late := now.Add(72*time.Hour - 10*time.Minute)
	if at := m.retryAt(msg, 9, late); !at.Equal(now.Add(72 * time.Hour)) {
		t.Errorf("retry near expiry at %v, want at the expiry %v", at, now.Add(72*time.Hour))
	}
	for _, c := range []struct {
		attempts int
		at       time.Time
		want     bool
	}{
		{1, now, false},
		{5, now, false},
		{6, now, true}, // the first attempt and 5 retries
		{1, now.Add(72 * time.Hour), true},
		{1, now.Add(72*time.Hour - time.Second), false},
	} {
		if got := m.expired(msg, queue.RecipientState{Attempts: c.attempts}, c.at); got != c.want {
			t.Errorf("expired(attempts %d at +%v) = %v, want %v", c.attempts, c.at.Sub(now), got, c.want)
		}
	}
}
