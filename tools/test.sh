#!/usr/bin/env bash
# tools/test.sh: install what the tests need (on Debian, when missing), then run them all.
#
# Usage: tools/test.sh [swift test arguments...]
#   tools/test.sh                         everything
#   tools/test.sh --filter SpoolTests     one test target (or suite, or test)
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages the tests use: coreutils' sync(1) with file arguments (the
# shell drop recipe), od and cut. Installed only when something is missing.
packages=(coreutils)
missing=()
for package in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "ok installed" || missing+=("$package")
done
if ((${#missing[@]})); then
    if [[ $(id -u) -ne 0 ]]; then
        echo "tools/test.sh: missing Debian packages: ${missing[*]} (run as root, or install them)" >&2
        exit 69
    fi
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
fi

command -v swift >/dev/null || { echo "tools/test.sh: swift is not on PATH (see README)" >&2; exit 69; }
exec swift test "$@"
