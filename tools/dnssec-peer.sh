#!/usr/bin/env bash
# tools/dnssec-peer.sh: DNSSEC on loopback for integration tests of DANE and
# of the resolver's AD bit: a private NSD serves zones signed at start with
# fresh keys (ldns-signzone), and a private unbound validates them with the
# root's key as its only trust anchor. Answers carry a real AD bit; an
# unsigned zone is insecure (no AD); a zone with a wrong DS or expired
# signatures is bogus (SERVFAIL). Nothing system-wide is configured or started.
#
# Usage:
#   tools/dnssec-peer.sh install
#   tools/dnssec-peer.sh start DIR PORT AUTH_PORT ZONEFILE
#   tools/dnssec-peer.sh stop DIR
#   tools/dnssec-peer.sh --help
#
# ZONEFILE holds one resource record a line, as for tools/dns-peer.sh:
# absolute OWNER, optional TTL (default 3600) and class, TYPE, DATA, e.g.
#
#   example.test. MX 10 mx.example.test.
#   mx.example.test. A 127.0.0.2
#   mx.example.test. AAAA ::1
#   alias.test. CNAME mx.example.test.
#   example.test. TXT "v=spf1 -all"
#   _25._tcp.mx.example.test. TLSA 3 1 1 0123...ef
#
# Empty lines and lines starting with `#` or `;` are skipped. Records go to
# the root zone, ".", signed with NSEC, unless a line
#
#   zone: NAME KIND
#
# makes NAME a zone of its own, delegated from the zone above it (the root,
# or another such zone: zones nest) and holding every record at or below
# NAME that no deeper zone takes. KIND says how it is signed, and so what a
# validating resolver makes of it (RFC 4035 4.3):
#
#   signed     signed, NSEC; the parent has its DS: secure (AD)
#   nsec3      signed, NSEC3 (RFC 9276: no salt, no extra iterations, no
#              opt-out); the parent has its DS: secure (AD)
#   unsigned   not signed; the parent proves there is no DS: insecure (no AD,
#              answers as they are)
#   wrong-ds   signed, but the parent's DS names another key: bogus (SERVFAIL)
#   expired    signed with signatures that expired 10 days ago, the parent
#              has the right DS: bogus (SERVFAIL)
#
# `zone: . nsec3` signs the root with NSEC3 instead. A zone cut can sit
# anywhere, so one record can be bogus while its neighbours are secure: with
# `zone: _25._tcp.mx.example.test. wrong-ds`, mx.example.test's A record
# (in the root) validates, its TLSA record does not. A name that does not
# exist, or has no records of the asked type, gets NXDOMAIN or NODATA with
# the signed zone's NSEC or NSEC3 proof: an authenticated denial (AD). Each
# zone's apex has SOA and NS records (`localhost.`; minimum TTL 60).
#
# A line starting with `local-zone:` is an unbound directive, copied as it
# is, answering a subtree before any zone is asked, e.g. `local-zone:
# "broken.test." always_refuse` (REFUSED).
#
# `start` writes, under DIR:
#
#   DIR/zones/NAME.zone    each zone as given (NAME "root" for "."), with its
#                          delegations (NS, DS) appended; NAME.signed signed
#   DIR/keys/              the zones' keys (ECDSA P-256, one KSK signing all)
#   DIR/root.ds            the root's DS record: unbound's trust anchor
#   DIR/nsd.conf, nsd.pid  NSD's configuration and pid; DIR/nsd/ its state
#   DIR/unbound.conf       unbound's configuration (a stub zone per zone)
#   DIR/local-zones.conf   the `local-zone:` lines
#   DIR/unbound.pid        unbound's pid
#   DIR/log/nsd.log        NSD's log (zone loads, errors)
#   DIR/log/unbound.log    unbound's log: one line per query and per reply,
#                          and why validation failed ("validation failure
#                          <name TYPE IN>: ... from 127.0.0.1")
#
# and runs NSD on 127.0.0.1:AUTH_PORT (the authoritative server, UDP and
# TCP, every zone) and unbound on 127.0.0.1:PORT (the validating resolver
# for loopback clients, UDP and TCP; it asks only NSD, through one stub zone
# per zone, since delegations cannot carry a port), each in the foreground
# of its own session (setsid). It returns once NSD answers and unbound
# answers the root's SOA with AD set. Rewritten on every start, keys too.
# Several instances may run at once (distinct DIRs and ports). Root is not
# needed but to install (both daemons stay who started them). `install`
# installs nsd, ldnsutils and unbound, keeps their services from being
# started and changes no resolver configuration.
set -euo pipefail

me=tools/dnssec-peer.sh
# shellcheck source=tools/lib/peer-common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/peer-common.sh"
# shellcheck source=tools/lib/unbound.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/unbound.sh"

nsd_bin=/usr/sbin/nsd
packages=(nsd ldnsutils unbound)
programs=("$nsd_bin" /usr/bin/ldns-signzone /usr/bin/ldns-keygen /usr/bin/ldns-key2ds "$unbound_bin")

cmd_install() {
    local package missing=0 program
    for package in "${packages[@]}"; do
        dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "ok installed" || missing=1
    done
    for program in "${programs[@]}"; do [[ -x $program ]] || missing=1; done
    ((missing)) || return 0 # already there: stay quiet
    install_without_starting_services "${packages[@]}"
    for program in "${programs[@]}"; do [[ -x $program ]] || die "${packages[*]} installed, but $program is missing"; done
}

# Zones: names (lower case, with the trailing dot; "." first) and kinds.
zone_names=(.)
declare -A zone_kind=([.]=signed)

# The file name of zone $1 under DIR/zones: "root" for ".".
zone_file() { if [[ $1 == . ]]; then echo root; else echo "${1%.}"; fi; }

# The zone that holds owner $1 (lower case, absolute): the deepest zone at
# or above it.
zone_of() {
    local owner=$1 zone best=.
    for zone in "${zone_names[@]}"; do
        [[ $zone != . && ($owner == "$zone" || $owner == *."$zone") ]] || continue
        ((${#zone} > ${#best})) && best=$zone
    done
    echo "$best"
}

# Reads ZONEFILE: `zone:` lines first (a record's zone depends on all of
# them), then the records into DIR/zones/*.zone and `local-zone:` lines into
# DIR/local-zones.conf.
read_zonefile() {
    local dir=$1 file=$2 n line name kind owner zone
    zone_lines "$file" >"$dir/zone.lines" || exit 1
    while IFS=$'\t' read -r n line; do
        [[ $line == zone:* ]] || continue
        read -r _ name kind <<<"$line"
        name=${name,,}
        [[ $name == . || $name =~ ^([a-z0-9_-]+\.)+$ ]] || die "$file:$n: not an absolute domain name: $name"
        case $kind in
        signed | nsec3) ;;
        unsigned | wrong-ds | expired) [[ $name != . ]] || die "$file:$n: the root, the trust anchor, is signed or nsec3" ;;
        *) die "$file:$n: zone KIND is signed, nsec3, unsigned, wrong-ds or expired: $line" ;;
        esac
        [[ $name == . || -z ${zone_kind[$name]:-} ]] || die "$file:$n: zone $name given twice"
        [[ $name == . ]] || zone_names+=("$name")
        zone_kind[$name]=$kind
    done <"$dir/zone.lines"

    for zone in "${zone_names[@]}"; do
        cat >"$dir/zones/$(zone_file "$zone").zone" <<EOF
; Generated by $me from $file; rewritten on every start.
$zone 3600 IN SOA localhost. nobody.invalid. 1 3600 1200 604800 60
$zone 3600 IN NS localhost.
EOF
    done
    : >"$dir/local-zones.conf"
    while IFS=$'\t' read -r n line; do
        case $line in
        zone:*) ;;
        local-zone:*) printf '    %s\n' "$line" >>"$dir/local-zones.conf" ;;
        *)
            read -r owner _ <<<"$line"
            [[ $owner == *. ]] || die "$file:$n: the owner must be absolute (end with a dot): $line"
            zone=$(zone_of "${owner,,}")
            printf '%s\n' "$line" >>"$dir/zones/$(zone_file "$zone").zone"
            ;;
        esac
    done <"$dir/zone.lines"
}

# Signs zone $1 as its kind says into DIR/zones/NAME.signed, and appends its
# delegation (NS, and DS unless unsigned) to its parent's zone file; for the
# root, writes DIR/root.ds instead. Children must be signed first (their DS
# goes into the parent before the parent is signed).
sign_zone() {
    local dir=$1 zone=$2 kind=${zone_kind[$2]} base key ds options=() parent
    base=$dir/zones/$(zone_file "$zone")
    if [[ $kind == unsigned ]]; then
        cp "$base.zone" "$base.signed"
    else
        key=$(cd "$dir/keys" && ldns-keygen -a ECDSAP256SHA256 -k "$zone") || die "ldns-keygen for $zone failed"
        case $kind in
        nsec3) options=(-n -t 0) ;;
        expired) options=(-i "$(date -u -d '-40 days' +%Y%m%d%H%M%S)" -e "$(date -u -d '-10 days' +%Y%m%d%H%M%S)") ;;
        esac
        ldns-signzone "${options[@]}" -o "$zone" -f "$base.signed" "$base.zone" "$dir/keys/$key" \
            || die "ldns-signzone for $zone failed"
        if [[ $kind == wrong-ds ]]; then
            # A key the zone never uses: its DS leads nowhere.
            key=$(cd "$dir/keys" && ldns-keygen -a ECDSAP256SHA256 -k "$zone") || die "ldns-keygen for $zone failed"
        fi
        ds=$(ldns-key2ds -n -2 "$dir/keys/$key.key") || die "ldns-key2ds for $zone failed"
    fi
    if [[ $zone == . ]]; then
        printf '%s\n' "$ds" >"$dir/root.ds"
        return
    fi
    # The parent: the deepest zone strictly above this one.
    parent=$(zone_of "${zone#*.}")
    {
        printf '%s 3600 IN NS localhost.\n' "$zone"
        [[ -z ${ds:-} ]] || printf '%s\n' "$ds"
    } >>"$dir/zones/$(zone_file "$parent").zone"
}

write_nsd_conf() {
    local dir=$1 port=$2 zone
    {
        cat <<EOF
# Generated by $me for a private test instance; rewritten on every start.
server:
    # Whoever starts it, from anywhere: no privilege drop, no chroot.
    username: ""
    chroot: ""
    ip-address: 127.0.0.1
    port: $port
    do-ip4: yes
    do-ip6: no
    reuseport: no
    server-count: 1
    # No database, no zone transfers, no remote control: the zones are
    # signed files, read once at start.
    database: ""
    zonesdir: "$dir/zones"
    zonelistfile: "$dir/nsd/zone.list"
    xfrdfile: "$dir/nsd/xfrd.state"
    xfrdir: "$dir/nsd"
    pidfile: "$dir/nsd/nsd.pid"
    logfile: "$dir/log/nsd.log"
    verbosity: 2
    hide-version: yes
    hide-identity: yes
    refuse-any: yes
    round-robin: no
remote-control:
    control-enable: no
EOF
        for zone in "${zone_names[@]}"; do
            printf 'zone:\n    name: "%s"\n    zonefile: "%s.signed"\n' "$zone" "$(zone_file "$zone")"
        done
    } >"$dir/nsd.conf"
}

write_unbound_conf() {
    local dir=$1 port=$2 auth_port=$3 zone
    {
        echo "# Generated by $me for a private test instance; rewritten on every start."
        write_unbound_server_conf "$dir" "$port" "validator iterator"
        cat <<EOF

    # Validation with the root's key as the only trust anchor; why an answer
    # is bogus goes to the log, and to the client as an extended DNS error
    # (RFC 8914). NSD on loopback is the only server ever asked.
    trust-anchor-file: "$dir/root.ds"
    val-log-level: 2
    ede: yes
    do-not-query-localhost: no
EOF
        # Delegations name no port, so each zone is a stub zone at NSD.
        for zone in "${zone_names[@]}"; do
            printf '\nstub-zone:\n    name: "%s"\n    stub-addr: 127.0.0.1@%s\n    stub-prime: no\n' "$zone" "$auth_port"
        done
    } >"$dir/unbound.conf"
}

nsd_stop() { stop_daemon "$1/nsd.pid" "-c $1/nsd.conf"; }

cmd_start() {
    (($# == 4)) || die "usage: $me start DIR PORT AUTH_PORT ZONEFILE"
    local dir=$1 port=$2 auth_port=$3 zonefile=$4 zone out
    check_port "$port"
    check_port "$auth_port"
    [[ $port != "$auth_port" ]] || die "the ports must differ: $port $auth_port"
    for out in "${programs[@]}"; do [[ -x $out ]] || die "$out is missing (run: $me install)"; done
    [[ -f $zonefile && -r $zonefile ]] || die "cannot read zone file $zonefile"
    dir=$(realpath -m "$dir")
    check_path "$dir"
    if daemon_pid "$dir/unbound.pid" "-c $dir/unbound.conf" >/dev/null || daemon_pid "$dir/nsd.pid" "-c $dir/nsd.conf" >/dev/null; then
        die "an instance is already running in $dir (run: $me stop $dir)"
    fi
    rm -rf "$dir/zones" "$dir/keys" "$dir/nsd"
    mkdir -p "$dir/log" "$dir/zones" "$dir/keys" "$dir/nsd"

    read_zonefile "$dir" "$zonefile"
    # Deepest first: a child's DS goes into its parent before that is signed.
    while IFS= read -r zone; do
        sign_zone "$dir" "$zone"
    done < <(for zone in "${zone_names[@]}"; do
        printf '%d %s\n' "$(tr -cd . <<<"$zone" | wc -c)" "$zone"
    done | sort -rn | cut -d' ' -f2)
    write_nsd_conf "$dir" "$auth_port"
    write_unbound_conf "$dir" "$port" "$auth_port"
    out=$(nsd-checkconf "$dir/nsd.conf" 2>&1) || die "bad NSD configuration: $out"
    out=$("$unbound_bin"-checkconf "$dir/unbound.conf" 2>&1) || die "bad unbound configuration (from $zonefile?): $out"

    # -d: NSD stays in the foreground (of the session setsid makes); stdio to
    # its log and no other inherited descriptors, as launch_unbound does.
    (exec_without_inherited_fds setsid "$nsd_bin" -d -c "$dir/nsd.conf" \
        </dev/null >>"$dir/log/nsd.log" 2>&1) &
    echo $! >"$dir/nsd.pid"
    if wait_for_dns "$dir/nsd.pid" nsd "$auth_port" 2>>"$dir/log/nsd.log"; then
        launch_unbound "$dir"
        if wait_for_dns "$dir/unbound.pid" unbound "$port" ad 2>>"$dir/log/unbound.log"; then return 0; fi
    fi
    start_failed "$dir" "the instance" nsd.log unbound.log
}

cmd_stop() {
    (($# == 1)) || die "usage: $me stop DIR"
    local dir=$1
    [[ -d $dir ]] || return 0
    dir=$(realpath "$dir")
    stop_unbound "$dir"
    nsd_stop "$dir"
}

peer_main "$@"
