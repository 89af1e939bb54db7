#!/usr/bin/env bash
# Throughput of the Redis module (crate floodgate-redis) against plain Redis
# commands, on one redis-server, in one run (BENCHMARKS.md, "Redis module
# (issue 11)"). A benchmark, never a timed test: it fails only when the
# server cannot start or a command replies with an error, not when a target
# is missed (unless STRICT=1).
#
#   cargo build --release -p floodgate-redis
#   bash benches/redis-bench.sh                 # real run, about 4 minutes
#   N=2000 ROUNDS=1 bash benches/redis-bench.sh # smoke test (CI)
#
# Environment (defaults in brackets):
#   FG_REDIS_MODULE  the module [target/release/libfloodgate_redis.so]
#   N                requests per redis-benchmark run, and 2-step operations
#                    (pairs) per redis_pairs run is N/2 [2000000]
#   ROUNDS           interleaved rounds of every case; medians reported [3]
#   CLIENTS          connections [50]      PIPELINE  commands per pipeline [16]
#   KEYSPACE         keys, uniform (redis-benchmark -r) [100000]
#   PAIRS            1: also run benches/src/bin/redis_pairs (FG.ACQUIRE +
#                    FG.RELEASE pairs, which redis-benchmark cannot chain) [1]
#   STRICT           1: exit 1 when a target is missed [0]
#   REDIS_CELL       a redis-cell module (libredis_cell.so): also runs its
#                    CL.THROTTLE, same arguments, on a second redis-server
#                    (both modules name the command CL.THROTTLE) [unset]
#
# What runs, each round in this order, all against the same server:
#   redis-benchmark -c CLIENTS -P PIPELINE -r KEYSPACE -n N --csv with
#     SET key:R x                                   the baseline
#     SET ttl:R x PX 60000                          the baseline with a TTL, as every
#                                                    key the module writes has one
#     FG.CHECK pipe:R TAILDROP 1000000 INTERVAL 1000 passes (the common case)
#     FG.CHECK drop:R TAILDROP 1 INTERVAL 10000      mostly drops (reported apart)
#     FG.CHECK dflt:R TAILDROP 1000000               passes, the issue's Kamailio form: the
#                                                    module's default window (10 s), 4 arguments
#     CL.THROTTLE cell:R 100 1000000 1               allowed; the state lives ~1 µs, so
#                                                    every call finds its key expired
#     CL.THROTTLE cellk:R 100 100 60                 allowed, the key kept between calls
#     EVALSHA <INCR+EXPIRE script> 1 lua:R 1000000 1 the mod_hiredis-style limit
#     INCR ctr:R                                     the first half of mod_hiredis's own form
#     FG.USAGE none:R                                a missing key: the module's floor
#                                                    (dispatch, arguments, open key, reply)
#     with REDIS_CELL, on redis-cell's own server instead:
#     CL.THROTTLE cell:R 100 1000000 1, CL.THROTTLE cellk:R 100 100 60
#   redis_pairs (one client thread, CLIENTS connections, pipelines of PIPELINE):
#     set-get          SET then GET of the same keys (the baseline pair)
#     acquire-release  FG.ACQUIRE k 1000000, then FG.RELEASE k <lease>
#     incr-expire      INCR, then EXPIRE 1 where INCR replied 1 (mod_hiredis as it is)
#     evalsha          the Lua script again (one command per operation)
#     check            FG.CHECK as above (one command per operation)
# Besides requests/s, each run records the server's main-thread CPU time per
# request (INFO cpu), how busy that thread was (CPU time / wall time: below
# ~95% the client or the machine, not the server, set the pace) and the time
# inside the command (INFO commandstats usec): the CPU columns are less
# sensitive to other load on the machine than requests/s. "others" is the
# machine's busy CPU time during the run (/proc/stat) minus the server's and
# the client's, over wall time, in cores: loopback networking in softirq
# accounts for a little of it; much more means other jobs shared the machine.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
MODULE=${FG_REDIS_MODULE:-$ROOT/target/release/libfloodgate_redis.so}
N=${N:-2000000}
ROUNDS=${ROUNDS:-3}
CLIENTS=${CLIENTS:-50}
PIPELINE=${PIPELINE:-16}
KEYSPACE=${KEYSPACE:-100000}
PAIRS=${PAIRS:-1}
STRICT=${STRICT:-0}
CELL_MODULE=${REDIS_CELL:-}

die() { echo "redis-bench.sh: $*" >&2; exit 1; }
# shellcheck source=benches/redis-lib.sh
. "$ROOT/benches/redis-lib.sh"

for tool in redis-server redis-benchmark redis-cli awk; do
    command -v "$tool" >/dev/null || die "$tool not found (Debian: apt-get install redis-server redis-tools)"
done
[[ -f $MODULE ]] || die "module not found: $MODULE (build it: cargo build --release -p floodgate-redis, or set FG_REDIS_MODULE)"
MODULE=$(cd "$(dirname "$MODULE")" && pwd)/$(basename "$MODULE")
[[ $N =~ ^[0-9]+$ && $N -ge 2 ]] || die "N must be an integer >= 2"
[[ $ROUNDS =~ ^[0-9]+$ && $ROUNDS -ge 1 ]] || die "ROUNDS must be an integer >= 1"
PAIR_OPS=$((N / 2))
if [[ -n $CELL_MODULE ]]; then
    [[ -f $CELL_MODULE ]] || die "REDIS_CELL: no such file: $CELL_MODULE"
    CELL_MODULE=$(cd "$(dirname "$CELL_MODULE")" && pwd)/$(basename "$CELL_MODULE")
fi

if [[ $PAIRS == 1 ]]; then
    (cd "$ROOT" && cargo build --release -q -p floodgate-benches --bin redis_pairs) \
        || die "could not build redis_pairs"
    PAIRS_BIN=$ROOT/target/release/redis_pairs
fi

TMP=$(mktemp -d)
SERVER_PIDS=()
cleanup() {
    local pid
    for pid in "${SERVER_PIDS[@]}"; do
        if kill -0 "$pid" 2>/dev/null; then
            kill "$pid" 2>/dev/null || true
            wait "$pid" 2>/dev/null || true
        fi
    done
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# The commands of every case go to $PORT (the floodgate server, or the
# redis-cell server for its cases).
cli() { redis-cli -p "$PORT" "$@"; }

start_server() { # port, module, log name, module name in MODULE LIST
    local port=$1 pid
    redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no \
        --daemonize no --logfile "$TMP/$3.log" --loadmodule "$2" &
    pid=$!
    SERVER_PIDS+=("$pid")
    await_server "$port" "$pid" "$TMP/$3.log" "$4" 100
}

FG_PORT=$(free_port) || die "no free port found"
start_server "$FG_PORT" "$MODULE" floodgate floodgate
PORT=$FG_PORT
CELL_PORT=
if [[ -n $CELL_MODULE ]]; then
    # CL.THROTTLE exists in both modules, so redis-cell gets a server of
    # its own: the same redis-server binary and settings.
    CELL_PORT=$(free_port) || die "no free port found"
    start_server "$CELL_PORT" "$CELL_MODULE" redis-cell redis-cell
fi

LUA="local c = redis.call('INCR', KEYS[1]) if c == 1 then redis.call('EXPIRE', KEYS[1], ARGV[2]) end if c > tonumber(ARGV[1]) then return -1 end return 1"
SHA=$(cli SCRIPT LOAD "$LUA")
[[ $SHA =~ ^[0-9a-f]{40}$ ]] || die "SCRIPT LOAD failed: $SHA"

# The redis-benchmark cases: name|command (R is __rand_int__).
CASES=(
    "SET|SET key:__rand_int__ x"
    "SET PX|SET ttl:__rand_int__ x PX 60000"
    "FG.CHECK pass|FG.CHECK pipe:__rand_int__ TAILDROP 1000000 INTERVAL 1000"
    "FG.CHECK drop|FG.CHECK drop:__rand_int__ TAILDROP 1 INTERVAL 10000"
    "FG.CHECK default|FG.CHECK dflt:__rand_int__ TAILDROP 1000000"
    "CL.THROTTLE|CL.THROTTLE cell:__rand_int__ 100 1000000 1"
    "CL.THROTTLE kept|CL.THROTTLE cellk:__rand_int__ 100 100 60"
    "Lua INCR+EXPIRE|EVALSHA $SHA 1 lua:__rand_int__ 1000000 1"
    "INCR|INCR ctr:__rand_int__"
    "FG.USAGE missing|FG.USAGE none:__rand_int__"
)
# With REDIS_CELL, redis-cell's own CL.THROTTLE on its own server, same
# arguments (name|command|cell: the command goes to that server).
if [[ -n $CELL_MODULE ]]; then
    CASES+=(
        "redis-cell CL.THROTTLE|CL.THROTTLE cell:__rand_int__ 100 1000000 1|cell"
        "redis-cell CL.THROTTLE kept|CL.THROTTLE cellk:__rand_int__ 100 100 60|cell"
    )
fi
PAIR_CASES=(set-get acquire-release incr-expire evalsha check)

# Every command answers as expected before anything is timed.
expect() { # want, command...
    local want=$1 got
    shift
    got=$(cli "$@" | tr '\n' ' ' | sed 's/ $//')
    [[ $got == "$want" ]] || die "$* replied '$got', expected '$want'"
}
expect OK SET key:check x
expect OK SET ttl:check x PX 60000
expect 1 FG.CHECK pipe:check TAILDROP 1000000 INTERVAL 1000
expect 1 FG.CHECK drop:check TAILDROP 1 INTERVAL 10000
expect -1 FG.CHECK drop:check TAILDROP 1 INTERVAL 10000
expect 1 FG.CHECK dflt:check TAILDROP 1000000
expect "0 101 100 -1 0" CL.THROTTLE cell:check 100 1000000 1
expect "0 101 100 -1 1" CL.THROTTLE cellk:check 100 100 60
expect 1 EVALSHA "$SHA" 1 lua:check 1000000 1
expect 1 INCR ctr:check
expect 0 FG.USAGE none:check
cli DEL key:check ttl:check pipe:check drop:check cell:check cellk:check lua:check ctr:check >/dev/null
if [[ -n $CELL_MODULE ]]; then
    # redis-cell's replies to the same calls (0.2 truncates seconds, 0.3
    # and later round up from a whole millisecond: 0 here either way).
    PORT=$CELL_PORT
    expect "0 101 100 -1 0" CL.THROTTLE cell:check 100 1000000 1
    got=$(cli CL.THROTTLE cellk:check 100 100 60 | tr '\n' ' ' | sed 's/ $//')
    [[ $got == "0 101 100 -1 0" || $got == "0 101 100 -1 1" ]] \
        || die "redis-cell: CL.THROTTLE cellk:check 100 100 60 replied '$got'"
    cli DEL cell:check cellk:check >/dev/null
    PORT=$FG_PORT
fi

# Main-thread CPU seconds of the server so far.
server_cpu() {
    cli INFO cpu | tr -d '\r' | awk -F: '/^used_cpu_(user|sys)_main_thread:/ { s += $2 } END { printf "%.6f", s }'
}
# Sum of usec of the given commands since the last CONFIG RESETSTAT.
command_usec() {
    local stats
    stats=$(cli INFO commandstats | tr -d '\r')
    local c total=0 u
    for c in "$@"; do
        u=$(awk -F'[:,=]' -v name="cmdstat_$c" '$1 == name { for (i = 2; i < NF; i++) if ($i == "usec") print $(i + 1) }' <<<"$stats")
        total=$((total + ${u:-0}))
    done
    echo "$total"
}
errors() { cli INFO stats | tr -d '\r' | awk -F: '$1 == "total_error_replies" { print $2 }'; }

# Per case: space-separated values, one per round.
declare -A RPS CPU CMD BUSY OTHERS

now() { date +%s.%N; }
# Busy CPU seconds of the whole machine so far (all cores).
machine_busy() {
    awk -v hz="$(getconf CLK_TCK)" '$1 == "cpu" { printf "%.2f", ($2 + $3 + $4 + $7 + $8 + $9) / hz; exit }' /proc/stat
}
# CPU seconds of this shell's finished children (the clients) so far:
# `times` runs in this shell (a subshell would see only its own children).
children_cpu() {
    awk 'NR == 2 { s = 0; for (i = 1; i <= 2; i++) { split($i, a, /[ms]/); s += a[1] * 60 + a[2] } printf "%.3f", s }' "$TMP/times"
}
MARK=
mark() { times >"$TMP/times"; MARK="$(now) $(server_cpu) $(machine_busy) $(children_cpu)"; }
# After a run started at the last mark: its requests/s, the server's CPU per
# operation and busy share, others' CPU. Then the in-command time.
record() { # case, rps, operations
    local t1 c1 m1 s1
    local -a v
    t1=$(now)
    times >"$TMP/times"
    c1=$(children_cpu)
    m1=$(machine_busy)
    s1=$(server_cpu)
    RPS[$1]+="$2 "
    read -r -a v <<<"$(awk -v mark="$MARK" -v t1="$t1" -v c1="$c1" -v m1="$m1" -v s1="$s1" -v n="$3" 'BEGIN {
        split(mark, a, " "); t = t1 - a[1]; s = s1 - a[2]; m = m1 - a[3]; c = c1 - a[4]
        o = (m - s - c) / t; if (o < 0) o = 0
        printf "%.3f %.0f %.2f", s * 1e6 / n, 100 * s / t, o }')"
    CPU[$1]+="${v[0]} "
    BUSY[$1]+="${v[1]} "
    OTHERS[$1]+="${v[2]} "
}
record_usec() { # case, usec, operations
    CMD[$1]+=$(awk -v u="$2" -v n="$3" 'BEGIN { printf "%.3f ", u / n }')
}

run_benchmark() { # name, command, server ("cell" for redis-cell's, else floodgate's)
    local name=$1 cmd=$2 out rps
    local -a words
    read -r -a words <<<"$cmd"
    PORT=$FG_PORT
    [[ ${3:-} == cell ]] && PORT=$CELL_PORT
    cli CONFIG RESETSTAT >/dev/null
    mark
    out=$(redis-benchmark -p "$PORT" -c "$CLIENTS" -P "$PIPELINE" -n "$N" -r "$KEYSPACE" --csv "${words[@]}") \
        || die "redis-benchmark failed on $name"
    rps=$(tail -n 1 <<<"$out" | awk -F'","' '{ print $2 }')
    [[ $rps =~ ^[0-9.]+$ ]] || die "cannot read redis-benchmark output for $name: $out"
    record "$name" "$rps" "$N"
    record_usec "$name" "$(command_usec "${words[0],,}")" "$N"
    [[ $(errors) == 0 ]] || die "$name: the server replied with errors (INFO errorstats: $(cli INFO errorstats | tr -d '\r' | tail -n +2 | tr '\n' ' '))"
    printf '  %-16s %12.0f req/s  (others %s cores)\n' "$name" "$rps" "$(awk '{ print $NF }' <<<"${OTHERS[$name]}")"
}

run_pairs() { # mode
    local mode=$1 name="pairs $1" out rps usec
    cli CONFIG RESETSTAT >/dev/null
    mark
    out=$("$PAIRS_BIN" "$PORT" "$mode" "$PAIR_OPS" "$CLIENTS" "$PIPELINE" "$KEYSPACE") \
        || die "redis_pairs $mode failed"
    rps=$(cut -d, -f2 <<<"$out")
    record "$name" "$rps" "$PAIR_OPS"
    case $mode in
        set-get) usec=$(command_usec set get) ;;
        acquire-release) usec=$(command_usec fg.acquire fg.release) ;;
        incr-expire) usec=$(command_usec incr expire) ;;
        evalsha) usec=$(command_usec evalsha) ;;
        check) usec=$(command_usec fg.check) ;;
    esac
    record_usec "$name" "$usec" "$PAIR_OPS"
    [[ $(errors) == 0 ]] || die "pairs $mode: the server replied with errors"
    if [[ $mode == incr-expire ]]; then
        EXPIRES+="$(cut -d, -f5 <<<"$out") "
    fi
    printf '  %-16s %12.0f ops/s  (others %s cores; %s)\n' "$mode" "$rps" "$(awk '{ print $NF }' <<<"${OTHERS[$name]}")" "$out"
}

median() { tr ' ' '\n' <<<"$1" | grep -v '^$' | sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }'; }
# The ratio of two cases, round by round (runs a few seconds apart), then
# the median of those: robust to the load drifting between rounds.
round_ratio() { # list a, list b
    local -a a b
    local i out=
    read -r -a a <<<"$1"
    read -r -a b <<<"$2"
    for i in "${!a[@]}"; do out+="$(ratio "${a[$i]}" "${b[$i]}") "; done
    printf '%.2f' "$(median "$out")"
}

LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
START=$(date +%s)
EXPIRES=
echo "redis-server on 127.0.0.1:$FG_PORT with $MODULE"
[[ -n $CELL_MODULE ]] && echo "redis-server on 127.0.0.1:$CELL_PORT with $CELL_MODULE (redis-cell's cases)"
echo "N=$N ROUNDS=$ROUNDS CLIENTS=$CLIENTS PIPELINE=$PIPELINE KEYSPACE=$KEYSPACE PAIR_OPS=$PAIR_OPS"
for round in $(seq 1 "$ROUNDS"); do
    echo "round $round"
    for c in "${CASES[@]}"; do
        IFS='|' read -r cname ccmd cserver <<<"$c"
        run_benchmark "$cname" "$ccmd" "$cserver"
    done
    PORT=$FG_PORT
    if [[ $PAIRS == 1 ]]; then
        for m in "${PAIR_CASES[@]}"; do
            run_pairs "$m"
        done
    fi
done
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)
ELAPSED=$(($(date +%s) - START))

MISSED=0
target() { # case, value, ratio wanted, against
    local ok
    ok=$(awk -v v="$2" -v w="$3" 'BEGIN { print (v >= w) ? "met" : "MISSED" }')
    [[ $ok == met ]] || MISSED=1
    printf '%s %sx %s: %s' "$ok" "$3" "$4" "$2"
}

echo
echo "## Machine"
echo "- CPU: $(lscpu 2>/dev/null | awk -F: '/^Model name/ { sub(/^ +/, "", $2); print $2; exit }'), nproc $(nproc)"
echo "- $(uname -sr); $(redis-server --version); $(redis-benchmark --version 2>/dev/null | head -n 1)"
echo "- load averages (1, 5, 15 min): before $LOAD_BEFORE, after $LOAD_AFTER; $ELAPSED s"
echo
echo "## Results (median of $ROUNDS; per-round values in brackets)"
echo
echo "redis-benchmark -c $CLIENTS -P $PIPELINE -r $KEYSPACE -n $N, requests/s:"
echo
echo "× SET, × SET PX, × Lua: requests/s over SET's (SET PX's, the Lua script's) in the same round, median over rounds."
echo "by CPU: SET's server CPU per request over this command's (what a server-bound run would show)."
echo
echo "| command | requests/s | × SET | × SET PX | × Lua | server CPU µs/req | × SET by CPU | server busy | in command µs/req | others (cores) | target |"
echo "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"
SET_CPU=$(median "${CPU[SET]}")
for c in "${CASES[@]}"; do
    name=${c%%|*}
    m=$(median "${RPS[$name]}")
    rs=$(round_ratio "${RPS[$name]}" "${RPS[SET]}")
    rl=$(round_ratio "${RPS[$name]}" "${RPS[Lua INCR+EXPIRE]}")
    rp=$(round_ratio "${RPS[$name]}" "${RPS[SET PX]}")
    cpu=$(median "${CPU[$name]}")
    t=
    case $name in
        "FG.CHECK pass") t="$(target "$name" "$rs" 0.8 SET); $(target "$name" "$rl" 1.5 Lua)" ;;
        "CL.THROTTLE") t=$(target "$name" "$rs" 0.7 SET) ;;
    esac
    printf '| %s | %.0f (%s) | %s | %s | %s | %.2f | %s | %.0f%% | %.2f | %s | %s |\n' "$name" "$m" \
        "$(for v in ${RPS[$name]}; do printf '%.0f ' "$v"; done | sed 's/ $//')" \
        "$rs" "$rp" "$rl" "$cpu" "$(ratio "$SET_CPU" "$cpu")" "$(median "${BUSY[$name]}")" "$(median "${CMD[$name]}")" \
        "$(sed 's/ $//' <<<"${OTHERS[$name]}")" "$t"
done
if [[ -n $CELL_MODULE ]]; then
    echo
    echo "floodgate's CL.THROTTLE over redis-cell's, requests/s per round, median over rounds:"
    echo "- key expired on every call: $(round_ratio "${RPS[CL.THROTTLE]}" "${RPS[redis-cell CL.THROTTLE]}")x"
    echo "- key kept: $(round_ratio "${RPS[CL.THROTTLE kept]}" "${RPS[redis-cell CL.THROTTLE kept]}")x"
    echo "(redis-cell rows: their own server, the same redis-server binary and settings; × SET is against the floodgate server's SET in the same round.)"
fi
if [[ $PAIRS == 1 ]]; then
    echo
    echo "redis_pairs, $CLIENTS connections, pipelines of $PIPELINE, $PAIR_OPS operations each (a pair counts once), operations/s;"
    echo "ratios per round as above, against the set-get pair and against evalsha:"
    echo
    echo "| operation | operations/s | × SET+GET pair | × evalsha | server CPU µs/op | × SET+GET by CPU | server busy | in commands µs/op | others (cores) |"
    echo "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"
    SETGET_CPU=$(median "${CPU[pairs set-get]}")
    for m in "${PAIR_CASES[@]}"; do
        name="pairs $m"
        mm=$(median "${RPS[$name]}")
        cpu=$(median "${CPU[$name]}")
        printf '| %s | %.0f (%s) | %s | %s | %.2f | %s | %.0f%% | %.2f | %s |\n' "$m" "$mm" \
            "$(for v in ${RPS[$name]}; do printf '%.0f ' "$v"; done | sed 's/ $//')" \
            "$(round_ratio "${RPS[$name]}" "${RPS[pairs set-get]}")" \
            "$(round_ratio "${RPS[$name]}" "${RPS[pairs evalsha]}")" \
            "$cpu" "$(ratio "$SETGET_CPU" "$cpu")" "$(median "${BUSY[$name]}")" "$(median "${CMD[$name]}")" \
            "$(sed 's/ $//' <<<"${OTHERS[$name]}")"
    done
    echo
    echo "incr-expire sent an EXPIRE after $(median "$EXPIRES") of $PAIR_OPS INCRs (median)."
fi
if [[ $MISSED == 1 ]]; then
    echo
    echo "Some targets were missed."
    [[ $STRICT == 1 ]] && exit 1
fi
exit 0
