// Package control is the running gateway's administration interface: an
// HTTP API with JSON bodies on a Unix socket in the data directory, and
// its client, used by the mailgate queue commands. The socket is the
// authentication: it is created 0600, and a connection from any user but
// the gateway's own (or root) is closed at once, whatever the file's mode.
package control

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/mailgate/mailgate/outbound"
)

// SocketPath is where the control socket of a data directory is.
func SocketPath(dataDir string) string { return filepath.Join(dataDir, "control.sock") }

// Queue is what the API asks of the queue manager: *outbound.Manager in
// the gateway. Its errors are told apart with outbound.ErrNoMessage,
// ErrBusy and ErrSuspended.
type Queue interface {
	WorkQueue() outbound.WorkQueue
	Messages(domain string, limit int) ([]outbound.QueuedMessage, int, error)
	Message(mid uint64) (outbound.QueuedMessage, error)
	DeliverNow(domain string) (ready, woken int, err error)
	Bounce(mid uint64) (int, error)
	Delete(mid uint64) (int, error)
}

// Server serves the control API for a queue manager.
type Server struct {
	path  string
	log   *slog.Logger
	q     Queue
	hs    *http.Server
	mux   *http.ServeMux
	done  chan struct{}
	stats Stats                       // nil: no status commands
	quar  atomic.Pointer[Quarantines] // set by ServeQuarantines
}

// Listen creates the control socket at path and serves it until Close. A
// socket left at path by a gateway that did not stop cleanly is replaced:
// the caller holds the data directory (the spool's lock), so no live
// gateway can be using it.
func Listen(path string, q Queue, logger *slog.Logger, opts ...Option) (*Server, error) {
	if fi, err := os.Lstat(path); err == nil && fi.Mode()&os.ModeSocket != 0 {
		if err := os.Remove(path); err != nil {
			return nil, fmt.Errorf("control: remove stale socket: %w", err)
		}
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("control: %w", err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("control: %w", err)
	}
	s := &Server{path: path, log: logger, q: q, done: make(chan struct{})}
	for _, o := range opts {
		o(s)
	}
	s.hs = &http.Server{Handler: s.routes(), ReadHeaderTimeout: 10 * time.Second, ErrorLog: slog.NewLogLogger(logger.Handler(), slog.LevelWarn)}
	go func() {
		defer close(s.done)
		if err := s.hs.Serve(ownerOnly{ln.(*net.UnixListener), logger}); !errors.Is(err, http.ErrServerClosed) {
			logger.Error("control: serve", "err", err)
		}
	}()
	return s, nil
}

// Close stops serving, waiting up to ctx for requests under way, and
// removes the socket.
func (s *Server) Close(ctx context.Context) error {
	err := s.hs.Shutdown(ctx)
	if err != nil {
		s.hs.Close()
	}
	<-s.done
	if rerr := os.Remove(s.path); rerr != nil && !errors.Is(rerr, os.ErrNotExist) && err == nil {
		err = rerr
	}
	return err
}

// ownerOnly accepts the connections of the gateway's own user and root.
type ownerOnly struct {
	*net.UnixListener
	log *slog.Logger
}

func (l ownerOnly) Accept() (net.Conn, error) {
	for {
		c, err := l.AcceptUnix()
		if err != nil {
			return nil, err
		}
		uid, err := peerUID(c)
		if err == nil && (uid == 0 || uid == os.Getuid()) {
			return c, nil
		}
		l.log.Warn("control: connection refused", "uid", uid, "err", err)
		c.Close()
	}
}

// MessageList is the answer to GET /v1/messages.
type MessageList struct {
	Total    int                      `json:"total"` // messages that matched; Messages holds at most the limit
	Messages []outbound.QueuedMessage `json:"messages"`
}

// DeliverNowResult is the answer to POST /v1/deliver-now.
type DeliverNowResult struct {
	Ready int `json:"ready"` // transactions of messages in memory made ready
	Woken int `json:"woken"` // messages taken back in from the spool
}

// Removed is the answer to a bounce or a delete.
type Removed struct {
	MID        uint64 `json:"mid"`
	Recipients int    `json:"recipients"`
}

func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	s.mux = mux
	mux.HandleFunc("GET /v1/workqueue", func(w http.ResponseWriter, r *http.Request) {
		reply(w, s.q.WorkQueue(), nil)
	})
	mux.HandleFunc("GET /v1/messages", func(w http.ResponseWriter, r *http.Request) {
		limit, err := queryLimit(r)
		if err != nil {
			replyError(w, http.StatusBadRequest, err)
			return
		}
		list, total, err := s.q.Messages(r.URL.Query().Get("domain"), limit)
		reply(w, MessageList{Total: total, Messages: list}, err)
	})
	mux.HandleFunc("GET /v1/messages/{mid}", s.withMID(func(mid uint64) (any, error) {
		return s.q.Message(mid)
	}))
	mux.HandleFunc("POST /v1/messages/{mid}/bounce", s.withMID(func(mid uint64) (any, error) {
		if err := s.quarantined(mid); err != nil {
			return nil, err
		}
		n, err := s.q.Bounce(mid)
		return Removed{MID: mid, Recipients: n}, err
	}))
	mux.HandleFunc("POST /v1/messages/{mid}/delete", s.withMID(func(mid uint64) (any, error) {
		if err := s.quarantined(mid); err != nil {
			return nil, err
		}
		n, err := s.q.Delete(mid)
		return Removed{MID: mid, Recipients: n}, err
	}))
	mux.HandleFunc("POST /v1/deliver-now", func(w http.ResponseWriter, r *http.Request) {
		ready, woken, err := s.q.DeliverNow(r.URL.Query().Get("domain"))
		reply(w, DeliverNowResult{Ready: ready, Woken: woken}, err)
	})
	s.statsRoutes(mux)
	return mux
}

func (s *Server) withMID(f func(mid uint64) (any, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		mid, err := strconv.ParseUint(r.PathValue("mid"), 10, 64)
		if err != nil {
			replyError(w, http.StatusBadRequest, fmt.Errorf("MID %q: not a number", r.PathValue("mid")))
			return
		}
		v, err := f(mid)
		reply(w, v, err)
	}
}

// queryLimit reads the limit= of a listing: a count, 0 (all) when absent.
func queryLimit(r *http.Request) (int, error) {
	v := r.URL.Query().Get("limit")
	if v == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("limit %q: not a count", v)
	}
	return n, nil
}

func reply(w http.ResponseWriter, v any, err error) {
	switch {
	case errors.Is(err, outbound.ErrNoMessage):
		replyError(w, http.StatusNotFound, err)
	case errors.Is(err, outbound.ErrBusy), errors.Is(err, outbound.ErrSuspended), errors.Is(err, ErrQuarantined):
		replyError(w, http.StatusConflict, err)
	case err != nil:
		replyError(w, http.StatusInternalServerError, err)
	default:
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(v)
	}
}

// apiError is the body of every answer that is not a 200.
type apiError struct {
	Error string `json:"error"`
}

func replyError(w http.ResponseWriter, code int, err error) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(apiError{Error: err.Error()})
}
