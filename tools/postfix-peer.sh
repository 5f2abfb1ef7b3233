#!/usr/bin/env bash
# tools/postfix-peer.sh: a private Postfix instance on loopback, for integration
# tests of Postern's SMTP client. Nothing system-wide is configured or started.
#
# Usage:
#   tools/postfix-peer.sh install
#   tools/postfix-peer.sh start DIR SMTPD_PORT SINK_PORT CERT KEY
#          [--sasl USER:PASSWORD SUBMISSION_PORT SUBMISSIONS_PORT]
#          [--listener IP:PORT CERT KEY | --listener IP:PORT none]...
#   tools/postfix-peer.sh stop DIR
#   tools/postfix-peer.sh configure DIR SMTPD_PORT RELAY_PORT [--concurrency N] [--defer] [--tls]
#   tools/postfix-peer.sh configure-tls-sink DIR SMTPD_PORT SINK_PORT CERT KEY
#   tools/postfix-peer.sh --help
#
# `install` installs postfix, dovecot-core (for --sasl) and openssl (the
# smtps probe below, and the benchmark's throwaway certificate), starting no
# system service. `start` lays out a self-contained instance under DIR and
# runs it:
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
# With --sasl, two more smtpd listeners require authentication, checked by a
# private Dovecot (auth only: no IMAP/POP3/other listeners) against the one
# account USER:PASSWORD (USER of letters, digits and ._@-; PASSWORD without
# ':' or control characters), and relay to the same smtp-sink:
#
#   127.0.0.1:SUBMISSION_PORT    STARTTLS required (smtpd_tls_security_level
#                                = encrypt), AUTH offered after STARTTLS only
#   127.0.0.1:SUBMISSIONS_PORT   implicit TLS (smtpd_tls_wrappermode), AUTH
#
# On the submission port, MAIL before STARTTLS gets "530 5.7.0 Must issue a
# STARTTLS command first". On both, MAIL before a successful AUTH gets "530
# 5.7.0 <sender>: Sender address rejected: Authentication required", a wrong
# user or password "535 5.7.8 Error: authentication failed: ..." (at once: no
# failure delay or penalty), and an unauthenticated RCPT would be refused too;
# tempfail@ and reject@ answer as above. Mechanisms: PLAIN, LOGIN, CRAM-MD5,
# SCRAM-SHA-1, SCRAM-SHA-256. Dovecot's files:
#
#   DIR/etc/dovecot.conf           its configuration (and DIR/etc/dovecot-passwd)
#   DIR/dovecot/                   base_dir: sockets (auth-postfix, which
#                                  smtpd_sasl_path names), master.pid
#   DIR/dovecot-state/             state_dir
#   DIR/dovecot.pid                the Dovecot master's pid
#   DIR/log/dovecot.log            its log: failed logins ("Password mismatch",
#                                  "unknown user"), and at the first login one
#                                  "Error: net_connect_unix(anvil-auth-penalty)
#                                  failed", the price of no auth penalty
#
# Postfix logs "sasl_method=PLAIN, sasl_username=USER" for each login, and its
# Received: header then says "with ESMTPSA". The start-up probes show as one
# "lost connection after STARTTLS" on SMTPD_PORT and SUBMISSION_PORT, and one
# TLS connection, EHLO and QUIT on SUBMISSIONS_PORT.
#
# Each --listener adds one more smtpd, on IP:PORT (IP in 127.0.0.0/8, so
# several listeners may share a port, as MX hosts share port 25), relaying
# to the same sink: with CERT and KEY it offers STARTTLS with them (CERT the
# chain PEM: leaf first, then intermediates), with `none` EHLO lists no
# STARTTLS at all. Its greeting, EHLO and Received: header name it
# IP-PORT.peer.postern.test (dots made dashes: 127-0-0-2-2525.peer...), and
# its log lines are tagged postfix-peer-SMTPD_PORT/127-0-0-2-2525/smtpd. With
# a DNS peer answering MX and A records with those addresses, and the client
# told to use PORT for SMTP, each listener is a distinct MX host with its own
# certificate, for DANE, MTA-STS and STARTTLS tests. The start-up probe shows
# as one "lost connection after STARTTLS" on each (an EHLO and QUIT without).
# CERT and KEY must be readable by user postfix (smtpd reads them).
#
# `configure` is for the benchmark (tools/bench/): it writes DIR/etc/main.cf
# and master.cf for an instance that starts nothing of its own (no smtp-sink,
# no Dovecot, no TLS) and leaves starting, reloading and stopping to its
# caller (`postfix -c DIR/etc start|reload`, or `stop DIR` above), as those
# are what the benchmark times. The instance is the test peer's, with the same
# state layout, identity and loopback-only network, minus what the tests need
# and a benchmark must not have (the recipient map, 1 s queue runs and
# backoffs, STARTTLS, header rewriting settings), plus:
#
#   smtpd on 127.0.0.1:SMTPD_PORT, no TLS (the benchmark fills queues with
#                                  smtp-source through it)
#   pickup                         mail submitted with sendmail (MAIL_CONFIG=
#                                  DIR/etc) lands in DIR/queue/maildrop/
#   relayhost [127.0.0.1]:RELAY_PORT   the caller's smtp-sink, or a closed port
#   --concurrency N                at most N deliveries at once: smtp's process
#                                  limit and the destination concurrency limits
#                                  (default 10)
#   --defer                        defer_transports = smtp relay: mail is
#                                  accepted and deferred, not delivered, until a
#                                  `configure` without --defer and a reload
#   --tls                          smtp_tls_security_level = may: STARTTLS to
#                                  the relay when it offers it, no certificate
#                                  checks; smtp_tls_connection_reuse = yes
#                                  (through the tlsproxy service), so that
#                                  Postfix's connection cache keeps TLS
#                                  connections too, as Postern's does (its
#                                  default, no, would make each delivery a new
#                                  connection and handshake)
#
# It may be run again while the instance runs (a reload applies it). The first
# time (no DIR/queue/maildrop yet) it also runs `postfix check`, which creates
# the queue with Postfix's owners and modes, so sendmail works before any start.
#
# `configure-tls-sink` is the benchmark's receiving end for a drain over TLS:
# an instance of the same layout whose smtpd on 127.0.0.1:SMTPD_PORT offers
# STARTTLS with CERT and KEY (logging "... TLS connection established from"
# for every session) and hands every transaction, as it arrives, to the
# caller's smtp-sink on 127.0.0.1:SINK_PORT (smtpd_proxy_filter: a
# before-queue proxy, so nothing is written to this instance's queue and the
# sink answers for it). The caller starts and stops it as with `configure`.
#
# Several instances may run at once (distinct DIRs and ports): everything a
# running Postfix owns (queue, sockets, master.pid under the queue directory,
# master.lock under the data directory, log file, listeners) is per DIR.
# The system instance stays inert: `install` answers debconf with
# "No configuration", so no /etc/postfix/main.cf exists, and Debian's
# postfix.service has ConditionPathExists=/etc/postfix/main.cf; while it
# installs, /usr/sbin/policy-rc.d forbids starting services (the system's
# Dovecot: see install_without_starting_services).
# `start` and `stop` need root: the Postfix master process must run as root.
set -euo pipefail

me=tools/postfix-peer.sh
# shellcheck source=tools/lib/peer-common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/peer-common.sh"

need_root() { [[ $(id -u) -eq 0 ]] || die "must run as root (the Postfix master runs as root)"; }

# Paths in Debian's postfix package.
postfix_bin=/usr/sbin/postfix
sink_bin=/usr/sbin/smtp-sink
master_bin=/usr/lib/postfix/sbin/master
dovecot_bin=/usr/sbin/dovecot

# A main.cf value cannot hold white space, commas or `$` unescaped, and `%`
# would be expanded in smtp-sink's dump template (strftime): refuse them.
check_path() {
    [[ $1 == /* ]] || die "not an absolute path: $1"
    [[ $1 != *[[:space:],\$%]* ]] || die "path must not contain white space, ',', '\$' or '%': $1"
}

# Probes the SMTP server on 127.0.0.1:$1 ($1 may also be IP:PORT): greeting
# 220, EHLO answered with 250; then, when $2 is "starttls", STARTTLS
# answered with 220 (and the
# connection dropped before any handshake, so the log shows one "lost
# connection after STARTTLS" but no TLS session our client did not make),
# else QUIT. Exit status 0: as wanted; 1: not (yet) answering; 2: answering,
# but without TLS: smtpd with a cert or key it cannot use logs a warning,
# still lists STARTTLS in EHLO, and answers it with 454. When $2 is
# "plain", 2 means EHLO lists STARTTLS, which it must not.
# When $2 is "smtps-auth", the same over implicit TLS (openssl s_client),
# where 2 means EHLO lists no AUTH (smtpd got no mechanisms from Dovecot).
# A subshell: the descriptor (and any failure of exec) stays in it.
smtp_probe() (
    local line starttls=0 address=$1
    [[ $address == *:* ]] || address=127.0.0.1:$address
    if [[ ${2:-} == smtps-auth ]]; then smtps_probe "$address"; exit; fi
    exec 3<>"/dev/tcp/${address%:*}/${address##*:}" || exit 1
    IFS= read -r -t 2 line <&3 && [[ $line == "220 "* ]] || exit 1
    printf 'EHLO postfix-peer.sh\r\n' >&3 || exit 1
    while IFS= read -r -t 2 line <&3; do
        [[ $line != 250[-\ ]STARTTLS* ]] || starttls=1
        [[ $line == "250-"* ]] || break
    done
    [[ $line == "250 "* ]] || exit 1
    if [[ ${2:-} == plain ]] && ((starttls)); then exit 2; fi
    if [[ ${2:-} == starttls ]]; then
        printf 'STARTTLS\r\n' >&3 || exit 1
        IFS= read -r -t 2 line <&3 || exit 1
        [[ $line == "220 "* ]] || exit 2
    else
        printf 'QUIT\r\n' >&3 || true
    fi
)

# smtp_probe's "smtps-auth" case, in its subshell: openssl s_client, a
# coprocess, does the TLS; the subshell's EXIT trap kills it.
smtps_probe() {
    local line auth=0
    coproc tls { exec openssl s_client -quiet -connect "$1" 2>/dev/null; }
    # shellcheck disable=SC2154 # tls_PID: set by coproc
    trap 'kill "$tls_PID" 2>/dev/null || true' EXIT
    IFS= read -r -t 5 line <&"${tls[0]}" && [[ $line == "220 "* ]] || return 1
    printf 'EHLO postfix-peer.sh\r\n' >&"${tls[1]}" || return 1
    while IFS= read -r -t 2 line <&"${tls[0]}"; do
        [[ $line != 250[-\ ]AUTH\ * ]] || auth=1
        [[ $line == "250-"* ]] || break
    done
    [[ $line == "250 "* ]] || return 1
    printf 'QUIT\r\n' >&"${tls[1]}" || true
    IFS= read -r -t 2 line <&"${tls[0]}" || true # 221: no "lost connection" in the log
    ((auth)) || return 2
}

# Probes every 0.1 s, for at most 20 s by the clock, until smtp_probe "$@"
# succeeds.
wait_for_smtp() {
    local deadline=$((SECONDS + 20)) status address=$1
    [[ $address == *:* ]] || address=127.0.0.1:$address
    while ((SECONDS < deadline)); do
        status=0
        smtp_probe "$@" 2>/dev/null || status=$?
        case $status in
        0) return 0 ;;
        2)
            if [[ ${2:-} == smtps-auth ]]; then
                echo "$me: $address answers but does not offer AUTH (see dovecot.log)" >&2
            elif [[ ${2:-} == plain ]]; then
                echo "$me: $address answers and offers STARTTLS, which it must not" >&2
            else
                echo "$me: $address answers but does not offer STARTTLS" >&2
            fi
            return 1
            ;;
        esac
        sleep 0.1
    done
    echo "$me: nothing answered SMTP on $address within 20 s" >&2
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
    tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline" | grep -qF -- "-d $dir/sink/" || return 1
    echo "$pid"
}

cmd_install() {
    local package missing=()
    for package in postfix dovecot-core openssl; do
        dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "ok installed" || missing+=("$package")
    done
    if ((${#missing[@]} == 0)) && [[ -x $postfix_bin && -x $sink_bin && -x $dovecot_bin ]] \
        && command -v openssl >/dev/null; then
        return 0 # already there: stay quiet
    fi
    need_root
    # "No configuration": the package installs binaries only, writes no
    # /etc/postfix/main.cf, so the system instance has nothing to start.
    echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
    install_without_starting_services postfix dovecot-core openssl
    [[ -x $postfix_bin && -x $sink_bin ]] || die "postfix installed, but $postfix_bin or $sink_bin is missing"
    [[ -x $dovecot_bin ]] || die "dovecot-core installed, but $dovecot_bin is missing"
}

# Prints the pid in DIR/dovecot.pid if that process is still our Dovecot
# master for DIR (as sink_pid).
dovecot_pid() {
    local dir=$1 pid
    [[ -f $dir/dovecot.pid ]] || return 1
    pid=$(<"$dir/dovecot.pid")
    [[ $pid =~ ^[0-9]+$ ]] || return 1
    tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline" | grep -qF -- "-c $dir/etc/dovecot.conf" || return 1
    echo "$pid"
}

# Polls every 0.1 s, for at most 20 s by the clock, until Dovecot's master
# listens on the auth socket for smtpd (it binds every listener before it
# starts any service; the auth process starts on the first connection).
wait_for_dovecot() {
    local dir=$1 deadline=$((SECONDS + 20))
    while ((SECONDS < deadline)); do
        [[ -S $dir/dovecot/auth-postfix ]] && return 0
        gone "$(<"$dir/dovecot.pid")" && { echo "$me: dovecot exited" >&2; return 1; }
        sleep 0.1
    done
    echo "$me: no $dir/dovecot/auth-postfix within 20 s" >&2
    return 1
}

write_dovecot_conf() {
    local dir=$1 user=$2 password=$3
    # passwd-file: user:{scheme}password:uid:gid:gecos:home:shell:extra. A
    # plain-text password lets Dovecot do the challenge-response mechanisms.
    # Read by the auth process, which runs as user dovecot.
    install -m 640 -g dovecot /dev/null "$dir/etc/dovecot-passwd"
    printf '%s:{PLAIN}%s::::::\n' "$user" "$password" >"$dir/etc/dovecot-passwd"
    cat >"$dir/etc/dovecot.conf" <<EOF
# Generated by $me for a private test instance; rewritten on every start.
# Authentication only, for Postfix smtpd (smtpd_sasl_type = dovecot): no
# protocols, so no IMAP, POP3, LMTP or submission listeners, no mail storage.
protocols =
base_dir = $dir/dovecot
state_dir = $dir/dovecot-state
log_path = $dir/log/dovecot.log
ssl = no

# TLS is smtpd's business: it offers AUTH only inside TLS.
disable_plaintext_auth = no
auth_mechanisms = plain login cram-md5 scram-sha-1 scram-sha-256
auth_verbose = yes
# Tests try wrong passwords: no delay after a failure (default 2 s), and no
# auth penalty (anvil delays every further attempt from the client's IP up to
# 15 s, beyond smtpd's patience, so smtpd would answer 454, not 535).
auth_failure_delay = 0
service anvil {
  unix_listener anvil-auth-penalty {
    mode = 0
  }
}

passdb {
  driver = passwd-file
  args = scheme=PLAIN username_format=%u $dir/etc/dovecot-passwd
}
# Not used for SMTP AUTH, but Dovecot wants one.
userdb {
  driver = static
  args = uid=nobody gid=nogroup home=/nonexistent
}

service auth {
  # smtpd_sasl_path: smtpd runs as mail_owner (postfix), without chroot.
  unix_listener auth-postfix {
    mode = 0660
    user = postfix
    group = postfix
  }
}
EOF
}

# The part of main.cf every instance shares, test peer or benchmark: where its
# state lives, its identity, loopback only. $3: what the file is for.
write_main_cf_head() {
    local dir=$1 smtpd_port=$2 purpose=$3
    cat >"$dir/etc/main.cf" <<EOF
# Generated by $me for $purpose.
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
EOF
}

write_main_cf() {
    local dir=$1 smtpd_port=$2 sink_port=$3 cert=$4 key=$5
    write_main_cf_head "$dir" "$smtpd_port" "a private test instance; rewritten on every start"
    cat >>"$dir/etc/main.cf" <<EOF

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

# $3: the smtp and relay services' process limit ("-": the default, 100);
# $4 "pickup": with the pickup service, for mail submitted through sendmail
# (postdrop into maildrop/), which the test peer never gets.
write_master_cf() {
    local dir=$1 smtpd_port=$2 maxproc=${3:--} pickup=${4:-}
    # No chroot anywhere (the queue directory holds no copies of /etc, /lib);
    # no local delivery; no pickup unless asked for.
    {
        echo "# service type  private unpriv  chroot  wakeup  maxproc command + args"
        echo "127.0.0.1:$smtpd_port inet n - n - - smtpd"
        [[ $pickup != pickup ]] || echo "pickup    unix  n       -       n       60      1       pickup"
    } >"$dir/etc/master.cf"
    cat >>"$dir/etc/master.cf" <<EOF
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
smtp      unix  -       -       n       -       $maxproc       smtp
relay     unix  -       -       n       -       $maxproc       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
tlsproxy  unix  -       -       n       -       0       tlsproxy
postlog   unix-dgram n  -       n       -       1       postlogd
EOF
}

# With --sasl: what main.cf and master.cf get in addition.
append_sasl_main_cf() {
    local dir=$1
    cat >>"$dir/etc/main.cf" <<EOF

# --sasl: AUTH through the private Dovecot, on the submission listeners only
# (master.cf turns smtpd_sasl_auth_enable on there). smtpd opens the socket
# by its absolute path: no chroot.
smtpd_sasl_type = dovecot
smtpd_sasl_path = $dir/dovecot/auth-postfix
smtpd_sasl_auth_enable = no
smtpd_sasl_security_options = noanonymous
smtpd_sasl_tls_security_options = noanonymous
# Used by the submission listeners (master.cf): MAIL before AUTH gets 530
# (smtpd_delay_reject = no there, so at MAIL), RCPT from an unauthenticated
# client would be refused too; tempfail@/reject@ still answer from the map.
peer_submission_sender_restrictions = permit_sasl_authenticated,
    check_sender_access static:{530 5.7.0 Authentication required}
peer_submission_relay_restrictions = permit_sasl_authenticated, reject
peer_submission_recipient_restrictions =
    check_recipient_access regexp:$dir/etc/recipient_access,
    permit_sasl_authenticated, reject
EOF
}

append_sasl_master_cf() {
    local dir=$1 smtpd_port=$2 submission_port=$3 submissions_port=$4 service port
    for service in submission submissions; do
        if [[ $service == submission ]]; then
            port=$submission_port
            printf '%s\n' "127.0.0.1:$port inet n - n - - smtpd" \
                "  -o smtpd_tls_security_level=encrypt"
        else
            port=$submissions_port
            printf '%s\n' "127.0.0.1:$port inet n - n - - smtpd" \
                "  -o smtpd_tls_wrappermode=yes"
        fi
        printf '%s\n' "  -o syslog_name=postfix-peer-$smtpd_port/$service" \
            "  -o smtpd_tls_auth_only=yes" \
            "  -o smtpd_sasl_auth_enable=yes" \
            "  -o smtpd_delay_reject=no" \
            "  -o smtpd_client_restrictions=" \
            "  -o smtpd_helo_restrictions=" \
            "  -o smtpd_sender_restrictions=\$peer_submission_sender_restrictions" \
            "  -o smtpd_relay_restrictions=\$peer_submission_relay_restrictions" \
            "  -o smtpd_recipient_restrictions=\$peer_submission_recipient_restrictions"
    done >>"$dir/etc/master.cf"
}

# With --listener IP:PORT CERT KEY (or none): one more smtpd in master.cf,
# on IP:PORT, offering STARTTLS with CERT and KEY, or not at all.
append_listener_master_cf() {
    local dir=$1 smtpd_port=$2 address=$3 cert=$4 key=$5 name
    name=${address%:*}
    name=${name//./-}-${address##*:}
    {
        printf '%s\n' "$address inet n - n - - smtpd" \
            "  -o syslog_name=postfix-peer-$smtpd_port/$name" \
            "  -o myhostname=$name.peer.postern.test"
        if [[ $cert == none ]]; then
            echo "  -o smtpd_tls_security_level=none"
        else
            printf '%s\n' "  -o smtpd_tls_cert_file=$cert" "  -o smtpd_tls_key_file=$key"
        fi
    } >>"$dir/etc/master.cf"
}

# Waits for each listener "IP:PORT CERT KEY" in "$@": STARTTLS answered, or
# with CERT "none", EHLO without STARTTLS.
wait_for_listeners() {
    local listener
    for listener in "$@"; do
        read -r -a listener <<<"$listener"
        if [[ ${listener[1]} == none ]]; then
            wait_for_smtp "${listener[0]}" plain || return 1
        else
            wait_for_smtp "${listener[0]}" starttls || return 1
        fi
    done
}

cmd_start() {
    local usage="usage: $me start DIR SMTPD_PORT SINK_PORT CERT KEY [--sasl USER:PASSWORD SUBMISSION_PORT SUBMISSIONS_PORT]"
    usage+=" [--listener IP:PORT CERT KEY | --listener IP:PORT none]..."
    (($# >= 5)) || die "$usage"
    local dir=$1 smtpd_port=$2 sink_port=$3 cert=$4 key=$5 sasl='' account=''
    local submission_port='' submissions_port='' user='' password='' addresses listeners=() listener
    shift 5
    while (($#)); do
        case $1 in
        --sasl)
            [[ $# -ge 4 && -z $sasl ]] || die "$usage"
            sasl=--sasl account=$2 submission_port=$3 submissions_port=$4
            shift 4
            ;;
        --listener)
            (($# >= 3)) || die "$usage"
            [[ $2 =~ ^127(\.(25[0-5]|2[0-4][0-9]|1?[0-9]?[0-9])){3}:([0-9]+)$ ]] || die "--listener wants a 127.x.y.z:PORT: $2"
            check_port "${BASH_REMATCH[3]}"
            if [[ $3 == none ]]; then
                listeners+=("$2 none none")
                shift 3
            else
                (($# >= 4)) || die "$usage"
                [[ -r $3 && -r $4 ]] || die "cannot read certificate $3 or key $4"
                listeners+=("$2 $(realpath "$3") $(realpath "$4")")
                shift 4
            fi
            ;;
        *) die "$usage" ;;
        esac
    done
    need_root
    check_port "$smtpd_port"
    check_port "$sink_port"
    addresses="127.0.0.1:$smtpd_port 127.0.0.1:$sink_port"
    for listener in "${listeners[@]}"; do
        read -r -a listener <<<"$listener"
        addresses+=" ${listener[0]}"
        [[ ${listener[1]} == none ]] || { check_path "${listener[1]}"; check_path "${listener[2]}"; }
    done
    if [[ -n $sasl ]]; then
        user=${account%%:*} password=${account#*:}
        [[ $account == *:* && $user =~ ^[A-Za-z0-9._@-]+$ ]] \
            || die "--sasl wants USER:PASSWORD, USER of letters, digits and ._@- only: $account"
        [[ -n $password && $password != *[:[:cntrl:]]* ]] \
            || die "--sasl PASSWORD must be non-empty, without ':' or control characters"
        check_port "$submission_port"
        check_port "$submissions_port"
        addresses+=" 127.0.0.1:$submission_port 127.0.0.1:$submissions_port"
        [[ -x $dovecot_bin ]] || die "dovecot-core is not installed (run: $me install)"
        getent passwd dovecot >/dev/null && getent passwd dovenull >/dev/null \
            || die "users dovecot and dovenull are missing (dovecot-core's postinst makes them; run: $me install)"
    fi
    [[ $(tr ' ' '\n' <<<"$addresses" | sort -u | wc -l) -eq $(wc -w <<<"$addresses") ]] \
        || die "the addresses must differ: $addresses"
    [[ -x $postfix_bin && -x $sink_bin ]] || die "postfix is not installed (run: $me install)"
    [[ -r $cert && -r $key ]] || die "cannot read certificate $cert or key $key"
    dir=$(realpath -m "$dir") cert=$(realpath "$cert") key=$(realpath "$key")
    check_path "$dir"
    check_path "$cert"
    check_path "$key"
    if master_running "$dir" || sink_pid "$dir" >/dev/null || dovecot_pid "$dir" >/dev/null; then
        die "an instance is already running in $dir (run: $me stop $dir)"
    fi
    # Unix sockets have a path limit of 107 bytes; Dovecot's longest in its
    # base_dir is replication-notify-fifo.
    if [[ -n $sasl ]] && ((${#dir} > 107 - 32)); then
        die "DIR is too long for Dovecot's sockets (at most 75 bytes): $dir"
    fi
    [[ -z $sasl || $dir != *[\"\'#{}]* ]] || die "with --sasl, DIR must not contain quotes, '#', '{' or '}': $dir"

    # Daemons run as mail_owner and chdir into DIR/queue: DIR must be
    # searchable by it (mktemp -d makes 0700). Other files stay root's.
    mkdir -p "$dir/etc" "$dir/log" "$dir/sink" "$dir/queue"
    chmod 755 "$dir"
    setpriv --reuid=postfix --regid=postfix --clear-groups test -x "$dir/etc" \
        || die "user postfix cannot reach $dir (a parent directory is not searchable)"
    if [[ -n $sasl ]]; then
        setpriv --reuid=dovecot --regid=dovecot --clear-groups test -x "$dir/etc" \
            || die "user dovecot cannot reach $dir (a parent directory is not searchable)"
    fi
    # smtp-sink drops to user postfix (-u) before it writes dump files.
    chown postfix: "$dir/sink"

    write_main_cf "$dir" "$smtpd_port" "$sink_port" "$cert" "$key"
    write_master_cf "$dir" "$smtpd_port"
    rm -f "$dir/etc/dovecot.conf" "$dir/etc/dovecot-passwd" # from an earlier start with --sasl
    if [[ -n $sasl ]]; then
        append_sasl_main_cf "$dir"
        append_sasl_master_cf "$dir" "$smtpd_port" "$submission_port" "$submissions_port"
        write_dovecot_conf "$dir" "$user" "$password"
    fi
    for listener in "${listeners[@]}"; do
        # shellcheck disable=SC2086 # three words, none with white space (check_path)
        append_listener_master_cf "$dir" "$smtpd_port" $listener
    done
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

    # Dovecot before Postfix: smtpd asks it for the mechanisms to list in
    # EHLO. -F: in the foreground (of its own session), like the sink.
    local ok=1
    : >"$dir/log/postfix-start.out"
    if [[ -n $sasl ]]; then
        (exec_without_inherited_fds setsid "$dovecot_bin" -F -c "$dir/etc/dovecot.conf" \
            </dev/null >>"$dir/log/dovecot.log" 2>&1) &
        echo $! >"$dir/dovecot.pid"
        wait_for_dovecot "$dir" 2>>"$dir/log/postfix-start.out" || ok=0
    fi

    # `postfix -c DIR/etc start` runs postfix-script for this config only: it
    # creates DIR/queue/* and DIR/data with the owners and modes Postfix wants
    # (post-install create-missing), checks them, and starts master -w, which
    # returns once master is initialised. Nothing in /etc/postfix is touched.
    ((ok)) && { "$postfix_bin" -c "$dir/etc" start </dev/null >>"$dir/log/postfix-start.out" 2>&1 || ok=0; }
    if ((ok)) && wait_for_smtp "$smtpd_port" starttls 2>>"$dir/log/postfix-start.out" \
        && wait_for_smtp "$sink_port" 2>>"$dir/log/postfix-start.out" \
        && { [[ -z $sasl ]] || { wait_for_smtp "$submission_port" starttls \
            && wait_for_smtp "$submissions_port" smtps-auth; } 2>>"$dir/log/postfix-start.out"; } \
        && wait_for_listeners "${listeners[@]}" 2>>"$dir/log/postfix-start.out"; then
        return 0
    fi
    {
        echo "$me: the instance in $dir did not come up; postfix start said:"
        cat "$dir/log/postfix-start.out"
        echo "--- $dir/log/maillog:"
        cat "$dir/log/maillog" 2>/dev/null || true
        echo "--- $dir/log/smtp-sink.log:"
        cat "$dir/log/smtp-sink.log" 2>/dev/null || true
        if [[ -n $sasl ]]; then
            echo "--- $dir/log/dovecot.log:"
            cat "$dir/log/dovecot.log" 2>/dev/null || true
        fi
    } >&2
    cmd_stop "$dir" >/dev/null 2>&1 || true
    exit 1
}

# The benchmark's main.cf: the shared head, then relaying to RELAY_PORT.
write_bench_main_cf() {
    local dir=$1 smtpd_port=$2 relay_port=$3 concurrency=$4 defer=$5 tls=$6 smtp_tls=none tls_reuse=no
    if ((tls)); then smtp_tls=may tls_reuse=yes; fi
    write_main_cf_head "$dir" "$smtpd_port" "a benchmark instance (tools/bench); rewritten on every configure"
    cat >>"$dir/etc/main.cf" <<EOF
local_transport = error:local delivery is disabled
append_dot_mydomain = no

# Accept from loopback, relay everything to the caller's sink. No TLS either
# way (but STARTTLS towards the relay with --tls), no notices to postmaster;
# Postfix's default queue run and backoff times (the test peer's 1 s would
# keep a deferred queue churning).
smtpd_relay_restrictions = permit_mynetworks, reject
smtpd_recipient_restrictions = permit_mynetworks, reject
relayhost = [127.0.0.1]:$relay_port
smtp_tls_security_level = $smtp_tls
smtp_tls_connection_reuse = $tls_reuse
smtpd_tls_security_level = none
notify_classes =
default_destination_concurrency_limit = $concurrency
smtp_destination_concurrency_limit = $concurrency
EOF
    if ((defer)); then
        echo "defer_transports = smtp relay" >>"$dir/etc/main.cf"
    fi
}

cmd_configure() {
    local usage="usage: $me configure DIR SMTPD_PORT RELAY_PORT [--concurrency N] [--defer] [--tls]"
    (($# >= 3)) || die "$usage"
    local dir=$1 smtpd_port=$2 relay_port=$3 concurrency=10 defer=0 tls=0
    shift 3
    while (($#)); do
        case $1 in
        --concurrency) (($# >= 2)) || die "$usage"; concurrency=$2; shift 2 ;;
        --defer) defer=1; shift ;;
        --tls) tls=1; shift ;;
        *) die "$usage" ;;
        esac
    done
    [[ $concurrency =~ ^[1-9][0-9]{0,3}$ ]] || die "--concurrency wants a number from 1 to 9999: $concurrency"
    need_root
    check_port "$smtpd_port"
    check_port "$relay_port"
    [[ $smtpd_port != "$relay_port" ]] || die "the ports must differ: $smtpd_port $relay_port"
    [[ -x $postfix_bin ]] || die "postfix is not installed (run: $me install)"
    dir=$(realpath -m "$dir")
    check_path "$dir"
    mkdir -p "$dir/etc" "$dir/log" "$dir/queue"
    chmod 755 "$dir"
    setpriv --reuid=postfix --regid=postfix --clear-groups test -x "$dir/etc" \
        || die "user postfix cannot reach $dir (a parent directory is not searchable)"
    write_bench_main_cf "$dir" "$smtpd_port" "$relay_port" "$concurrency" "$defer" "$tls"
    write_master_cf "$dir" "$smtpd_port" "$concurrency" pickup
    touch -d "@$(($(date +%s) - 60))" "$dir"/etc/* # not "hot": see cmd_start
    if [[ ! -d $dir/queue/maildrop ]]; then
        "$postfix_bin" -c "$dir/etc" check </dev/null >"$dir/log/postfix-check.out" 2>&1 \
            || die "postfix check failed: $(cat "$dir/log/postfix-check.out")"
    fi
}

# The TLS sink's main.cf: the shared head, STARTTLS offered, every
# transaction proxied to SINK_PORT before anything is queued.
write_tls_sink_main_cf() {
    local dir=$1 smtpd_port=$2 sink_port=$3 cert=$4 key=$5
    write_main_cf_head "$dir" "$smtpd_port" \
        "a benchmark's TLS sink (tools/bench); rewritten on every configure-tls-sink"
    cat >>"$dir/etc/main.cf" <<EOF
append_dot_mydomain = no

# Accept from loopback and pass each transaction, while the client sends it,
# to smtp-sink (smtpd_proxy_filter without speed_adjust: streamed, not
# spooled first); smtp-sink's answer to the end of DATA is smtpd's. Nothing
# is queued here, so this instance costs every sender the same, and little.
# Should anything be queued all the same, it is thrown away.
smtpd_relay_restrictions = permit_mynetworks, reject
smtpd_recipient_restrictions = permit_mynetworks, reject
smtpd_proxy_filter = 127.0.0.1:$sink_port
default_transport = discard
relay_transport = discard
local_transport = discard
notify_classes =

# STARTTLS offered (not required); TLS settings otherwise Postfix's
# defaults. One "... TLS connection established from ..." line per session.
smtpd_tls_security_level = may
smtpd_tls_cert_file = $cert
smtpd_tls_key_file = $key
smtpd_tls_loglevel = 1
smtp_tls_security_level = none
EOF
}

cmd_configure_tls_sink() {
    local usage="usage: $me configure-tls-sink DIR SMTPD_PORT SINK_PORT CERT KEY"
    (($# == 5)) || die "$usage"
    local dir=$1 smtpd_port=$2 sink_port=$3 cert=$4 key=$5
    need_root
    check_port "$smtpd_port"
    check_port "$sink_port"
    [[ $smtpd_port != "$sink_port" ]] || die "the ports must differ: $smtpd_port $sink_port"
    [[ -x $postfix_bin ]] || die "postfix is not installed (run: $me install)"
    [[ -r $cert && -r $key ]] || die "cannot read certificate $cert or key $key"
    dir=$(realpath -m "$dir") cert=$(realpath "$cert") key=$(realpath "$key")
    check_path "$dir"
    check_path "$cert"
    check_path "$key"
    mkdir -p "$dir/etc" "$dir/log" "$dir/queue"
    chmod 755 "$dir"
    setpriv --reuid=postfix --regid=postfix --clear-groups test -x "$dir/etc" \
        || die "user postfix cannot reach $dir (a parent directory is not searchable)"
    write_tls_sink_main_cf "$dir" "$smtpd_port" "$sink_port" "$cert" "$key"
    write_master_cf "$dir" "$smtpd_port"
    touch -d "@$(($(date +%s) - 60))" "$dir"/etc/* # not "hot": see cmd_start
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
    # Dovecot's master ends its children on SIGTERM; then its process group
    # (setsid made it the leader) gets SIGKILL if it is not gone in 10 s.
    if pid=$(dovecot_pid "$dir"); then
        kill "$pid" 2>/dev/null || true
        for ((i = 0; i < 100; i++)); do
            dovecot_pid "$dir" >/dev/null || break
            sleep 0.1
        done
        if dovecot_pid "$dir" >/dev/null; then kill -9 -- "-$pid" 2>/dev/null || true; fi
    fi
    rm -f "$dir/dovecot.pid"
}

case ${1:-} in
install) shift; (($# == 0)) || die "usage: $me install"; cmd_install ;;
start) shift; cmd_start "$@" ;;
stop) shift; cmd_stop "$@" ;;
configure) shift; cmd_configure "$@" ;;
configure-tls-sink) shift; cmd_configure_tls_sink "$@" ;;
-h | --help | help) usage ;;
*) usage >&2; exit 64 ;;
esac
