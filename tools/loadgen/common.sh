# Shell helpers shared by bench.sh and soak.sh (sourced, not run).

# Every connection is a file descriptor, on both sides: use the hard limit.
raise_fd_limit() {
    ulimit -n "$(ulimit -Hn)"
    echo "open-files limit: $(ulimit -n)"
}

# This machine's short name, for result file names.
host_name() {
    hostname -s 2>/dev/null || cat /proc/sys/kernel/hostname
}

# Stops the given processes: SIGTERM, a bounded wait, then SIGKILL.
stop_pids() {
    for pid in "$@"; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in "$@"; do
        for _ in $(seq 50); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -9 "$pid" 2>/dev/null || true
    done
}

# Waits (at most 10 s) until a loopback port accepts.
wait_port() {
    for _ in $(seq 100); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then
            return 0
        fi
        sleep 0.1
    done
    echo "nothing listens on 127.0.0.1:$1" >&2
    return 1
}
