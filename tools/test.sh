#!/usr/bin/env bash
# tools/test.sh: install what the build and the tests need (Debian packages,
# when missing), then run every test.
#
# Usage: tools/test.sh [swift test arguments...]
#   tools/test.sh                                 everything: swift test, then
#                                                 the Debian package (tools/package-test.sh)
#   tools/test.sh --filter IntegrationTests       the tests against real peers only
#   tools/test.sh --filter SpoolScannerTests      one suite
#   tools/test.sh --package                       the Debian package only
#   tools/test.sh --crash                         the crash harness's short form only
#   tools/test.sh --power-loss                    the power-loss replay's short form only
#   tools/test.sh --fuzz                          the bounded fuzz run only
set -euo pipefail
cd "$(dirname "$0")/.."

# Build: the system OpenSSL and pkg-config to find it. Tests: coreutils' sync(1)
# with file arguments (the shell drop recipe); python3 (its email package
# parses DSNs as an independent MIME reader); strace (kills the daemon at an
# exact system call) and util-linux's unshare and setpriv (other users, a
# private mount namespace for the set-group-ID drop); real peers, each installed
# without configuring or starting the system's service: Postfix's smtpd and
# smtp-sink, with Dovecot for SASL (postfix-peer.sh), unbound as a DNS server
# (dns-peer.sh), NSD, ldnsutils and unbound for DNSSEC (dnssec-peer.sh), Python's
# HTTPS server for MTA-STS policies (mta-sts-peer.sh), Dante as a SOCKS5 proxy
# (socks-peer.sh); swaks, with Net::SSLeay for its STARTTLS, as a second
# independent SMTP client of the listener (beside Python's smtplib).
tools/install-packages.sh libssl-dev pkg-config coreutils python3 strace util-linux systemd swaks libnet-ssleay-perl
tools/postfix-peer.sh install
tools/dns-peer.sh install
tools/dnssec-peer.sh install
tools/mta-sts-peer.sh install
tools/socks-peer.sh install

# Seconds each fuzz target runs in the bounded run (tools/fuzz.sh; README, Reliability).
FUZZ_SECONDS=5
command -v swift >/dev/null || { echo "tools/test.sh: swift is not on PATH (see README)" >&2; exit 69; }
if [[ ${1:-} == --package ]]; then
    exec tools/package-test.sh
elif [[ ${1:-} == --fuzz ]]; then
    exec tools/fuzz.sh all "$FUZZ_SECONDS"
elif [[ ${1:-} == --crash ]]; then
    swift build --product postern && swift build --product postern-drop
    exec tools/crash-harness.py --short --binary .build/debug/postern
elif [[ ${1:-} == --power-loss ]]; then
    swift build --product postern && swift build --product postern-drop
    exec tools/power-loss.py --short --mutate --binary .build/debug/postern
elif (($#)); then
    exec swift test "$@"
fi
swift test
# Crash injection at scale, short form (about a minute): the daemon (the debug
# build swift test made) SIGKILLed 30 times at random under load, then every
# message accounted for, and 4 kills with the default backoff
# (tools/crash-harness.py; README, Tests).
tools/crash-harness.py --short --binary .build/debug/postern
# Power loss, short form (about a minute): each write protocol recorded under
# strace, its order checked against spool-layout.md, the structured crash
# states of every cut scanned, and each fsync of the drop (then the syncfs of
# the listener's blanks made ahead) skipped in turn to prove the checks catch
# it (tools/power-loss.py; spool-layout.md 6.6).
tools/power-loss.py --short --mutate --binary .build/debug/postern
# Fuzzing, bounded (3 to 5 minutes on a fresh clone: a sanitized release
# build of the parsers, then each of the nine targets for FUZZ_SECONDS from
# the committed seeds); any crash, broken invariant or sanitizer report fails.
tools/fuzz.sh all "$FUZZ_SECONDS"
# After the Swift tests, as a step of its own: it makes a release build (a few
# minutes on a fresh clone), installs the package into a throwaway copy of
# this machine and sends mail through it (about a minute more).
tools/package-test.sh
