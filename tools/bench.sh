#!/usr/bin/env bash
# tools/bench.sh [--quick] [--fs root|loop|both] [options]: Postern against
# Postfix on this machine, loopback only, and a Markdown report of medians and
# ratios (stdout, and tools/bench/results/DATE.md), rendered from the run's
# records (tools/bench/results/DATE.jsonl, written as they are measured).
#
#   tools/bench.sh --quick        every measurement, small, a few minutes
#   tools/bench.sh                the full run (about three hours; see tools/bench/README.md)
#   tools/bench.sh --report FILE.jsonl   the report of an earlier (or interrupted) run again
#   tools/bench.sh --help         every option
#
# As root on Debian: installs what is missing (Postfix with "No configuration",
# so no system-wide instance is set up or started; perf for the
# inode count; e2fsprogs for the loop image), builds postern in release mode
# from this repository, then runs tools/bench/bench.py. Postfix runs as a
# private instance under a scratch directory with its own ports; everything
# the run starts is stopped, and its files removed, when it ends.
set -euo pipefail
cd "$(dirname "$0")/.."
for arg in "$@"; do
    case $arg in
    -h | --help) exec python3 tools/bench/bench.py --help ;;
    --report | --report=*) exec python3 tools/bench/bench.py "$@" ;; # renders only: no root, no build
    esac
done
[[ $(id -u) -eq 0 ]] || { echo "tools/bench.sh: run as root (Postfix's master, mount, perf)" >&2; exit 77; }
# libcurl4-openssl-dev: the static build below links Foundation's URL
# session, which needs libcurl (tools/package-deb.sh says the same).
tools/install-packages.sh python3 e2fsprogs util-linux libssl-dev pkg-config libcurl4-openssl-dev
tools/postfix-peer.sh install
# perf counts the inodes each message costs (kernel tracepoints); optional.
command -v perf >/dev/null || tools/install-packages.sh linux-perf || echo "tools/bench.sh: no perf; the inode count will be skipped" >&2
command -v swift >/dev/null || { echo "tools/bench.sh: swift is not on PATH (see README)" >&2; exit 69; }
# Built as the Debian package builds it (tools/package-deb.sh): the Swift
# runtime and Foundation linked in, so that a command starts without resolving
# thousands of symbols in a dozen shared libraries (a third of its start-up).
swift build -c release --static-swift-stdlib --product postern && swift build -c release --static-swift-stdlib --product postern-drop
export BENCH_COMMAND="tools/bench.sh${*:+ $*}"
exec python3 tools/bench/bench.py --postern .build/release/postern "$@"
