#!/usr/bin/env bash
# tools/lib/package-sandbox.sh DEB WORK: install the package into a throwaway
# copy of this machine and use it as an administrator and a user would.
# Run by tools/package-test.sh, as root, inside a private mount namespace
# (unshare --mount), so that every mount below vanishes with it.
#
# The copy is an overlay: this machine's / read-only underneath, a tmpfs on
# top that takes every write. In a chroot into it, dpkg really installs the
# package (its maintainer scripts, users, groups, stat override, enabled
# unit) and nothing reaches the real system: not its package database, not
# /etc/passwd, not the Postfix that tools/test.sh installs as a test peer
# (removed in the copy only, as Conflicts: requires). /run is empty in the
# copy, so the scripts take their "no systemd running" branch: the unit is
# enabled for a boot that never comes, and this script starts the daemon as
# the unit would, with its ExecStart, User, Group, SupplementaryGroups and
# UMask. The network is this machine's: the daemon relays to a Postfix
# smtp-sink on 127.0.0.1, and to nothing else.
set -euo pipefail
me=tools/lib/package-sandbox.sh
deb=$1
work=$2
root=$work/root
sink_log=$work/smtp-sink.log
daemon_log=$work/daemon.log
sink_pid=
daemon_pid=

fail() {
    echo "$me: FAIL: $*" >&2
    for log in "$daemon_log" "$sink_log"; do
        [[ -s $log ]] && { echo "--- $log:" >&2; tail -n 40 "$log" >&2; }
    done
    exit 1
}
ok() { echo "ok: $*"; }
# Runs a command in the installed copy, with a clean environment.
in_root() { chroot "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 "$@"; }
as_nobody() { in_root setpriv --reuid=nobody --regid=nogroup --clear-groups "$@"; }
# stat in the copy: "MODE OWNER GROUP".
mode_of() { in_root stat -c '%a %U %G' "$1"; }
# Waits for a condition by polling it every 0.1 s, for at most $1 seconds by
# the clock: what is awaited (a port, a delivered file) has no event to wait on.
wait_until() {
    local deadline=$((SECONDS + $1))
    shift
    until "$@"; do
        ((SECONDS < deadline)) || return 1
        sleep 0.1
    done
}
cleanup() {
    [[ -z $daemon_pid ]] || kill "$daemon_pid" 2>/dev/null || true
    [[ -z $sink_pid ]] || kill "$sink_pid" 2>/dev/null || true
    wait 2>/dev/null || true
}
trap cleanup EXIT
trap "exit 130" INT TERM HUP # so that cleanup runs

# --- the copy ---------------------------------------------------------------
mkdir -p "$work/layers" "$root"
mount -t tmpfs tmpfs "$work/layers"
mkdir "$work/layers/upper" "$work/layers/work"
mount -t overlay overlay -o "lowerdir=/,upperdir=$work/layers/upper,workdir=$work/layers/work" "$root"
mount --bind /proc "$root/proc"
mount --bind /dev "$root/dev"
mount --bind /sys "$root/sys"
mount -t tmpfs tmpfs "$root/run"
# The copy starts as a machine that never had Postern: this one may have a
# spool and a configuration from tools/run.sh, which dpkg would take for an
# administrator's.
rm -rf "$root/var/spool/postern" "$root/etc/postern"
# No service may start in the copy (policy-rc.d: 101, "forbidden").
printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d"
chmod 755 "$root/usr/sbin/policy-rc.d"

# --- install ------------------------------------------------------------------
# Whatever MTA the machine has (Postfix, for the tests) is removed in the copy.
# shellcheck disable=SC2016 # ${...} is dpkg-query's format, not the shell's
mtas=$(in_root dpkg-query -W -f '${db:Status-Abbrev} ${Package} ${Provides}\n' \
    | awk '$1 == "ii" && /mail-transport-agent/ { print $2 }')
if [[ -n $mtas ]]; then
    # shellcheck disable=SC2086 # one word per package
    in_root dpkg --remove $mtas >"$work/dpkg-remove-mta.log" 2>&1 || fail "dpkg --remove $mtas (see $work/dpkg-remove-mta.log)"
fi
in_root dpkg --install "$deb" >"$work/dpkg-install.log" 2>&1 || { cat "$work/dpkg-install.log" >&2; fail "dpkg --install"; }
ok "dpkg --install in a copy of this machine${mtas:+ (after removing $mtas there)}"

[[ $(mode_of /usr/sbin/postern-drop) == "2755 root postdrop" ]] || fail "postern-drop is $(mode_of /usr/sbin/postern-drop)"
in_root dpkg-statoverride --list /usr/sbin/postern-drop >/dev/null || fail "no stat override for postern-drop"
[[ " $(in_root id -nG postern) " == *" postdrop "* ]] || fail "user postern is not in group postdrop"
[[ $(mode_of /var/spool/postern/drop) == "1730 postern postdrop" ]] || fail "drop/ is $(mode_of /var/spool/postern/drop)"
[[ $(mode_of /var/spool/postern/tmp) == "3730 postern postdrop" ]] || fail "tmp/ is $(mode_of /var/spool/postern/tmp)"
[[ $(mode_of /var/spool/postern/queue) == "700 postern postern" ]] || fail "queue/ is $(mode_of /var/spool/postern/queue)"
[[ -L $root/etc/systemd/system/multi-user.target.wants/postern.service ]] || fail "the unit is not enabled"
ok "postern-drop 2755 root:postdrop by stat override, user postern in postdrop, spool modes, unit enabled"

verify=$(in_root systemd-analyze verify --man=no /lib/systemd/system/postern.service 2>&1) \
    || fail "systemd-analyze verify: $verify"
[[ -z $verify ]] || fail "systemd-analyze verify: $verify"
ok "systemd-analyze verify on the installed unit"

# --- configure, as an administrator would -------------------------------------
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
config=$root/etc/postern/postern.toml
# Top-level keys go before the first table; the metrics port is turned off,
# as other tests may use it.
{
    printf 'hostname = "pkgtest.postern.test"\nrelay = "127.0.0.1:%s"\nrelay_tls = "none"\n\n' "$port"
    sed 's/^#listen = "127.0.0.1:9464"$/listen = ""/' "$config"
} >"$work/postern.toml"
cat "$work/postern.toml" >"$config"
grep -qx 'listen = ""' "$config" || fail "the example no longer has #listen = \"127.0.0.1:9464\""
in_root postern config check --config /etc/postern/postern.toml >/dev/null || fail "postern config check"
# Installed again (an upgrade to the same version): the changed conffile stays.
in_root dpkg --install "$deb" >"$work/dpkg-reinstall.log" 2>&1 </dev/null || { cat "$work/dpkg-reinstall.log" >&2; fail "dpkg --install, again"; }
grep -qx "relay = \"127.0.0.1:$port\"" "$config" || fail "reinstalling replaced the administrator's postern.toml"
ok "postern.toml edited, validated, kept by a reinstall"

# --- mail: sendmail as a user, mailq, the daemon, smtp-sink ---------------------
# smtp-sink writes as user postfix, which must reach the directory (mktemp -d made WORK 0700).
mkdir -p "$work/sink"
chmod 755 "$work"
chown postfix: "$work/sink"
(export TZ=UTC && exec setsid /usr/sbin/smtp-sink -4 -u postfix -h sink.postern.test \
    -d "$work/sink/%Y%m%dT%H%M%S." "127.0.0.1:$port" 16 </dev/null >"$sink_log" 2>&1) &
sink_pid=$!
sink_answers() { (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; }
wait_until 20 sink_answers || fail "smtp-sink does not answer on 127.0.0.1:$port"

printf 'Subject: postern package test\nTo: someone@example.net\n\nDelivered by the installed package.\n' >"$work/message"
id=$(as_nobody /usr/sbin/sendmail -v someone@example.net <"$work/message") || fail "sendmail as nobody"
[[ $id =~ ^[0-9A-HJKMNP-TV-Z]{26}$ ]] || fail "sendmail -v printed \"$id\", not a queue ID"
ok "sendmail as nobody (set-group-ID postdrop) dropped $id"
# (Output captured first: grep -q would end the pipe early, and pipefail fail it.)
listed() { local queue; queue=$(in_root mailq) && grep -q "$id" <<<"$queue"; }
listed || fail "mailq does not list $id: $(in_root mailq 2>&1)"
ok "mailq lists $id before a daemon runs"

unit=$root/lib/systemd/system/postern.service
unit_value() { sed -n "s/^$1=//p" "$unit"; }
exec_start=$(unit_value ExecStart)
[[ -n $exec_start ]] || fail "no ExecStart in the unit"
# shellcheck disable=SC2086 # ExecStart is split into words, as systemd does (it has no quotes)
chroot "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin \
    setpriv --reuid="$(unit_value User)" --regid="$(unit_value Group)" --groups="$(unit_value SupplementaryGroups)" \
    sh -c "umask $(unit_value UMask) && exec \"\$@\"" sh $exec_start >"$daemon_log" 2>&1 &
daemon_pid=$!
delivered() { grep -qs "^Subject: postern package test" "$work"/sink/*; }
wait_until 30 delivered || fail "$id did not reach smtp-sink within 30 s"
sunk=$(grep -ls "^Subject: postern package test" "$work"/sink/*)
grep -q "nobody@pkgtest.postern.test" "$sunk" || fail "the envelope sender is not nobody@pkgtest.postern.test: $(head -5 "$sunk")"
ok "the daemon, started with the unit's ExecStart as $(unit_value User), delivered $id to smtp-sink"
not_listed() { ! listed; }
wait_until 10 not_listed || fail "mailq still lists $id after its delivery"
ok "mailq no longer lists $id"
kill -TERM "$daemon_pid"
status=0
wait "$daemon_pid" || status=$?
daemon_pid=
((status == 0)) || fail "the daemon exited $status on SIGTERM"
ok "the daemon stops on SIGTERM with status 0"

# --- remove, purge, reinstall -----------------------------------------------
# A message no daemon has taken, for purge to keep.
kept=$(in_root /usr/sbin/sendmail -v someone@example.net <"$work/message") || fail "sendmail as root"
in_root dpkg --remove postern >"$work/dpkg-r.log" 2>&1 || { cat "$work/dpkg-r.log" >&2; fail "dpkg --remove"; }
for gone in /usr/sbin/postern /usr/sbin/postern-drop /usr/sbin/sendmail /usr/bin/mailq; do
    [[ ! -e $root$gone && ! -L $root$gone ]] || fail "$gone is still there after dpkg --remove"
done
[[ -f $config && -d $root/var/spool/postern/drop/$kept ]] || fail "dpkg --remove took the configuration or the spool"
ok "dpkg --remove: programs gone; configuration and spool (with $kept) kept"
purge=$(in_root dpkg --purge postern 2>&1) || fail "dpkg --purge: $purge"
[[ ! -e $root/etc/postern ]] || fail "/etc/postern is still there after dpkg --purge"
[[ -d $root/var/spool/postern/drop/$kept ]] || fail "dpkg --purge removed the spool with $kept in it"
grep -q "/var/spool/postern holds 1 message" <<<"$purge" || fail "dpkg --purge did not name the spool it kept: $purge"
! in_root dpkg-statoverride --list /usr/sbin/postern-drop >/dev/null || fail "the stat override outlived the purge"
ok "dpkg --purge: configuration gone, the spool with $kept kept and named"
in_root dpkg --install "$deb" >"$work/dpkg-again.log" 2>&1 || { cat "$work/dpkg-again.log" >&2; fail "dpkg --install after purge"; }
[[ -d $root/var/spool/postern/drop/$kept ]] || fail "reinstalling lost $kept"
ok "installed again over the kept spool: $kept still there"
rm -r "$root/var/spool/postern/drop/$kept"
in_root dpkg --purge postern >/dev/null 2>&1 || fail "dpkg --purge with an empty spool"
[[ ! -e $root/var/spool/postern ]] || fail "dpkg --purge left an empty spool"
ok "dpkg --purge removes a spool without mail"
