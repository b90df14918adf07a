package tracking_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/mailgate/mailgate/event"
	"github.com/mailgate/mailgate/tracking"
	"github.com/mailgate/mailgate/tracking/explain"
)

// A health check is a connection of its own cause, not lost, with no
// message: the abort report counts only the message the next connection
// from the same checker address lost.
func TestHealthCheckConnection(t *testing.T) {
	s := openTemp(t)
	importFiles(t, s, 1000, filepath.Join("testdata/fold", "health-check.log"))
	ctx := context.Background()
	b, err := s.Load(ctx, tracking.Keys{Conns: []tracking.ConnKey{{Host: "gw1", Kind: event.InboundConn, ID: 400}}})
	if err != nil {
		t.Fatal(err)
	}
	if len(b.Conns) != 1 {
		t.Fatalf("connections %+v, want ICID 400", b.Conns)
	}
	if c := b.Conns[0]; c.Cause != "health-check" || c.Lost || len(c.MIDs) != 0 {
		t.Errorf("ICID 400: cause %q, lost %v, MIDs %v", c.Cause, c.Lost, c.MIDs)
	}
	ms, err := s.Search(ctx, tracking.Query{Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	r := explain.Aborts(ms)
	if r.Total != 1 || len(r.ByKind) != 1 || r.ByKind[0].Value != string(tracking.AbortPeerClosed) {
		t.Errorf("abort report %+v, want the one message lost", r)
	}
}
