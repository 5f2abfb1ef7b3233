#!/usr/bin/env bash
# tools/test.sh: install what the build and the tests need (Debian packages,
# when missing), then run every test.
#
# Usage: tools/test.sh [swift test arguments...]
#   tools/test.sh                                 everything
#   tools/test.sh --filter IntegrationTests       the tests against real Postfix only
#   tools/test.sh --filter SpoolScannerTests      one suite
set -euo pipefail
cd "$(dirname "$0")/.."

# Build: the system OpenSSL and pkg-config to find it. Tests: coreutils' sync(1)
# with file arguments (the shell drop recipe); python3 (its email package
# parses DSNs as an independent MIME reader); Postfix's smtpd and smtp-sink as
# real peers (installed without configuring or starting the system's Postfix).
tools/install-packages.sh libssl-dev pkg-config coreutils python3
tools/postfix-peer.sh install

command -v swift >/dev/null || { echo "tools/test.sh: swift is not on PATH (see README)" >&2; exit 69; }
exec swift test "$@"
