#!/usr/bin/env bash
# How long `make test` (CI's `.ci/run`) takes, by phase, in the three cases that matter
# (docs/performance.md, "Build and test times"):
#   cold     a fresh clone of HEAD, an empty Cargo target directory and a new interop venv
#   warm     the same clone again after a one-line change in confab-media
#   ci-warm  another fresh clone with the target directory and venv kept (CI's case: every
#            file of a new clone is newer than the build, so our crates and the patched
#            third_party crates rebuild)
# System packages must be installed already (scripts/install-deps.sh). Takes about 25 min
# on a 2-core machine. Usage: scripts/time-make-test.sh [WORKDIR]   (default: a new temp dir)
set -euo pipefail

repo="$(cd "$(dirname "$0")/.." && pwd)"
work="${1:-$(mktemp -d "${TMPDIR:-/tmp}/confab-times.XXXXXX")}"
mkdir -p "$work"
target="$work/target"
venv="$work/interop-venv"

# Runs .ci/run in $1, writing each output line with the seconds since the start.
run_ci() {
    local dir=$1 log=$2 start
    start=$(date +%s)
    (cd "$dir" && CARGO_TARGET_DIR="$target" INTEROP_VENV="$venv" PIP_NO_CACHE_DIR=1 .ci/run) 2>&1 |
        while IFS= read -r line; do
            printf '%d %s\n' "$(($(date +%s) - start))" "$line"
        done >"$log"
    local status=${PIPESTATUS[0]}
    echo "$(($(date +%s) - start)) end status=$status" >>"$log"
    return "$status"
}

# Phase times from a log: the lines make echoes start each phase.
phases() {
    awk '
        / cargo fmt --all --check$/ && !fmt { fmt = $1 }
        / cargo test --workspace --all-targets --locked --no-run$/ && !build { build = $1 }
        / cargo test --workspace --locked$/ && !tests { tests = $1 }
        / make interop$/ && !interop { interop = $1 }
        / end status=/ { end = $1 }
        END {
            printf "fmt %ds, build %ds, tests %ds, interop %ds, total %ds (%.1f min)\n",
                build - fmt, tests - build, interop - tests, end - interop, end, end / 60
        }' "$1"
}

# One case: run .ci/run in clone $1, log to $work/$2.log, print the phases.
measure() {
    run_ci "$work/$1" "$work/$2.log" || {
        echo "$2: make test failed, see $work/$2.log" >&2
        exit 1
    }
    echo "$2: $(phases "$work/$2.log")"
}

rm -rf "$work/clone" "$work/clone2" "$target" "$venv"
git clone --quiet "$repo" "$work/clone"
measure clone cold
echo "// a one-line change" >>"$work/clone/crates/media/src/lib.rs"
measure clone warm
git clone --quiet "$repo" "$work/clone2"
measure clone2 ci-warm
echo "logs in $work"
