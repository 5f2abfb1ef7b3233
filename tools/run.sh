#!/usr/bin/env bash
# tools/run.sh: build postern (release) and set up a spool with the defaults.
#
# Usage: tools/run.sh [SPOOL]     (default: $POSTERN_SPOOL, else /var/spool/postern)
#
# Creates the spool layout (postern init) owned by the invoking user, then shows
# the queue. Drop mail with:  .build/release/postern drop --spool SPOOL -t < message
# The delivery daemon (postern run) is not built yet; see the open issues.
set -euo pipefail
cd "$(dirname "$0")/.."
spool=${1:-${POSTERN_SPOOL:-/var/spool/postern}}

tools/install-packages.sh libssl-dev pkg-config
command -v swift >/dev/null || { echo "tools/run.sh: swift is not on PATH (see README)" >&2; exit 69; }
swift build -c release
postern=.build/release/postern
"$postern" init --spool "$spool"
"$postern" check --spool "$spool"
"$postern" list --spool "$spool"
