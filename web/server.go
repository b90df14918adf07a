package web

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"
)

// Server serves a handler on a listener until its context ends.
type Server struct {
	Handler http.Handler
	Logger  *slog.Logger // nil: slog.Default()

	// ShutdownTimeout is how long requests under way may take to finish
	// once the context ends; 0: 5s. A search over a large store is the
	// slowest request, and it is bounded by the store, not by this.
	ShutdownTimeout time.Duration
}

// Serve serves h on ln until ctx ends, then shuts down gracefully.
func Serve(ctx context.Context, ln net.Listener, h http.Handler) error {
	return (&Server{Handler: h}).Serve(ctx, ln)
}

// Serve serves on ln until ctx ends, then lets requests under way finish
// (for up to ShutdownTimeout) and returns nil; or returns the error that
// stopped it. It closes ln.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	log := s.Logger
	if log == nil {
		log = slog.Default()
	}
	grace := s.ShutdownTimeout
	if grace <= 0 {
		grace = 5 * time.Second
	}
	// The timeouts bound what a slow or idle client holds: the page is
	// served to browsers on an administration network, but the port may
	// be reachable by more than that.
	hs := &http.Server{
		Handler:           s.Handler,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      2 * time.Minute,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	done := make(chan error, 1)
	go func() { done <- hs.Serve(ln) }()
	select {
	case err := <-done:
		return fmt.Errorf("web: serve %s: %w", ln.Addr(), err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), grace)
	defer cancel()
	err := hs.Shutdown(sctx)
	if err != nil {
		// Requests still running after the grace period are cut off.
		hs.Close()
		err = fmt.Errorf("web: shutdown: %w", err)
	}
	if serr := <-done; !errors.Is(serr, http.ErrServerClosed) && err == nil {
		err = fmt.Errorf("web: serve %s: %w", ln.Addr(), serr)
	}
	return err
}
