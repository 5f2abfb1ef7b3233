#!/usr/bin/env bash
# tools/socks-peer.sh: a private Dante SOCKS5 server on loopback, for
# integration tests of Postern's socks5 transport. Nothing system-wide is
# configured or started.
#
# Usage:
#   tools/socks-peer.sh install
#   tools/socks-peer.sh start DIR PORT
#   tools/socks-peer.sh stop DIR
#   tools/socks-peer.sh --help
#
# `start` writes, under DIR:
#
#   DIR/danted.conf       the configuration, rewritten on every start
#   DIR/danted.pid        the pid of danted's main process
#   DIR/log/danted.log    danted's log (logoutput), and its stdout and stderr
#
# and runs danted in the foreground of its own session (setsid), listening on
# 127.0.0.1:PORT for clients on 127.0.0.0/8. It offers one method, "no
# authentication required" (X'00'), and allows only CONNECT (no BIND, no UDP
# ASSOCIATE) and only to 127.0.0.0/8 and ::1 (outgoing from 127.0.0.1 or ::1);
# any other request is answered "connection not allowed by ruleset" (X'02').
# A destination given as a domain name (ATYP 3) is resolved by danted with the
# system's resolver, and allowed if it resolves into those networks (e.g.
# "localhost"). `start` returns once the port answers the SOCKS5 greeting.
#
# What the log shows, besides start-up: one line as a session opens ("[")
# and one as it closes ("]"); CPORT is the client's port, DEST the target:
#   info: pass(1): tcp/connect [: 127.0.0.1.CPORT 127.0.0.1.PORT -> 127.0.0.1.SPORT DEST.DPORT
#   info: pass(1): tcp/connect ]: ... -> DEST.DPORT -> N: remote peer closed.  Session duration: 0s
#   info: block(3): tcp/connect ]: 127.0.0.1.CPORT 127.0.0.1.PORT -> 0.0.0.0.0 192.0.2.1.25
# (pass(2) for ::1), and the start-up probe's one line:
#   info: block(1): tcp/accept ]: 127.0.0.1.CPORT 127.0.0.1.PORT: error after reading 3 bytes ...
#
# Several instances may run at once (distinct DIRs and ports). Root is not
# needed but to install; as root, danted does its work as user nobody.
# `install` keeps the package's service from being started (see
# install_without_starting_services).
set -euo pipefail

me=tools/socks-peer.sh

usage() {
    # Print the header comment (minus the shebang) as help.
    sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"
}

die() { echo "$me: $*" >&2; exit 1; }

danted_bin=/usr/sbin/danted

# danted.conf takes a file name unquoted: refuse what would need quoting.
check_path() {
    [[ $1 == /* ]] || die "not an absolute path: $1"
    [[ $1 != *[[:space:]\"\'\\\#\{\}:]* ]] || die "path must not contain white space, quotes, backslashes, '#', '{', '}' or ':': $1"
}

check_port() {
    if ! [[ $1 =~ ^[0-9]{1,5}$ ]] || ((10#$1 < 1 || 10#$1 > 65535)); then die "not a TCP port: $1"; fi
}

# Installs the Debian packages "$@" without starting any service they bring:
# their maintainer scripts start services through invoke-rc.d (sysvinit) or
# deb-systemd-invoke (systemd), and both first ask /usr/sbin/policy-rc.d,
# which answers 101, "forbidden", while apt-get runs. Any policy-rc.d already
# there is set aside meanwhile and put back (also after an interrupted run).
# On a systemd machine the units are still enabled, so they would start at the
# next boot; nothing runs now. Serialised by a lock, as two scripts' installs
# would otherwise swap each other's policy-rc.d.
policy=/usr/sbin/policy-rc.d
policy_saved=/usr/sbin/policy-rc.d.postern-peer-saved
policy_marker="# temporary: written by a tools/*-peer.sh install, removed after it"

restore_policy() {
    if grep -qsF -- "$policy_marker" "$policy"; then rm -f "$policy"; fi
    if [[ -e $policy_saved && ! -e $policy ]]; then mv "$policy_saved" "$policy"; fi
}

install_without_starting_services() {
    [[ $(id -u) -eq 0 ]] || die "missing Debian packages: $* (run $me install as root)"
    (
        flock -w 900 9 || die "another install holds /run/postern-peer-install.lock"
        restore_policy # an earlier run was interrupted
        [[ ! -e $policy_saved ]] || die "both $policy and $policy_saved exist: keep one"
        trap restore_policy EXIT
        trap 'exit 130' INT TERM HUP
        if [[ -e $policy ]]; then mv "$policy" "$policy_saved"; fi
        printf '#!/bin/sh\n%s\nexit 101\n' "$policy_marker" >"$policy.tmp"
        chmod 755 "$policy.tmp"
        mv -f "$policy.tmp" "$policy"
        if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null; then
            apt-get update -qq # stale or missing package lists on a fresh machine
            DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
        fi
    ) 9>/run/postern-peer-install.lock
}

cmd_install() {
    if dpkg-query -W -f='${Status}' dante-server 2>/dev/null | grep -q "ok installed" && [[ -x $danted_bin ]]; then
        return 0 # already there: stay quiet
    fi
    install_without_starting_services dante-server
    [[ -x $danted_bin ]] || die "dante-server installed, but $danted_bin is missing"
}

# Prints the pid in DIR/danted.pid if that process is still our danted for DIR
# (guards against a stale pid file whose pid was reused by something else).
danted_pid() {
    local dir=$1 pid
    [[ -f $dir/danted.pid ]] || return 1
    pid=$(<"$dir/danted.pid")
    [[ $pid =~ ^[0-9]+$ ]] || return 1
    tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline" | grep -qF -- "-f $dir/danted.conf" || return 1
    echo "$pid"
}

# Succeeds while process $1 exists and is not a zombie (whose cmdline is
# empty). For a daemon we just launched: its pid file names it from the fork
# on, but its cmdline is ours until it has exec'd, so *_pid would not see it.
# Whether process $1 has ended (no such process, or a zombie): exact even
# while it execs, when the kernel briefly shows an empty command line.
gone() {
    local stat
    stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 0
    stat=${stat##*) }
    [[ ${stat:0:1} == Z ]]
}

alive() {
    local cmdline
    cmdline=$(tr -d '\0' 2>/dev/null <"/proc/$1/cmdline") && [[ -n $cmdline ]]
}

# Runs "$@" in place of this (sub)shell with only descriptors 0-2 open. A
# long-running daemon must not keep its launcher's other descriptors: Swift
# Foundation's Process on Linux hands its child a socket and waits for every
# holder to close it, so an inherited copy makes waitUntilExit() hang.
exec_without_inherited_fds() {
    local fd
    for fd in /proc/"$BASHPID"/fd/*; do
        fd=${fd##*/}
        if ((fd > 2)); then { exec {fd}>&-; } 2>/dev/null || true; fi
    done
    exec "$@"
}

# Sends the SOCKS5 greeting (version 5, one method: 0, none) to 127.0.0.1:$1
# and succeeds if the reply, within 2 s, is version 5, method 0. A subshell:
# the descriptor stays in it.
socks_probe() (
    local reply
    exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 1
    printf '\x05\x01\x00' >&3 || exit 1
    reply=$(timeout 2 head -c 2 <&3 | od -An -tx1) || exit 1
    [[ $reply == " 05 00" ]] || exit 1
)

# Probes every 0.1 s, for at most 20 s by the clock, until socks_probe
# succeeds (or danted has exited).
wait_for_socks() {
    local dir=$1 port=$2 deadline=$((SECONDS + 20))
    while ((SECONDS < deadline)); do
        socks_probe "$port" 2>/dev/null && return 0
        gone "$(<"$dir/danted.pid")" && { echo "$me: danted exited" >&2; return 1; }
        sleep 0.1
    done
    echo "$me: nothing answered SOCKS5 on 127.0.0.1:$port within 20 s" >&2
    return 1
}

write_conf() {
    local dir=$1 port=$2 privileged unprivileged
    # As root, it works as nobody; otherwise as whoever runs it (unset, the
    # unprivileged user would be "uid 0", and danted warns about it).
    if [[ $(id -u) -eq 0 ]]; then
        privileged=root unprivileged=nobody
    else
        privileged=$(id -un) unprivileged=$(id -un)
    fi
    cat >"$dir/danted.conf.tmp" <<EOF
# Generated by $me for a private test instance; rewritten on every start.
logoutput: $dir/log/danted.log
user.privileged: $privileged
user.unprivileged: $unprivileged
user.libwrap: $unprivileged

internal: 127.0.0.1 port = $port
# Outgoing connections from loopback; "route": the kernel picks which one
# (127.0.0.1 for 127.0.0.0/8, ::1 for ::1).
external: 127.0.0.1
external: ::1
external.rotation: route

# RFC 1928 method X'00' only.
clientmethod: none
socksmethod: none
timeout.negotiate: 10
timeout.connect: 10

# Clients: loopback only.
client pass {
    from: 127.0.0.0/8 to: 127.0.0.1/32
    log: error
}
client block {
    from: 0.0.0.0/0 to: 0.0.0.0/0
    log: connect error
}

# Requests: CONNECT to loopback only.
socks pass {
    from: 127.0.0.0/8 to: 127.0.0.0/8
    command: connect
    log: connect disconnect error
}
socks pass {
    from: 127.0.0.0/8 to: ::1/128
    command: connect
    log: connect disconnect error
}
socks block {
    from: 0.0.0.0/0 to: 0.0.0.0/0
    log: connect error
}
socks block {
    from: 0.0.0.0/0 to: ::/0
    log: connect error
}
EOF
    mv -f "$dir/danted.conf.tmp" "$dir/danted.conf"
}

cmd_start() {
    (($# == 2)) || die "usage: $me start DIR PORT"
    local dir=$1 port=$2
    check_port "$port"
    [[ -x $danted_bin ]] || die "dante-server is not installed (run: $me install)"
    dir=$(realpath -m "$dir")
    check_path "$dir"
    if danted_pid "$dir" >/dev/null; then die "an instance is already running in $dir (run: $me stop $dir)"; fi
    mkdir -p "$dir/log"
    write_conf "$dir" "$port"
    local out
    out=$("$danted_bin" -V -f "$dir/danted.conf" 2>&1) || die "bad configuration: $out"

    # No -D: stay in the foreground (of the session setsid makes). stdio to
    # the log and no other inherited descriptors: a caller waiting for our
    # output's EOF or for our exit must not wait for danted. -p: its own pid
    # file is ours too (the same pid: nothing forks in between).
    (exec_without_inherited_fds setsid "$danted_bin" -f "$dir/danted.conf" -p "$dir/danted.pid" -N 1 \
        </dev/null >>"$dir/log/danted.log" 2>&1) &
    echo $! >"$dir/danted.pid"
    if wait_for_socks "$dir" "$port" 2>>"$dir/log/danted.log"; then return 0; fi
    {
        echo "$me: danted in $dir did not come up; $dir/log/danted.log:"
        cat "$dir/log/danted.log" 2>/dev/null || true
    } >&2
    cmd_stop "$dir" >/dev/null 2>&1 || true
    exit 1
}

cmd_stop() {
    (($# == 1)) || die "usage: $me stop DIR"
    local dir=$1 pid i
    [[ -d $dir ]] || return 0
    dir=$(realpath "$dir")
    # SIGTERM to the main process (it ends its children), poll every 0.1 s
    # for at most 5 s, then SIGKILL its process group (setsid made it the
    # leader). Not `kill -0` to see it gone: a zombie passes kill -0 (but has
    # no cmdline).
    if pid=$(danted_pid "$dir"); then
        kill "$pid" 2>/dev/null || true
        for ((i = 0; i < 50; i++)); do
            danted_pid "$dir" >/dev/null || break
            sleep 0.1
        done
        if danted_pid "$dir" >/dev/null; then kill -9 -- "-$pid" 2>/dev/null || true; fi
    fi
    rm -f "$dir/danted.pid"
}

case ${1:-} in
install) shift; (($# == 0)) || die "usage: $me install"; cmd_install ;;
start) shift; cmd_start "$@" ;;
stop) shift; cmd_stop "$@" ;;
-h | --help | help) usage ;;
*) usage >&2; exit 64 ;;
esac
