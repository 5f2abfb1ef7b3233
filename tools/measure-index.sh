#!/usr/bin/env bash
# tools/measure-index.sh [COUNT...]: what the daemon's in-memory index costs per
# queued message (heap bytes in use, glibc's mallinfo2), for the goal of issue 4
# (under 300 bytes). Each message gets its own copy of a 30-character domain, as
# when the index is rebuilt from envelopes. A measurement, not a test.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/install-packages.sh libssl-dev pkg-config
swift build -c release --product postern >/dev/null && swift build -c release --product postern-drop >/dev/null
for count in "${@:-100000 1000000}"; do
    for n in $count; do .build/release/postern index-memory --count "$n"; done
done
