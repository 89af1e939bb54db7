#!/usr/bin/env bash
# End-to-end test of the floodgate Kamailio module against Debian's kamailio,
# driven by sipp, side by side with Kamailio's own pipelimit.
#
#   bash kamailio/test.sh     (from the repo root, as root or with sudo)
#
# Installs kamailio, kamailio-utils-modules and sip-tester from Debian, builds
# floodgate.so (build.sh), then for each module (floodgate, then pipelimit)
# starts kamailio on 127.0.0.1 with kamailio.cfg (pl_check on every INVITE,
# 200 or pl_drop's 503) and runs sipp (uac_pl.xml) at a rate above the pipe's
# limit over several windows:
#   TAILDROP, RED, INTERVAL  pl_check(pipe, algorithm, limit)
#   pl.set_pipe              a new limit at run time, obeyed by the next windows
#   FEEDBACK                 pl.push_load 0.9 x3 -> drop rate 30%, then load
#   pl.list / pl.get_pid     the pipe, its counter, the controller
# the same from a KEMI (Lua) route (kemi.lua: KSR.pipelimit.*, KSR.floodgate.*),
# and, for floodgate only, the CPU load it samples (load_source 0) from a
# load_stat_file that the test writes in /proc/stat's format (counters that
# give an exact load whichever two versions of the file the module reads).
#
# Then, for floodgate only, concurrent call limits (dialog.cfg: Kamailio as
# a stateful proxy with the dialog module between a sipp UAC, uac_dlg.xml,
# and a sipp UAS, uas_dlg.xml): fg_dlg_acquire on every INVITE, slots
# counted with `kamcmd floodgate.usage KEY` while the calls are up and after
# they end, exact numbers: calls that hang up (BYE), calls never answered
# (tm's 408: failed dialogs), dialogs that time out (expired), calls over the
# max (503), a hold shorter than the calls (reclaimed while they are up; the
# late BYEs leave newer slots alone), lease records full (-3 below the max),
# the same from KEMI, and a config using
# fg_dlg_acquire without dialog.so refused at start-up.
#
# Each load starts right after a window edge: the test sends one INVITE (the
# probe, which creates the pipe), then polls `kamcmd pl.list <pipe>` until the
# counter is back at 0. The number of 503s is then predicted by simulating the
# algorithm over the calls sipp sends (R calls/s, T s windows, first call at
# the edge), and floodgate's count must be within
#     tolerance = ceil(R * 0.1 s) + ceil(1% of the calls)
# of it: 100 ms of traffic for the start offset and timer jitter, plus 1%.
# pipelimit's counts are printed beside floodgate's and marked in or out of
# the same tolerance (they do not fail the test: pipelimit is the reference).
#
# Everything listens on 127.0.0.1 only. Every process the test starts is
# stopped by an EXIT trap, also on failure. Exit status 0 only if every
# assertion held.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
START=$(date +%s)
SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"

T=2                                   # timer_interval / window, seconds
KAM_PORT=${FG_KAM_PORT:-5390}         # kamailio, udp 127.0.0.1
SIPP_PORT=${FG_SIPP_PORT:-5391}       # sipp, udp 127.0.0.1
UAS_PORT=${FG_UAS_PORT:-5392}         # sipp UAS of the dialog stages
DEAD_PORT=${FG_DEAD_PORT:-5393}       # nobody listens: INVITEs never answered
SIPP2_PORT=${FG_SIPP2_PORT:-5394}     # a second sipp UAC
WORK=$(mktemp -d /tmp/floodgate-kamailio-test.XXXXXX)
CFG="$HERE/kamailio.cfg"
SCEN="$HERE/uac_pl.xml"
MODULE_SO="${FLOODGATE_MODULE_OUT:-$ROOT/target/kamailio-module}/floodgate.so"

stage() { printf '\n==> [%4ss] %s\n' "$(( $(date +%s) - START ))" "$*"; }
ok() { printf 'ok    %s\n' "$*"; }
info() { printf '      %s\n' "$*"; }
FAILED=0
fail() { printf 'FAIL  %s\n' "$*"; FAILED=1; exit 1; }

# ---- processes: every one we start is recorded and stopped -----------------
KAM_PID=""; KAM_KIDS=""; SIPP_PID=""; UAS_PID=""; UAC1_PID=""; UAC2_PID=""; KAM_LOG=""; POLICY_ADDED=0
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
    # The dialog stages' sipps: TERM first (timeout passes it on to its sipp).
    for p in $UAC1_PID $UAC2_PID $UAS_PID; do kill -TERM "$p" 2>/dev/null || true; done
    for p in $UAC1_PID $UAC2_PID $UAS_PID; do
        for _ in $(seq 20); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true
    done
    if [ "$rc" -ne 0 ] && [ -n "$KAM_LOG" ] && [ -f "$KAM_LOG" ]; then
        echo "---- last lines of $KAM_LOG"; tail -n 20 "$KAM_LOG" || true
    fi
    kam_stop
    if [ "$POLICY_ADDED" = 1 ]; then $SUDO rm -f /usr/sbin/policy-rc.d; fi
    if [ "$rc" -eq 0 ]; then rm -rf "$WORK"; else echo "logs kept in $WORK"; fi
    if [ "$rc" -ne 0 ]; then printf '\n!!! kamailio-module test FAILED (exit %s)\n' "$rc"; fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- install and build ----------------------------------------------------------
stage "install: Debian packages kamailio, kamailio-utils-modules, kamailio-lua-modules (KEMI), sip-tester"
need=""
for p in kamailio kamailio-utils-modules kamailio-lua-modules sip-tester gcc make dpkg-dev procps; do
    dpkg -s "$p" >/dev/null 2>&1 || need="$need $p"
done
if [ -n "$need" ]; then
    $SUDO apt-get update -qq
    if [ ! -e /usr/sbin/policy-rc.d ]; then   # no system kamailio service
        printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
        $SUDO chmod 755 /usr/sbin/policy-rc.d; POLICY_ADDED=1
    fi
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $need >/dev/null
    if [ "$POLICY_ADDED" = 1 ]; then $SUDO rm -f /usr/sbin/policy-rc.d; POLICY_ADDED=0; fi
    echo "installed:$need"
else
    echo "already installed: kamailio kamailio-utils-modules kamailio-lua-modules sip-tester"
fi
kamailio -v | head -1
sipp -v 2>/dev/null | grep -m1 -i 'sipp v' || true

stage "build: floodgate.so against Debian's kamailio source package (build.sh)"
bash "$HERE/build.sh"
[ -f "$MODULE_SO" ] || fail "no $MODULE_SO"
command -v ss >/dev/null && for p in $KAM_PORT $SIPP_PORT; do
    if ss -Hlun "sport = :$p" 2>/dev/null | grep -q .; then fail "udp port $p is taken on this machine"; fi
done

# ---- helpers -----------------------------------------------------------------------
CTL="$WORK/ctl"
kc() { kamcmd -s "unix:$CTL" "$@"; }
# kc_fault CMD...: true if the RPC answers with a fault (kamcmd exits 0 anyway)
kc_fault() { kamcmd -s "unix:$CTL" "$@" 2>&1 | grep -q '^error:'; }

# kam_args MODULE [extra -A defines...]: kamailio's arguments in KAM_ARGS, and
# a new log file in KAM_LOG
kam_args() {
    local mod=$1; shift
    KAM_ARGS=(-f "$CFG" -DD -E -Y "$WORK/run" -A "PORT=$KAM_PORT" -A "CTL_SOCK=\"unix:$CTL\""
              -A "TIMER_INTERVAL=$T")
    [ "$mod" = floodgate ] && KAM_ARGS+=(-A FLOODGATE -A "FLOODGATE_SO=\"$MODULE_SO\"")
    for d in "$@"; do KAM_ARGS+=(-A "$d"); done
    mkdir -p "$WORK/run"; rm -f "$CTL"
    KAM_LOG="$WORK/kamailio-$mod-$(date +%s%N).log"
}

# kam_start MODULE [extra -A defines...]
kam_start() {
    local mod=$1
    kam_args "$@"
    local args=("${KAM_ARGS[@]}")
    kamailio -c "${args[@]}" >"$KAM_LOG" 2>&1 || { cat "$KAM_LOG"; fail "kamailio -c rejects the config with $mod"; }
    kamailio "${args[@]}" >>"$KAM_LOG" 2>&1 &
    KAM_PID=$!
    for _ in $(seq 100); do
        kill -0 "$KAM_PID" 2>/dev/null || fail "kamailio with $mod exited at start"
        if kc core.uptime >/dev/null 2>&1; then break; fi
        sleep 0.1
    done
    kc core.uptime >/dev/null 2>&1 || fail "kamailio with $mod does not answer kamcmd"
    KAM_KIDS=$(pgrep -P "$KAM_PID" | tr '\n' ' ')
    ok "kamailio $(kamailio -v | sed -n 's/^version: kamailio \([0-9.]*\).*/\1/p') with $mod: pid $KAM_PID, $(echo $KAM_KIDS | wc -w) children, udp 127.0.0.1:$KAM_PORT"
}

# sipp_run PIPE ALGO LIMIT RATE CALLS: sets S200 S503 SRETRANS STIMEOUT
sipp_run() {
    local screen="$WORK/sipp-$1-$(date +%s%N).screen"
    local secs=$(( $5 / $4 + 15 ))
    timeout $(( secs + 10 )) sipp "127.0.0.1:$KAM_PORT" -sf "$SCEN" -s "$1" -key algo "$2" -key limit "$3" \
        -i 127.0.0.1 -p "$SIPP_PORT" -r "$4" -m "$5" -l 2000 -nostdin \
        -timeout "${secs}s" -recv_timeout 3s -trace_screen -screen_file "$screen" \
        </dev/null >/dev/null 2>&1 &
    SIPP_PID=$!
    wait "$SIPP_PID" || true
    SIPP_PID=""
    S200=$(awk '$1=="200" && $2 ~ /^<-/ {v=$3} END {print v+0}' "$screen")
    S503=$(awk '$1=="503" && $2 ~ /^<-/ {v=$3} END {print v+0}' "$screen")
    SRETRANS=$(awk '$1=="INVITE" && $2 ~ /->$/ {v=$4} END {print v+0}' "$screen")
    STIMEOUT=$(awk '$1=="503" && $2 ~ /^<-/ {v=$5} END {print v+0}' "$screen")
}

# field NAME: a field of `kamcmd pl.list <pipe>` output on stdin
field() { awk -v k="$1:" '$1==k {print $2; exit}'; }

# align PIPE: wait for the next window edge (the pipe's counter back at 0)
# (pipelimit's windows are one timer for all pipes: a pipe it could not
# create, as INTERVAL, is aligned on the td pipe.)
align() {
    local t0 c pipe=$1
    kc_fault pl.list "$pipe" && pipe=td
    t0=$(date +%s%N)
    while :; do
        c=$(kc pl.list "$pipe" 2>/dev/null | field counter)
        [ "$c" = "0" ] && return 0
        [ $(( $(date +%s%N) - t0 )) -lt $(( (T + 2) * 1000000000 )) ] || fail "no window edge seen on pipe $pipe within $((T + 2)) s"
        sleep 0.01
    done
}

# predict ALGO CALLS RATE LIMIT [DROP_RATE]: 503s the algorithm gives for CALLS
# calls at RATE/s, the first at a window edge after a window with 1 request.
predict() {
    awk -v algo="$1" -v n="$2" -v r="$3" -v T="$T" -v L="$4" -v fb="${5:-0}" 'BEGIN {
        per = r * T; w = -1; last = 1; cnt = 0; drops = 0
        for (i = 0; i < n; i++) {
            cw = int(i / per)
            if (cw != w) { if (w >= 0) last = cnt; load = (L > 0) ? int(last / L) : 0; cnt = 0; w = cw }
            cnt++
            if (algo == "TAILDROP" || algo == "INTERVAL") d = (cnt > L)
            else if (algo == "RED") d = (load == 0) ? 0 : (cnt % load != 0)
            else if (algo == "FEEDBACK") d = (((61 * (cnt % 100)) % 100) < fb)
            else d = 0
            drops += d
        }
        print drops }'
}
tolerance() { echo $(( ($1 + 9) / 10 + ($2 + 99) / 100 )); }   # RATE CALLS
within() { local d=$(( $1 - $2 )); [ ${d#-} -le "$3" ]; }       # GOT PRED TOL

declare -A R200 R503 RRETR PRED TOL DESC CALLS

# load_stage MOD NAME PIPE ALGO LIMIT RATE WINDOWS PRED_ALGO PRED_LIMIT [DROP_RATE]
# The probe uses pl_check(PIPE, ALGO, LIMIT) (LIMIT "-": the pipe must exist).
load_stage() {
    local mod=$1 name=$2 pipe=$3 algo=$4 limit=$5 rate=$6 windows=$7 palgo=$8 plimit=$9 fbrate=${10:-0}
    local calls=$(( windows * rate * T - rate / 5 ))   # ends 200 ms before the last edge
    align "$pipe"
    sipp_run "$pipe" "$algo" "$limit" "$rate" "$calls"
    local pred tol
    pred=$(predict "$palgo" "$calls" "$rate" "$plimit" "$fbrate")
    tol=$(tolerance "$rate" "$calls")
    R200[$mod:$name]=$S200; R503[$mod:$name]=$S503; RRETR[$mod:$name]=$SRETRANS
    PRED[$name]=$pred; TOL[$name]=$tol; CALLS[$name]=$calls
    if [ "$palgo" = FEEDBACK ]; then DESC[$name]="FEEDBACK at drop rate $fbrate%, $rate calls/s"
    else DESC[$name]="$palgo limit $plimit/${T}s, $rate calls/s"; fi
    local line="$name: $calls calls at $rate/s over $windows windows of ${T}s: $S200 x 200, $S503 x 503 (retransmissions $SRETRANS); predicted $pred x 503 +- $tol"
    [ $(( S200 + S503 )) -eq "$calls" ] || { [ "$mod" = floodgate ] && fail "$line: $(( calls - S200 - S503 )) calls got no 200 or 503"; }
    if within "$S503" "$pred" "$tol"; then ok "$line"
    elif [ "$mod" = floodgate ]; then fail "$line"
    else info "pipelimit outside the tolerance: $line"; fi
}

# probe PIPE ALGO LIMIT: one INVITE (creates the pipe with ALGO LIMIT)
probe() { sipp_run "$1" "$2" "$3" 10 1; }

run_module() {
    local mod=$1
    stage "$mod: start kamailio (children=4, timer_interval=$T s, load_fetch=0)"
    kam_start "$mod"

    stage "$mod: pl_check(\"td\", \"TAILDROP\", 100); pl.list shows the pipe and its counter"
    probe td TAILDROP 100
    [ "$S200" = 1 ] || fail "$mod: the probe INVITE got no 200 ($S200 x 200, $S503 x 503)"
    local out; out=$(kc pl.list td)
    local c l; c=$(field counter <<<"$out"); l=$(field last_counter <<<"$out")
    if [ "$(field name <<<"$out")" = td ] && [ "$(field algorithm <<<"$out")" = TAILDROP ] \
        && [ "$(field limit <<<"$out")" = 100 ] && { [ "$c" = 1 ] || { [ "$c" = 0 ] && [ "$l" = 1 ]; }; }; then
        ok "kamcmd pl.list td: $(tr -s ' \t\n' ' ' <<<"$out")"
    else
        fail "$mod: kamcmd pl.list td after one INVITE: $out"
    fi
    load_stage "$mod" TAILDROP td TAILDROP 100 100 4 TAILDROP 100
    info "kamcmd pl.stats: $(kc pl.stats | tr '\n' ' ')"
    info "kamcmd pl.get_pipes: $(kc pl.get_pipes | tr '\n' ' ')"

    stage "$mod: pl_check(\"red\", \"RED\", 100) at 175 calls/s (3.5x the limit)"
    probe red RED 100
    load_stage "$mod" RED red RED 100 175 4 RED 100

    stage "$mod: pl_check(\"ivl\", \"INTERVAL\", 100): the interval-limit pipe (floodgate's FreeSWITCH max/interval)"
    probe ivl INTERVAL 100
    if [ "$mod" = floodgate ]; then
        [ "$S200" = 1 ] || fail "$mod: INTERVAL probe got no 200"
    else
        info "pipelimit has no INTERVAL algorithm: pl_check returns -2 (no pipe), every INVITE gets 503"
    fi
    load_stage "$mod" INTERVAL ivl INTERVAL 100 100 4 INTERVAL 100

    stage "$mod: pl.set_pipe sp TAILDROP 40 at run time; the next windows obey it (pl_check(\"sp\"))"
    probe sp TAILDROP 100
    ! kc_fault pl.set_pipe sp TAILDROP 40 || fail "$mod: kamcmd pl.set_pipe sp TAILDROP 40"
    out=$(kc pl.list sp)
    [ "$(field limit <<<"$out")" = 40 ] || fail "$mod: pl.list sp after pl.set_pipe: $out"
    ok "kamcmd pl.set_pipe sp TAILDROP 40; pl.list sp: limit $(field limit <<<"$out")"
    load_stage "$mod" "set_pipe 40" sp TAILDROP - 100 2 TAILDROP 40

    stage "$mod: FEEDBACK: pl.push_load 0.9 three times (setpoint 50%) -> drop rate 30%"
    probe fb FEEDBACK 50
    if [ "$mod" = floodgate ]; then
        out=$(kc pl.get_pid | tr '\n' ' ')
        grep -q 'setpoint\[0.500000\]' <<<"$out" || fail "floodgate: creating a FEEDBACK 50 pipe sets setpoint 0.5: $out"
        ok "pl_check(\"fb\", \"FEEDBACK\", 50) set the setpoint: $out"
    fi
    # pipelimit 5.6 takes the setpoint only from pl.set_pipe: both get it.
    ! kc_fault pl.set_pipe fb FEEDBACK 50 || fail "$mod: pl.set_pipe fb FEEDBACK 50"
    for _ in 1 2 3; do ! kc_fault pl.push_load 0.9 || fail "$mod: kamcmd pl.push_load 0.9"; done
    out=$(kc pl.get_pid | tr '\n' ' ')
    if [ "$mod" = floodgate ]; then
        grep -q 'drop_rate\[30\]' <<<"$out" || fail "floodgate: after 3 x pl.push_load 0.9: $out (want drop_rate[30])"
        grep -q 'int_err\[-1.200000\]' <<<"$out" || fail "floodgate: int_err after 3 x 0.9: $out"
        ok "kamcmd pl.get_pid: $out"
    else
        info "kamcmd pl.get_pid: $out"
    fi
    if kc_fault pl.push_load 1.5; then ok "kamcmd pl.push_load 1.5: fault (out of range)"
    else fail "$mod: pl.push_load 1.5 was accepted"; fi
    load_stage "$mod" "FEEDBACK 30%" fb FEEDBACK - 100 3 FEEDBACK 0 30

    stage "$mod: pl_active and a missing pipe"
    probe nosuch TAILDROP -
    R200[$mod:missing]=$S200; R503[$mod:missing]=$S503
    [ "$S503" = 1 ] || fail "$mod: pl_check(\"nosuch\") on a missing pipe should give -2 -> 503"
    ok "pl_check(\"nosuch\"): -2, 503"
    kc_fault pl.list nosuch || fail "$mod: pl.list nosuch should be a fault"
    ok "kamcmd pl.list nosuch: fault (unknown pipe)"
    kc_fault pl.set_pipe nosuch TAILDROP 5 || fail "$mod: pl.set_pipe on a missing pipe should be a fault"
    ok "kamcmd pl.set_pipe nosuch ...: fault (unknown pipe), as pipelimit"

    stage "$mod: stop kamailio"
    kam_stop
    ok "kamailio with $mod stopped"
}

# kemi_stage MOD: the same pipes from a Lua (KEMI) route, kemi.lua
kemi_stage() {
    local mod=$1 pipes="kemi" p
    [ "$mod" = floodgate ] && pipes="kemi fg_kemi"
    stage "$mod: KEMI (app_lua, kemi.lua): pl_check_limit, pl_check, pl_active, pl_drop_retry"
    kam_start "$mod" KEMI "KEMI_SCRIPT=\"$HERE/kemi.lua\""
    for p in $pipes; do
        local ns=KSR.pipelimit; [ "${p:0:3}" = fg_ ] && ns=KSR.floodgate
        probe "$p" TAILDROP 4
        [ "$S200" = 1 ] || fail "$mod: $ns.pl_check_limit($p, TAILDROP, 4): the probe got no 200"
        align "$p"
        sipp_run "$p" TAILDROP 4 100 5; local a2=$S200 a5=$S503
        sipp_run "$p" TAILDROP - 100 5
        local line="$ns: 5 x pl_check_limit(\"$p\", \"TAILDROP\", 4) then 5 x pl_check(\"$p\") in one window: $(( a2 + S200 )) x 200, $(( a5 + S503 )) x 503 (want 4 and 6)"
        R200[$mod:KEMI $ns]=$(( a2 + S200 )); R503[$mod:KEMI $ns]=$(( a5 + S503 ))
        if [ $(( a2 + S200 )) = 4 ] && [ $(( a5 + S503 )) = 6 ]; then ok "$line"
        elif [ "$mod" = floodgate ]; then fail "$line"
        else info "pipelimit: $line"; fi
    done
    kam_stop
}

run_module floodgate
kemi_stage floodgate
run_module pipelimit
kemi_stage pipelimit

# ---- CPU load, floodgate only ------------------------------------------------------
# The module reads load_stat_file (default /proc/stat) at every tick. Here it
# reads a file the test writes, in /proc/stat's format, so that the load it
# must find does not depend on the machine's real load or on timing: the
# counters grow by the same step every time the file is rewritten, so ANY two
# versions of the file give the same 1 - idle_delta/total_delta, whichever
# ticks read them. The base counters give a cumulative ratio far from the
# steps' (a module using totals since boot would never show the step's load),
# and the second phase's steps have another ratio (a module keeping its first
# sample, instead of the previous one, would never show it exactly).
STAT_DIR="$WORK/stat"; STAT="$STAT_DIR/stat"
mkdir -p "$STAT_DIR"
#       user   nice  system   idle  iowait irq softirq steal guest guest_nice
STAT_C=(100000 2000  30000  900000  5000   1000 2000   0     4000  0)
# Steps of 400 jiffies over the first 8 fields (guest is already in user).
STEP_625=(200  10    30     150     5      2    3      0     20    0)  # idle 150 -> 0.625
STEP_375=(110  5     25     250     5      2    3      0     10    0)  # idle 250 -> 0.375
STAT_N=0
# stat_write STEP: adds STEP to the counters and writes the file atomically
# (a temporary file in the same directory, then mv): "cpu" (all CPUs), then
# cpu0 and cpu1 (halves of it), as /proc/stat of a two-CPU machine.
stat_write() {
    local -n st=$1
    local i c0="" c1=""
    for i in "${!STAT_C[@]}"; do
        STAT_C[i]=$(( STAT_C[i] + st[i] ))
        c0+=" $(( STAT_C[i] / 2 ))"; c1+=" $(( STAT_C[i] - STAT_C[i] / 2 ))"
    done
    STAT_N=$(( STAT_N + 1 ))
    printf 'cpu  %s\ncpu0%s\ncpu1%s\nctxt %s\nprocesses %s\nprocs_running 1\nprocs_blocked 0\n' \
        "${STAT_C[*]}" "$c0" "$c1" $(( STAT_N * 1000 )) "$STAT_N" >"$STAT.tmp"
    cp "$STAT.tmp" "$STAT_DIR/stat.$STAT_N"      # kept for the reference below
    mv -f "$STAT.tmp" "$STAT"
}
# stat_ratio FILE_A FILE_B: "LOAD PL56 NCPU" between two files: floodgate's
# 1 - idle_delta/total_delta over the "cpu" line's first 8 fields, pipelimit
# 5.6's formula, which divides idle_delta/total_delta by the number of CPUs
# before 1 - x (5.6 counts them with sysconf; here: the file's cpuN lines),
# and that number.
stat_ratio() {
    awk 'FNR == 1 {f++}
         $1 == "cpu" {t = 0; for (i = 2; i <= 9; i++) t += $i; idle[f] = $5; tot[f] = t}
         f == 2 && $1 ~ /^cpu[0-9]+$/ {n++}
         END {r = (idle[2] - idle[1]) / (tot[2] - tot[1]); printf "%.6f %.6f %d\n", 1 - r, 1 - r / n, n}' "$1" "$2"
}
# stat_until WANT STEP: writes the next file every 0.5 s (STEP more each time)
# and polls pl.get_pid until it shows load[WANT]: at most 40 files and 20 s.
# Sets PIDOUT and STAT_FIRST/STAT_LAST (the phase's first and last files).
stat_until() {
    local want=$1 step=$2 n=0 t0
    t0=$(date +%s%N)
    STAT_FIRST=$(( STAT_N + 1 ))
    while :; do
        stat_write "$step"; n=$(( n + 1 ))
        PIDOUT=$(kc pl.get_pid | tr '\n' ' ') || fail "kamcmd pl.get_pid"
        if grep -qF "load[$want]" <<<"$PIDOUT"; then
            STAT_LAST=$STAT_N
            info "load[$want] after $n files in $(( ($(date +%s%N) - t0) / 1000000 )) ms"
            return 0
        fi
        if [ "$n" -ge 40 ] || [ $(( $(date +%s%N) - t0 )) -ge 20000000000 ]; then
            fail "floodgate never showed load[$want] in pl.get_pid: $n files (steps $step) written in $(( ($(date +%s%N) - t0) / 1000000 )) ms, each step of ratio $want; last pl.get_pid: $PIDOUT"
        fi
        sleep 0.5
    done
}
# stat_check WANT: the phase's files give WANT by floodgate's formula, and
# floodgate's value differs from what pipelimit 5.6's formula would read.
stat_check() {
    local want=$1 ref old ncpu
    read -r ref old ncpu < <(stat_ratio "$STAT_DIR/stat.$STAT_FIRST" "$STAT_DIR/stat.$STAT_LAST")
    [ "$ref" = "$want" ] || fail "the test's own files give $ref, not $want (stat.$STAT_FIRST..stat.$STAT_LAST)"
    info "files stat.$STAT_FIRST..stat.$STAT_LAST: 1 - idle_delta/total_delta = $ref on the cpu line"
    info "pipelimit 5.6's formula (idle divided by the number of CPUs: $ncpu, the file's cpuN lines) would read $old"
    [ "$old" != "$want" ] || fail "pipelimit 5.6's formula reads $old too: the check cannot tell them apart"
    ok "floodgate's sampled load: $want (not pipelimit 5.6's $old): $PIDOUT"
}

# refused_start WHAT LOG_TEXT: kamailio, started with KAM_ARGS, must exit
# within 10 s (refusing WHAT) and log LOG_TEXT.
refused_start() {
    kamailio "${KAM_ARGS[@]}" >"$KAM_LOG" 2>&1 &
    KAM_PID=$!
    for _ in $(seq 100); do kill -0 "$KAM_PID" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$KAM_PID" 2>/dev/null && { kam_stop; fail "kamailio started with $1 (still running after 10 s)"; }
    local erc=0; wait "$KAM_PID" || erc=$?; KAM_PID=""
    grep -q "$2" "$KAM_LOG" || fail "kamailio exited ($erc) with $1 but logged no '$2'"
    ok "kamailio with $1: exit $erc, $(grep -m1 -o "$2.*" "$KAM_LOG")"
}

stage "floodgate: modparam load_stat_file \"\" is refused at start-up"
kam_args floodgate LOAD_FETCH=1 LOAD_SOURCE=0 'LOAD_STAT_FILE=""'
refused_start 'load_stat_file ""' 'invalid load_stat_file'

stage "floodgate: CPU load sampling (load_source 0, load_fetch 1, timer_interval 1) from a load_stat_file the test writes"
T=1
stat_write STEP_625                                  # F_1, before kamailio starts
kam_start floodgate LOAD_FETCH=1 LOAD_SOURCE=0 CLEAN_UNUSED=2 TIMER_MODE=1 "LOAD_STAT_FILE=\"$STAT\""
info "steps of 400 jiffies, idle 150: every pair of files gives load 0.625"
stat_until 0.625000 STEP_625
stat_check 0.625000
info "then steps of 400 jiffies, idle 250, from the last counters: every pair of the new files gives 0.375"
stat_until 0.375000 STEP_375
stat_check 0.375000

stage "floodgate: clean_unused 2 (timer_mode 1, the wheel timer): an idle pipe is deleted after 2 idle windows of 1 s"
probe cu TAILDROP 10
kc_fault pl.list cu && fail "pl.list cu right after its first INVITE"
ok "pl.list cu: the pipe exists after one INVITE"
sleep 4.5
kc_fault pl.list cu || fail "pl.list cu still shows the pipe 4.5 s later: $(kc pl.list cu | tr '\n' ' ')"
ok "pl.list cu 4.5 s later: fault (unknown pipe): cleaned"
kam_stop
T=2

# ---- concurrent call limits: fg_dlg_acquire, floodgate only ------------------------
# dialog.cfg: Kamailio as a stateful proxy with the dialog module between a
# sipp UAC (uac_dlg.xml) and a sipp UAS (uas_dlg.xml), both on 127.0.0.1.
# Every INVITE takes a slot on its R-URI user with fg_dlg_acquire (503 over
# the max); slots are counted with `kamcmd floodgate.usage KEY` while the
# calls are up and after they end.
DLG_CFG="$HERE/dialog.cfg"
UAC_DLG="$HERE/uac_dlg.xml"
UAS_DLG="$HERE/uas_dlg.xml"

# slots KEY: the slots floodgate.usage reports on KEY
slots() { kc floodgate.usage "$1" | awk '$1=="slots:" {print $2; exit}'; }
# slots_until KEY WANT SECS: polls floodgate.usage every 0.1 s until it
# reports WANT, at most SECS seconds; sets SLOTS (the last count) and
# SLOTS_MS (how long it took); false if it never did.
slots_until() {
    local t0 n=0; t0=$(date +%s%N)
    while :; do
        SLOTS=$(slots "$1")
        SLOTS_MS=$(( ($(date +%s%N) - t0) / 1000000 ))
        [ "$SLOTS" = "$2" ] && return 0
        n=$(( n + 1 ))
        [ "$n" -ge $(( $3 * 10 )) ] && return 1
        sleep 0.1
    done
}
# dlg_active: "ongoing" dialogs (confirmed) from dlg.stats_active
dlg_ongoing() { kc dlg.stats_active | awk '$1=="ongoing:" {print $2; exit}'; }

# uas_start: the called side, until uas_stop (or its own 600 s timeout)
uas_start() {
    sipp -sf "$UAS_DLG" -i 127.0.0.1 -p "$UAS_PORT" -nostdin -timeout 600s \
        </dev/null >"$WORK/uas-$(date +%s%N).log" 2>&1 &
    UAS_PID=$!
    sleep 0.3
    kill -0 "$UAS_PID" 2>/dev/null || fail "sipp UAS (uas_dlg.xml) exited at start"
}
uas_stop() {
    [ -n "$UAS_PID" ] || return 0
    kill -TERM "$UAS_PID" 2>/dev/null || true; wait "$UAS_PID" 2>/dev/null || true
    UAS_PID=""
}

# dlg_calls VAR KEY MAX HOLD DEST CALLS DURATION_MS [LOCAL_PORT] [TWICE]:
# starts CALLS calls at 100/s in the background (sipp's pid in VAR_PID,
# its screen file in VAR_SCREEN); dlg_wait VAR waits and sets D200 D503
# D408 DBYE (200s to the BYE).
dlg_calls() {
    local v=$1 port=${8:-$SIPP_PORT} twice=${9:-no}
    local screen="$WORK/sipp-dlg-$2-$(date +%s%N).screen"
    local secs=$(( $7 / 1000 + 20 ))
    timeout $(( secs + 10 )) sipp "127.0.0.1:$KAM_PORT" -sf "$UAC_DLG" -s "$2" \
        -key max "$3" -key hold "$4" -key dest "$5" -key twice "$twice" \
        -i 127.0.0.1 -p "$port" -r 100 -m "$6" -d "$7" -l 1000 -nostdin \
        -timeout "${secs}s" -recv_timeout 10s -trace_screen -screen_file "$screen" \
        </dev/null >/dev/null 2>&1 &
    printf -v "${v}_PID" '%s' "$!"
    printf -v "${v}_SCREEN" '%s' "$screen"
}
dlg_wait() {
    local pidv="${1}_PID" scrv="${1}_SCREEN"
    local pid=${!pidv} screen=${!scrv} rc=0
    wait "$pid" || rc=$?
    printf -v "$pidv" '%s' ""
    [ -f "$screen" ] || fail "sipp (uac_dlg.xml) left no screen file (exit $rc)"
    # The first "200 <-" row answers the INVITE, the second the BYE.
    read -r D200 D503 D408 DBYE < <(awk '$2 ~ /^<-/ && $1=="200" {n++; if (n==1) a=$3; else b=$3}
        $2 ~ /^<-/ && $1=="503" {c=$3} $2 ~ /^<-/ && $1=="408" {d=$3}
        END {print a+0, c+0, d+0, b+0}' "$screen")
}
UAC1_PID=""; UAC2_PID=""

stage "floodgate: concurrent call limits (dialog.cfg: dialog.so, tm, rr; sipp UAC -> kamailio -> sipp UAS)"
for p in $UAS_PORT $DEAD_PORT $SIPP2_PORT; do
    if command -v ss >/dev/null && ss -Hlun "sport = :$p" 2>/dev/null | grep -q .; then fail "udp port $p is taken on this machine"; fi
done
CFG=$DLG_CFG
kam_start floodgate
uas_start
ok "sipp UAS (uas_dlg.xml) on 127.0.0.1:$UAS_PORT, pid $UAS_PID"

stage "floodgate: 8 calls at once on key 'calls', fg_dlg_acquire(\"calls\", 5), each up 4 s, then BYE"
[ "$(slots calls)" = 0 ] || fail "floodgate.usage calls before any call: $(slots calls), want 0"
dlg_calls UAC1 calls 5 - "$UAS_PORT" 8 4000
slots_until calls 5 3 || fail "floodgate.usage calls while the calls are up: $SLOTS, want 5 (polled 3 s)"
sleep 1
s2=$(slots calls); on=$(dlg_ongoing)
[ "$s2" = 5 ] || fail "floodgate.usage calls 1 s later, calls still up: $s2, want 5"
ok "while the calls are up: floodgate.usage calls = 5 (after ${SLOTS_MS} ms, and again 1 s later); dlg.stats_active ongoing: $on"
dlg_wait UAC1
[ "$D200" = 5 ] && [ "$D503" = 3 ] || fail "8 calls, max 5: $D200 x 200, $D503 x 503 (want 5 and 3)"
[ "$DBYE" = 5 ] || fail "5 answered calls hung up: $DBYE BYEs answered 200, want 5"
ok "8 calls, max 5: exactly 5 x 200 and 3 x 503; 5 BYEs answered"
slots_until calls 0 2 || fail "floodgate.usage calls after every BYE: $SLOTS, want 0"
ok "after the BYEs (DLGCB_TERMINATED): floodgate.usage calls = 0"

stage "floodgate: a slot per key and dialog: acquire again (2), release (1), release (-1), acquire (1)"
dlg_calls UAC1 twice 3 - "$UAS_PORT" 2 1500 "$SIPP_PORT" yes
slots_until twice 2 3 || fail "floodgate.usage twice with 2 calls up: $SLOTS, want 2 (one per dialog)"
dlg_wait UAC1
[ "$D200" = 2 ] || fail "2 calls, max 3, each acquiring twice: $D200 x 200, want 2"
n=$(grep -c 'fg_dlg twice(twice): 1 2 1 -1 1$' "$KAM_LOG" || true)
[ "$n" = 2 ] || { grep 'fg_dlg twice' "$KAM_LOG" || true; fail "log lines 'fg_dlg twice(twice): 1 2 1 -1 1': $n, want 2"; }
slots_until twice 0 2 || fail "floodgate.usage twice after the BYEs: $SLOTS, want 0"
ok "each call: fg_dlg_acquire 1, again 2 (nothing taken), fg_dlg_release 1, again -1, fg_dlg_acquire 1; 2 slots while up, 0 after"

stage "floodgate: fg_dlg_acquire on a key that is a pl_check pipe: -4 (503), and floodgate.usage on it is a fault"
dlg_calls UAC1 ratepipe 5 - "$UAS_PORT" 1 500
dlg_wait UAC1
[ "$D503" = 1 ] && [ "$D200" = 0 ] || fail "a call on the pipe 'ratepipe': $D200 x 200, $D503 x 503 (want 0 and 1)"
grep -q 'fg_dlg_acquire(ratepipe, 5): -4: 503' "$KAM_LOG" || fail "no 'fg_dlg_acquire(ratepipe, 5): -4: 503' in the log"
grep -q 'the key is a rate-limit pipe' "$KAM_LOG" || fail "no 'the key is a rate-limit pipe' in the log"
kc_fault floodgate.usage ratepipe || fail "floodgate.usage ratepipe (a TAILDROP pipe) should be a fault: $(kc floodgate.usage ratepipe | tr '\n' ' ')"
ok "fg_dlg_acquire on the TAILDROP pipe 'ratepipe': -4, logged 'the key is a rate-limit pipe', 503; floodgate.usage ratepipe: fault"

stage "floodgate: calls never answered (UAS port $DEAD_PORT silent, tm's 408 after 2 s): DLGCB_FAILED gives the slots back"
dlg_calls UAC1 unanswered 3 - "$DEAD_PORT" 4 1000
slots_until unanswered 3 2 || fail "floodgate.usage unanswered while the INVITEs are pending: $SLOTS, want 3"
ok "while the INVITEs are pending: floodgate.usage unanswered = 3"
dlg_wait UAC1
[ "$D408" = 3 ] && [ "$D503" = 1 ] && [ "$D200" = 0 ] || fail "4 unanswered calls, max 3: $D408 x 408, $D503 x 503, $D200 x 200 (want 3, 1, 0)"
slots_until unanswered 0 2 || fail "floodgate.usage unanswered after the 408s: $SLOTS, want 0"
ok "4 calls, max 3: 3 x 408 (failed dialogs) and 1 x 503; then floodgate.usage unanswered = 0"

stage "floodgate: lease hold: fg_dlg_acquire(\"held\", 3, 2) on calls up 9 s: the slots are reclaimed after 2 s"
dlg_calls UAC1 held 3 2 "$UAS_PORT" 3 9000
t0=$(date +%s%N)
slots_until held 3 2 || fail "floodgate.usage held with 3 calls up: $SLOTS, want 3"
ok "3 calls up: floodgate.usage held = 3"
slots_until held 0 5 || fail "floodgate.usage held 5 s after the calls started: $SLOTS, want 0 (hold 2 s)"
el=$(( ($(date +%s%N) - t0) / 1000000 ))
[ "$el" -ge 1500 ] || fail "the slots went back after $el ms, before their 2 s hold"
on=$(dlg_ongoing)
[ "$on" -ge 3 ] || fail "dlg.stats_active ongoing: $on, want the 3 calls still up"
ok "after $el ms, with the 3 dialogs still up (ongoing: $on): floodgate.usage held = 0: reclaimed by the hold"
dlg_calls UAC2 held 3 - "$UAS_PORT" 3 11000 "$SIPP2_PORT"
slots_until held 3 2 || fail "3 new calls on 'held' (max 3) after the reclaim: floodgate.usage $SLOTS, want 3"
ok "3 new calls on 'held' (max 3) take the reclaimed slots: floodgate.usage held = 3"
dlg_wait UAC1
[ "$D200" = 3 ] && [ "$DBYE" = 3 ] || fail "the first 3 calls: $D200 x 200, $DBYE BYEs answered (want 3, 3)"
s2=$(slots held)
[ "$s2" = 3 ] || fail "after the first 3 calls' BYEs (their leases reclaimed before): floodgate.usage held = $s2, want 3 (the new calls' slots)"
ok "the first 3 calls hang up: their releases find their leases gone and leave the new calls' 3 slots alone (floodgate.usage held = 3)"
dlg_wait UAC2
[ "$D200" = 3 ] && [ "$D503" = 0 ] || fail "the 3 new calls: $D200 x 200, $D503 x 503 (want 3, 0)"
slots_until held 0 2 || fail "floodgate.usage held after every call ended: $SLOTS, want 0"
ok "the new calls hang up: floodgate.usage held = 0"
kam_stop

stage "floodgate: dialogs that time out (dialog default_timeout 2 s, calls up 7 s): DLGCB_EXPIRED gives the slots back"
kam_start floodgate DLG_TIMEOUT=2 DLG_HOLD=60
grep -q 'dlg_hold 60 s' "$KAM_LOG" || fail "modparam dlg_hold 60 not in the start-up line: $(grep -m1 'lease records' "$KAM_LOG")"
dlg_calls UAC1 expiring 2 - "$UAS_PORT" 3 7000
t0=$(date +%s%N)
slots_until expiring 2 2 || fail "floodgate.usage expiring with 2 calls up: $SLOTS, want 2"
ok "2 calls up (max 2, dlg_hold 60 s): floodgate.usage expiring = 2"
slots_until expiring 0 5 || fail "floodgate.usage expiring 5 s later (dialogs time out after 2 s): $SLOTS, want 0"
el=$(( ($(date +%s%N) - t0) / 1000000 ))
[ "$el" -lt 6500 ] || fail "slots went back after $el ms: not before the BYEs at 7 s"
ok "after $el ms, before the BYEs (7 s) and the hold (60 s): floodgate.usage expiring = 0"
dlg_wait UAC1
[ "$D200" = 2 ] && [ "$D503" = 1 ] || fail "3 calls, max 2: $D200 x 200, $D503 x 503 (want 2, 1)"
[ "$(slots expiring)" = 0 ] || fail "floodgate.usage expiring after the late BYEs: $(slots expiring), want 0"
ok "3 calls, max 2: 2 x 200, 1 x 503; the late BYEs leave floodgate.usage expiring at 0"
kam_stop

stage "floodgate: lease records full (lease_capacity 2): fg_dlg_acquire returns -3 below the key's max, and says what to raise"
kam_start floodgate LEASE_CAP=2
grep -q ' 2 lease records' "$KAM_LOG" || fail "modparam lease_capacity 2 not in the start-up line: $(grep -m1 'lease records' "$KAM_LOG")"
dlg_calls UAC1 full 5 - "$UAS_PORT" 3 2000
slots_until full 2 3 || fail "floodgate.usage full with 2 lease records: $SLOTS, want 2"
dlg_wait UAC1
[ "$D200" = 2 ] && [ "$D503" = 1 ] || fail "3 calls, max 5, 2 lease records: $D200 x 200, $D503 x 503 (want 2, 1)"
grep -q 'fg_dlg_acquire(full, 5): -3: 503' "$KAM_LOG" || fail "no 'fg_dlg_acquire(full, 5): -3' in kamailio's log"
grep -q 'raise lease_capacity' "$KAM_LOG" || fail "the -3 was not logged with 'raise lease_capacity'"
slots_until full 0 2 || fail "floodgate.usage full after the BYEs: $SLOTS, want 0"
ok "max 5 but 2 lease records: 2 x 200, 1 x 503 with -3 ($(grep -m1 -o 'fg_dlg_acquire \[full\]: .*' "$KAM_LOG")); 0 slots after the BYEs"
kam_stop

stage "floodgate: concurrent call limits from KEMI (kemi.lua: KSR.floodgate.fg_dlg_acquire, fg_dlg_acquire_hold, fg_dlg_release)"
kam_start floodgate KEMI "KEMI_SCRIPT=\"$HERE/kemi.lua\""
dlg_calls UAC1 kemi_calls 2 - "$UAS_PORT" 3 2500
slots_until kemi_calls 2 3 || fail "KEMI: floodgate.usage kemi_calls with calls up: $SLOTS, want 2"
dlg_wait UAC1
[ "$D200" = 2 ] && [ "$D503" = 1 ] && [ "$DBYE" = 2 ] || fail "KEMI: 3 calls, max 2: $D200 x 200, $D503 x 503, $DBYE BYEs (want 2, 1, 2)"
slots_until kemi_calls 0 2 || fail "KEMI: floodgate.usage kemi_calls after the BYEs: $SLOTS, want 0"
ok "KSR.floodgate.fg_dlg_acquire(\"kemi_calls\", 2): 3 calls -> 2 x 200, 1 x 503; 2 slots while up, 0 after the BYEs"
dlg_calls UAC1 kemi_held 5 2 "$UAS_PORT" 2 3500 "$SIPP_PORT" yes
slots_until kemi_held 2 2 || fail "KEMI: floodgate.usage kemi_held: $SLOTS, want 2"
slots_until kemi_held 0 4 || fail "KEMI: fg_dlg_acquire_hold(\"kemi_held\", 5, 2): slots not reclaimed after the hold: $SLOTS"
dlg_wait UAC1
[ "$D200" = 2 ] || fail "KEMI: kemi_held: $D200 x 200, want 2"
n=$(grep -c 'fg_dlg twice(kemi_held): 1 2 1 -1 1$' "$KAM_LOG" || true)
[ "$n" = 2 ] || { grep 'fg_dlg twice' "$KAM_LOG" || true; fail "KEMI: log lines 'fg_dlg twice(kemi_held): 1 2 1 -1 1': $n, want 2"; }
ok "KSR.floodgate.fg_dlg_acquire_hold(\"kemi_held\", 5, 2): 2 slots, reclaimed after the hold; acquire/release again: 2, 1, -1, 1"
kc_fault floodgate.usage fg_kemi_nosuch && fail "floodgate.usage on a key never used should not be a fault"
[ "$(slots nosuch_key)" = 0 ] || fail "floodgate.usage nosuch_key: $(slots nosuch_key), want 0"
ok "floodgate.usage on a key never used: slots 0"
kam_stop
uas_stop

stage "floodgate: fg_dlg_acquire without dialog.so is refused at start-up (fixups run after mod_init; kamailio -c runs neither)"
kam_args floodgate NO_DIALOG
refused_start 'fg_dlg_acquire and no dialog.so' 'fg_dlg_acquire/fg_dlg_release need the dialog module'
CFG="$HERE/kamailio.cfg"

# ---- side by side ------------------------------------------------------------------
stage "side by side: the same sipp load, the same kamailio.cfg, floodgate vs pipelimit"
printf '%-14s %-38s %6s %18s %18s %18s\n' stage load calls "predicted 503" "floodgate 200/503" "pipelimit 200/503"
for s in TAILDROP RED INTERVAL "set_pipe 40" "FEEDBACK 30%"; do
    printf '%-14s %-38s %6s %18s %18s %18s\n' "$s" "${DESC[$s]}" "${CALLS[$s]}" "${PRED[$s]} +- ${TOL[$s]}" \
        "${R200[floodgate:$s]}/${R503[floodgate:$s]}" "${R200[pipelimit:$s]}/${R503[pipelimit:$s]}"
done
printf '%-14s %-38s %6s %18s %18s %18s\n' "KEMI" "KSR.pipelimit.*, TAILDROP limit 4" 10 "6 (exact)" \
    "${R200[floodgate:KEMI KSR.pipelimit]}/${R503[floodgate:KEMI KSR.pipelimit]}" "${R200[pipelimit:KEMI KSR.pipelimit]}/${R503[pipelimit:KEMI KSR.pipelimit]}"
printf '%-14s %-38s %6s %18s %18s %18s\n' "KEMI" "KSR.floodgate.*, TAILDROP limit 4" 10 "6 (exact)" \
    "${R200[floodgate:KEMI KSR.floodgate]}/${R503[floodgate:KEMI KSR.floodgate]}" "n/a"
echo "(pipelimit has no INTERVAL algorithm: its pl_check returns -2 and the config answers 503.)"

stage "kamailio-module test: all stages passed in $(( $(date +%s) - START ))s"
