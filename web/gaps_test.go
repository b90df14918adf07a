package web

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/mailgate/mailgate/tracking"
)

func TestAPIGaps(t *testing.T) {
	s := fixtureStore(t)
	at := func(h int) time.Time { return fixtureNow.Add(time.Duration(h) * time.Hour) }
	for _, g := range []tracking.Gap{
		{Host: "esa1.example.com", From: at(-30), To: at(-29), Noted: at(-29)},
		{Host: "esa2.example.com", From: at(-3), To: at(-2), Noted: at(-2)},
	} {
		if err := s.AddGap(context.Background(), g); err != nil {
			t.Fatal(err)
		}
	}
	srv := httptest.NewServer(Handler(Options{Store: s, Now: func() time.Time { return fixtureNow }}))
	defer srv.Close()
	for _, tt := range []struct {
		query string
		want  []string
	}{
		{"", []string{"esa1.example.com", "esa2.example.com"}},
		{"?since=24h", []string{"esa2.example.com"}},
		{"?host=esa1.example.com&sender=x@example.com", []string{"esa1.example.com"}},
		{"?since=1h", []string{}},
	} {
		var got []tracking.Gap
		if res := get(t, srv, "/api/gaps"+tt.query, "", &got); res.StatusCode != http.StatusOK {
			t.Fatalf("GET /api/gaps%s: %s", tt.query, res.Status)
		}
		hosts := []string{}
		for _, g := range got {
			hosts = append(hosts, g.Host)
		}
		if len(hosts) != len(tt.want) || (len(hosts) > 0 && hosts[0] != tt.want[0]) {
			t.Errorf("GET /api/gaps%s: %v, want %v", tt.query, hosts, tt.want)
		}
	}
	if res := get(t, srv, "/api/gaps?since=yesterday-ish", "", nil); res.StatusCode != http.StatusBadRequest {
		t.Errorf("a bad since: %s, want 400", res.Status)
	}
}
