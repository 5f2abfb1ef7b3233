#!/usr/bin/env bash
# tools/bench/inject.sh WRITERS LIST ERRLOG COMMAND [ARG...]
#
# One process per message, as cron, PHP and shell scripts submit mail: runs
# COMMAND ARG... once for every message file named in LIST (one path a line),
# with the file on standard input. WRITERS loops run side by side; loop k
# takes messages k, k+WRITERS, k+2*WRITERS, ... strictly one after the other.
# Standard output of COMMAND is discarded, its standard error appended to
# ERRLOG. Prints the number of invocations that exited non-zero.
set -uo pipefail
(($# >= 4)) || { echo "usage: $0 WRITERS LIST ERRLOG COMMAND [ARG...]" >&2; exit 64; }
writers=$1 list=$2 errlog=$3
shift 3
mapfile -t files <"$list"
total=${#files[@]}
failures=$(mktemp)
trap 'rm -f "$failures"' EXIT
stream() {
    local k=$1 i failed=0
    shift
    for ((i = k; i < total; i += writers)); do
        "$@" <"${files[i]}" >/dev/null 2>>"$errlog" || failed=$((failed + 1))
    done
    echo "$failed" >>"$failures"
}
pids=()
for ((k = 0; k < writers; k++)); do
    stream "$k" "$@" &
    pids+=($!)
done
wait "${pids[@]}"
awk '{ n += $1 } END { print n + 0 }' "$failures"
