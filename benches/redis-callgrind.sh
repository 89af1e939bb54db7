#!/usr/bin/env bash
# Instructions per request of the Redis module's commands next to SET, in
# one redis-server run under `valgrind --tool=callgrind` (BENCHMARKS.md,
# "Redis module (issue 11)"). Exact whatever else the machine is doing: a
# benchmark, not a timed test, and it never fails on a number.
#
#   cargo build --release -p floodgate-redis
#   bash benches/redis-callgrind.sh               # about 2 minutes
#   N=20000 bash benches/redis-callgrind.sh       # fewer requests
#
# Environment (defaults in brackets):
#   FG_REDIS_MODULE  the module [target/release/libfloodgate_redis.so]
#   N                measured requests per case [100000]
#   TOP              module-side functions listed per case [8]
#   REDIS_CELL       a redis-cell module (libredis_cell.so): afterwards, a
#                    second server with it counts SET and redis-cell's own
#                    CL.THROTTLE with the same arguments [unset]
#
# Each case runs twice with redis-benchmark (10 clients, pipelines of 16,
# 1 000 keys): a warm-up of N requests that creates every key, then,
# between `callgrind_control -z` and `-d`, the N requests that are counted.
# The FG.CHECK case uses one-hour windows, so its keys' expiry does not move
# during the run (it moves once a window: see FG.CHECK pass in
# redis-bench.sh for short windows); CL.THROTTLE's moves on every call, as
# it does in use.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
MODULE=${FG_REDIS_MODULE:-$ROOT/target/release/libfloodgate_redis.so}
N=${N:-100000}
TOP=${TOP:-8}

die() { echo "redis-callgrind.sh: $*" >&2; exit 1; }
# shellcheck source=benches/redis-lib.sh
. "$ROOT/benches/redis-lib.sh"
for tool in redis-server redis-benchmark redis-cli valgrind callgrind_control callgrind_annotate; do
    command -v "$tool" >/dev/null || die "$tool not found (Debian: apt-get install redis-server redis-tools valgrind)"
done
[[ -f $MODULE ]] || die "module not found: $MODULE (cargo build --release -p floodgate-redis)"
MODULE=$(cd "$(dirname "$MODULE")" && pwd)/$(basename "$MODULE")
CELL_MODULE=${REDIS_CELL:-}
if [[ -n $CELL_MODULE ]]; then
    [[ -f $CELL_MODULE ]] || die "REDIS_CELL: no such file: $CELL_MODULE"
    CELL_MODULE=$(cd "$(dirname "$CELL_MODULE")" && pwd)/$(basename "$CELL_MODULE")
fi
[[ $N =~ ^[0-9]+$ && $N -ge 100 ]] || die "N must be an integer >= 100"

shopt -s nullglob
TMP=$(mktemp -d)
SERVER_PID=
PORT=
stop_server() {
    if [[ -n $SERVER_PID ]]; then
        redis-cli -p "$PORT" SHUTDOWN NOSAVE >/dev/null 2>&1 || kill "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
        SERVER_PID=
    fi
}
cleanup() {
    stop_server
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

cli() { redis-cli -p "$PORT" "$@"; }

# One redis-server under callgrind, on a free port, writing its dumps to
# $TMP/<name>/.
start_server() { # module, name (also its name in MODULE LIST)
    PORT=$(free_port) || die "no free port found"
    mkdir -p "$TMP/$2"
    valgrind --tool=callgrind --callgrind-out-file="$TMP/$2/cg.out" \
        redis-server --port "$PORT" --bind 127.0.0.1 --save "" --appendonly no \
        --daemonize no --logfile "$TMP/$2/redis.log" --loadmodule "$1" \
        >"$TMP/$2/valgrind.log" 2>&1 &
    SERVER_PID=$!
    await_server "$PORT" "$SERVER_PID" "$TMP/$2/valgrind.log" "$2" 300
}

declare -A TOPS
ORDER=()
# Counts each case (name|command) on the running server; $1 names the
# server's dump folder, $2 the pattern of module-side functions to list.
measure() { # dump folder, function pattern, cases...
    local dir=$1 pattern=$2 spec name dump total errors
    shift 2
    for spec in "$@"; do
        name=${spec%%|*}
        read -r -a cmd <<<"${spec#*|}"
        bench() {
            redis-benchmark -p "$PORT" -c 10 -P 16 -r 1000 -n "$N" -q "${cmd[@]}" >/dev/null \
                || die "redis-benchmark failed on $name"
        }
        bench
        callgrind_control -z "$SERVER_PID" >/dev/null 2>&1
        bench
        local -a dumps now
        dumps=("$TMP/$dir"/cg.out.*)
        callgrind_control -d "$SERVER_PID" >/dev/null 2>&1
        for _ in $(seq 1 100); do
            now=("$TMP/$dir"/cg.out.*)
            ((${#now[@]} > ${#dumps[@]})) && break
            sleep 0.1
        done
        dump=$(ls -t "$TMP/$dir"/cg.out.* | head -1)
        errors=$(cli INFO stats | tr -d '\r' | awk -F: '$1 == "total_error_replies" {print $2}')
        [[ $errors == 0 ]] || die "$name: the server replied with errors ($errors)"
        total=$(callgrind_annotate "$dump" 2>/dev/null | awk '/PROGRAM TOTALS/ {gsub(",", "", $1); print $1; exit}')
        [[ $total =~ ^[0-9]+$ ]] || die "$name: no totals in $dump"
        echo "| $name | $((total / N)) |"
        ORDER+=("$name")
        TOPS[$name]=$(callgrind_annotate --inclusive=yes "$dump" 2>/dev/null \
            | grep -E "^ *[0-9,]+ .*($pattern)" \
            | head -"$TOP" | sed 's/ \[.*\]//' \
            | awk -v n="$N" '{gsub(",", "", $1); sub(/^\?\?\?:/, "", $NF); printf "  %7d  %s\n", $1 / n, $NF}' || true)
    done
}

echo "# Instructions per request, callgrind, N=$N, $(redis-server --version | awk '{print $3}'), module $(basename "$MODULE")"
echo
echo "| case | instructions per request |"
echo "| --- | --- |"
start_server "$MODULE" floodgate
measure floodgate 'floodgate|RM_|moduleCreateArgv|lookupCommandByCString' \
    "SET|SET key:__rand_int__ x" \
    "SET PX|SET ttl:__rand_int__ x PX 3600000" \
    "FG.CHECK|FG.CHECK pipe:__rand_int__ TAILDROP 1000000000 INTERVAL 3600000" \
    "FG.CHECK default|FG.CHECK dflt:__rand_int__ TAILDROP 1000000000" \
    "CL.THROTTLE kept|CL.THROTTLE cellk:__rand_int__ 100 100 60"
stop_server
if [[ -n $CELL_MODULE ]]; then
    start_server "$CELL_MODULE" redis-cell
    measure redis-cell 'redis_cell|RM_|Throttle_RedisCommand' \
        "SET (redis-cell's server)|SET key:__rand_int__ x" \
        "redis-cell CL.THROTTLE kept|CL.THROTTLE cellk:__rand_int__ 100 100 60"
    stop_server
fi
for name in "${ORDER[@]}"; do
    [[ -n ${TOPS[$name]} ]] || continue
    echo
    echo "$name, module side (inclusive, per request):"
    echo "${TOPS[$name]}"
done
