#!/usr/bin/env bash
# Prints the test coverage that `make test` measured in DIR: what the unit
# tests ran and what the mailgate processes started by cmd/mailgate's tests
# ran, merged (both write Go's binary coverage format there: the tests with
# -test.gocoverdir, the binary through GOCOVERDIR). One line per package,
# then the total over the product's packages: bench/'s tools, the tests'
# helper packages (internal/smtptest, internal/rsyslogtest, tracking/storetest) are left out of
# it. Leaves DIR/coverage.txt for `go tool cover -html` or `-func`.
set -euo pipefail
dir=${1:?usage: coverage.sh DIR}
go=${GO:-go}
module=$($go list -m)

$go tool covdata percent -i="$dir" | sed 's/^[[:space:]]*//' | sort
$go tool covdata textfmt -i="$dir" -o "$dir/all.txt"
grep -v -E "^$module/(bench/|internal/smtptest/|internal/rsyslogtest/|tracking/storetest/)" "$dir/all.txt" >"$dir/coverage.txt"
total=$($go tool cover -func="$dir/coverage.txt" | awk '$1 == "total:" { print $NF }')
echo "coverage: $total of statements in total (unit tests and the binary's runs; profile in $dir/coverage.txt)"
