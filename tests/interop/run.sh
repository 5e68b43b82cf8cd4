#!/usr/bin/env bash
# Interop test: a Python aiortc peer and `confab headless` call each other through
# `confab server`, both ways, with H.264 video (and its RTX retransmission stream), Opus audio
# and the `chat` data channel.
#
#   (a) aiortc calls `confab headless --answer`; aiortc hangs up after $DURATION s.
#   (b) `confab headless --call` calls aiortc (answering); headless hangs up.
#
# Both sides check what they received; exit status 0 only if every check passed.
# Setup: see tests/interop/README.md. Environment:
#   CONFAB_BIN       the confab binary (default: $CARGO_TARGET_DIR or ./target, debug/confab)
#   INTEROP_PYTHON   a python with requirements.txt installed (default: tests/interop/.venv)
#   DURATION         seconds each call lasts once connected (default 5)
#   KEEP_LOGS=1      keep the log directory even when everything passed
#   EXPECT_BYE=0     in (b), do not require confab's `bye` on the chat (required by default)
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
DURATION="${DURATION:-5}"

CONFAB="${CONFAB_BIN:-${CARGO_TARGET_DIR:-$ROOT/target}/debug/confab}"
if [[ ! -x "$CONFAB" ]]; then
    echo "interop: no confab binary at $CONFAB (build it, or set CONFAB_BIN)" >&2
    exit 2
fi
if [[ -n "${INTEROP_PYTHON:-}" ]]; then
    PY="$INTEROP_PYTHON"
elif [[ -x "$HERE/.venv/bin/python" ]]; then
    PY="$HERE/.venv/bin/python"
else
    PY=python3
fi
if ! "$PY" -c 'import aiortc, websockets' 2>/dev/null; then
    echo "interop: $PY cannot import aiortc and websockets; see $HERE/README.md" >&2
    exit 2
fi

LOGS="$(mktemp -d "${TMPDIR:-/tmp}/confab-interop.XXXXXX")"
PIDS=()
cleanup() {
    local status=$?
    for pid in "${PIDS[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in "${PIDS[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
    if [[ $status -eq 0 && -z "${KEEP_LOGS:-}" ]]; then
        rm -rf "$LOGS"
    else
        echo "interop: logs in $LOGS" >&2
    fi
    exit $status
}
trap cleanup EXIT
trap 'exit 130' INT TERM

export RUST_LOG="${RUST_LOG:-info}"
export NO_COLOR=1

# A free port: bind port 0, read it, let it go (the server binds it right after).
PORT="$("$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
URL="ws://127.0.0.1:$PORT/ws"
"$CONFAB" server --listen "127.0.0.1:$PORT" >"$LOGS/server.log" 2>&1 &
SERVER_PID=$!
PIDS+=("$SERVER_PID")
"$PY" - "$PORT" <<'EOF'
import sys, time, urllib.request
port = sys.argv[1]
for _ in range(100):
    try:
        if urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1).read().strip() == b"ok":
            sys.exit(0)
    except OSError:
        time.sleep(0.1)
sys.exit("interop: the signaling server did not come up")
EOF

# Checks the headless peer's --stats JSON; prints one line, fails if a check fails.
check_headless() {
    "$PY" - "$1" "$2" <<'EOF'
import json, sys
path, label = sys.argv[1], sys.argv[2]
s = json.load(open(path))
checks = {
    "connected": s.get("connect_ms") is not None,
    "ended_cleanly": s.get("end_reason") == "ended",
    "video_frames_decoded": s.get("video_frames_decoded", 0) >= 30,
    "video_size_in_640x480": s.get("video_size_in") == [640, 480],
    "video_frames_sent": s.get("video_frames_sent", 0) > 0,
    "audio_packets_received": s.get("audio_packets_received", 0) >= 50,
    "audio_packets_sent": s.get("audio_packets_sent", 0) > 0,
    "chats_received": s.get("chats_received", 0) >= 1,
    "chats_sent": s.get("chats_sent", 0) >= 2,   # --chat and the echo
}
failed = [k for k, v in checks.items() if not v]
keys = ("end_reason", "connect_ms", "video_frames_received", "video_frames_decoded",
        "video_size_in", "video_frames_sent", "audio_packets_received",
        "audio_packets_sent", "chats_received", "chats_sent", "plis_sent", "video_losses")
print(json.dumps({"side": label, "ok": not failed, "failed_checks": failed,
                  **{k: s.get(k) for k in keys}}))
sys.exit(1 if failed else 0)
EOF
}

FAILED=0

# Runs one direction. $1: a or b.
run_direction() {
    local dir=$1 rust="confab-$1" py="aiortc-$1" hpid ppid hstatus=0 pstatus=0
    local pyargs=(--server "$URL" --name "$py" --chat "hello from aiortc $dir"
        --expect-chat "hello from confab $dir" --expect-chat "echo: hello from aiortc $dir"
        --expect-size 640x480 --sdp-dir "$LOGS" --timeout 40)
    # The engine's bye on the chat channel never reaches the wire (see README.md), so
    # expecting it is opt-in until that is fixed.
    if [[ $dir == b && "${EXPECT_BYE:-1}" != 0 ]]; then
        pyargs+=(--expect-bye)
    fi
    local rustargs=(headless --server "$URL" --name "$rust" --video test-pattern
        --audio tone:440 --chat "hello from confab $dir" --echo-chat --stats "$LOGS/$rust.json")
    if [[ $dir == a ]]; then
        timeout 45 "$CONFAB" "${rustargs[@]}" --answer >"$LOGS/$rust.out" 2>"$LOGS/$rust.log" &
        hpid=$!
        PIDS+=("$hpid")
        timeout 45 "$PY" "$HERE/aiortc_peer.py" "${pyargs[@]}" --call "$rust" \
            --duration "$DURATION" >"$LOGS/$py.json" 2>"$LOGS/$py.log" &
        ppid=$!
        PIDS+=("$ppid")
    else
        timeout 45 "$PY" "$HERE/aiortc_peer.py" "${pyargs[@]}" --answer \
            >"$LOGS/$py.json" 2>"$LOGS/$py.log" &
        ppid=$!
        PIDS+=("$ppid")
        timeout 45 "$CONFAB" "${rustargs[@]}" --call "$py" --duration "$DURATION" \
            >"$LOGS/$rust.out" 2>"$LOGS/$rust.log" &
        hpid=$!
        PIDS+=("$hpid")
    fi
    wait "$ppid" || pstatus=$?
    wait "$hpid" || hstatus=$?
    PIDS=("$SERVER_PID")  # the peers are gone: never signal a reused pid
    echo "== ($dir) $( [[ $dir == a ]] && echo "aiortc calls confab" || echo "confab calls aiortc")"
    echo "aiortc   exit $pstatus: $(tail -n 1 "$LOGS/$py.json" 2>/dev/null)"
    local cstatus=0
    if [[ -s "$LOGS/$rust.json" ]]; then
        echo -n "headless exit $hstatus: "
        check_headless "$LOGS/$rust.json" "$rust" || cstatus=$?
    else
        echo "headless exit $hstatus: no stats ($(tail -n 1 "$LOGS/$rust.log" 2>/dev/null))"
        cstatus=1
    fi
    if ! grep -qx "chat: hello from aiortc $dir" "$LOGS/$rust.out"; then
        echo "headless did not print the aiortc chat"
        cstatus=1
    fi
    # Retransmissions on their own stream (RFC 4588) were agreed: the answer has an RTX
    # codec and an FID group pairing its video stream with one.
    if ! grep -q "rtx/90000" "$LOGS/$py.answer.sdp" \
        || ! grep -q "a=ssrc-group:FID" "$LOGS/$py.answer.sdp"; then
        echo "the answer does not agree on RTX"
        cstatus=1
    fi
    if [[ $pstatus -ne 0 || $hstatus -ne 0 || $cstatus -ne 0 ]]; then
        echo "-- ($dir) FAILED; last log lines:"
        tail -n 15 "$LOGS/$py.log" | sed 's/^/   aiortc | /'
        tail -n 15 "$LOGS/$rust.log" | sed 's/^/   confab | /'
        FAILED=1
    else
        echo "-- ($dir) passed"
    fi
}

START=$SECONDS
run_direction a
run_direction b
echo "interop: $([[ $FAILED -eq 0 ]] && echo PASSED || echo FAILED) in $((SECONDS - START)) s"
exit $FAILED
