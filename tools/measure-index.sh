#!/usr/bin/env bash
# tools/measure-index.sh [COUNT...]: what the daemon's in-memory index costs per
# queued message (heap bytes in use, glibc's mallinfo2), for the goal of issue 15
# (under 150 bytes of RSS at 1,000,000). Each message is an ID and a due time, as
# the start-up scan indexes it (destinations are read from envelopes only for
# rounds in progress). A measurement, not a test.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/install-packages.sh libssl-dev pkg-config
swift build -c release --static-swift-stdlib --product postern >/dev/null && swift build -c release --static-swift-stdlib --product postern-drop >/dev/null
for count in "${@:-100000 1000000}"; do
    for n in $count; do .build/release/postern index-memory --count "$n"; done
done
