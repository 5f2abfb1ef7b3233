# tools/lib/peer-common.sh: what the tools/*-peer.sh scripts share, sourced by
# each after it sets `me` (its name for messages). Helpers only: it runs nothing.
# shellcheck shell=bash
# shellcheck disable=SC2154  # `me` is set by the sourcing script

usage() {
    # Print the header comment (minus the shebang) as help.
    sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"
}

die() { echo "$me: $*" >&2; exit 1; }

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

# Prints the pid in file $1 if that process is still running and its command
# line contains $2 (guards against a stale pid file whose pid was reused).
daemon_pid() {
    local file=$1 marker=$2 pid
    [[ -f $file ]] || return 1
    pid=$(<"$file")
    [[ $pid =~ ^[0-9]+$ ]] || return 1
    tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline" | grep -qF -- "$marker" || return 1
    echo "$pid"
}

# Stops the daemon daemon_pid "$1" "$2" names: SIGTERM, poll every 0.1 s for
# at most 5 s, then SIGKILL; removes the pid file. Not `kill -0` to see it
# gone: a zombie passes kill -0 (but has no cmdline).
stop_daemon() {
    local file=$1 marker=$2 pid i
    if pid=$(daemon_pid "$file" "$marker"); then
        kill "$pid" 2>/dev/null || true
        for ((i = 0; i < 50; i++)); do
            daemon_pid "$file" "$marker" >/dev/null || break
            sleep 0.1
        done
        if daemon_pid "$file" "$marker" >/dev/null; then kill -9 "$pid" 2>/dev/null || true; fi
    fi
    rm -f "$file"
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

# After a failed start: prints "$me: $2 in DIR did not come up", then each log
# file $3... under DIR/log (headed by its name); stops what the start began
# (cmd_stop DIR) and exits 1.
start_failed() {
    local dir=$1 what=$2 log
    shift 2
    {
        echo "$me: $what in $dir did not come up"
        for log in "$@"; do
            echo "--- $dir/log/$log:"
            cat "$dir/log/$log" 2>/dev/null || true
        done
    } >&2
    cmd_stop "$dir" >/dev/null 2>&1 || true
    exit 1
}

# The command line of a peer script with the commands install, start and stop
# (functions cmd_install, cmd_start, cmd_stop) and --help.
peer_main() {
    case ${1:-} in
    install) shift; (($# == 0)) || die "usage: $me install"; cmd_install ;;
    start) shift; cmd_start "$@" ;;
    stop) shift; cmd_stop "$@" ;;
    -h | --help | help) usage ;;
    *) usage >&2; exit 64 ;;
    esac
}
