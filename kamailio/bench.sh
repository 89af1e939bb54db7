#!/usr/bin/env bash
# Kamailio's CPU time per call with floodgate vs pipelimit under the same sipp
# load (kamailio.cfg, uac_pl.xml: INVITE -> pl_check -> 200, ACK).
#
#   bash kamailio/bench.sh            (after test.sh or build.sh)
#   RATES="2000 4000 6000" CALLS=60000 REPS=3 bash kamailio/bench.sh
#
# 1. Finds the highest of RATES (calls/s) that sipp and kamailio (children=4)
#    sustain on this machine with floodgate (children=CHILDREN, default 4):
#    every call answered, at most 1% of INVITEs retransmitted, sipp's achieved
#    rate within 5% of the target.
# 2. At that rate runs CALLS calls against each module, REPS times,
#    alternating floodgate, pipelimit and none (the same config without any
#    rate-limit module or pl_check: the baseline cost of a call). The pipe is
#    pl_check("bench", "TAILDROP", 100000000): every INVITE passes, so each
#    call costs the pipe lookup, the count and a stateless 200.
# 3. Prints kamailio's CPU time (user + system of the main process and all its
#    children, from /proc/<pid>/stat, over the load only) per call, per run,
#    and the median per module.
# Everything on 127.0.0.1; every process it starts is stopped by an EXIT trap.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
RATES=${RATES:-"2000 3000 4000 5000 6000 8000"}
CALLS=${CALLS:-60000}
REPS=${REPS:-3}
CHILDREN=${CHILDREN:-4}       # kamailio's UDP worker processes
MEMMGR=${MEMMGR:-}            # kamailio -x/-X: shm and pkg allocator (qm, fm, tlsf); empty: Kamailio's default (qm)
KAM_PORT=${FG_KAM_PORT:-5392}
SIPP_PORT=${FG_SIPP_PORT:-5393}
MODULE_SO="${FLOODGATE_MODULE_OUT:-$ROOT/target/kamailio-module}/floodgate.so"
WORK=$(mktemp -d /tmp/floodgate-kamailio-bench.XXXXXX)
CTL="$WORK/ctl"
HZ=$(getconf CLK_TCK)
[ -f "$MODULE_SO" ] || { echo "no $MODULE_SO: run kamailio/build.sh first" >&2; exit 1; }

KAM_PID=""; KAM_KIDS=""; SIPP_PID=""
. "$HERE/procs.sh"
kam_stop() {
    [ -n "$KAM_PID" ] || return 0
    # shellcheck disable=SC2086 # one word per child pid
    stop_kamailio "$KAM_PID" $KAM_KIDS
    KAM_PID=""; KAM_KIDS=""
}
cleanup() {
    rc=$?
    trap - EXIT INT TERM
    [ -n "$SIPP_PID" ] && { kill -KILL "$SIPP_PID" 2>/dev/null || true; wait "$SIPP_PID" 2>/dev/null || true; }
    kam_stop
    rm -rf "$WORK"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

kam_start() {
    local args=(-f "$HERE/kamailio.cfg" -DD -E -Y "$WORK/run" -A "PORT=$KAM_PORT" -A "CTL_SOCK=\"unix:$CTL\""
                -A TIMER_INTERVAL=10 -A "CHILDREN=$CHILDREN")
    [ "$1" = floodgate ] && args+=(-A FLOODGATE -A "FLOODGATE_SO=\"$MODULE_SO\"")
    [ "$1" = none ] && args+=(-A NO_PL)
    [ -n "$MEMMGR" ] && args+=(-x "$MEMMGR" -X "$MEMMGR")
    mkdir -p "$WORK/run"; rm -f "$CTL"
    kamailio "${args[@]}" >"$WORK/kamailio.log" 2>&1 &
    KAM_PID=$!
    for _ in $(seq 100); do
        kamcmd -s "unix:$CTL" core.uptime >/dev/null 2>&1 && break
        kill -0 "$KAM_PID" 2>/dev/null || { cat "$WORK/kamailio.log"; exit 1; }
        sleep 0.1
    done
    KAM_KIDS=$(pgrep -P "$KAM_PID" | tr '\n' ' ')
}

# CPU ticks (utime + stime) of kamailio and its children
kam_ticks() {
    local t=0 p
    for p in $KAM_PID $KAM_KIDS; do
        t=$(( t + $(awk '{print $14 + $15}' "/proc/$p/stat") ))
    done
    echo "$t"
}

# run RATE CALLS: sets OK503 (answered calls), RETR, RATE_GOT, TICKS
run() {
    local screen="$WORK/screen.$RANDOM" t0 t1 s0 s1
    t0=$(kam_ticks); s0=$(date +%s%N)
    sipp "127.0.0.1:$KAM_PORT" -sf "$HERE/uac_pl.xml" -s bench -key algo TAILDROP -key limit 100000000 \
        -i 127.0.0.1 -p "$SIPP_PORT" -r "$1" -m "$2" -l 20000 -nostdin -max_recv_loops 10000 \
        -timeout "$(( $2 / $1 * 3 + 20 ))s" -recv_timeout 5s -trace_screen -screen_file "$screen" \
        </dev/null >/dev/null 2>&1 &
    SIPP_PID=$!
    wait "$SIPP_PID" || true
    SIPP_PID=""
    s1=$(date +%s%N); t1=$(kam_ticks)
    ANSWERED=$(awk '($1=="200"||$1=="503") && $2 ~ /^<-/ {v[$1]=$3} END {print v["200"]+v["503"]}' "$screen")
    RETR=$(awk '$1=="INVITE" && $2 ~ /->$/ {v=$4} END {print v+0}' "$screen")
    RATE_GOT=$(awk -v n="$2" -v ns=$(( s1 - s0 )) 'BEGIN {printf "%.0f", n / (ns / 1e9)}')
    TICKS=$(( t1 - t0 ))
    rm -f "$screen"
}

echo "machine: $(nproc) CPUs, $(sed -n 's/^model name\t*: //p' /proc/cpuinfo | head -1); load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "kamailio $(kamailio -v | sed -n 's/^version: kamailio \([0-9.]*\).*/\1/p'), children=$CHILDREN; sipp $(sipp -v 2>/dev/null | grep -o 'v[0-9.]*' | head -1); CPU clock ticks: $HZ/s"

echo "--- finding the highest sustained rate (floodgate, $(( CALLS / 4 )) calls per try)"
kam_start floodgate
BEST=""
for r in $RATES; do
    run "$r" $(( CALLS / 4 ))
    printf 'rate %5s/s: achieved %5s/s, answered %s/%s, INVITE retransmissions %s\n' "$r" "$RATE_GOT" "$ANSWERED" $(( CALLS / 4 )) "$RETR"
    if [ "$ANSWERED" -eq $(( CALLS / 4 )) ] && [ "$RETR" -le $(( CALLS / 400 )) ] && [ "$RATE_GOT" -ge $(( r * 95 / 100 )) ]; then BEST=$r; else break; fi
done
kam_stop
[ -n "$BEST" ] || { echo "no rate of $RATES is sustained" >&2; exit 1; }
echo "--- highest sustained rate: $BEST calls/s"

declare -A PER
for i in $(seq "$REPS"); do
    for mod in floodgate pipelimit none; do
        kam_start "$mod"
        run "$BEST" "$CALLS"
        kam_stop
        us=$(awk -v t="$TICKS" -v hz="$HZ" -v n="$CALLS" 'BEGIN {printf "%.2f", t / hz * 1e6 / n}')
        PER[$mod]="${PER[$mod]:-} $us"
        printf 'run %d %-9s: %d calls at %s/s (achieved %s/s), answered %s, retrans %s: kamailio CPU %.2f s = %s us per call\n' \
            "$i" "$mod" "$CALLS" "$BEST" "$RATE_GOT" "$ANSWERED" "$RETR" "$(awk -v t="$TICKS" -v hz="$HZ" 'BEGIN {print t / hz}')" "$us"
    done
done
median() { tr ' ' '\n' | grep . | sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }
f=$(median <<<"${PER[floodgate]}"); p=$(median <<<"${PER[pipelimit]}"); b=$(median <<<"${PER[none]}")
echo "--- median kamailio CPU per call (INVITE + 200 + ACK) at $BEST calls/s, children=$CHILDREN, allocator ${MEMMGR:-default (qm)}, over $REPS runs of $CALLS calls:"
echo "floodgate  $f us   (runs:${PER[floodgate]})"
echo "pipelimit  $p us   (runs:${PER[pipelimit]})"
echo "none       $b us   (runs:${PER[none]})   (no rate-limit module, no pl_check: the baseline)"
awk -v f="$f" -v p="$p" 'BEGIN {printf "floodgate / pipelimit = %.3f\n", f / p}'
