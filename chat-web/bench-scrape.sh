#!/usr/bin/env bash
# What scraping /metrics costs the fan-out path: chat-load's fan-out run
# against `chat serve --http`, with no scraper and with one polling
# /metrics every SECS seconds, interleaved in the same session so that the
# variants share the machine's state. Prints chat-load's RESULT lines,
# each prefixed with the variant, the scraper's interval and how many
# scrapes it made (every one must answer 200).
#
# Usage: chat-web/bench-scrape.sh [--rounds N] [--intervals "none 1 0.1"]
#                                 [--messages M] [--no-build]
# Environment: PORT (chat, default 7979; HTTP is PORT+1), CARGO_TARGET_DIR,
# RUST_LOG (server log filter, default warn).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
PORT=${PORT:-7979}
HTTP_PORT=$((PORT + 1))
ROUNDS=3
INTERVALS="none 1 0.1"
MESSAGES=20000
BUILD=1
while [[ $# -gt 0 ]]; do
    case "$1" in
        --rounds) ROUNDS=$2; shift 2 ;;
        --intervals) INTERVALS=$2; shift 2 ;;
        --messages) MESSAGES=$2; shift 2 ;;
        --no-build) BUILD=0; shift ;;
        -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
        *) echo "bench-scrape.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done
export RUST_LOG=${RUST_LOG:-warn}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/chat-scrape.XXXXXX")
SERVER_PID=
SCRAPER_PID=

stop_all() {
    if [[ -n "$SCRAPER_PID" ]]; then
        kill "$SCRAPER_PID" 2>/dev/null || true
        wait "$SCRAPER_PID" 2>/dev/null || true
        SCRAPER_PID=
    fi
    if [[ -n "$SERVER_PID" ]]; then
        kill -TERM "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
        SERVER_PID=
    fi
}
trap 'stop_all; rm -rf "$WORK"' EXIT

if [[ $BUILD == 1 ]]; then
    (cd "$ROOT" && cargo build --release -p chat -p chat-load)
fi

# scrape INTERVAL: GETs /metrics every INTERVAL seconds until killed;
# writes how many answered 200, and how many did not, to $WORK/scrapes.
scrape() {
    local ok=0 failed=0
    trap 'echo "$ok $failed" >"$WORK/scrapes"; exit 0' TERM
    while true; do
        if curl -sf --max-time 5 -o /dev/null "http://127.0.0.1:$HTTP_PORT/metrics"; then
            ok=$((ok + 1))
        else
            failed=$((failed + 1))
        fi
        sleep "$1" &
        wait $!
    done
}

RESULTS=()
for round in $(seq "$ROUNDS"); do
    for interval in $INTERVALS; do
        "$TARGET_DIR/release/chat" serve --addr "127.0.0.1:$PORT" --max-connections 20000 \
            --http "127.0.0.1:$HTTP_PORT" 2>"$WORK/server.log" &
        SERVER_PID=$!
        for _ in $(seq 100); do
            curl -sf -o /dev/null "http://127.0.0.1:$HTTP_PORT/healthz" && break
            sleep 0.1
        done
        echo "== round $round, scrape interval $interval: load $(cut -d' ' -f1-3 /proc/loadavg)"
        if [[ $interval != none ]]; then
            scrape "$interval" &
            SCRAPER_PID=$!
        fi
        "$TARGET_DIR/release/chat-load" --threads 1 fanout --clients 50 --messages "$MESSAGES" \
            --size 64 --addr "127.0.0.1:$PORT" --server-pid "$SERVER_PID" >"$WORK/run.out"
        scrapes="0 0"
        if [[ -n "$SCRAPER_PID" ]]; then
            kill -TERM "$SCRAPER_PID"
            wait "$SCRAPER_PID" || true
            SCRAPER_PID=
            scrapes=$(cat "$WORK/scrapes")
        fi
        stop_all
        read -r ok failed <<<"$scrapes"
        if [[ $failed != 0 ]]; then
            echo "bench-scrape.sh: $failed scrapes failed" >&2
            exit 1
        fi
        line=$(grep '^RESULT' "$WORK/run.out")
        echo "$line"
        RESULTS+=("RESULT round=$round scrape_interval=$interval scrapes=$ok ${line#RESULT }")
    done
done
# Server CPU time of 1000 requests of each kind, per request.
cpu_ns() { cat "/proc/$SERVER_PID"/task/*/schedstat | awk '{s += $1} END {printf "%d", s}'; }
"$TARGET_DIR/release/chat" serve --addr "127.0.0.1:$PORT" --http "127.0.0.1:$HTTP_PORT" \
    2>"$WORK/server.log" &
SERVER_PID=$!
for _ in $(seq 100); do
    curl -sf -o /dev/null "http://127.0.0.1:$HTTP_PORT/healthz" && break
    sleep 0.1
done
PER_REQUEST=()
for path in metrics healthz; do
    kept_alive=()
    for _ in $(seq 1000); do kept_alive+=(-o /dev/null "http://127.0.0.1:$HTTP_PORT/$path"); done
    before=$(cpu_ns)
    for _ in $(seq 1000); do curl -sf -o /dev/null "http://127.0.0.1:$HTTP_PORT/$path"; done
    middle=$(cpu_ns)
    curl -sf "${kept_alive[@]}"
    after=$(cpu_ns)
    PER_REQUEST+=("PER_REQUEST path=/$path new_connection_ns=$(((middle - before) / 1000)) kept_alive_ns=$(((after - middle) / 1000))")
done
stop_all

echo
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(date -u +%Y-%m-%dT%H:%M:%SZ), commit $(git -C "$ROOT" rev-parse --short HEAD)"
printf '%s\n' "${RESULTS[@]}" "${PER_REQUEST[@]}"
