# Shared by benches/redis-bench.sh and benches/redis-callgrind.sh (sourced,
# not run): finding a loopback port and waiting for a redis-server started
# on it. The caller defines die().

# Prints a 127.0.0.1 port nothing answers on; fails after 50 tries.
free_port() {
    local p
    for _ in $(seq 1 50); do
        p=$((20000 + RANDOM % 40000))
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
            echo "$p"
            return 0
        fi
    done
    return 1
}

# Waits (tries x 0.1 s at most) until the server answers PING, then checks
# that the module is loaded; dies with the server's log if it exits first.
await_server() { # port, pid, log file, module name in MODULE LIST, tries
    local port=$1 pid=$2 log=$3 name=$4
    for _ in $(seq 1 "$5"); do
        [[ $(redis-cli -p "$port" PING 2>/dev/null) == PONG ]] && break
        kill -0 "$pid" 2>/dev/null || { cat "$log" >&2; die "redis-server ($name) did not start"; }
        sleep 0.1
    done
    [[ $(redis-cli -p "$port" PING 2>/dev/null) == PONG ]] || { cat "$log" >&2; die "redis-server ($name) does not answer on port $port"; }
    redis-cli -p "$port" MODULE LIST | grep -qx "$name" || die "module $name not loaded on port $port"
}
