#!/usr/bin/env bash
# Runs the real app (release build) on a virtual X display, in a call with the echo bot,
# with settings kept in a throwaway HOME.
#
#   scripts/app-on-xvfb.sh screenshots   writes docs/screenshots/*.png (in a call; at home;
#                                        the browser client in a call)
#   scripts/app-on-xvfb.sh measure       prints the UI's frame times, CPU and memory during
#                                        a 640x480@30 call (docs/performance.md)
#
# CONFAB_BIN=path runs that binary instead of building the release one.
#
# Needs the packages from `scripts/install-deps.sh screenshots` (Xvfb, ImageMagick).
set -euo pipefail
mode=${1:-screenshots}
cd "$(dirname "$0")/.."

# CONFAB_BIN runs another build instead (a profiling build, for perf).
if [ -n "${CONFAB_BIN:-}" ]; then
  confab=$(realpath "$CONFAB_BIN")
else
  cargo build --release --locked --bin confab
  target_dir=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
  confab="$target_dir/release/confab"
fi

work=$(mktemp -d)
export HOME="$work/home" XDG_RUNTIME_DIR="$work/run"
mkdir -p "$HOME" "$XDG_RUNTIME_DIR" && chmod 700 "$XDG_RUNTIME_DIR"
display=:$((90 + RANDOM % 9))
Xvfb "$display" -screen 0 1200x760x24 -nolisten tcp >"$work/xvfb.log" 2>&1 &
xvfb=$!
# A real sound server with a virtual speaker whose monitor is the microphone
# (../shared/TESTING.md): the app plays the bot's tone and hears it back.
pulseaudio -n --daemonize=no --exit-idle-time=-1 -L module-native-protocol-unix \
  -L "module-null-sink sink_name=vsink rate=48000 channels=2" \
  -L "module-remap-source source_name=vmic master=vsink.monitor" >"$work/pulse.log" 2>&1 &
pulse=$!
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
for _ in $(seq 100); do pactl info >/dev/null 2>&1 && break; sleep 0.1; done
pactl set-default-sink vsink && pactl set-default-source vmic
export DISPLAY=$display
for _ in $(seq 100); do [ -S "/tmp/.X11-unix/X${display#:}" ] && break; sleep 0.1; done

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
server="ws://127.0.0.1:$port/ws"
app_args=(--name Alice --server "$server" --test-pattern --call "Echo bot")

# The app logs "connected" when the call is up; wait for that, not for a guess.
wait_connected() {
  for _ in $(seq 300); do
    grep -q "call connected" "$work/app.log" 2>/dev/null && return 0
    sleep 0.1
  done
  echo "the call did not connect; log:" >&2; cat "$work/app.log" >&2; return 1
}

# CPU ticks per thread name (threads of one name summed).
threads() {
  for task in /proc/"$1"/task/*; do
    echo "$(tr ' ' '_' <"$task/comm") $(sed 's/.*) //' "$task/stat" | awk '{print $12+$13}')"
  done | awk '{t[$1]+=$2} END {for (n in t) print n, t[n]}'
}

case "$mode" in
screenshots)
  RUST_LOG=confab_call=info "$confab" demo "${app_args[@]}" --chat "Hi! Is this thing on?" \
    --chat "Video and sound look good here." --quit-after 20 >"$work/app.log" 2>&1 &
  app=$!
  wait_connected
  # Let the video settle and the echoes arrive before the picture is taken.
  sleep 6
  mkdir -p docs/screenshots
  import -window root docs/screenshots/call.png
  kill "$app" 2>/dev/null || true; wait "$app" 2>/dev/null || true
  echo "wrote docs/screenshots/call.png"
  # Outside a call, hosting the server: where others on the network find it.
  "$confab" demo --name Alice --server "$server" --test-pattern --quit-after 12 \
    >"$work/home.log" 2>&1 &
  app=$!
  for _ in $(seq 100); do grep -q "started the bundled signaling server" "$work/home.log" && break; sleep 0.1; done
  sleep 4 # the echo bot appears in the list
  import -window root docs/screenshots/home.png
  kill "$app" 2>/dev/null || true; wait "$app" 2>/dev/null || true
  echo "wrote docs/screenshots/home.png"
  # A guest in a browser (Debian's Chromium, headless) calling a desktop user.
  CONFAB_BIN="$confab" node tests/browser/screenshot.mjs docs/screenshots/browser.png
  ;;
measure)
  secs=${MEASURE_SECS:-30}
  # The bot runs as its own process here, so that what is measured is the app alone
  # (UI, renderer, engine, and the bundled server it starts).
  "$confab" headless --server "$server" --name "Echo bot" --answer --echo-chat --calls 0 \
    >"$work/bot.log" 2>&1 &
  RUST_LOG=confab_call=info "$confab" "${app_args[@]}" --frame-stats "$work/frames.json" \
    --quit-after "$((secs + 5))" >"$work/app.log" 2>&1 &
  app=$!
  wait_connected
  sleep 3 # past the first keyframe and congestion control's first steps
  ticks0=$(awk '{print $14+$15}' "/proc/$app/stat")
  threads "$app" >"$work/threads0"
  start=$(date +%s.%N)
  max_rss=0
  for _ in $(seq "$secs"); do
    rss=$(awk '/VmRSS/ {print $2}' "/proc/$app/status")
    [ "$rss" -gt "$max_rss" ] && max_rss=$rss
    sleep 1
  done
  ticks1=$(awk '{print $14+$15}' "/proc/$app/stat")
  threads "$app" >"$work/threads1"
  end=$(date +%s.%N)
  hz=$(getconf CLK_TCK)
  wait "$app" || true
  python3 - "$ticks0" "$ticks1" "$start" "$end" "$hz" "$max_rss" "$work/frames.json" \
    "$work/threads0" "$work/threads1" <<'PY'
import json, sys
t0, t1, s0, s1, hz, rss, frames, th0, th1 = sys.argv[1:]
cpu = (int(t1) - int(t0)) / int(hz) / (float(s1) - float(s0)) * 100
stats = json.load(open(frames))
print(f"app (UI, renderer, engine, bundled server): {cpu:.1f}% of one core, peak RSS {int(rss)/1024:.0f} MB")
def load(path):
    # A thread that ended while it was read leaves a name without a number: skipped.
    rows = (line.split() for line in open(path))
    return dict((row[0], int(row[1])) for row in rows if len(row) == 2)
before, after = load(th0), load(th1)
busy = sorted(((after[n] - before.get(n, 0)) / int(hz) / (float(s1) - float(s0)) * 100, n) for n in after)
print("by thread:", ", ".join(f"{name} {pct:.1f}%" for pct, name in reversed(busy) if pct >= 0.5))
print(f"UI frames: {stats['frames']}, CPU per frame p50 {stats['p50_ms']:.2f} ms, p95 {stats['p95_ms']:.2f} ms, max {stats['max_ms']:.2f} ms")
PY
  ;;
*) echo "usage: $0 screenshots|measure" >&2; exit 2 ;;
esac
