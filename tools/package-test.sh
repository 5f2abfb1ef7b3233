#!/usr/bin/env bash
# tools/package-test.sh: build the Debian package (tools/package-deb.sh) and
# test it: its archive, its man pages, and the package installed and used in a
# throwaway copy of this machine (tools/lib/package-sandbox.sh). As root; run
# by tools/test.sh after the Swift tests. About a minute after the release
# build, which takes a few more on a fresh clone.
#
# Usage: tools/package-test.sh [--no-build]
#   --no-build   test the package of the last release build (no swift build)
#
# Exit status: 0 all passed; 1 a check failed; 69 something needed is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
me=tools/package-test.sh
fail() { echo "$me: FAIL: $*" >&2; exit 1; }
ok() { echo "ok: $*"; }

[[ $(id -u) -eq 0 ]] || { echo "$me: run as root (dpkg in a chroot, mounts)" >&2; exit 69; }
# lintian; man-db and groff for man -l; systemd for systemd-analyze; python3
# picks a free port; util-linux's unshare and setpriv; Postfix for smtp-sink.
tools/install-packages.sh lintian man-db groff-base systemd python3 util-linux
tools/postfix-peer.sh install

build=()
case ${1:-} in
--no-build) build=(--no-build) ;;
"") ;;
*) echo "$me: unknown argument: $1 (see the header of $0)" >&2; exit 64 ;;
esac
work=$(mktemp -d /tmp/postern-package-test.XXXXXX)
trap 'rm -rf "$work"' EXIT
built=$(tools/package-deb.sh --output-dir "$work" "${build[@]}" | tail -n 1)
deb=$work/postern.deb
mv "$built" "$deb"
ok "built $(basename "$built")"

# --- the archive ----------------------------------------------------------------
field() { dpkg-deb --field "$deb" "$1"; }
[[ $(field Package) == postern && $(field Architecture) == "$(dpkg --print-architecture)" ]] \
    || fail "Package/Architecture: $(field Package) $(field Architecture)"
for relation in Provides Conflicts Replaces; do
    [[ $(field $relation) == mail-transport-agent ]] || fail "$relation: $(field $relation), not mail-transport-agent"
done
# What the binaries load, and the tools the maintainer scripts run.
for dependency in libc6 libssl3 passwd; do
    [[ ", $(field Depends)," =~ ,\ ${dependency}[\ ,] ]] || fail "Depends lacks $dependency: $(field Depends)"
done
[[ $(dpkg-deb --ctrl-tarfile "$deb" | tar -xO ./conffiles) == /etc/postern/postern.toml ]] \
    || fail "conffiles: $(dpkg-deb --ctrl-tarfile "$deb" | tar -xO ./conffiles)"
ok "control: Provides, Conflicts and Replaces mail-transport-agent; Depends $(field Depends); conffile"

# "MODE PATH" for each entry, as dpkg-deb lists them (links with their targets).
listing=$(dpkg-deb --contents "$deb" | awk '{ path = $6; for (i = 7; i <= NF; i++) path = path " " $i; print $1, $2, path }')
expect_entry() { grep -qxF -- "$1" <<<"$listing" || fail "not in the package as \"$1\": $(grep -F -- "${1##* }" <<<"$listing" || echo absent)"; }
expect_entry "-rwxr-xr-x root/root ./usr/sbin/postern"
# 0755 in the archive: the postinst's stat override makes it 2755 root:postdrop.
expect_entry "-rwxr-xr-x root/root ./usr/sbin/postern-drop"
expect_entry "lrwxrwxrwx root/root ./usr/sbin/sendmail -> postern-drop"
expect_entry "lrwxrwxrwx root/root ./usr/lib/sendmail -> ../sbin/sendmail"
expect_entry "lrwxrwxrwx root/root ./usr/bin/mailq -> ../sbin/postern"
expect_entry "-rw-r--r-- root/root ./etc/postern/postern.toml"
unitdir=$(pkg-config --variable=systemdsystemunitdir systemd 2>/dev/null || true) # as package-deb.sh
expect_entry "-rw-r--r-- root/root .${unitdir:-/lib/systemd/system}/postern.service"
expect_entry "-rw-r--r-- root/root ./usr/share/bash-completion/completions/postern"
expect_entry "-rw-r--r-- root/root ./usr/share/zsh/vendor-completions/_postern"
expect_entry "-rw-r--r-- root/root ./usr/share/fish/vendor_completions.d/postern.fish"
for page in man5/postern.toml.5 man5/postern-spool.5 man8/postern.8 man8/postern-run.8 man8/postern-config-check.8; do
    expect_entry "-rw-r--r-- root/root ./usr/share/man/$page.gz"
done
! grep -q 'postern-\(help\|queue-ids\|index-memory\)\.8' <<<"$listing" || fail "man pages of hidden commands are packed"
! grep -q '^[^ ]*[sS]' <<<"$listing" || fail "a set-ID bit in the archive: $(grep '^[^ ]*[sS]' <<<"$listing")"
ok "contents: paths, modes, links, conffile, unit, completions, man pages"

# lintian: no error or warning. The static drop program is overridden in the
# package (packaging/lintian/postern says why); informational tags remain.
lint_status=0
lint=$(lintian --fail-on error,warning --tag-display-limit 0 "$deb" 2>&1) || lint_status=$?
((lint_status == 0)) || fail "lintian: $lint"
ok "lintian: no errors or warnings"

# --- man pages ----------------------------------------------------------------
extracted=$work/extracted
dpkg-deb --extract "$deb" "$extracted"
pages=0
for page in "$extracted"/usr/share/man/man*/*; do
    warnings=$(MANWIDTH=80 man --local-file "$page" 2>&1 >/dev/null) || fail "man -l $page failed: $warnings"
    [[ -z $warnings ]] || fail "man -l ${page#"$extracted"}: $warnings"
    pages=$((pages + 1))
done
# postern.toml(5) is written by hand: every table and key of the example file
# (generated from the key table) must be in it.
toml5=packaging/man/postern.toml.5
while read -r key; do
    grep -qw -- "$key" "$toml5" || fail "$toml5 does not document the key $key (postern.toml.example has it)"
done < <(sed -n 's/^#\{0,1\}\([a-z_0-9]*\) = .*/\1/p' postern.toml.example | sort -u)
while read -r table; do
    grep -q "^\.SH \[\[*$table" "$toml5" || fail "$toml5 has no section for [$table]"
done < <(sed -n 's/^#\{0,1\}\[\{1,2\}\([a-z]*\)[].]*.*/\1/p' postern.toml.example | sort -u)
ok "man -l renders all $pages pages without a warning; postern.toml(5) names every key of the example"

# --- installed, in a copy of this machine ---------------------------------------
unshare --mount --propagation private tools/lib/package-sandbox.sh "$deb" "$work"
