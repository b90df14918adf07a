# `make test` is the project's test command (README, CI): it installs the
# peers the tests talk to, checks that the tree builds and vets for FreeBSD
# and macOS too, runs every Go test with the race detector and prints the
# coverage of the unit tests and of the binary's runs, merged (the mailgate
# binary that cmd/mailgate's tests start is built with -cover when they are
# run with it, and writes to the same directory: scripts/coverage.sh).
GO ?= go
COVERDIR ?= $(CURDIR)/bin/cover

.PHONY: test build run vet fuzz bench

test:
	./scripts/test-deps.sh
	$(GO) vet ./...
	GOOS=freebsd $(GO) build ./... && GOOS=freebsd $(GO) vet ./...
	GOOS=darwin $(GO) build ./... && GOOS=darwin $(GO) vet ./...
	rm -rf $(COVERDIR) && mkdir -p $(COVERDIR)
	$(GO) test -race -count=1 -timeout 30m -cover ./... -args -test.gocoverdir=$(COVERDIR)
	GO=$(GO) ./scripts/coverage.sh $(COVERDIR)

build:
	$(GO) build -o bin/mailgate ./cmd/mailgate

# The gateway on its embedded default, in the foreground: Ctrl-C stops it.
# exec makes the shell the gateway itself, so no wrapper process is left
# between make and mailgate (unlike "go run", whose child outlives a kill of
# the go tool).
run: build
	exec ./bin/mailgate serve

# Runs each fuzz target for FUZZTIME (default 60s); findings land in testdata/fuzz.
FUZZTIME ?= 60s
fuzz:
	$(GO) test -run XXX -fuzz FuzzParseCommand -fuzztime $(FUZZTIME) ./smtp
	$(GO) test -run XXX -fuzz FuzzDataReader -fuzztime $(FUZZTIME) ./smtp
	$(GO) test -run XXX -fuzz FuzzParseLine -fuzztime $(FUZZTIME) ./maillog
	$(GO) test -run XXX -fuzz FuzzParseRule -fuzztime $(FUZZTIME) ./policy
	$(GO) test -run XXX -fuzz 'FuzzParse$$' -fuzztime $(FUZZTIME) ./config
	$(GO) test -run XXX -fuzz FuzzBuild -fuzzminimizetime 5s -fuzztime $(FUZZTIME) ./dsn
	$(GO) test -run XXX -fuzz FuzzFrames -fuzztime $(FUZZTIME) ./syslog
	$(GO) test -run XXX -fuzz FuzzImport -fuzzminimizetime 5s -fuzztime $(FUZZTIME) ./tracking
	$(GO) test -run XXX -fuzz FuzzParseQuery -fuzztime $(FUZZTIME) ./tracking
	$(GO) test -run XXX -fuzz FuzzHeader -fuzzminimizetime 5s -fuzztime $(FUZZTIME) ./rfc822
	$(GO) test -run XXX -fuzz FuzzWalk -fuzzminimizetime 5s -fuzztime $(FUZZTIME) ./rfc822

bench:
	./bench/receive.sh
