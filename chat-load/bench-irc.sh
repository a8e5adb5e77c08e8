#!/usr/bin/env bash
# Measures our chat server and ngircd in the same run with the same
# generator (chat-load, `--protocol irc` for ngircd), and prints both RESULT
# lines and their ratios.
#
#   latency  K=50 clients paced at 100 msg/s each for LATENCY_MESSAGES
#            (1000) messages of 64 B
#   fanout   K=50 x M=1000 x S=64 B, burst, window 100
#   burst0   the same with no window (--window 0)
#
# Over chat a message reaches all 50 clients, its sender included; IRC
# servers do not send a sender its own PRIVMSG, so over IRC it reaches 49:
# compare per delivery (deliveries per server CPU-second), not per message.
# The text of every message is the same on both sides (S-5 bytes).
#
# For each scenario and run, a fresh server of each kind is started, ours
# first, then ngircd, and stopped with SIGTERM afterwards (so VmHWM is that
# run's peak):
#   ours    $SERVER_CMD --addr 127.0.0.1:$PORT --max-connections 20000
#           --rate-limit off $SERVER_EXTRA
#   ngircd  $NGIRCD --nodaemon --config WORK/ngircd.conf, a config written
#           here: listening on 127.0.0.1:$IRC_PORT only; no DNS or ident
#           lookups, no PAM; no connection limits (MaxConnections and
#           MaxConnectionsIP 0); nicknames of up to 30 characters; and
#           MaxPenaltyTime 0, which turns off ngircd's flood protection
#           (otherwise a client sending over 256 bytes a second, or with
#           more than 3 commands waiting, is paused for a second at a time,
#           and the paced scenario alone sends 7 kB/s a client)
#   base    with --base-cmd CMD (BASE_CMD): a second build of our server
#           (say, one from before a change), started like ours and run
#           between ours and ngircd, so a change is measured in the same
#           run as ngircd
# Our servers log their connections' closes (RUST_LOG plus
# transport_common::hub_driver=info); their RESULT lines get
# server_slow_consumer_closes=N, the closes with reason slow-consumer.
# SERVER_CMD, BASE_CMD and NGIRCD must exec the server itself (its pid is
# measured).
# As root, ngircd drops to the user nobody; it needs no files besides its
# config. Install it with `apt-get install ngircd`; the Debian service it
# comes with is not used.
#
# Usage: chat-load/bench-irc.sh [--server-cmd CMD] [--base-cmd CMD] [--ngircd PATH]
#                               [--scenarios "latency fanout burst0"]
#                               [--runs N] [--port N] [--irc-port N] [--no-build]
# Environment (flags win): SERVER_CMD, BASE_CMD, NGIRCD, SCENARIOS (default latency),
# RUNS (1; runs alternate ours, [base,] ngircd, ours, ...), PORT (7979), IRC_PORT
# (6797), SERVER_EXTRA, GEN_THREADS, LATENCY_MESSAGES, NICE, RUST_LOG
# (default warn), CARGO_TARGET_DIR, LOAD_BIN, as for bench.sh.
#
# Output: each run's summary, then every RESULT line prefixed with
# `scenario=`, `variant=` (ours, base or ngircd), `run=`, the load average and
# how busy the CPUs were just before, then one RATIO line per scenario and
# run: ours over ngircd for deliveries per server CPU-second (above 1: we
# use less CPU per delivery), p99 latency and peak RSS (below 1: ours is
# lower), each followed by both figures (`ours_KEY=`, `ngircd_KEY=`);
# with a base, a RATIO_BASE line too: ours over base, the same keys.
# Exit status: non-zero if any run failed.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
SERVER_CMD=${SERVER_CMD:-"$TARGET_DIR/release/chat serve"}
BASE_CMD=${BASE_CMD:-}
NGIRCD=${NGIRCD:-ngircd}
SCENARIOS=${SCENARIOS:-latency}
RUNS=${RUNS:-1}
PORT=${PORT:-7979}
IRC_PORT=${IRC_PORT:-6797}
SERVER_EXTRA=${SERVER_EXTRA:-}
GEN_THREADS=${GEN_THREADS:-1}
LATENCY_MESSAGES=${LATENCY_MESSAGES:-1000}
BUILD=1
NICE_CMD=()
if [[ -n "${NICE:-}" ]]; then
    NICE_CMD=(nice -n "$NICE")
fi

while [[ $# -gt 0 ]]; do
    case "$1" in
        --server-cmd) SERVER_CMD=$2; shift 2 ;;
        --base-cmd) BASE_CMD=$2; shift 2 ;;
        --ngircd) NGIRCD=$2; shift 2 ;;
        --scenarios) SCENARIOS=$2; shift 2 ;;
        --runs) RUNS=$2; shift 2 ;;
        --port) PORT=$2; shift 2 ;;
        --irc-port) IRC_PORT=$2; shift 2 ;;
        --no-build) BUILD=0; shift ;;
        -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
        *) echo "bench-irc.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done

if ! command -v "$NGIRCD" >/dev/null; then
    echo "bench-irc.sh: $NGIRCD not found; install it (apt-get install ngircd) or pass --ngircd PATH" >&2
    exit 2
fi

LOAD=${LOAD_BIN:-$TARGET_DIR/release/chat-load}
export RUST_LOG=${RUST_LOG:-warn}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/chat-bench-irc.XXXXXX")
chmod 755 "$WORK"   # ngircd reads its config as nobody when started as root
SERVER_PID=

# 50 clients are far below any limit, but keep bench.sh's habit.
ulimit -n "$(ulimit -Hn)"

stop_server() {
    if [[ -n "$SERVER_PID" ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill -TERM "$SERVER_PID" 2>/dev/null || true
        for _ in $(seq 100); do
            kill -0 "$SERVER_PID" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$SERVER_PID" 2>/dev/null || true
    fi
    if [[ -n "$SERVER_PID" ]]; then
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    SERVER_PID=
}
trap 'stop_server; rm -rf "$WORK"' EXIT

if [[ $BUILD == 1 ]]; then
    (cd "$ROOT" && cargo build --release -p chat -p chat-load)
fi

# The ngircd configuration: loopback only, nothing looked up, no limits
# that a 50-client benchmark would meet, flood protection off.
cat >"$WORK/ngircd.conf" <<EOF
[Global]
	Name = bench.irc
	Info = chat-load benchmark server
	AdminInfo1 = chat-load bench-irc.sh
	AdminInfo2 = loopback benchmark
	AdminEMail = nobody@localhost
	Listen = 127.0.0.1
	Ports = $IRC_PORT
	MotdPhrase = "chat-load benchmark"
[Limits]
	MaxConnections = 0
	MaxConnectionsIP = 0
	MaxJoins = 0
	MaxNickLength = 30
	MaxPenaltyTime = 0
	PingTimeout = 120
	PongTimeout = 20
	IdleTimeout = 0
[Options]
	DNS = no
	Ident = no
	PAM = no
	NoticeBeforeRegistration = no
	IncludeDir = $WORK/conf.d
EOF
mkdir -p "$WORK/conf.d"
chmod 644 "$WORK/ngircd.conf"

# start VARIANT LOG: starts our server or ngircd in the background and waits
# for its port to accept connections (10 s at most).
start() {
    local variant=$1 log=$2 port cmd
    if [[ $variant != ngircd ]]; then
        port=$PORT
        cmd=$SERVER_CMD
        if [[ $variant == base ]]; then
            cmd=$BASE_CMD
        fi
        # Word splitting of the command and SERVER_EXTRA is intended; the
        # hub driver's closes are logged to count slow consumers.
        # shellcheck disable=SC2086
        RUST_LOG="$RUST_LOG,transport_common::hub_driver=info" \
            "${NICE_CMD[@]}" $cmd --addr "127.0.0.1:$PORT" --max-connections 20000 \
            --rate-limit off $SERVER_EXTRA 2>"$log" &
    else
        port=$IRC_PORT
        "${NICE_CMD[@]}" "$NGIRCD" --nodaemon --config "$WORK/ngircd.conf" >"$log" 2>&1 &
    fi
    SERVER_PID=$!
    for _ in $(seq 100); do
        if ! kill -0 "$SERVER_PID" 2>/dev/null; then
            echo "bench-irc.sh: the $variant server exited at start; its log:" >&2
            cat "$log" >&2
            exit 1
        fi
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            sleep 0.2
            return 0
        fi
        sleep 0.1
    done
    echo "bench-irc.sh: the $variant server did not listen on 127.0.0.1:$port within 10 s" >&2
    exit 1
}

# busy_pct: how busy the machine's CPUs were over the last second.
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

# field LINE KEY: the value of KEY= in a RESULT line.
field() {
    sed -n "s/.* $2=\([^ ]*\).*/\1/p" <<<"$1"
}

# ratio A B: A/B with two decimals, `-` if either is missing or B is 0.
ratio() {
    awk -v a="$1" -v b="$2" 'BEGIN {
        if (a == "" || b == "" || a == "-" || b == "-" || b + 0 == 0) print "-";
        else printf "%.2f", a / b }'
}

FAILED=0
RESULTS=()
RATIOS=()
for SCENARIO in $SCENARIOS; do
    case "$SCENARIO" in
        latency) load_args=(fanout --clients 50 --messages "$LATENCY_MESSAGES" --size 64 --rate 100) ;;
        fanout) load_args=(fanout --clients 50 --messages 1000 --size 64) ;;
        burst0) load_args=(fanout --clients 50 --messages 1000 --size 64 --window 0) ;;
        *) echo "bench-irc.sh: unknown scenario $SCENARIO" >&2; exit 2 ;;
    esac
    variants=(ours)
    if [[ -n "$BASE_CMD" ]]; then
        variants+=(base)
    fi
    variants+=(ngircd)
    for run in $(seq "$RUNS"); do
        declare -A line=()
        for variant in "${variants[@]}"; do
            busy=$(busy_pct)
            log="$WORK/$variant-$SCENARIO-$run.log"
            start "$variant" "$log"
            load1=$(cut -d' ' -f1 /proc/loadavg)
            args=("${load_args[@]}")
            if [[ $variant == ngircd ]]; then
                args+=(--protocol irc --addr "127.0.0.1:$IRC_PORT")
                what="$NGIRCD --nodaemon --config $WORK/ngircd.conf"
            elif [[ $variant == base ]]; then
                args+=(--addr "127.0.0.1:$PORT")
                what="$BASE_CMD --rate-limit off $SERVER_EXTRA"
            else
                args+=(--addr "127.0.0.1:$PORT")
                what="$SERVER_CMD --rate-limit off $SERVER_EXTRA"
            fi
            echo "== $SCENARIO run $run ($variant): ${NICE_CMD[*]} $what"
            echo "   load $(cut -d' ' -f1-3 /proc/loadavg); CPUs ${busy}% busy in the last second"
            status=0
            out="$WORK/$variant-$SCENARIO-$run.out"
            "${NICE_CMD[@]}" "$LOAD" --threads "$GEN_THREADS" "${args[@]}" \
                --server-pid "$SERVER_PID" >"$out" || status=$?
            cat "$out"
            stop_server
            if [[ $variant == ngircd ]]; then
                # ngircd closes clients it cannot keep up with; say so.
                for what in "Write buffer space exhausted" "Receive buffer space exhausted"; do
                    n=$(grep -c "$what" "$log" || true)
                    if [[ $n != 0 ]]; then
                        echo "   ngircd log: \"$what\" $n time(s)"
                    fi
                done
            fi
            if [[ $status != 0 ]]; then
                echo "bench-irc.sh: $SCENARIO run $run ($variant) exited with status $status" >&2
                FAILED=1
            fi
            result=$(grep '^RESULT' "$out" | head -1 || true)
            if [[ $variant != ngircd && -n "$result" ]]; then
                slow=$(grep -c 'slow-consumer' "$log" || true)
                result="$result server_slow_consumer_closes=$slow"
            fi
            line[$variant]=$result
            if [[ -n "$result" ]]; then
                RESULTS+=("RESULT scenario=$SCENARIO variant=$variant run=$run nice=${NICE:-0} load1=$load1 busy_before_pct=$busy ${result#RESULT }")
            fi
        done
        ours=${line[ours]:-}
        irc=${line[ngircd]:-}
        r=("RATIO scenario=$SCENARIO run=$run")
        for key in deliveries_per_server_cpu_s lat_p99_us server_hwm_kb; do
            a=$(field "$ours" "$key")
            b=$(field "$irc" "$key")
            r+=("$key=$(ratio "$a" "$b") ours_$key=${a:--} ngircd_$key=${b:--}")
        done
        RATIOS+=("${r[*]}")
        if [[ -n "$BASE_CMD" ]]; then
            base=${line[base]:-}
            r=("RATIO_BASE scenario=$SCENARIO run=$run")
            for key in deliveries_per_server_cpu_s lat_p99_us server_hwm_kb; do
                a=$(field "$ours" "$key")
                b=$(field "$base" "$key")
                r+=("$key=$(ratio "$a" "$b") ours_$key=${a:--} base_$key=${b:--}")
            done
            RATIOS+=("${r[*]}")
        fi
        unset line
    done
done

echo
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(date -u +%Y-%m-%dT%H:%M:%SZ); ngircd: $("$NGIRCD" --version 2>/dev/null | head -1)"
printf '%s\n' "${RESULTS[@]}"
printf '%s\n' "${RATIOS[@]}"
exit "$FAILED"
