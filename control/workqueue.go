package control

import (
	"context"
	"net/http"

	"github.com/mailgate/mailgate/workqueue"
)

// WorkQueue is what the API asks of the work queue (mail policies and
// their stages, before delivery): *workqueue.Queue in the gateway.
type WorkQueue interface {
	Status() workqueue.Status
}

// ServeWorkQueue adds GET /v1/work, the work queue's state, to the API. A
// gateway without mail policies has no work queue, and the path answers
// 404.
func (s *Server) ServeWorkQueue(w WorkQueue) {
	s.mux.HandleFunc("GET /v1/work", func(rw http.ResponseWriter, r *http.Request) {
		reply(rw, w.Status(), nil)
	})
}

// Work returns the state of the work queue; an *Error with Status 404
// when the gateway has none.
func (c *Client) Work(ctx context.Context) (workqueue.Status, error) {
	var st workqueue.Status
	err := c.do(ctx, http.MethodGet, "/v1/work", nil, &st)
	return st, err
}
