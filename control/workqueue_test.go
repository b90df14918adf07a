package control_test

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"testing"
	"time"

	"github.com/mailgate/mailgate/control"
	"github.com/mailgate/mailgate/workqueue"
)

type fakeWork struct{ st workqueue.Status }

func (w fakeWork) Status() workqueue.Status { return w.st }

// TestWorkQueueAPI: without a work queue GET /v1/work is a 404 the client
// reports as such; with one, its status comes back whole.
func TestWorkQueueAPI(t *testing.T) {
	ctx := context.Background()
	path := control.SocketPath(t.TempDir())
	s, err := control.Listen(path, &fakeQueue{}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(ctx)
	c := control.NewClient(path)
	var ce *control.Error
	if _, err := c.Work(ctx); !errors.As(err, &ce) || ce.Status != http.StatusNotFound {
		t.Fatalf("Work without a work queue = %v, want a 404", err)
	}
	want := workqueue.Status{Messages: 3, Working: 2, Retrying: 1, Oldest: time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC),
		In: 10, Out: 7, Workers: 2, Since: time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC), Rate: workqueue.Rate{Window: time.Minute, In: 0.5, Out: 0.25}}
	s.ServeWorkQueue(fakeWork{want})
	got, err := c.Work(ctx)
	if err != nil || got != want {
		t.Errorf("Work = %+v, %v; want %+v", got, err, want)
	}
}
