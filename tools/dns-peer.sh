#!/usr/bin/env bash
# tools/dns-peer.sh: a private unbound on loopback that answers from a fixed
# zone only, for integration tests of Postern's direct delivery (MX, A, AAAA,
# CNAME, TXT, TLSA lookups). Nothing system-wide is configured or started.
#
# Usage:
#   tools/dns-peer.sh install
#   tools/dns-peer.sh start DIR PORT ZONEFILE
#   tools/dns-peer.sh stop DIR
#   tools/dns-peer.sh --help
#
# ZONEFILE holds one resource record a line, as in unbound's `local-data:` (and
# in a master file): absolute OWNER, optional TTL (default 3600) and class,
# TYPE, DATA. For example:
#
#   example.test. MX 10 mx1.example.test.
#   mx1.example.test. 300 IN A 127.0.0.2
#   mx1.example.test. AAAA ::1
#   alias.test. CNAME mx1.example.test.
#   example.test. TXT "v=spf1 -all"
#   _25._tcp.mx1.example.test. TLSA 3 1 1 0123...ef
#
# Empty lines and lines starting with `#` or `;` are skipped. A line starting
# with `local-zone:` is an unbound directive, copied as it is, that answers a
# subtree before the zone is consulted, e.g. `local-zone: "broken.test."
# refuse` (REFUSED) or `local-zone: "broken.test." always_servfail` (SERVFAIL).
# No NS records below the root: they would be delegations to real servers.
#
# The records are the root zone ("."), which unbound's resolver uses instead
# of the Internet (an auth-zone, for-upstream): replies look like a recursive
# resolver's (RA set, AA not), a CNAME comes with its target's records, a name
# with records of other types only gets NOERROR with no answer (NODATA), and
# every other name, under the test domain or not, gets NXDOMAIN (RCODE 3) with
# the root's SOA. No query ever leaves unbound; no DNSSEC validation. The
# built-in zones test., invalid., onion., home.arpa. and the reverse zones of
# private addresses are off; localhost. still answers 127.0.0.1 and ::1.
#
# `start` writes, under DIR:
#
#   DIR/unbound.conf       the configuration, rewritten on every start
#   DIR/root.zone          the records (SOA and NS of "." first)
#   DIR/local-zones.conf   the `local-zone:` lines
#   DIR/unbound.pid        unbound's pid
#   DIR/log/unbound.log    unbound's log: start-up, errors, one line per query
#                          and one per reply (log-queries, log-replies)
#
# and runs unbound in the foreground of its own session (setsid), on
# 127.0.0.1:PORT, UDP and TCP, answering 127.0.0.0/8 only. It returns once a
# query for the root's SOA over UDP is answered and the TCP port accepts
# connections. Several instances may run at once (distinct DIRs and ports).
# Root is not needed but to install (username "" and chroot "": unbound stays
# who started it). `install` keeps the package's service from being started
# and changes no resolver configuration (see install_without_starting_services).
set -euo pipefail

me=tools/dns-peer.sh
# shellcheck source=tools/lib/peer-common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/peer-common.sh"

unbound_bin=/usr/sbin/unbound

# unbound.conf quotes paths: refuse what would need escaping there.
check_path() {
    [[ $1 == /* ]] || die "not an absolute path: $1"
    [[ $1 != *[[:space:]\"\'\\]* ]] || die "path must not contain white space, quotes or backslashes: $1"
}

cmd_install() {
    if dpkg-query -W -f='${Status}' unbound 2>/dev/null | grep -q "ok installed" && [[ -x $unbound_bin ]]; then
        return 0 # already there: stay quiet
    fi
    install_without_starting_services unbound
    [[ -x $unbound_bin ]] || die "unbound installed, but $unbound_bin is missing"
}

# Prints the pid in DIR/unbound.pid if that process is still our unbound for
# DIR (guards against a stale pid file whose pid was reused by something else).
unbound_pid() {
    local dir=$1 pid
    [[ -f $dir/unbound.pid ]] || return 1
    pid=$(<"$dir/unbound.pid")
    [[ $pid =~ ^[0-9]+$ ]] || return 1
    tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline" | grep -qF -- "-c $dir/unbound.conf" || return 1
    echo "$pid"
}

# Asks 127.0.0.1:$1 over UDP for the root's SOA (from the zone, so this also
# tells that the zone loaded) and succeeds if the reply, within 1 s, has RCODE
# 0; then checks that TCP connections are accepted. A subshell: the
# descriptors stay in it.
dns_probe() (
    local header
    exec 3<>"/dev/udp/127.0.0.1/$1" || exit 1
    printf '\x50\x4e\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00\x00\x06\x00\x01' >&3 || exit 1
    header=$(timeout 1 head -c 4 <&3 | od -An -tx1) || exit 1
    [[ $header =~ ^\ 50\ 4e\ [89a-f][0-9a-f]\ [0-9a-f]0$ ]] || exit 1
    exec 3>&- 4<>"/dev/tcp/127.0.0.1/$1" || exit 1
)

# Probes every 0.1 s, for at most 20 s by the clock, until dns_probe succeeds
# (or unbound has exited).
wait_for_dns() {
    local dir=$1 port=$2 deadline=$((SECONDS + 20))
    while ((SECONDS < deadline)); do
        dns_probe "$port" 2>/dev/null && return 0
        gone "$(<"$dir/unbound.pid")" && { echo "$me: unbound exited" >&2; return 1; }
        sleep 0.1
    done
    echo "$me: nothing answered DNS on 127.0.0.1:$port within 20 s" >&2
    return 1
}

# Splits ZONEFILE: `local-zone:` lines go to DIR/local-zones.conf (included by
# unbound.conf), records to DIR/root.zone after the root's SOA and NS.
write_zone() {
    local dir=$1 file=$2 line n=0 owner second rest
    : >"$dir/local-zones.conf.tmp"
    cat >"$dir/root.zone.tmp" <<EOF
; Generated by $me from $file; rewritten on every start.
\$ORIGIN .
\$TTL 3600
.  IN SOA localhost. nobody.invalid. 1 3600 1200 604800 60
.  IN NS  localhost.
EOF
    while IFS= read -r line || [[ -n $line ]]; do
        n=$((n + 1))
        line=${line%$'\r'}
        line=${line#"${line%%[![:space:]]*}"} # leading white space
        line=${line%"${line##*[![:space:]]}"} # trailing white space
        [[ -n $line && $line != "#"* && $line != ";"* ]] || continue
        case $line in
        local-zone:*) printf '    %s\n' "$line" >>"$dir/local-zones.conf.tmp" ;;
        *[\(\)]* | \$*) die "$file:$n: one record a line, no parentheses or \$ directives: $line" ;;
        *)
            # A record without TTL gets 3600 (unbound would give it the TTL of
            # the record before it): the TTL is the field after the owner.
            read -r owner second rest <<<"$line"
            [[ -n $rest ]] || die "$file:$n: not a record (OWNER [TTL] [CLASS] TYPE DATA): $line"
            [[ $second =~ ^[0-9]+$ ]] || line="$owner 3600 $second $rest"
            printf '%s\n' "$line" >>"$dir/root.zone.tmp"
            ;;
        esac
    done <"$file"
    mv -f "$dir/local-zones.conf.tmp" "$dir/local-zones.conf"
    mv -f "$dir/root.zone.tmp" "$dir/root.zone"
}

write_conf() {
    local dir=$1 port=$2
    cat >"$dir/unbound.conf.tmp" <<EOF
# Generated by $me for a private test instance; rewritten on every start.
server:
    # Whoever starts it, from anywhere: no privilege drop, no chroot.
    username: ""
    chroot: ""
    directory: "$dir"
    # Our pid file is DIR/unbound.pid, written by us: none of its own.
    pidfile: ""
    # Log to stderr (DIR/log/unbound.log): no syslog, no log file of its own.
    use-syslog: no
    logfile: ""
    log-time-ascii: yes
    verbosity: 1
    log-queries: yes
    log-replies: yes

    # 127.0.0.1:$port, UDP and TCP, for loopback clients only.
    interface: 127.0.0.1
    port: $port
    do-ip4: yes
    do-ip6: no
    do-udp: yes
    do-tcp: yes
    access-control: 0.0.0.0/0 refuse
    access-control: 127.0.0.0/8 allow
    num-threads: 1
    so-reuseport: no
    outgoing-range: 16
    incoming-num-tcp: 16
    msg-cache-size: 1m
    rrset-cache-size: 1m

    # No validation, no trust anchors; the root zone is the auth-zone below,
    # so no root hints are used and no query ever leaves this process.
    module-config: "iterator"
    qname-minimisation: no
    prefetch: no
    rrset-roundrobin: no
    minimal-responses: yes
    hide-identity: yes
    hide-version: yes

    # Built-in local zones that would answer names a test may well use
    # (RFC 6761 test. and invalid., onion., home.arpa., the reverse zones of
    # private addresses) before the zone is consulted. localhost. and the
    # reverse zones of 127/8 and ::1 keep their built-in answers.
    local-zone: "test." nodefault
    local-zone: "invalid." nodefault
    local-zone: "onion." nodefault
    local-zone: "home.arpa." nodefault
    unblock-lan-zones: yes
    insecure-lan-zones: yes
    include: "$dir/local-zones.conf"

# The zone, as the root zone of the resolver's own lookups (for-upstream):
# answers come as from a recursive resolver (RA, not AA), CNAME chains are
# followed, unknown names get NXDOMAIN with the root's SOA.
auth-zone:
    name: "."
    zonefile: "$dir/root.zone"
    for-upstream: yes
    for-downstream: no
    fallback-enabled: no
EOF
    mv -f "$dir/unbound.conf.tmp" "$dir/unbound.conf"
}

cmd_start() {
    (($# == 3)) || die "usage: $me start DIR PORT ZONEFILE"
    local dir=$1 port=$2 zonefile=$3
    check_port "$port"
    [[ -x $unbound_bin ]] || die "unbound is not installed (run: $me install)"
    [[ -f $zonefile && -r $zonefile ]] || die "cannot read zone file $zonefile"
    dir=$(realpath -m "$dir")
    check_path "$dir"
    if unbound_pid "$dir" >/dev/null; then die "an instance is already running in $dir (run: $me stop $dir)"; fi
    mkdir -p "$dir/log"
    write_zone "$dir" "$zonefile"
    write_conf "$dir" "$port"
    local out
    out=$("$unbound_bin"-checkconf "$dir/unbound.conf" 2>&1) || die "bad configuration (from $zonefile?): $out"

    # -d: stay in the foreground (the session leader setsid makes). stdio to
    # the log and no other inherited descriptors: a caller waiting for our
    # output's EOF or for our exit must not wait for unbound.
    (exec_without_inherited_fds setsid "$unbound_bin" -d -c "$dir/unbound.conf" \
        </dev/null >>"$dir/log/unbound.log" 2>&1) &
    echo $! >"$dir/unbound.pid"
    if wait_for_dns "$dir" "$port" 2>>"$dir/log/unbound.log"; then return 0; fi
    {
        echo "$me: unbound in $dir did not come up; $dir/log/unbound.log:"
        cat "$dir/log/unbound.log" 2>/dev/null || true
    } >&2
    cmd_stop "$dir" >/dev/null 2>&1 || true
    exit 1
}

cmd_stop() {
    (($# == 1)) || die "usage: $me stop DIR"
    local dir=$1 pid i
    [[ -d $dir ]] || return 0
    dir=$(realpath "$dir")
    # SIGTERM, poll every 0.1 s for at most 5 s, then SIGKILL. Not `kill -0`
    # to see it gone: a zombie passes kill -0 (but has no cmdline).
    if pid=$(unbound_pid "$dir"); then
        kill "$pid" 2>/dev/null || true
        for ((i = 0; i < 50; i++)); do
            unbound_pid "$dir" >/dev/null || break
            sleep 0.1
        done
        if unbound_pid "$dir" >/dev/null; then kill -9 "$pid" 2>/dev/null || true; fi
    fi
    rm -f "$dir/unbound.pid"
}

case ${1:-} in
install) shift; (($# == 0)) || die "usage: $me install"; cmd_install ;;
start) shift; cmd_start "$@" ;;
stop) shift; cmd_stop "$@" ;;
-h | --help | help) usage ;;
*) usage >&2; exit 64 ;;
esac
