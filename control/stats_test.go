package control_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/mailgate/mailgate/control"
	"github.com/mailgate/mailgate/event"
	"github.com/mailgate/mailgate/internal/smtptest"
	"github.com/mailgate/mailgate/stats"
)

// TestStatsAPI: the status commands reach a real stats.Collector over the
// socket; its errors come back with their statuses.
func TestStatsAPI(t *testing.T) {
	st, err := stats.New(stats.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	for _, ev := range []event.Event{event.NewICID{ICID: 1}, event.StartMID{MID: 1, ICID: 1},
		event.RcptTo{MID: 1, ICID: 1, RID: 0, To: "a@example.com"}, event.Queued{MID: 1}} {
		st.Emit(event.Entry{Time: time.Now(), Level: event.Info, Event: ev})
	}
	path := control.SocketPath(t.TempDir())
	s, err := control.Listen(path, &fakeQueue{}, slog.New(slog.NewTextHandler(smtptest.NewLog(), nil)), control.WithStats(st))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(context.Background())
	c := control.NewClient(path)
	ctx := context.Background()

	got, err := c.Status(ctx, true)
	if err != nil {
		t.Fatal(err)
	}
	if r := got.Counter(stats.InjRecips); r.Reset != 1 || r.Uptime != 1 || r.Lifetime != 1 || len(got.Rates) == 0 || got.Gauges.ConnIn != 1 {
		t.Errorf("status: %+v", got)
	}
	if err := c.ResetCounters(ctx); err != nil {
		t.Fatal(err)
	}
	if got, _ = c.Status(ctx, false); got.Counter(stats.InjRecips).Reset != 0 || got.Counter(stats.InjRecips).Uptime != 1 || len(got.Rates) != 0 {
		t.Errorf("status after resetcounters: %+v", got)
	}

	var e *control.Error
	if _, err := c.TopHosts(ctx, "size", 0); !errors.As(err, &e) || e.Status != http.StatusBadRequest {
		t.Errorf("tophosts with an unknown sort: %v", err)
	}
	// No queue manager attached: the per-destination views cannot answer.
	if _, err := c.TopHosts(ctx, "", 0); !errors.As(err, &e) || e.Status != http.StatusInternalServerError {
		t.Errorf("tophosts without a queue: %v", err)
	}
	if _, err := c.HostStatus(ctx, "example.com"); !errors.As(err, &e) || e.Status != http.StatusInternalServerError {
		t.Errorf("hoststatus without a queue: %v", err)
	}
	// The client sends no bad limit: a hand-made request checks the reply.
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", path)
	}}}
	resp, err := hc.Get("http://mailgate/v1/tophosts?limit=ten")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if want := `{"error":"limit \"ten\": not a count"}`; resp.StatusCode != http.StatusBadRequest || strings.TrimSpace(string(body)) != want {
		t.Errorf("tophosts?limit=ten: %s %s, want 400 %s", resp.Status, body, want)
	}
}

// A server without stats does not serve the status commands.
func TestNoStats(t *testing.T) {
	path, _ := start(t, t.TempDir(), &fakeQueue{})
	var e *control.Error
	if _, err := control.NewClient(path).Status(context.Background(), false); !errors.As(err, &e) || e.Status != http.StatusNotFound || !control.IsUnserved(err) {
		t.Errorf("status without stats: %v", err)
	}
}
