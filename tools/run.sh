#!/usr/bin/env bash
# tools/run.sh [postern run options...]: build postern and postern-drop (release), create the
# spool if it is missing, and run the delivery daemon in the foreground with
# the defaults (and /etc/postern/postern.toml if it exists). Ctrl-C stops it.
#
#   tools/run.sh                              defaults; spool /var/spool/postern
#   tools/run.sh -o relay=127.0.0.1:2525      everything through a smarthost
#   POSTERN_SPOOL=/tmp/spool tools/run.sh     another spool
#
# Drop mail meanwhile with: .build/release/postern drop -t < message
set -euo pipefail
cd "$(dirname "$0")/.."
tools/install-packages.sh libssl-dev pkg-config
command -v swift >/dev/null || { echo "tools/run.sh: swift is not on PATH (see README)" >&2; exit 69; }
swift build -c release --static-swift-stdlib --product postern && swift build -c release --static-swift-stdlib --product postern-drop
postern=.build/release/postern
spool=${POSTERN_SPOOL:-/var/spool/postern}
"$postern" init --spool "$spool"
exec "$postern" run --spool "$spool" "$@"
