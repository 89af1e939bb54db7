# Stopping what a script started: sourced by the scripts that start Kamailio
# (kamailio/test.sh, kamailio/bench.sh, packaging/ci-deb.sh,
# redis/kamailio/test.sh), so that they stop processes the same way.
# Bounded: at most 5 s per process before SIGKILL.

# stop_pid PID: CONT (in case a test stopped it), TERM, up to 5 s for it to
# end, then KILL; reaps it (PID must be a child of this shell).
stop_pid() {
    local p=$1
    if kill -0 "$p" 2>/dev/null; then
        kill -CONT "$p" 2>/dev/null || true
        kill -TERM "$p" 2>/dev/null || true
        for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$p" 2>/dev/null || true
    fi
    wait "$p" 2>/dev/null || true
}

# stop_kamailio PID [CHILD ...]: stops Kamailio's main process, then kills
# the children recorded at its start by pid (they end with their parent;
# this makes sure of it).
stop_kamailio() {
    local main=$1 k
    shift
    stop_pid "$main"
    for k in "$@"; do kill -KILL "$k" 2>/dev/null || true; done
}
