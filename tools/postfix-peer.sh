#!/usr/bin/env bash
# tools/postfix-peer.sh: a private Postfix instance on loopback, for integration
# tests of Postern's SMTP client. Nothing system-wide is configured or started.
#
# Usage:
#   tools/postfix-peer.sh install
#   tools/postfix-peer.sh start DIR SMTPD_PORT SINK_PORT CERT KEY
#   tools/postfix-peer.sh stop DIR
#   tools/postfix-peer.sh --help
#
# `start` lays out a self-contained instance under DIR and runs it:
#
#   DIR/etc/main.cf, master.cf     this instance's config_directory
#   DIR/etc/recipient_access       regexp map: tempfail@... -> 450, reject@... -> 550
#   DIR/queue/                     queue_directory (sockets, pid/master.pid, queues)
#   DIR/data/                      data_directory (master.lock, TLS PRNG state)
#   DIR/log/maillog                everything Postfix logs (maillog_file, via postlogd)
#   DIR/log/smtp-sink.log          smtp-sink's own stdout/stderr
#   DIR/sink/                      one file per message smtp-sink received
#   DIR/sink.pid                   smtp-sink's pid
#
# Mail flow: client --STARTTLS--> smtpd on 127.0.0.1:SMTPD_PORT --> queue -->
# smtp client (no TLS) --> smtp-sink on 127.0.0.1:SINK_PORT --> DIR/sink/FILE.
#
# Several instances may run at once (distinct DIRs and ports): everything a
# running Postfix owns (queue, sockets, master.pid under the queue directory,
# master.lock under the data directory, log file, listeners) is per DIR.
# The system instance stays inert: `install` answers debconf with
# "No configuration", so no /etc/postfix/main.cf exists, and Debian's
# postfix.service has ConditionPathExists=/etc/postfix/main.cf.
# `start` and `stop` need root: the Postfix master process must run as root.
set -euo pipefail

me=tools/postfix-peer.sh

usage() {
    # Print the header comment (minus the shebang) as help.
    sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"
}

die() { echo "$me: $*" >&2; exit 1; }

need_root() { [[ $(id -u) -eq 0 ]] || die "must run as root (the Postfix master runs as root)"; }

# Paths in Debian's postfix package.
postfix_bin=/usr/sbin/postfix
sink_bin=/usr/sbin/smtp-sink
master_bin=/usr/lib/postfix/sbin/master

# A main.cf value cannot hold white space, commas or `$` unescaped, and `%`
# would be expanded in smtp-sink's dump template (strftime): refuse them.
check_path() {
    [[ $1 == /* ]] || die "not an absolute path: $1"
    [[ $1 != *[[:space:],\$%]* ]] || die "path must not contain white space, ',', '\$' or '%': $1"
}

check_port() {
    if ! [[ $1 =~ ^[0-9]{1,5}$ ]] || ((10#$1 < 1 || 10#$1 > 65535)); then die "not a TCP port: $1"; fi
}

# Probes the SMTP server on 127.0.0.1:$1: greeting 220, EHLO answered with
# 250; then, when $2 is "starttls", STARTTLS answered with 220 (and the
# connection dropped before any handshake, so the log shows one "lost
# connection after STARTTLS" but no TLS session our client did not make),
# else QUIT. Exit status 0: as wanted; 1: not (yet) answering; 2: answering,
# but without TLS: smtpd with a cert or key it cannot use logs a warning,
# still lists STARTTLS in EHLO, and answers it with 454.
# A subshell: the descriptor (and any failure of exec) stays in it.
smtp_probe() (
    local line
    exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 1
    IFS= read -r -t 2 line <&3 && [[ $line == "220 "* ]] || exit 1
    printf 'EHLO postfix-peer.sh\r\n' >&3 || exit 1
    while IFS= read -r -t 2 line <&3 && [[ $line == "250-"* ]]; do :; done
    [[ $line == "250 "* ]] || exit 1
    if [[ ${2:-} == starttls ]]; then
        printf 'STARTTLS\r\n' >&3 || exit 1
        IFS= read -r -t 2 line <&3 || exit 1
        [[ $line == "220 "* ]] || exit 2
    else
        printf 'QUIT\r\n' >&3 || true
    fi
)

# Probes every 0.1 s, for at most 20 s by the clock, until smtp_probe "$@"
# succeeds.
wait_for_smtp() {
    local deadline=$((SECONDS + 20)) status
    while ((SECONDS < deadline)); do
        status=0
        smtp_probe "$@" 2>/dev/null || status=$?
        case $status in
        0) return 0 ;;
        2) echo "$me: 127.0.0.1:$1 answers but does not offer STARTTLS" >&2; return 1 ;;
        esac
        sleep 0.1
    done
    echo "$me: nothing answered SMTP on 127.0.0.1:$1 within 20 s" >&2
    return 1
}

# Succeeds while the instance's master runs: `master -t` fails exactly when
# DIR/queue/pid/master.pid is locked. (Not `postfix status`: every Postfix
# program sleeps 1 s before exiting on a fatal error, such as a missing config.)
master_running() {
    [[ -f $1/etc/main.cf && -d $1/queue ]] && ! "$master_bin" -c "$1/etc" -t >/dev/null 2>&1
}

# Prints the pid in DIR/sink.pid if that process is still our smtp-sink for DIR
# (guards against a stale pid file whose pid was reused by something else).
sink_pid() {
    local dir=$1 pid
    [[ -f $dir/sink.pid ]] || return 1
    pid=$(<"$dir/sink.pid")
    [[ $pid =~ ^[0-9]+$ ]] || return 1
    tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "-d $dir/sink/" || return 1
    echo "$pid"
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

cmd_install() {
    if dpkg-query -W -f='${Status}' postfix 2>/dev/null | grep -q "ok installed" \
        && [[ -x $postfix_bin && -x $sink_bin ]]; then
        return 0 # already there: stay quiet
    fi
    need_root
    # "No configuration": the package installs binaries only, writes no
    # /etc/postfix/main.cf, so the system instance has nothing to start.
    echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
    if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postfix >/dev/null; then
        apt-get update -qq # stale or missing package lists on a fresh machine
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postfix >/dev/null
    fi
    [[ -x $postfix_bin && -x $sink_bin ]] || die "postfix installed, but $postfix_bin or $sink_bin is missing"
}

write_main_cf() {
    local dir=$1 smtpd_port=$2 sink_port=$3 cert=$4 key=$5
    cat >"$dir/etc/main.cf" <<EOF
# Generated by $me for a private test instance; rewritten on every start.
compatibility_level = 3.6

# Per-instance state: every file a running Postfix writes lives under $dir.
# (config_directory is $dir/etc through "postfix -c"; process_id_directory is
# relative to queue_directory, so pid/master.pid is per instance too.)
queue_directory = $dir/queue
data_directory = $dir/data
mail_owner = postfix
setgid_group = postdrop
# Log to a file through the postlog service (master.cf); postlogd refuses
# files outside maillog_file_prefixes, whose default is /var and /dev/stdout.
maillog_file = $dir/log/maillog
maillog_file_prefixes = $dir/log
# Only tags the log lines; tells instances apart if logs are ever merged.
syslog_name = postfix-peer-$smtpd_port

# Identity and network: loopback IPv4 only, never local delivery.
myhostname = peer.postern.test
mydomain = postern.test
myorigin = \$myhostname
mydestination =
local_recipient_maps =
alias_maps =
alias_database =
biff = no
inet_interfaces = loopback-only
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
smtpd_peername_lookup = no

# Accept from loopback, answer tempfail@/reject@ recipients from the map first,
# relay everything else to smtp-sink.
smtpd_relay_restrictions = permit_mynetworks, reject
smtpd_recipient_restrictions = check_recipient_access regexp:$dir/etc/recipient_access, permit_mynetworks, reject
relayhost = [127.0.0.1]:$sink_port
default_transport = smtp
relay_transport = smtp
smtp_tls_security_level = none
# Postfix's own notices to postmaster (notify_classes, e.g. about a TLS
# problem) would be relayed into the sink too; the sink holds client mail only.
notify_classes =
queue_run_delay = 1s
minimal_backoff_time = 1s
maximal_backoff_time = 2s

# STARTTLS offered, TLS 1.2 or later; "TLS connection established" is logged.
smtpd_tls_security_level = may
smtpd_tls_cert_file = $cert
smtpd_tls_key_file = $key
smtpd_tls_loglevel = 1
smtpd_tls_protocols = >=TLSv1.2
smtpd_tls_mandatory_protocols = >=TLSv1.2

# Relay the client's bytes unchanged (besides smtpd's Received: header):
# no header rewriting or added Date:/Message-ID:/From: for loopback clients
# (the default, permit_inet_interfaces, matches 127.0.0.1), and no dropped
# Bcc:/Content-Length:/Resent-Bcc:/Return-Path: headers.
local_header_rewrite_clients =
message_drop_headers =
# Nor are lines over 998 bytes folded with CRLF SPACE on the way to the sink
# (a test that cares about line length checks what the client sent instead).
smtp_line_length_limit = 0
EOF
}

write_master_cf() {
    local dir=$1 smtpd_port=$2
    # No chroot anywhere (the queue directory holds no copies of /etc, /lib);
    # no pickup (nothing is submitted locally), no local delivery.
    cat >"$dir/etc/master.cf" <<EOF
# service type  private unpriv  chroot  wakeup  maxproc command + args
127.0.0.1:$smtpd_port inet n - n - - smtpd
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
EOF
}

cmd_start() {
    (($# == 5)) || die "usage: $me start DIR SMTPD_PORT SINK_PORT CERT KEY"
    local dir=$1 smtpd_port=$2 sink_port=$3 cert=$4 key=$5
    need_root
    check_port "$smtpd_port"
    check_port "$sink_port"
    [[ $smtpd_port != "$sink_port" ]] || die "SMTPD_PORT and SINK_PORT must differ"
    [[ -x $postfix_bin && -x $sink_bin ]] || die "postfix is not installed (run: $me install)"
    [[ -r $cert && -r $key ]] || die "cannot read certificate $cert or key $key"
    dir=$(realpath -m "$dir") cert=$(realpath "$cert") key=$(realpath "$key")
    check_path "$dir"
    check_path "$cert"
    check_path "$key"
    if master_running "$dir" || sink_pid "$dir" >/dev/null; then
        die "an instance is already running in $dir (run: $me stop $dir)"
    fi

    # Daemons run as mail_owner and chdir into DIR/queue: DIR must be
    # searchable by it (mktemp -d makes 0700). Other files stay root's.
    mkdir -p "$dir/etc" "$dir/log" "$dir/sink" "$dir/queue"
    chmod 755 "$dir"
    setpriv --reuid=postfix --regid=postfix --clear-groups test -x "$dir/etc" \
        || die "user postfix cannot reach $dir (a parent directory is not searchable)"
    # smtp-sink drops to user postfix (-u) before it writes dump files.
    chown postfix: "$dir/sink"

    write_main_cf "$dir" "$smtpd_port" "$sink_port" "$cert" "$key"
    write_master_cf "$dir" "$smtpd_port"
    cat >"$dir/etc/recipient_access" <<'EOF'
# check_recipient_access map (regexp: built in, unlike pcre: which needs
# postfix-pcre). The lookup key is the whole recipient address.
/^tempfail@/    450 4.2.0 try again later
/^reject@/      550 5.1.1 no such user
EOF
    # Postfix treats a config file modified in the last ~2 s as "hot" (being
    # edited) and every program re-reads it every 0.3 s until it cools down,
    # which would add ~2 s to this start. Backdate the files we just wrote.
    touch -d "@$(($(date +%s) - 60))" "$dir"/etc/*

    # The sink first, so the relay has somewhere to go. setsid: out of the
    # caller's process group; stdio to a file and no other inherited
    # descriptors: a caller waiting for our output's EOF or for our exit must
    # not wait for the sink. -u: as root it must drop privileges. Dump file
    # names are <UTC time>.<random hex>, created at MAIL and closed at ".".
    (export TZ=UTC && exec_without_inherited_fds setsid "$sink_bin" -4 -u postfix -h sink.postern.test \
        -d "$dir/sink/%Y%m%dT%H%M%S." "127.0.0.1:$sink_port" 64 </dev/null >>"$dir/log/smtp-sink.log" 2>&1) &
    echo $! >"$dir/sink.pid"

    # `postfix -c DIR/etc start` runs postfix-script for this config only: it
    # creates DIR/queue/* and DIR/data with the owners and modes Postfix wants
    # (post-install create-missing), checks them, and starts master -w, which
    # returns once master is initialised. Nothing in /etc/postfix is touched.
    local ok=1
    "$postfix_bin" -c "$dir/etc" start </dev/null >"$dir/log/postfix-start.out" 2>&1 || ok=0
    if ((ok)) && wait_for_smtp "$smtpd_port" starttls 2>>"$dir/log/postfix-start.out" \
        && wait_for_smtp "$sink_port" 2>>"$dir/log/postfix-start.out"; then
        return 0
    fi
    {
        echo "$me: the instance in $dir did not come up; postfix start said:"
        cat "$dir/log/postfix-start.out"
        echo "--- $dir/log/maillog:"
        cat "$dir/log/maillog" 2>/dev/null || true
        echo "--- $dir/log/smtp-sink.log:"
        cat "$dir/log/smtp-sink.log" 2>/dev/null || true
    } >&2
    cmd_stop "$dir" >/dev/null 2>&1 || true
    exit 1
}

cmd_stop() {
    (($# == 1)) || die "usage: $me stop DIR"
    local dir=$1 pid i
    need_root
    [[ -d $dir ]] || return 0
    dir=$(realpath "$dir")
    # `postfix abort` sends master SIGTERM, as `postfix stop` does, but
    # without stop's 1 s sleeps: we poll every 0.1 s (at most 10 s), then
    # SIGKILL master's process group as postfix-script would.
    if master_running "$dir"; then
        pid=$(awk '{ print $1; exit }' "$dir/queue/pid/master.pid")
        "$postfix_bin" -c "$dir/etc" abort >/dev/null 2>&1 || true
        for ((i = 0; i < 100; i++)); do
            master_running "$dir" || break
            sleep 0.1
        done
        if master_running "$dir" && [[ $pid =~ ^[0-9]+$ ]]; then kill -9 -- "-$pid" 2>/dev/null || true; fi
    fi
    # Not `kill -0` to see it gone: the sink's parent is init, which may be
    # slow to reap it, and a zombie passes kill -0 (but has no cmdline).
    if pid=$(sink_pid "$dir"); then
        kill "$pid" 2>/dev/null || true
        for ((i = 0; i < 50; i++)); do
            sink_pid "$dir" >/dev/null || break
            sleep 0.1
        done
        if sink_pid "$dir" >/dev/null; then kill -9 "$pid" 2>/dev/null || true; fi
    fi
    rm -f "$dir/sink.pid"
}

case ${1:-} in
install) shift; (($# == 0)) || die "usage: $me install"; cmd_install ;;
start) shift; cmd_start "$@" ;;
stop) shift; cmd_stop "$@" ;;
-h | --help | help) usage ;;
*) usage >&2; exit 64 ;;
esac
