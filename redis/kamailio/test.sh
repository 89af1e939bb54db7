#!/usr/bin/env bash
# End-to-end test of floodgate-redis with real Kamailio: two Kamailio proxies
# share one calls-per-second limit through one Redis.
#
#   cargo build --release -p floodgate-redis
#   bash redis/kamailio/test.sh          (from the repo root, as root or with sudo)
#
# Needs Debian bookworm's kamailio, kamailio-redis-modules (ndb_redis),
# sip-tester (sipp), redis-server 7 and redis-tools. Environment:
#   FG_REDIS_MODULE  the module (default <repo>/target/release/libfloodgate_redis.so)
#   FG_KAM_CFG       the Kamailio config (default redis/kamailio/kamailio.cfg)
#   FG_REDIS_PORT (6391), FG_KAM_PORT_A (5071), FG_KAM_PORT_B (5072),
#   FG_SIPP_PORT_A (5081), FG_SIPP_PORT_B (5082)
#
# It starts redis-server with the module, then two kamailio instances with
# kamailio.cfg: A on 127.0.0.1:5071 with FAIL_OPEN, B on 127.0.0.1:5072
# without (fail closed). Every INVITE runs
#     FG.CHECK <source IP> TAILDROP 10 INTERVAL 1000
# Two sipp, both bound to 127.0.0.1 (so both proxies see the same $si and use
# the same key), send 40 calls/s each for 3 s, to A and to B at the same time.
#
# Counting per window, deterministically: the module puts each FG.CHECK in
# the 1 s window of Redis's clock at the moment Redis executes it (windows
# aligned to the Unix epoch). Redis and Kamailio run on this host and read the
# same clock (CLOCK_REALTIME), and the config (-A FG_TRACE) logs the time just
# before redis_cmd sends the command (t0) and just after the reply arrives
# (t1): Redis executed it in between, so its window is floor(t0) when
# floor(t0) == floor(t1). A verdict whose bracket straddles a window edge
# (redis_cmd takes ~0.3 ms, so rarely) may belong to either window: the test
# tries every assignment of those few and needs one that satisfies all
# windows. Then, in every window W with n_W INVITEs (both proxies
# together), exactly min(limit, n_W) got 200 (TAILDROP), with no tolerance.
# Windows where each proxy alone sent more than the limit show the point:
# 10 passes in all, not 10 per proxy. Also: inside a window, no INVITE may
# pass that was sent after another INVITE's 503 came back (the counter only
# grows). sipp's counts must equal the proxies' logged verdicts, and FG.INFO
# read right after the load must show the same counts for the last two
# windows (counter, last_counter) as the logs.
#
# Then Redis is stopped: A (fail open) answers 200, B (fail closed) 503.
# Redis is started again: both proxies reconnect by themselves and FG.CHECK
# decides again. Then Redis hangs (SIGSTOP): A answers 200 and B 503 after
# ndb_redis's timeouts; SIGCONT, and FG.CHECK decides again. Last, the Redis
# side of the FreeSWITCH snippet (redis/README.md): FG.ACQUIRE ... PLAIN,
# FG.RELEASE and FG.USAGE, whose replies hiredis_raw can read (FreeSWITCH
# itself is not in Debian bookworm and is not run).
#
# Everything listens on 127.0.0.1 only. Every process the test starts is
# stopped by an EXIT trap, also on failure (logs are then kept). Ends with
# "kamailio-redis: N passed, M failed"; exit status 0 only if M is 0.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
START=$(date +%s)

MODULE=${FG_REDIS_MODULE:-$ROOT/target/release/libfloodgate_redis.so}
CFG=${FG_KAM_CFG:-$HERE/kamailio.cfg}
SCEN="$HERE/uac_cps.xml"
REDIS_PORT=${FG_REDIS_PORT:-6391}
PORT_A=${FG_KAM_PORT_A:-5071}; SIPP_A=${FG_SIPP_PORT_A:-5081}
PORT_B=${FG_KAM_PORT_B:-5072}; SIPP_B=${FG_SIPP_PORT_B:-5082}
LIMIT=10       # CPS_LIMIT: INVITEs per 1 s window per source IP
RATE=40        # calls/s from each sipp
SECS=3         # seconds of load
KAM_MODDIR=/usr/lib/x86_64-linux-gnu/kamailio/modules
WORK=$(mktemp -d /tmp/fg-redis-kamailio.XXXXXX)

stage() { printf '\n==> [%4ss] %s\n' "$(( $(date +%s) - START ))" "$*"; }
PASSED=0; FAILED=0
ok() { printf 'ok    %s\n' "$*"; PASSED=$(( PASSED + 1 )); }
fail() { printf 'FAIL  %s\n' "$*"; FAILED=$(( FAILED + 1 )); }
info() { printf '      %s\n' "$*"; }
die() { fail "$*"; exit 1; }               # cannot go on
check() { local msg=$1; shift; if "$@"; then ok "$msg"; else fail "$msg"; fi; }

# ---- processes: every one we start is recorded and stopped -----------------
declare -A KPID=() KKIDS=() SPID=()
REDIS_PID=""
. "$ROOT/kamailio/procs.sh"
kam_stop() {      # NAME
    local n=$1
    [ -n "${KPID[$n]:-}" ] || return 0
    # shellcheck disable=SC2086 # one word per child pid
    stop_kamailio "${KPID[$n]}" ${KKIDS[$n]:-}
    KPID[$n]=""; KKIDS[$n]=""
}
redis_stop() {
    [ -n "$REDIS_PID" ] || return 0
    stop_pid "$REDIS_PID"; REDIS_PID=""
}
cleanup() {
    local rc=$? t
    trap - EXIT INT TERM
    for t in "${!SPID[@]}"; do
        [ -n "${SPID[$t]}" ] && { kill -TERM "${SPID[$t]}" 2>/dev/null || true; wait "${SPID[$t]}" 2>/dev/null || true; }
    done
    kam_stop A; kam_stop B
    redis_stop
    [ "$FAILED" -eq 0 ] || rc=1
    if [ "$rc" -eq 0 ]; then rm -rf "$WORK"; else
        for t in "$WORK"/kamailio-A.log "$WORK"/kamailio-B.log "$WORK"/redis.log; do
            [ -f "$t" ] && { echo "---- last lines of $t"; grep -v fgtrace "$t" | tail -n 8 || true; }
        done
        echo "logs kept in $WORK"
    fi
    printf '\n%ss in all\nkamailio-redis: %s passed, %s failed\n' "$(( $(date +%s) - START ))" "$PASSED" "$FAILED"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- prerequisites ----------------------------------------------------------
stage "prerequisites: kamailio + ndb_redis, sipp, redis-server, the module"
for c in kamailio kamcmd sipp redis-server redis-cli ss; do
    command -v "$c" >/dev/null || die "no $c (Debian: apt-get install kamailio kamailio-redis-modules sip-tester redis-server redis-tools iproute2)"
done
[ -f "$KAM_MODDIR/ndb_redis.so" ] || die "no $KAM_MODDIR/ndb_redis.so (apt-get install kamailio-redis-modules)"
[ -f "$MODULE" ] || die "no module at $MODULE: build it (cargo build --release -p floodgate-redis) or set FG_REDIS_MODULE"
MODULE=$(cd "$(dirname "$MODULE")" && pwd)/$(basename "$MODULE")
for p in $PORT_A $PORT_B $SIPP_A $SIPP_B; do
    if ss -Hlun "sport = :$p" 2>/dev/null | grep -q .; then die "udp port $p is taken on this machine"; fi
done
if ss -Hltn "sport = :$REDIS_PORT" 2>/dev/null | grep -q .; then die "tcp port $REDIS_PORT is taken on this machine"; fi
info "$(kamailio -v | head -1); $(sipp -v 2>/dev/null | grep -m1 -io 'sipp v[0-9.]*' || echo sipp); $(redis-server --version | cut -d' ' -f1-3)"
info "module $MODULE ($(stat -c %s "$MODULE") bytes, built $(date -r "$MODULE" '+%F %T'))"
info "config $CFG"

# ---- helpers ------------------------------------------------------------------
rcli() { timeout 5 redis-cli -h 127.0.0.1 -p "$REDIS_PORT" "$@"; }

redis_start() {
    redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --protected-mode yes \
        --save '' --appendonly no --dir "$WORK" --loadmodule "$MODULE" \
        >>"$WORK/redis.log" 2>&1 &
    REDIS_PID=$!
    for _ in $(seq 100); do
        kill -0 "$REDIS_PID" 2>/dev/null || { tail -n 5 "$WORK/redis.log"; REDIS_PID=""; die "redis-server exited at start (module not loadable?)"; }
        [ "$(rcli PING 2>/dev/null)" = PONG ] && return 0
        sleep 0.1
    done
    die "redis-server on 127.0.0.1:$REDIS_PORT does not answer PING within 10 s"
}

# kam_start NAME PORT [extra -A defines...]
kam_start() {
    local n=$1 port=$2; shift 2
    local args=(-f "$CFG" -DD -E -Y "$WORK/run$n" -A "SIP_PORT=$port" -A FG_TRACE
                -A "CTL_SOCK=\"unix:$WORK/ctl$n\"" -A "CPS_LIMIT=$LIMIT"
                -A "REDIS_SERVER=\"name=fg;addr=127.0.0.1;port=$REDIS_PORT\"")
    local d; for d in "$@"; do args+=(-A "$d"); done
    mkdir -p "$WORK/run$n"
    kamailio -c "${args[@]}" >"$WORK/kamailio-$n.check" 2>&1 \
        || { tail -n 5 "$WORK/kamailio-$n.check"; die "kamailio -c rejects $CFG (instance $n)"; }
    kamailio "${args[@]}" >>"$WORK/kamailio-$n.log" 2>&1 &
    KPID[$n]=$!
    for _ in $(seq 100); do
        kill -0 "${KPID[$n]}" 2>/dev/null || die "kamailio $n exited at start"
        kamcmd -s "unix:$WORK/ctl$n" core.uptime >/dev/null 2>&1 && break
        sleep 0.1
    done
    kamcmd -s "unix:$WORK/ctl$n" core.uptime >/dev/null 2>&1 || die "kamailio $n does not answer kamcmd"
    KKIDS[$n]=$(pgrep -P "${KPID[$n]}" | tr '\n' ' ')
}

# sipp_start TAG KAM_PORT SIPP_PORT RATE CALLS [SCENARIO]: in the background
sipp_start() {
    local tag=$1 kport=$2 sport=$3 rate=$4 calls=$5 scen=${6:-$SCEN}
    local secs=$(( calls / rate + 15 ))
    rm -f "$WORK/sipp-$tag.screen"
    timeout $(( secs + 10 )) sipp "127.0.0.1:$kport" -sf "$scen" -i 127.0.0.1 -p "$sport" \
        -r "$rate" -m "$calls" -l 2000 -nostdin -timeout "${secs}s" -recv_timeout 6s \
        -trace_screen -screen_file "$WORK/sipp-$tag.screen" </dev/null >/dev/null 2>&1 &
    SPID[$tag]=$!
}
# sipp_wait TAG: waits; sets S200 S503 SRETR (INVITE retransmissions)
sipp_wait() {
    local tag=$1 f="$WORK/sipp-$1.screen"
    wait "${SPID[$tag]}" || true
    SPID[$tag]=""
    [ -f "$f" ] || die "sipp $tag wrote no screen file"
    S200=$(awk '$1=="200" && $2 ~ /^<-/ {v=$3} END {print v+0}' "$f")
    S503=$(awk '$1=="503" && $2 ~ /^<-/ {v=$3} END {print v+0}' "$f")
    SRETR=$(awk '$1=="INVITE" && $2 ~ /->$/ {v=$4} END {print v+0}' "$f")
}
# calls TAG KAM_PORT SIPP_PORT N [SCENARIO]: N calls at 10/s, in the foreground
calls() { sipp_start "$1" "$2" "$3" 10 "$4" "${5:-$SCEN}"; sipp_wait "$1"; }

# mark NAME: remember the length of kamailio NAME's log; since NAME prints
# the lines logged after the mark
declare -A MARK=()
mark() { MARK[$1]=$(wc -l <"$WORK/kamailio-$1.log"); }
since() { tail -n +$(( ${MARK[$1]:-0} + 1 )) "$WORK/kamailio-$1.log"; }
# first TEXT: the first line with TEXT, from TEXT on (reads all its input)
first() { awk -v t="$1" '!n && (i = index($0, t)) {print substr($0, i, 160); n = 1} END {if (!n) print "(nothing)"}'; }
# traces: "port t0 t1 rc v" for each verdict logged by the config (FG_TRACE)
traces() { sed -n 's/.*fgtrace port=\([0-9]*\) t0=\([0-9.]*\) t1=\([0-9.]*\) rc=\(-*[0-9]*\) v=\(-*[0-9]*\).*/\1 \2 \3 \4 \5/p'; }

# align: wait until Redis's clock is 20..150 ms past a whole second (a
# window edge), so that the load covers whole windows. (Only the shape of the
# traffic depends on this; the per-window check holds wherever it starts.)
align() {
    local s us ms
    for _ in $(seq 10); do
        { read -r s; read -r us; } < <(rcli TIME)
        ms=$(( 10#$us / 1000 ))
        [ "$ms" -ge 20 ] && [ "$ms" -lt 150 ] && return 0
        sleep "$(printf '0.%03d' $(( (1050 - ms) % 1000 )))"
    done
    die "could not align on a window edge of Redis's clock"
}

# ---- start ----------------------------------------------------------------------
stage "start redis-server 127.0.0.1:$REDIS_PORT --loadmodule $(basename "$MODULE")"
redis_start
mods=$(rcli MODULE LIST | tr '\n' ' ')
info "MODULE LIST: $mods"
ci=$(rcli COMMAND INFO FG.CHECK | tr '\n' ' ')
if grep -qi 'fg.check' <<<"$ci"; then ok "redis-server pid $REDIS_PID runs FG.CHECK (COMMAND INFO: $ci)"
else die "COMMAND INFO FG.CHECK is empty: the module has no FG.CHECK ($mods)"; fi

stage "start kamailio A (udp 127.0.0.1:$PORT_A, FAIL_OPEN) and B (udp 127.0.0.1:$PORT_B, fail closed)"
kam_start A "$PORT_A" FAIL_OPEN
kam_start B "$PORT_B"
ok "kamailio A pid ${KPID[A]} ($(echo ${KKIDS[A]} | wc -w) children), B pid ${KPID[B]} ($(echo ${KKIDS[B]} | wc -w) children), both with ndb_redis -> 127.0.0.1:$REDIS_PORT, CPS_LIMIT $LIMIT"

KEY=127.0.0.1
stage "one INVITE to each proxy: FG.CHECK $KEY TAILDROP $LIMIT INTERVAL 1000 -> 1, 200"
calls smokeA "$PORT_A" "$SIPP_A" 1; a200=$S200
calls smokeB "$PORT_B" "$SIPP_B" 1; b200=$S200
check "A: $a200 x 200, B: $b200 x 200 (want 1 and 1)" test "$a200$b200" = 11
out=$(rcli FG.INFO "$KEY" | tr '\n' ' ')
info "FG.INFO $KEY: $out"
check "FG.INFO $KEY: the key exists with algorithm TAILDROP, limit $LIMIT, interval_ms 1000" \
    awk -v l="$LIMIT" '{ for (i = 1; i < NF; i++) f[tolower($i)] = $(i+1) }
        END { exit !(toupper(f["algorithm"]) == "TAILDROP" && f["limit"] == l && f["interval_ms"] == 1000) }' <<<"$out"

# ---- the shared limit -----------------------------------------------------------
CALLS=$(( RATE * SECS ))
stage "load: sipp -> A and sipp -> B at the same time, $RATE calls/s each for $SECS s ($CALLS calls each), all from 127.0.0.1"
mark A; mark B
align
sipp_start loadA "$PORT_A" "$SIPP_A" "$RATE" "$CALLS"
sipp_start loadB "$PORT_B" "$SIPP_B" "$RATE" "$CALLS"
sipp_wait loadA; A200=$S200; A503=$S503; ARETR=$SRETR
sipp_wait loadB; B200=$S200; B503=$S503; BRETR=$SRETR
INFO_AFTER=$(rcli FG.INFO "$KEY" | tr '\n' ' ')     # Redis's view, right after the load
info "sipp -> A: $A200 x 200, $A503 x 503, $ARETR INVITE retransmissions"
info "sipp -> B: $B200 x 200, $B503 x 503, $BRETR INVITE retransmissions"
check "every call got a final reply: A $(( A200 + A503 ))/$CALLS, B $(( B200 + B503 ))/$CALLS" \
    test $(( A200 + A503 )) -eq "$CALLS" -a $(( B200 + B503 )) -eq "$CALLS"

# The proxies' verdicts during the load must be sipp's (each retransmission
# would be one more FG.CHECK, a stateless config counts it again).
since A | traces >"$WORK/load-A.tr"; since B | traces >"$WORK/load-B.tr"
lA=$(awk '$4 > 0 && $5 == 1 {p++} $4 > 0 && $5 == -1 {d++} END {print p+0, d+0}' "$WORK/load-A.tr")
lB=$(awk '$4 > 0 && $5 == 1 {p++} $4 > 0 && $5 == -1 {d++} END {print p+0, d+0}' "$WORK/load-B.tr")
if [ "$ARETR" -eq 0 ] && [ "$BRETR" -eq 0 ]; then
    check "the proxies logged the verdicts sipp saw: A $lA (pass drop), B $lB; sipp A $A200 $A503, B $B200 $B503" \
        test "$lA|$lB" = "$A200 $A503|$B200 $B503"
else
    info "retransmissions: each is another FG.CHECK; logged A $lA, B $lB (pass drop)"
fi
nbad=$(cat "$WORK/load-A.tr" "$WORK/load-B.tr" | awk '$4 <= 0 || ($5 != 1 && $5 != -1)' | wc -l)
check "every FG.CHECK during the load got an integer verdict 1 or -1 ($nbad without)" test "$nbad" -eq 0

# Every verdict so far (smoke INVITEs included: they may share a window).
{ grep -h fgtrace "$WORK/kamailio-A.log" "$WORK/kamailio-B.log" || true; } | traces >"$WORK/all.tr"
info "per window of Redis's clock (1 s, aligned to the epoch), both proxies together:"
awk -v L="$LIMIT" -v A="$PORT_A" -v B="$PORT_B" -v SECS="$SECS" '
    function secs(t) { return substr(t, 1, index(t, ".") - 1) + 0 }
    function usec(t) { return secs(t) * 1000000 + substr(t, index(t, ".") + 1) }
    function add(w, port, v, d) {
        N[w] += d; NP[w, port] += d
        if (v == 1) { P[w] += d; PP[w, port] += d }
    }
    function valid(  w, e) {
        for (w in WIN) { e = (N[w] + 0 < L) ? N[w] + 0 : L; if (P[w] + 0 != e) return 0 }
        return 1
    }
    # assign the ambiguous verdicts i..K to a window each; 1 if some
    # assignment is valid (and then it stays in N/P)
    function assign(i,  w) {
        if (i > K) return valid()
        for (w = AW0[i]; w <= AW1[i]; w++) {
            add(w, APORT[i], AV[i], 1); CH[i] = w
            if (assign(i + 1)) return 1
            add(w, APORT[i], AV[i], -1)
        }
        return 0
    }
    $4 <= 0 || ($5 != 1 && $5 != -1) { next }        # no verdict
    {
        w0 = secs($2); w1 = secs($3)
        if (w1 < w0) { bad++; next }
        for (w = w0; w <= w1; w++) WIN[w] = 1
        if (w0 == w1) {
            add(w0, $1, $5, 1)
            if ($5 == 1) { if (usec($2) > LASTPASS[w0]) LASTPASS[w0] = usec($2) }
            else if (!(w0 in FIRSTDROP) || usec($3) < FIRSTDROP[w0]) FIRSTDROP[w0] = usec($3)
        } else {
            K++; AW0[K] = w0; AW1[K] = w1; AV[K] = $5; APORT[K] = $1; AT[K] = $2 ".." $3
        }
    }
    END {
        if (K > 16) { print "RESULT too_many_ambiguous=" K; exit }
        found = assign(1)
        n = 0; for (w in WIN) { if (!n++ || w + 0 < lo) lo = w + 0; if (w + 0 > hi) hi = w + 0 }
        printf "      %-11s %15s %15s %9s %9s\n", "window", "INVITEs A+B", "200s A+B", "want 200", ""
        full = 0; shared = 0; order = 0
        for (w = lo; w <= hi; w++) {
            if (!(w in WIN)) continue
            e = (N[w] + 0 < L) ? N[w] + 0 : L
            if (N[w] + 0 >= L) full++
            tag = ""
            if (NP[w, A] > L && NP[w, B] > L && P[w] + 0 == L) { shared++; tag = "each proxy > limit, " L " in all" }
            if ((w in FIRSTDROP) && LASTPASS[w] > FIRSTDROP[w]) { order++; tag = tag " ORDER: a pass sent after a 503 returned" }
            printf "      %-11s %6d = %3d+%-3d %6d = %3d+%-3d %9d   %s %s\n", w, N[w], NP[w, A], NP[w, B], P[w], PP[w, A], PP[w, B], e, (P[w] + 0 == e) ? "ok" : "WRONG", tag
        }
        for (i = 1; i <= K; i++)
            printf "      ambiguous: port %s, %s, %s: windows %d..%d, %s\n", APORT[i], AT[i], (AV[i] == 1) ? "200" : "503", AW0[i], AW1[i], found ? "counted in " CH[i] : "no assignment fits"
        printf "RESULT valid=%d windows=%d full=%d shared=%d ambiguous=%d order=%d bad=%d last=%d nlast=%d nprev=%d\n", found, hi - lo + 1, full, shared, K + 0, order, bad + 0, hi, N[hi], N[hi - 1]
    }' "$WORK/all.tr" >"$WORK/windows.txt"
grep -v '^RESULT' "$WORK/windows.txt" || true
res=$(grep '^RESULT' "$WORK/windows.txt" || echo "RESULT none")
info "(${res#RESULT }; ambiguous = verdicts whose t0..t1 straddles a window edge)"
getr() { sed -n "s/.* $1=\([0-9]*\).*/\1/p" <<<" ${res#RESULT }"; }
check "per window, the 200s of A and B together are min(limit $LIMIT, INVITEs of the window) exactly, in every window" \
    test "$(getr valid)" = 1 -a "$(getr bad)" = 0
check "$(getr shared) windows where each proxy alone sent more than $LIMIT INVITEs and they got $LIMIT x 200 in all (want >= $(( SECS - 1 )))" \
    test "$(getr shared)" -ge $(( SECS - 1 ))
check "no INVITE passed after an earlier one of its window had come back 503 ($(getr order) windows out of order)" \
    test "$(getr order)" = 0
# Redis's own counters must agree with the windows derived from the logs:
# FG.INFO right after the load shows the last window (counter: its INVITEs)
# and the one before (last_counter).
info "FG.INFO $KEY right after the load: $INFO_AFTER"
fi_get() { awk -v k="$1" '{ for (i = 1; i < NF; i++) if ($i == k) { print $(i+1); exit } }' <<<"$INFO_AFTER"; }
if [ "$(fi_get window_start_ms)" = "$(getr last)000" ]; then
    check "FG.INFO agrees with the logs: window $(getr last) counter $(fi_get counter), last_counter $(fi_get last_counter); logs: $(getr nlast) and $(getr nprev) INVITEs" \
        test "$(fi_get counter)/$(fi_get last_counter)" = "$(getr nlast)/$(getr nprev)"
else
    info "FG.INFO was read in window $(( $(fi_get window_start_ms) / 1000 )), not the last window with traffic ($(getr last)): not compared"
fi
info "PTTL $KEY: $(rcli PTTL "$KEY") ms"

# ---- Redis down ------------------------------------------------------------------
stage "Redis down (redis-server stopped): A (FAIL_OPEN) answers 200, B (fail closed) 503"
redis_stop
mark A; mark B
calls downA "$PORT_A" "$SIPP_A" 5; a200=$S200; a503=$S503
calls downB "$PORT_B" "$SIPP_B" 5; b200=$S200; b503=$S503
check "fail open: A gave $a200 x 200, $a503 x 503 (want 5 x 200)" test "$a200/$a503" = 5/0
check "fail closed: B gave $b200 x 200, $b503 x 503 (want 5 x 503)" test "$b200/$b503" = 0/5
rcA=$(since A | traces | awk '{print $4}' | sort | uniq -c | tr -s ' \n' ' ')
rcB=$(since B | traces | awk '{print $4}' | sort | uniq -c | tr -s ' \n' ' ')
check "redis_cmd returned -1 for every INVITE (count rc: A:$rcA B:$rcB)" \
    test "$(since A | traces | awk '$4 != -1' | wc -l)$(since B | traces | awk '$4 != -1' | wc -l)" = 00
nA=$(since A | grep -c 'floodgate-redis: fail open' || true)
nB=$(since B | grep -c 'floodgate-redis: FG.CHECK .*: no reply from Redis' || true)
check "the config logged it: A $nA x 'fail open', B $nB x 'no reply from Redis' (want 5 each)" test "$nA/$nB" = 5/5
info "A logged: $(since A | first 'floodgate-redis: fail open')"
info "B logged: $(since B | first 'floodgate-redis: ')"
info "ndb_redis logged: $(since B | first 'ERROR: ndb_redis')"

# ---- Redis back -------------------------------------------------------------------
stage "Redis back (a new redis-server, empty): both proxies reconnect by themselves"
redis_start
mark A; mark B
calls backA "$PORT_A" "$SIPP_A" 1; a200=$S200
calls backB "$PORT_B" "$SIPP_B" 1; b200=$S200
vA=$(since A | traces | awk '{print "rc=" $4 " v=" $5}' | tr '\n' ' ')
vB=$(since B | traces | awk '{print "rc=" $4 " v=" $5}' | tr '\n' ' ')
check "first INVITE after the restart: A $a200 x 200 ($vA), B $b200 x 200 ($vB): verdicts from FG.CHECK" \
    test "$a200$b200|$vA|$vB" = "11|rc=1 v=1 |rc=1 v=1 "
out=$(rcli FG.INFO "$KEY" | tr '\n' ' '); info "FG.INFO $KEY: $out"

# ---- Redis hangs ------------------------------------------------------------------
stage "Redis hangs (SIGSTOP): A answers 200, B 503, after ndb_redis's timeouts"
sed 's/retrans="500"/retrans="8000"/' "$SCEN" >"$WORK/uac_slow.xml"   # no INVITE retransmission meanwhile
mark A; mark B
kill -STOP "$REDIS_PID"
t0=$(date +%s%N)
sipp_start hangA "$PORT_A" "$SIPP_A" 10 1 "$WORK/uac_slow.xml"
sipp_start hangB "$PORT_B" "$SIPP_B" 10 1 "$WORK/uac_slow.xml"
sipp_wait hangA; a200=$S200; a503=$S503
sipp_wait hangB; b200=$S200; b503=$S503
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
kill -CONT "$REDIS_PID"
check "Redis stopped: A $a200 x 200 / $a503 x 503, B $b200 x 200 / $b503 x 503 (want 200 from A, 503 from B)" \
    test "$a200/$a503|$b200/$b503" = "1/0|0/1"
lat=$(since A | traces | awk 'NR == 1 {split($2, a, "."); split($3, b, "."); printf "%d ms", (b[1] - a[1]) * 1000 + (b[2] - a[2]) / 1000}')
info "redis_cmd waited $lat (A's log) before giving up; both sipp calls done in $ms ms"
info "(about 0.5 s: a worker whose connection was already broken reconnects, and the stopped server's PING times out after cmd_timeout;"
info " a worker with a live connection waits cmd_timeout for the command, then as long again for the reconnect: about 1 s)"
mark A; mark B
calls contA "$PORT_A" "$SIPP_A" 1; a200=$S200
calls contB "$PORT_B" "$SIPP_B" 1; b200=$S200
vA=$(since A | traces | awk '{print "rc=" $4 " v=" $5}' | tr '\n' ' ')
vB=$(since B | traces | awk '{print "rc=" $4 " v=" $5}' | tr '\n' ' ')
check "after SIGCONT: A $a200 x 200 ($vA), B $b200 x 200 ($vB): verdicts from FG.CHECK again" \
    test "$a200$b200|$vA|$vB" = "11|rc=1 v=1 |rc=1 v=1 "

# ---- FreeSWITCH's Redis side ------------------------------------------------------------
# FreeSWITCH is not in Debian bookworm: its dialplan (docs-snippets.md) is not
# run here. What it sends through mod_hiredis's hiredis_raw is: string and
# integer replies only (it drops arrays), so FG.ACQUIRE is called with PLAIN:
# the lease, or 0, as one string.
stage "FreeSWITCH's side without FreeSWITCH: FG.ACQUIRE ... PLAIN, FG.RELEASE, FG.USAGE"
FK=fs:trunk_a
l1=$(rcli FG.ACQUIRE "$FK" 2 HOLD 60000 PLAIN); l2=$(rcli FG.ACQUIRE "$FK" 2 HOLD 60000 PLAIN)
l3=$(rcli FG.ACQUIRE "$FK" 2 HOLD 60000 PLAIN)
check "max 2: three FG.ACQUIRE ... PLAIN -> '$l1' '$l2' '$l3' (want two different 16-hex leases, then 0)" \
    eval '[[ $l1 =~ ^[0-9a-f]{16}$ && $l2 =~ ^[0-9a-f]{16}$ && $l1 != "$l2" && $l3 == 0 ]]'
r1=$(rcli FG.RELEASE "$FK" "$l1"); r2=$(rcli FG.RELEASE "$FK" "$l1")
l4=$(rcli FG.ACQUIRE "$FK" 2 PLAIN); u=$(rcli FG.USAGE "$FK")
check "FG.RELEASE -> $r1, again -> $r2; FG.ACQUIRE ... PLAIN (default HOLD) -> '$l4'; FG.USAGE -> $u (want 1, 0, a lease, 2)" \
    eval '[[ $r1 == 1 && $r2 == 0 && $l4 =~ ^[0-9a-f]{16}$ && $u == 2 ]]'
info "FG.ACQUIRE $FK 2 itself: $(rcli FG.ACQUIRE "$FK" 2 | tr '\n' ' ')(an array: hiredis_raw would return nothing)"

stage "stop everything"
kam_stop A; kam_stop B; redis_stop
ok "kamailio A, B and redis-server stopped"
