#!/usr/bin/env bash
# track.sh - message tracking: import speed and query latency, in one run.
#
#  a. esagen writes a mixed ESA mail log of LINES lines (5,000,000) into a temporary directory.
#  b. The floor, `grep -c .` over the log, and the import of the log into a fresh SQLite store
#     (`mailgate import`, or bench/trackimport while the command is missing) take turns,
#     REPEATS runs each; lines/s and MB/s of each (medians) and their ratio.
#  c. trackq fills a store with MESSAGES synthetic messages (10,000,000) and measures MID lookups,
#     sender searches and subject searches: medians and p99s. SQLite; PostgreSQL too with PG=1 (alone: PG=only).
# The issue's targets are printed next to the figures. Everything it writes is under a temporary
# directory removed at the end (and the PostgreSQL schema is dropped), unless KEEP=1.
# Usage: bench/track.sh   (a quick look: LINES=500000 MESSAGES=200000 REPEATS=1 bench/track.sh)
set -uo pipefail
export LC_ALL=C

LINES=${LINES:-5000000}            # lines of the generated log (at least 5,000,000 for the figures)
MESSAGES=${MESSAGES:-10000000}     # messages trackq fills the query stores with
REPEATS=${REPEATS:-3}              # runs of grep and of the import each
QUERIES=${QUERIES:-1000}           # MID lookups, and sender searches
SUBJECTS=${SUBJECTS:-100}          # subject searches
SEED=${SEED:-1}
PG=${PG:-0}                        # 1: also fill and query PostgreSQL; only: PostgreSQL alone
PG_DSN=${PG_DSN:-"postgres://root@127.0.0.1:5432/test?sslmode=disable&search_path=mg_bench"}
PHASES=${PHASES:-"import query"}   # either or both
IMPORTER=${IMPORTER:-auto}         # mailgate, trackimport, or auto: mailgate when it has the import command
PROFILE=${PROFILE:-}               # a file: one more import, by trackimport, writes its CPU profile there
KEEP=${KEEP:-0}                    # 1: keep the temporary directory (and the PostgreSQL schema)
here=$(cd "$(dirname "$0")" && pwd)

die() { echo "track.sh: $*" >&2; exit 1; }
WORK=$(mktemp -d "${TMPDIR:-/tmp}/mailgate-track.XXXXXX") || die "mktemp failed"
BIN=$WORK/bin
PG_MADE=0
cleanup() {
  if [ "$KEEP" = 1 ]; then echo "# kept $WORK" >&2; return; fi
  [ "$PG_MADE" = 1 ] && "$BIN/trackq" drop -driver postgres -dsn "$PG_DSN" >/dev/null 2>&1
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

mkdir -p "$BIN"
for p in cmd/mailgate bench/esagen bench/trackq bench/trackimport; do
  (cd "$here/.." && go build -o "$BIN/$(basename "$p")" "./$p") || die "go build ./$p failed"
done
if [ "$IMPORTER" = auto ]; then
  IMPORTER=trackimport
  help=$("$BIN/mailgate" import --help 2>&1)   # exits 2 after the usage: no pipe under pipefail
  [[ $help == *"mailgate import"*-host* ]] && IMPORTER=mailgate
fi
case $IMPORTER in
  mailgate) IMPORT=("$BIN/mailgate" import) ;;
  trackimport) IMPORT=("$BIN/trackimport") ;;
  *) die "IMPORTER must be mailgate, trackimport or auto" ;;
esac

median() { sort -g | awk '{v[NR]=$1} END {if (NR) print (NR%2) ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2; else print 0}'; }
spread() { sort -g | awk 'NR == 1 {a = $1} {b = $1} END {printf "[%.3g-%.3g]", a, b}'; }
met() { awk -v v="$1" -v t="$2" -v op="$3" 'BEGIN { ok = (op == "<") ? v < t : v >= t; print ok ? "met" : "NOT MET" }'; }
# timed OUT CMD...: runs CMD with its output in OUT, its wall, user and system seconds in $WORK/time.
timed() { local out=$1; shift; local TIMEFORMAT='%R %U %S'; { time "$@" >"$out" 2>&1; } 2>"$WORK/time"; }
tm() { awk -v k="$1" '{ print (k == 1) ? $1 : $2 + $3 }' "$WORK/time"; }   # 1: wall; 2: cpu (user + system)

echo "# $(date -u +%FT%TZ) $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg), $(go version | cut -d' ' -f3), importer: $IMPORTER$([ "$IMPORTER" = trackimport ] && echo " (bench/trackimport: tracking.Importer as mailgate import would run it)"), work dir $WORK"
SUMMARY=()

# ---- a. the log ------------------------------------------------------------------
if [[ " $PHASES " == *" import "* ]]; then
  LOG=$WORK/mail.log
  "$BIN/esagen" -lines "$LINES" -seed "$SEED" -o "$LOG" 2>"$WORK/esagen.err" || die "esagen failed: $(cat "$WORK/esagen.err")"
  BYTES=$(stat -c %s "$LOG")
  NLINES=$(wc -l <"$LOG")
  echo "# (a) $(cat "$WORK/esagen.err")"
  echo "# (a) log: $NLINES lines, $BYTES bytes ($(awk -v b="$BYTES" 'BEGIN { printf "%.1f MB", b/1e6 }'))"
  printf 'data_dir: %s\n' "$WORK/import" >"$WORK/import.yaml"

  # ---- b. grep and the import, taking turns --------------------------------------
  : >"$WORK/runs"
  for r in $(seq "$REPEATS"); do
    timed "$WORK/grep.out" grep -c . "$LOG" || die "grep failed"
    echo "RUN grep $r: $(cat "$WORK/grep.out") lines in $(tm 1)s, cpu $(tm 2)s" | tee -a "$WORK/runs"
    rm -rf "$WORK/import"
    sync
    timed "$WORK/import.out" "${IMPORT[@]}" --config "$WORK/import.yaml" --host esa1 "$LOG" || die "import failed: $(cat "$WORK/import.out")"
    echo "RUN import $r: $(tm 1)s, cpu $(tm 2)s, store $(du -sm "$WORK/import" | cut -f1) MB: $(tail -1 "$WORK/import.out")" | tee -a "$WORK/runs"
  done
  col() { grep "^RUN $1 " "$WORK/runs" | sed -E "s/.*$2.*/\\1/"; }
  gs=$(col grep ' in ([0-9.]+)s' | median); is=$(col import ': ([0-9.]+)s, cpu' | median)
  ic=$(col import 'cpu ([0-9.]+)s' | median)
  rate() { awk -v n="$1" -v s="$2" 'BEGIN { printf "%.0f", n/s }'; }
  gl=$(rate "$NLINES" "$gs"); il=$(rate "$NLINES" "$is")
  SUMMARY+=("SUMMARY import: $NLINES lines, $(awk -v b="$BYTES" 'BEGIN { printf "%.0f MB", b/1e6 }'), medians of $REPEATS runs taking turns; importer: $IMPORTER, into a fresh SQLite store each run")
  SUMMARY+=("$(printf '  %-24s %9s lines/s %7.1f MB/s  %7.2fs %s' 'grep -c . (the floor)' "$gl" "$(awk -v b="$BYTES" -v s="$gs" 'BEGIN { print b/s/1e6 }')" "$gs" "$(col grep ' in ([0-9.]+)s' | spread)")")
  SUMMARY+=("$(printf '  %-24s %9s lines/s %7.1f MB/s  %7.2fs %s  cpu %.1fs: %s lines per cpu-second' "import ($IMPORTER)" "$il" "$(awk -v b="$BYTES" -v s="$is" 'BEGIN { print b/s/1e6 }')" "$is" "$(col import ': ([0-9.]+)s, cpu' | spread)" "$ic" "$(rate "$NLINES" "$ic")")")
  SUMMARY+=("$(printf '  %-24s grep is %.1fx the import'"'"'s rate   target: import >= 300,000 lines/s into SQLite: %s' 'ratio' "$(awk -v a="$gl" -v b="$il" 'BEGIN { print a/b }')" "$(met "$il" 300000 '>=')")")

  if [ -n "$PROFILE" ]; then
    rm -rf "$WORK/import"
    "$BIN/trackimport" --config "$WORK/import.yaml" --host esa1 --cpuprofile "$PROFILE" "$LOG" >"$WORK/import.out" 2>&1 || die "profiled import failed: $(cat "$WORK/import.out")"
    echo "# profiled import: $(cat "$WORK/import.out"); top of $PROFILE (go tool pprof -top $BIN/trackimport $PROFILE):"
    go tool pprof -top -cum -nodecount=30 "$BIN/trackimport" "$PROFILE" 2>/dev/null | sed -n '6,40p'
  fi
  rm -rf "$WORK/import" "$LOG"   # room for the query stores
fi

# ---- c. query latency on a filled store ------------------------------------------
if [[ " $PHASES " == *" query "* ]]; then
  drivers=sqlite
  [ "$PG" = 1 ] && drivers="sqlite postgres"
  [ "$PG" = only ] && drivers=postgres
  # ~2.5 KB a message in SQLite, indexes and connections included
  avail=$(df -Pk "$WORK" | awk 'NR == 2 { print $4 }')
  [ "$avail" -gt $((MESSAGES * 3)) ] || die "$((avail / 1024)) MB free in $WORK, ~$((MESSAGES * 3 / 1024)) MB needed for $MESSAGES messages (set MESSAGES or TMPDIR)"
  for d in $drivers; do
    dsn=$WORK/query/tracking.db
    if [ "$d" = postgres ]; then dsn=$PG_DSN; PG_MADE=1; fi
    "$BIN/trackq" fill -driver "$d" -dsn "$dsn" -messages "$MESSAGES" -seed "$SEED" -reset | tee "$WORK/fill.$d" || die "trackq fill $d failed"
    "$BIN/trackq" query -driver "$d" -dsn "$dsn" -n "$QUERIES" -subjects "$SUBJECTS" -seed "$SEED" | tee "$WORK/query.$d" || die "trackq query $d failed"
    val() { grep "^trackq: $1 " "$WORK/query.$d" | tr ' ' '\n' | grep "^$2=" | cut -d= -f2 | tr -d ms; }
    SUMMARY+=("SUMMARY query $d: $(sed 's/^trackq: fill [a-z]*: //' "$WORK/fill.$d")")
    SUMMARY+=("$(printf '  %-30s median %8.2f ms  p99 %8.2f ms  max %8.2f ms   target p99 < 5 ms: %s' "MID lookup (Find, n=$QUERIES)" "$(val mid median)" "$(val mid p99)" "$(val mid max)" "$(met "$(val mid p99)" 5 '<')")")
    SUMMARY+=("$(printf '  %-30s median %8.2f ms  p99 %8.2f ms  max %8.2f ms   target p99 < 100 ms: %s (%s messages found on average)' "sender search (n=$QUERIES)" "$(val sender median)" "$(val sender p99)" "$(val sender max)" "$(met "$(val sender p99)" 100 '<')" "$(val sender avg_found)")")
    SUMMARY+=("$(printf '  %-30s median %8.2f ms  p99 %8.2f ms  max %8.2f ms   (no target)' "subject search (n=$SUBJECTS)" "$(val subject median)" "$(val subject p99)" "$(val subject max)")")
    if [ "$d" = sqlite ] && [ "$KEEP" != 1 ]; then rm -rf "$WORK/query"; fi
  done
fi

printf '%s\n' "${SUMMARY[@]}"
