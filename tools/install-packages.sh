#!/usr/bin/env bash
# tools/install-packages.sh PACKAGE...: install the Debian packages that are
# missing (apt-get, as root), quietly; nothing to do when all are there.
# Used by tools/run.sh (build dependencies) and tools/test.sh (test peers).
set -euo pipefail
missing=()
for package in "$@"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "ok installed" || missing+=("$package")
done
((${#missing[@]})) || exit 0
if [[ $(id -u) -ne 0 ]]; then
    echo "$0: missing Debian packages: ${missing[*]} (run as root, or install them)" >&2
    exit 69
fi
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
