# tools/lib/unbound.sh: the private unbound that tools/dns-peer.sh and
# tools/dnssec-peer.sh run, sourced by each after peer-common.sh. Helpers
# only: it runs nothing.
# shellcheck shell=bash
# shellcheck disable=SC2154  # `me` is set by the sourcing script

unbound_bin=/usr/sbin/unbound

# unbound.conf and nsd.conf quote paths: refuse what would need escaping there.
check_path() {
    [[ $1 == /* ]] || die "not an absolute path: $1"
    [[ $1 != *[[:space:]\"\'\\]* ]] || die "path must not contain white space, quotes or backslashes: $1"
}

# Asks 127.0.0.1:$1 over UDP for the root's SOA and checks the reply (within
# 1 s), then that TCP connections are accepted. With $2 = "ad", the query
# sets AD (RFC 6840 5.7) and the reply must have it: the root validated.
# Exit status 0: as wanted; 1: no reply (yet); 2: a reply, but an error RCODE
# or, with "ad", no AD: the server is up and wrong, so waiting longer is no
# use. A subshell: the descriptors stay in it.
dns_probe() (
    local header flags='\x01\x00'
    [[ ${2:-} != ad ]] || flags='\x01\x20'
    exec 3<>"/dev/udp/127.0.0.1/$1" || exit 1
    # shellcheck disable=SC2059 # the flags are escapes for printf to expand
    printf "\x50\x4e$flags\x00\x01\x00\x00\x00\x00\x00\x00\x00\x00\x06\x00\x01" >&3 || exit 1
    header=$(timeout 1 head -c 4 <&3 | od -An -tx1) || exit 1
    [[ $header =~ ^\ 50\ 4e\ [89a-f][0-9a-f]\ ([0-9a-f])([0-9a-f])$ ]] || exit 1
    [[ ${BASH_REMATCH[2]} == 0 ]] || exit 2
    if [[ ${2:-} == ad ]] && ((!(0x${BASH_REMATCH[1]} & 2))); then exit 2; fi
    exec 3>&- 4<>"/dev/tcp/127.0.0.1/$1" || exit 1
)

# Probes every 0.1 s, for at most 20 s by the clock, until dns_probe "$3"
# "$4" succeeds, or the daemon whose pid is in file $1 ($2: its name) has
# exited, or the probe says it answers wrongly.
wait_for_dns() {
    local pidfile=$1 name=$2 port=$3 want=${4:-} deadline=$((SECONDS + 20)) status
    while ((SECONDS < deadline)); do
        status=0
        dns_probe "$port" "$want" 2>/dev/null || status=$?
        case $status in
        0) return 0 ;;
        2)
            echo "$me: $name on 127.0.0.1:$port answers the root's SOA with an error${want:+ or without AD}" >&2
            return 1
            ;;
        esac
        gone "$(<"$pidfile")" && { echo "$me: $name exited" >&2; return 1; }
        sleep 0.1
    done
    echo "$me: nothing answered DNS on 127.0.0.1:$port within 20 s" >&2
    return 1
}

# The server: section both peers share, for an unbound in directory $1 on
# 127.0.0.1:$2; $3 is its module-config. The caller appends the rest.
write_unbound_server_conf() {
    local dir=$1 port=$2 modules=$3
    cat <<EOF
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

    module-config: "$modules"
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
EOF
}

# Runs unbound with DIR/unbound.conf in the foreground of its own session
# (setsid), stdio to DIR/log/unbound.log and no other inherited descriptors
# (a caller waiting for our output's EOF or for our exit must not wait for
# unbound), and writes DIR/unbound.pid.
launch_unbound() {
    local dir=$1
    (exec_without_inherited_fds setsid "$unbound_bin" -d -c "$dir/unbound.conf" \
        </dev/null >>"$dir/log/unbound.log" 2>&1) &
    echo $! >"$dir/unbound.pid"
}

stop_unbound() {
    stop_daemon "$1/unbound.pid" "-c $1/unbound.conf"
}

# Prints the lines of zone file $1 that matter, each as "N<TAB>LINE" (N: its
# line number): without CR, surrounding white space, empty lines and comments
# (`#` or `;`). Lines of unbound directives (`WORD:`) stay as they are; a
# record gets TTL 3600 when it has none (unbound, like a master file, would
# give it the TTL of the record before it). Dies on a line that is not one
# record (parentheses, `$` directives, fewer than three fields).
zone_lines() {
    local file=$1 line n=0 owner second rest
    while IFS= read -r line || [[ -n $line ]]; do
        n=$((n + 1))
        line=${line%$'\r'}
        line=${line#"${line%%[![:space:]]*}"} # leading white space
        line=${line%"${line##*[![:space:]]}"} # trailing white space
        [[ -n $line && $line != "#"* && $line != ";"* ]] || continue
        if [[ $line =~ ^[a-z-]+:\  ]]; then
            printf '%d\t%s\n' "$n" "$line"
            continue
        fi
        case $line in
        *[\(\)]* | \$*) die "$file:$n: one record a line, no parentheses or \$ directives: $line" ;;
        *)
            read -r owner second rest <<<"$line"
            [[ -n $rest ]] || die "$file:$n: not a record (OWNER [TTL] [CLASS] TYPE DATA): $line"
            [[ $second =~ ^[0-9]+$ ]] || line="$owner 3600 $second $rest"
            ;;
        esac
        printf '%d\t%s\n' "$n" "$line"
    done <"$file"
}
