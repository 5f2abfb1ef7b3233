#!/usr/bin/env bash
# tools/mta-sts-peer.sh: a private HTTPS server on loopback that serves MTA-STS
# policies (RFC 8461 3.3, https://mta-sts.DOMAIN/.well-known/mta-sts.txt) for
# integration tests of Postern's policy fetch: per host name its own
# certificate and answer, a policy or a failure. Nothing system-wide is
# configured or started.
#
# Usage:
#   tools/mta-sts-peer.sh install
#   tools/mta-sts-peer.sh start DIR PORT
#   tools/mta-sts-peer.sh stop DIR
#   tools/mta-sts-peer.sh --help
#
# The server (tools/lib/mta-sts-server.py, Python's http.server and ssl)
# listens on 127.0.0.1:PORT and reads DIR/sites, one site a line:
#
#   HOST CERT KEY ACTION [ARGUMENT...]
#
# CERT (chain PEM, leaf first) and KEY are what a TLS client that sends HOST
# as SNI gets; a client without SNI, or with a name not listed, gets the
# unrecognized_name alert. The Host header (port ignored) picks the answer
# to GET /.well-known/mta-sts.txt (any other path, or an unlisted Host: 404):
#
#   policy FILE [TYPE]   200 with FILE's bytes (Content-Type TYPE, by default
#                        text/plain)
#   status CODE          CODE (404, 500, ...) with a short body
#   redirect URL         301 to URL (RFC 8461 3.3: must not be followed)
#   oversized SIZE       200 with a valid enforce policy (mx: *.test) padded
#                        to SIZE bytes with an x-padding field (RFC 8461 3.3:
#                        a client stops reading at 64 KiB)
#   hang                 headers read, nothing ever answered: the client must
#                        time out (the server waits for it to close, at most
#                        120 s)
#
# DIR/sites is read again for every connection: replace it (write a new file,
# rename it over) to change answers between fetches; nothing is restarted.
# `start` needs DIR/sites to exist (it may be empty). It writes:
#
#   DIR/server.pid          the server's pid
#   DIR/log/requests.log    one line per request: UTC time, client address,
#                           SNI, Host, path, then status and body size, or
#                           "hang"; refused handshakes and failed connections
#                           as "- SNI - - handshake refused: ..." and
#                           "- - - - connection failed: ..." (the start-up
#                           probe shows as one: it connects and leaves)
#   DIR/log/server.log      the server's stdout and stderr
#
# and runs the server in the foreground of its own session (setsid). It
# returns once the port accepts connections. Several instances may run at
# once (distinct DIRs and ports). The client resolves mta-sts.DOMAIN to
# 127.0.0.1 (e.g. through tools/dns-peer.sh or tools/dnssec-peer.sh) and is
# told to use PORT instead of 443, and to trust the test CA that issued CERT.
# Root is not needed. `install` installs python3.
set -euo pipefail

me=tools/mta-sts-peer.sh
# shellcheck source=tools/lib/peer-common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/peer-common.sh"

server=$(realpath "$(dirname "${BASH_SOURCE[0]}")/lib/mta-sts-server.py")

cmd_install() {
    command -v python3 >/dev/null && return 0 # already there: stay quiet
    install_without_starting_services python3
}

# Polls every 0.1 s, for at most 20 s by the clock, until 127.0.0.1:$2
# accepts a connection (or the server has exited).
wait_for_port() {
    local dir=$1 port=$2 deadline=$((SECONDS + 20))
    while ((SECONDS < deadline)); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then return 0; fi
        gone "$(<"$dir/server.pid")" && { echo "$me: the server exited" >&2; return 1; }
        sleep 0.1
    done
    echo "$me: nothing accepted connections on 127.0.0.1:$port within 20 s" >&2
    return 1
}

cmd_start() {
    (($# == 2)) || die "usage: $me start DIR PORT"
    local dir=$1 port=$2
    check_port "$port"
    command -v python3 >/dev/null || die "python3 is not installed (run: $me install)"
    dir=$(realpath -m "$dir")
    [[ -f $dir/sites ]] || die "no $dir/sites (it may be empty)"
    if daemon_pid "$dir/server.pid" "$server $dir " >/dev/null; then die "an instance is already running in $dir (run: $me stop $dir)"; fi
    mkdir -p "$dir/log"
    # Connections are accepted by the test's (our) loopback client only; stdio
    # to the log and no other inherited descriptors, as for the other peers.
    (exec_without_inherited_fds setsid python3 "$server" "$dir" "$port" \
        </dev/null >>"$dir/log/server.log" 2>&1) &
    echo $! >"$dir/server.pid"
    if wait_for_port "$dir" "$port" 2>>"$dir/log/server.log"; then return 0; fi
    start_failed "$dir" "the server" server.log
}

cmd_stop() {
    (($# == 1)) || die "usage: $me stop DIR"
    local dir=$1
    [[ -d $dir ]] || return 0
    dir=$(realpath "$dir")
    stop_daemon "$dir/server.pid" "$server $dir "
}

peer_main "$@"
