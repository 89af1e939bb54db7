#!/usr/bin/env bash
# Instructions per operation of each benchmark case under callgrind: stable
# where wall times are not (the machine is shared and noisy).
#
#   bash benches/callgrind.sh              every case, N = 100000 operations
#   bash benches/callgrind.sh keyed/       only cases whose name contains "keyed/"
#   N=20000 bash benches/callgrind.sh      fewer operations
#   FG_ICOUNT=path/fg_icount FLOODGATE_SO=path/libfloodgate.so bash benches/callgrind.sh
#                                          binaries built earlier, no build
#
# Each case runs twice under `valgrind --tool=callgrind` (fg_icount CASE N and
# fg_icount CASE 2N, same setup); instructions per operation are
# (Ir(2N) - Ir(N)) / N, so setup (creating every key, loading the library)
# cancels out. The numbers include the harness: a clock tick (the
# baseline/clock case) and, for keyed cases, the uniform key pick
# (baseline/clock_pick). Case names are criterion's ids (BENCHMARKS.md).
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-100000}
FILTER=${1:-}
command -v valgrind >/dev/null || { echo "valgrind is not installed" >&2; exit 1; }

# The same optimisation settings as the benchmarks (the release profile:
# LTO, one codegen unit); libfloodgate.so for the ffi/ cases. FG_ICOUNT
# (with FLOODGATE_SO) runs binaries built earlier instead.
if [ -n "${FG_ICOUNT:-}" ]; then
    BIN=$FG_ICOUNT
else
    cargo build -q --release -p floodgate-ffi
    cargo build -q --release -p floodgate-benches --bin fg_icount
    BIN="${CARGO_TARGET_DIR:-target}/release/fg_icount"
fi

ir() { # case n -> instructions collected; fails (with the output) if the case fails
    local out
    if ! out=$(valgrind --tool=callgrind --callgrind-out-file=/dev/null "$BIN" "$1" "$2" 2>&1); then
        printf '%s\n' "$out" | tail -20 >&2
        return 1
    fi
    printf '%s\n' "$out" | sed -n 's/.*Collected : \([0-9]*\).*/\1/p'
}

printf '%-44s %12s\n' "case (N = $N)" "instr/op"
count=0
for c in $("$BIN" list); do
    case "$c" in *"$FILTER"*) ;; *) continue ;; esac
    a=$(ir "$c" "$N") || { echo "callgrind: case $c failed" >&2; exit 1; }
    b=$(ir "$c" $((2 * N))) || { echo "callgrind: case $c failed" >&2; exit 1; }
    if [ -z "$a" ] || [ -z "$b" ]; then
        echo "callgrind failed on $c" >&2
        exit 1
    fi
    awk -v c="$c" -v a="$a" -v b="$b" -v n="$N" 'BEGIN { printf "%-44s %12.1f\n", c, (b - a) / n }'
    count=$((count + 1))
done
[ "$count" -gt 0 ] || { echo "no case matches '$FILTER'" >&2; exit 1; }
