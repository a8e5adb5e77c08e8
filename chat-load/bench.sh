#!/usr/bin/env bash
# Runs the three benchmark scenarios of chat-load against one chat server
# implementation and prints their RESULT lines.
#
#   fanout   K=50 clients x M=1000 messages x S=64 B, burst (window 100)
#   latency  K=50 clients paced at 100 msg/s each for LATENCY_MESSAGES messages
#   scale    19,500 idle logged-in connections held SCALE_HOLD (60) s with
#            the server's keepalive idle at SCALE_KEEPALIVE_IDLE (30, the
#            default) s, so each connection is pinged about twice in the hold;
#            SCALE_KEEPALIVE_IDLE=5 is the stress variant
#
# Two more for rooms (issue 12), run only when named in SCENARIOS:
#
#   fanout-rooms  50 x FANOUT_ROOMS (10) clients in FANOUT_ROOMS rooms of 50,
#                 each saying M=ROOMS_MESSAGES (1000) x S=64 B in its own
#                 room (say:), burst, window 100: the same 50 deliveries a
#                 message as fanout, to compare per delivery
#   scale-rooms   as scale, each connection also joining one of SCALE_ROOMS
#                 (100) rooms as part of its login (every connection is in
#                 the default room too, the room holding all of them)
#
# Two more for TLS (issue 14), run only when named in SCENARIOS; bench.sh
# makes a self-signed certificate for 127.0.0.1 with openssl (ECDSA P-256),
# serves TLS with it (--tls-cert, --tls-key) and has chat-load trust it
# (--tls-ca). Run with their plain twins for the cost of TLS, same run:
#
#   fanout-tls    fanout over TLS
#   scale-tls     scale over TLS (every connection does a full handshake)
#
#   SCENARIOS="fanout fanout-tls scale scale-tls" chat-load/bench.sh
#
# And one for history (issue 13), run only when named:
#
#   resume        RESUME_CLIENTS (1000) clients that missed RESUME_MISSED
#                 (10000) messages of 64 B resume at once; the server keeps
#                 and replays them all (--history, --history-bytes,
#                 --max-replay set to fit)
#
# Each scenario gets a fresh server (so VmHWM is that scenario's peak),
# started as  $SERVER_CMD --addr 127.0.0.1:$PORT --max-connections 20000
# --rate-limit off [scenario flags] $SERVER_EXTRA  and stopped with SIGTERM
# afterwards. (The rate limit, when on, slows senders down: off, the
# figures are the server's, whatever its default.)
# SERVER_CMD must exec the server itself (its pid is the one measured), so
# use the built binary, not `cargo run`.
#
# Usage: chat-load/bench.sh [--server-cmd CMD] [--label NAME] [--port N]
#                           [--scenarios "fanout latency scale"] [--no-build]
# Environment (flags win): SERVER_CMD, LABEL, PORT, SCENARIOS, SERVER_EXTRA
# (flags appended to every server start, e.g. "--threads 1"), GEN_THREADS,
# SCALE_CONNECTIONS, SCALE_HOLD, SCALE_KEEPALIVE_IDLE, LATENCY_MESSAGES,
# FANOUT_ROOMS, ROOMS_MESSAGES, SCALE_ROOMS, RESUME_CLIENTS, RESUME_MISSED,
# RUST_LOG (server log filter, default warn), CARGO_TARGET_DIR, LOAD_BIN
# (the chat-load binary, default $CARGO_TARGET_DIR/release/chat-load),
# NICE=N (run the server and the generator with `nice -n N`; a negative N
# needs root and shields the measurement from other jobs on a shared
# machine; say so when reporting), PERF_STAT=1 (count the server's system calls and context switches with
# `perf stat` during each scenario; needs perf and tracepoint access).
#
# Examples:
#   chat-load/bench.sh
#   SERVER_EXTRA="--threads 1" LABEL=tokio-1t chat-load/bench.sh
#   chat-load/bench.sh --label async-std \
#       --server-cmd "target/release/chat serve --runtime async-std"
#
# Output: each scenario's summary, then all RESULT lines, each prefixed with
# `scenario=`, `variant=`, the 1-minute load average and how busy the CPUs
# were (percent, over one second) just before the run.
# Exit status: non-zero if any scenario failed or timed out.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
SERVER_CMD=${SERVER_CMD:-"$TARGET_DIR/release/chat serve"}
LABEL=${LABEL:-tokio}
PORT=${PORT:-7979}
SCENARIOS=${SCENARIOS:-"fanout latency scale"}
SERVER_EXTRA=${SERVER_EXTRA:-}
GEN_THREADS=${GEN_THREADS:-1}
SCALE_CONNECTIONS=${SCALE_CONNECTIONS:-19500}
SCALE_HOLD=${SCALE_HOLD:-60}
SCALE_KEEPALIVE_IDLE=${SCALE_KEEPALIVE_IDLE:-30}
LATENCY_MESSAGES=${LATENCY_MESSAGES:-1000}
FANOUT_ROOMS=${FANOUT_ROOMS:-10}
ROOMS_MESSAGES=${ROOMS_MESSAGES:-1000}
SCALE_ROOMS=${SCALE_ROOMS:-100}
RESUME_CLIENTS=${RESUME_CLIENTS:-1000}
RESUME_MISSED=${RESUME_MISSED:-10000}
BUILD=1
NICE_CMD=()
if [[ -n "${NICE:-}" ]]; then
    NICE_CMD=(nice -n "$NICE")
fi

while [[ $# -gt 0 ]]; do
    case "$1" in
        --server-cmd) SERVER_CMD=$2; shift 2 ;;
        --label) LABEL=$2; shift 2 ;;
        --port) PORT=$2; shift 2 ;;
        --scenarios) SCENARIOS=$2; shift 2 ;;
        --no-build) BUILD=0; shift ;;
        -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
        *) echo "bench.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done

ADDR=127.0.0.1:$PORT
LOAD=${LOAD_BIN:-$TARGET_DIR/release/chat-load}
export RUST_LOG=${RUST_LOG:-warn}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/chat-bench.XXXXXX")
SERVER_PID=

# 19,500 connections need as many file descriptors in both processes.
ulimit -n "$(ulimit -Hn)"

stop_server() {
    if [[ -n "$SERVER_PID" ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill -TERM "$SERVER_PID" 2>/dev/null || true
        for _ in $(seq 100); do
            kill -0 "$SERVER_PID" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    SERVER_PID=
}
trap stop_server EXIT

if [[ $BUILD == 1 ]]; then
    (cd "$ROOT" && cargo build --release -p chat -p chat-load)
fi

# start_server FLAGS...: starts the server in the background, waits for its
# port to accept connections (10 s at most).
start_server() {
    # Word splitting of SERVER_CMD and SERVER_EXTRA is intended.
    # shellcheck disable=SC2086
    "${NICE_CMD[@]}" $SERVER_CMD --addr "$ADDR" --max-connections 20000 --rate-limit off \
        "$@" $SERVER_EXTRA \
        2>"$WORK/server-$SCENARIO.log" &
    SERVER_PID=$!
    for _ in $(seq 100); do
        if ! kill -0 "$SERVER_PID" 2>/dev/null; then
            echo "bench.sh: the server exited at start; its log:" >&2
            cat "$WORK/server-$SCENARIO.log" >&2
            exit 1
        fi
        if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then
            # That probe connection is gone again before the run starts.
            sleep 0.2
            return 0
        fi
        sleep 0.1
    done
    echo "bench.sh: the server did not listen on $ADDR within 10 s" >&2
    exit 1
}

# busy_pct: how busy the machine's CPUs were over the last second (all
# processes, ours included: none of ours runs between scenarios).
busy_pct() {
    local a b
    read -r -a a < <(grep '^cpu ' /proc/stat)
    sleep 1
    read -r -a b < <(grep '^cpu ' /proc/stat)
    local total=0 idle i
    for i in 1 2 3 4 5 6 7 8; do total=$((total + b[i] - a[i])); done
    idle=$((b[4] - a[4] + b[5] - a[5]))
    echo $(( total > 0 ? 100 * (total - idle) / total : 0 ))
}

# tls_files: a self-signed certificate for 127.0.0.1 (not a CA: it is its
# own trust anchor for chat-load) and its key, in $WORK.
tls_files() {
    if [[ ! -f "$WORK/cert.pem" ]]; then
        openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
            -keyout "$WORK/key.pem" -out "$WORK/cert.pem" -days 2 -subj "/CN=localhost" \
            -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
            -addext "basicConstraints=critical,CA:FALSE" 2>/dev/null
    fi
    TLS_SERVER=(--tls-cert "$WORK/cert.pem" --tls-key "$WORK/key.pem")
    TLS_LOAD=(--tls-ca "$WORK/cert.pem")
}

FAILED=0
RESULTS=()
for SCENARIO in $SCENARIOS; do
    case "$SCENARIO" in
        fanout)
            server_flags=()
            load_args=(fanout --clients 50 --messages 1000 --size 64) ;;
        latency)
            server_flags=()
            load_args=(fanout --clients 50 --messages "$LATENCY_MESSAGES" --size 64 --rate 100) ;;
        scale)
            server_flags=(--keepalive-idle "$SCALE_KEEPALIVE_IDLE")
            load_args=(scale --connections "$SCALE_CONNECTIONS" --hold "$SCALE_HOLD") ;;
        fanout-rooms)
            server_flags=()
            load_args=(fanout --clients $((50 * FANOUT_ROOMS)) --messages "$ROOMS_MESSAGES" --size 64
                --rooms "$FANOUT_ROOMS") ;;
        scale-rooms)
            server_flags=(--keepalive-idle "$SCALE_KEEPALIVE_IDLE")
            load_args=(scale --connections "$SCALE_CONNECTIONS" --hold "$SCALE_HOLD"
                --rooms "$SCALE_ROOMS") ;;
        fanout-tls)
            tls_files
            server_flags=("${TLS_SERVER[@]}")
            load_args=(fanout --clients 50 --messages 1000 --size 64 "${TLS_LOAD[@]}") ;;
        scale-tls)
            tls_files
            server_flags=(--keepalive-idle "$SCALE_KEEPALIVE_IDLE" "${TLS_SERVER[@]}")
            load_args=(scale --connections "$SCALE_CONNECTIONS" --hold "$SCALE_HOLD" "${TLS_LOAD[@]}") ;;
        resume)
            server_flags=(--history "$RESUME_MISSED" --max-replay "$RESUME_MISSED"
                --history-bytes $((RESUME_MISSED * 100)))
            load_args=(resume --clients "$RESUME_CLIENTS" --missed "$RESUME_MISSED" --size 64) ;;
        *) echo "bench.sh: unknown scenario $SCENARIO" >&2; exit 2 ;;
    esac
    busy=$(busy_pct)
    start_server "${server_flags[@]}"
    load1=$(cut -d' ' -f1 /proc/loadavg)
    busiest=$(ps -eo ni,pcpu,comm --sort=-pcpu --no-headers | head -3 |
        awk '{printf "%s(nice %s, %s%%) ", $3, $1, $2}')
    echo "== $SCENARIO ($LABEL): ${NICE_CMD[*]} $SERVER_CMD --rate-limit off ${server_flags[*]} $SERVER_EXTRA"
    echo "   load $(cut -d' ' -f1-3 /proc/loadavg); CPUs ${busy}% busy in the last second; busiest: $busiest"
    perf_pid=
    if [[ ${PERF_STAT:-0} == 1 ]]; then
        perf stat -x, -o "$WORK/$SCENARIO.perf" -p "$SERVER_PID" -e \
            raw_syscalls:sys_enter,syscalls:sys_enter_writev,syscalls:sys_enter_write,syscalls:sys_enter_recvfrom,syscalls:sys_enter_read,syscalls:sys_enter_epoll_wait,syscalls:sys_enter_futex,context-switches \
            2>/dev/null &
        perf_pid=$!
        sleep 0.2
    fi
    status=0
    "${NICE_CMD[@]}" "$LOAD" --threads "$GEN_THREADS" "${load_args[@]}" --addr "$ADDR" \
        --server-pid "$SERVER_PID" >"$WORK/$SCENARIO.out" || status=$?
    cat "$WORK/$SCENARIO.out"
    if [[ -n "$perf_pid" ]]; then
        kill -INT "$perf_pid" 2>/dev/null || true
        wait "$perf_pid" 2>/dev/null || true
        echo "   server perf stat over the whole scenario (logins included):"
        awk -F, '$1 ~ /^[0-9]/ { printf "     %12s  %s\n", $1, $3 }' "$WORK/$SCENARIO.perf" || true
    fi
    stop_server
    if [[ $status != 0 ]]; then
        echo "bench.sh: $SCENARIO exited with status $status" >&2
        FAILED=1
    fi
    while IFS= read -r line; do
        RESULTS+=("RESULT scenario=$SCENARIO variant=$LABEL nice=${NICE:-0} load1=$load1 busy_before_pct=$busy ${line#RESULT }")
    done < <(grep '^RESULT' "$WORK/$SCENARIO.out" || true)
done

echo
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(date -u +%Y-%m-%dT%H:%M:%SZ)"
printf '%s\n' "${RESULTS[@]}"
rm -rf "$WORK"
exit "$FAILED"
