package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/mailgate/mailgate/stats"
)

// The ESA's status commands against the running gateway, over its control
// socket: status [detail], tophosts, hoststatus, rate, resetcounters.

func statusCmd(args []string, stdout, stderr io.Writer) int {
	f := newControlFlags("status", stderr)
	pos, err := parseInterspersed(f.fs, args)
	if err != nil {
		return 2
	}
	if len(pos) > 1 || len(pos) == 1 && pos[0] != "detail" {
		return usageErr(stderr, "usage: mailgate status [detail] [--config FILE] [--json]")
	}
	c, err := f.client()
	if err != nil {
		return fail(stderr, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), cliTimeout)
	defer cancel()
	st, err := c.Status(ctx, len(pos) == 1)
	if err != nil {
		return fail(stderr, err)
	}
	if f.json {
		return printJSON(stdout, st)
	}
	stats.WriteStatus(stdout, st, time.Local)
	return 0
}

func tophostsCmd(args []string, stdout, stderr io.Writer) int {
	f := newControlFlags("tophosts", stderr)
	sort := f.fs.String("sort", stats.SortActive, "sort by `KEY`: "+strings.Join(stats.SortKeys, ", "))
	limit := f.fs.Int("limit", 20, "show at most `N` destinations (0: all)")
	pos, err := parseInterspersed(f.fs, args)
	if err != nil {
		return 2
	}
	if len(pos) > 0 || !slices.Contains(stats.SortKeys, *sort) {
		return usageErr(stderr, "usage: mailgate tophosts [--sort "+strings.Join(stats.SortKeys, "|")+"] [--limit N] [--config FILE] [--json]")
	}
	c, err := f.client()
	if err != nil {
		return fail(stderr, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), cliTimeout)
	defer cancel()
	hosts, err := c.TopHosts(ctx, *sort, *limit)
	if err != nil {
		return fail(stderr, err)
	}
	if f.json {
		if hosts == nil {
			hosts = []stats.Host{}
		}
		return printJSON(stdout, hosts)
	}
	stats.WriteTopHosts(stdout, hosts, *sort)
	return 0
}

func hoststatusCmd(args []string, stdout, stderr io.Writer) int {
	f := newControlFlags("hoststatus", stderr)
	pos, err := parseInterspersed(f.fs, args)
	if err != nil {
		return 2
	}
	if len(pos) != 1 {
		return usageErr(stderr, "usage: mailgate hoststatus DOMAIN [--config FILE] [--json]")
	}
	c, err := f.client()
	if err != nil {
		return fail(stderr, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), cliTimeout)
	defer cancel()
	hs, err := c.HostStatus(ctx, pos[0])
	if err != nil {
		return fail(stderr, err)
	}
	if f.json {
		return printJSON(stdout, hs)
	}
	stats.WriteHostStatus(stdout, hs, time.Local)
	return 0
}

func resetcountersCmd(args []string, stdout, stderr io.Writer) int {
	f := newControlFlags("resetcounters", stderr)
	pos, err := parseInterspersed(f.fs, args)
	if err != nil {
		return 2
	}
	if len(pos) > 0 {
		return usageErr(stderr, "usage: mailgate resetcounters [--config FILE]")
	}
	c, err := f.client()
	if err != nil {
		return fail(stderr, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), cliTimeout)
	defer cancel()
	if err := c.ResetCounters(ctx); err != nil {
		return fail(stderr, err)
	}
	fmt.Fprintln(stdout, "Counters reset:", time.Now().Format(stats.TimeLayout))
	return 0
}

// rateLine is one line of rate --json.
type rateLine struct {
	Time          time.Time `json:"time"`
	ConnIn        int       `json:"conn_in"`
	ConnOut       int       `json:"conn_out"`
	Received      uint64    `json:"recips_received"`
	ReceivedDelta uint64    `json:"recips_received_delta"`
	Completed     uint64    `json:"recips_completed"`
	CompDelta     uint64    `json:"recips_completed_delta"`
	KilobytesUsed int64     `json:"kbytes_used"`
}

func rateCmd(args []string, stdout, stderr io.Writer) int {
	f := newControlFlags("rate", stderr)
	count := f.fs.Int("count", 0, "stop after `N` lines (0: until interrupted)")
	pos, err := parseInterspersed(f.fs, args)
	if err != nil {
		return 2
	}
	const usage = "usage: mailgate rate [SECONDS] [--count N] [--config FILE] [--json]\n(SECONDS: a whole number, at least 1; default 10)"
	interval := 10 * time.Second
	if len(pos) == 1 {
		n, err := strconv.Atoi(pos[0])
		if err != nil || n < 1 {
			return usageErr(stderr, usage)
		}
		interval = time.Duration(n) * time.Second
	}
	if len(pos) > 1 || *count < 0 {
		return usageErr(stderr, usage)
	}
	c, err := f.client()
	if err != nil {
		return fail(stderr, err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	call := func() (stats.Status, error) {
		cctx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		return c.Status(cctx, false)
	}
	prev, err := call()
	if err != nil {
		return fail(stderr, err)
	}
	if !f.json {
		fmt.Fprint(stdout, stats.RateHeader)
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for n := 0; *count == 0 || n < *count; n++ {
		select {
		case <-ctx.Done():
			return 0
		case <-t.C:
		}
		cur, err := call()
		if err != nil {
			if ctx.Err() != nil {
				return 0
			}
			return fail(stderr, err)
		}
		if f.json {
			rcv, cmp := cur.Counter(stats.InjRecips).Uptime, cur.Counter(stats.CompletedRecips).Uptime
			printJSONLine(stdout, rateLine{Time: cur.AsOf, ConnIn: cur.Gauges.ConnIn, ConnOut: cur.Gauges.ConnOut,
				Received: rcv, ReceivedDelta: rcv - min(rcv, prev.Counter(stats.InjRecips).Uptime),
				Completed: cmp, CompDelta: cmp - min(cmp, prev.Counter(stats.CompletedRecips).Uptime),
				KilobytesUsed: cur.Gauges.KilobytesUsed})
		} else {
			fmt.Fprint(stdout, stats.RateLine(cur, prev, time.Local))
		}
		prev = cur
	}
	return 0
}
