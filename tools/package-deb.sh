#!/usr/bin/env bash
# tools/package-deb.sh: build the Debian package of Postern, postern_VERSION_ARCH.deb,
# from a release build, with dpkg-deb alone (no debian/ source package, no
# network: the dependencies are those SwiftPM has already resolved).
#
# Usage: tools/package-deb.sh [--output-dir DIR] [--no-build]
#   --output-dir DIR   where the .deb goes (default: .build/deb); the path of
#                      the package is printed on stdout as the last line
#   --no-build         package what `swift build -c release --static-swift-stdlib`
#                      built last (tools/package-test.sh's second run)
#
# The version is VERSION's text when that file exists, else git's: the latest
# tag vX.Y[.Z] and the commits since (`git describe`), or 0~git.DATE.HASH when
# there is no tag; `+dirty` when the work tree has changes. The architecture is
# dpkg's. Maintainer: $DEBFULLNAME <$DEBEMAIL>, as for dch(1).
#
# What goes where, and why:
#   /usr/sbin/postern, /usr/sbin/postern-drop
#       Both in sbin as Debian's MTAs put theirs (postfix's daemons and
#       postdrop, exim4, dma): the daemon and the administrator's queue
#       commands; users reach them through sendmail and mailq. Side by side,
#       because each finds the other in its own directory (postern drop execs
#       postern-drop, mailq execs postern). postern-drop is packed 0755
#       root:root; the postinst makes it 2755 root:postdrop with
#       dpkg-statoverride (the group does not exist before the postinst).
#   /usr/sbin/sendmail -> postern-drop, /usr/lib/sendmail -> ../sbin/sendmail,
#   /usr/bin/mailq -> ../sbin/postern
#       The names every MTA provides (hence Provides/Conflicts/Replaces:
#       mail-transport-agent). No newaliases: Postern delivers nothing locally
#       and keeps no aliases database.
#   /etc/postern/postern.toml            conffile: postern.toml.example
#   /lib/systemd/system/postern.service  packaging/postern.service (systemd's
#                                        unit directory: /usr/lib/... from trixie)
#   /usr/share/man/man8/postern*.8.gz    from the argument parser's help
#                                        (its generate-manual tool, run here)
#   /usr/share/man/man5/postern.toml.5.gz, postern-spool.5.gz   packaging/man/
#   completions: /usr/share/bash-completion/completions/postern,
#       /usr/share/zsh/vendor-completions/_postern,
#       /usr/share/fish/vendor_completions.d/postern.fish
#   /usr/share/doc/postern/   README.md, spool-layout.md, copyright, changelog
# Depends: computed by dpkg-shlibdeps from what the binaries load (libc6,
# libssl3, ...): the Swift runtime and Foundation are linked statically
# (--static-swift-stdlib), as no Debian package ships them.
set -euo pipefail
cd "$(dirname "$0")/.."
me=tools/package-deb.sh
die() { echo "$me: $*" >&2; exit "${2:-1}"; }

output=.build/deb
build=1
while (($#)); do
    case $1 in
    --output-dir) output=${2:?--output-dir needs a directory}; shift 2 ;;
    --no-build) build=0; shift ;;
    -h | --help) sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"; exit 0 ;;
    *) die "unknown argument: $1 (see --help)" 64 ;;
    esac
done
# The build's own needs (README), dpkg-shlibdeps (dpkg-dev), and libcurl's
# link-time library: a static Foundation brings FoundationNetworking, which
# FlyingFox imports, and it links libcurl (the package then depends on libcurl4).
tools/install-packages.sh libssl-dev pkg-config dpkg-dev libcurl4-openssl-dev git
command -v swift >/dev/null || die "swift is not on PATH (see README)" 69

# --- version and architecture ---------------------------------------------
if [[ -f VERSION ]]; then
    version=$(tr -d ' \n' <VERSION)
elif described=$(git describe --tags --match 'v[0-9]*' 2>/dev/null); then
    # v1.2-3-gabc1234 -> 1.2+3.gabc1234: sorts after 1.2, before 1.3.
    version=$(sed -E 's/^v//; s/-([0-9]+)-g/+\1.g/' <<<"$described")
else
    # 0~: sorts before any tagged release.
    version="0~git$(git log -1 --format=%cd --date=format:%Y%m%d).$(git rev-parse --short HEAD)"
fi
[[ -z $(git status --porcelain 2>/dev/null) ]] || version+="+dirty"
[[ $version =~ ^[0-9][A-Za-z0-9.+~-]*$ ]] || die "not a Debian version: $version" 65
arch=$(dpkg --print-architecture)
# Man pages and the changelog carry the commit's date, not today's, so that
# two builds of one commit are alike.
date=$(git log -1 --format=%cd --date=format:%Y-%m-%d)
maintainer="${DEBFULLNAME:-Postern developers} <${DEBEMAIL:-postern@example.org}>"

# --- build ------------------------------------------------------------------
# Both products, and the argument parser's generate-manual tool (the same one
# its GenerateManual plugin runs; built directly here so that it shares this
# release build instead of making a debug build of everything).
if ((build)); then
    swift build -c release --static-swift-stdlib >&2
    swift build -c release --static-swift-stdlib --product generate-manual >&2
fi
bin=$(swift build -c release --static-swift-stdlib --show-bin-path)
for program in postern postern-drop generate-manual; do
    [[ -x $bin/$program ]] || die "$bin/$program is missing: build first, or drop --no-build" 66
done

# --- the tree ---------------------------------------------------------------
stage=$(mktemp -d "${TMPDIR:-/tmp}/postern-deb.XXXXXX")
trap 'rm -rf "$stage"' EXIT
root=$stage/root
doc=$root/usr/share/doc/postern
# Where this release's systemd wants units: /lib/systemd/system on bookworm,
# /usr/lib/systemd/system from trixie on (its pkg-config file says which).
unitdir=$(pkg-config --variable=systemdsystemunitdir systemd 2>/dev/null || true)
unitdir=${unitdir:-/lib/systemd/system}
install -d -m 755 "$root/DEBIAN" "$root/usr/sbin" "$root/usr/bin" "$root/usr/lib" "$root/etc/postern" \
    "$root$unitdir" "$root/usr/share/man/man5" "$root/usr/share/man/man8" "$doc" \
    "$root/usr/share/bash-completion/completions" "$root/usr/share/zsh/vendor-completions" \
    "$root/usr/share/fish/vendor_completions.d"
# Stripped as dh_strip does: the symbols of a static Swift runtime are most of the size.
install -m 755 "$bin/postern" "$bin/postern-drop" "$root/usr/sbin/"
strip --strip-unneeded --remove-section=.comment --remove-section=.note "$root/usr/sbin/postern" "$root/usr/sbin/postern-drop"
ln -s postern-drop "$root/usr/sbin/sendmail"
ln -s ../sbin/sendmail "$root/usr/lib/sendmail"
ln -s ../sbin/postern "$root/usr/bin/mailq"
install -m 644 postern.toml.example "$root/etc/postern/postern.toml"
install -m 644 packaging/postern.service "$root$unitdir/postern.service"
grep -qx 'ExecStart=/usr/sbin/postern run .*' "$root$unitdir/postern.service" \
    || die "packaging/postern.service: ExecStart does not run /usr/sbin/postern" 65

# bash-completion sources its scripts: no #! line.
"$bin/postern" --generate-completion-script bash | sed '1{/^#!/d}' >"$root/usr/share/bash-completion/completions/postern"
"$bin/postern" --generate-completion-script zsh >"$root/usr/share/zsh/vendor-completions/_postern"
"$bin/postern" --generate-completion-script fish >"$root/usr/share/fish/vendor_completions.d/postern.fish"

# Man pages: one per command and subcommand, section 8 as the programs are in
# sbin, named as git's are (postern-run.8, postern-config-check.8), so that
# man-db's `man postern run` finds them; and the two written by hand.
"$bin/generate-manual" "$bin/postern" --multi-page --section 8 --date "$date" \
    --authors "Postern developers" --output-directory "$stage" >&2
# Pages of what `postern --help` does not list (the hidden developer commands,
# and `help`) are left out, with their entries in postern(8)'s SEE ALSO.
shown=$("$bin/postern" --help | awk '/^SUBCOMMANDS:/ { listing = 1; next } listing && /^  [a-z]/ { print $1 }')
for page in "$stage"/postern.*.8; do
    dotted=$(basename "$page" .8)                  # postern.config.check
    grep -qx -- "$(cut -d. -f2 <<<"$dotted")" <<<"$shown" && continue
    rm "$page"
    sed -i "/^\.Xr $dotted 8/d" "$stage/postern.8"
done
man8=$root/usr/share/man/man8
for page in "$stage"/postern*.8; do
    dotted=$(basename "$page" .8)
    hyphened=${dotted//./-}                        # postern-config-check
    spaced=${dotted//./ }                          # postern config check
    # NAME gets the page's name (lexgrog, whatis and apropos read it); the
    # SYNOPSIS's bare .Nm, which would repeat it, the command as typed. The
    # discussions' blank lines become paragraphs and their upper-case lines
    # (EXIT STATUS, ENVIRONMENT) subsections: mdoc warns of an empty line,
    # and would run the heading into the text.
    sed -E -e "s/^\.Dt [A-Z.-]+ 8$/.Dt ${hyphened^^} 8/" \
        -e "/^\.Sh NAME$/,/^\.Sh/ s/^\.Nm .*/.Nm $hyphened/" \
        -e "s/^\.Nm$/.Nm \"$spaced\"/" \
        -e 's/^\.Xr postern\.([a-z.-]+) 8/.Xr postern-\1 8/; /^\.Xr postern-/ s/\./-/2g' \
        -e 's/^$/.Pp/; s/^([A-Z][A-Z ]*[A-Z])$/.Ss \1/' "$page" >"$man8/$hyphened.8"
done
# The drop's page (postern drop is postern-drop) under the names it is run by.
install -d -m 755 "$root/usr/share/man/man1"
ln -s postern-drop.8.gz "$man8/sendmail.8.gz"
ln -s ../man8/postern-list.8.gz "$root/usr/share/man/man1/mailq.1.gz"
install -m 644 packaging/man/postern.toml.5 packaging/man/postern-spool.5 "$root/usr/share/man/man5/"

install -d -m 755 "$root/usr/share/lintian/overrides"
install -m 644 packaging/lintian/postern "$root/usr/share/lintian/overrides/postern"
install -m 644 README.md spool-layout.md "$doc/"
install -m 644 packaging/copyright "$doc/copyright"
# A native package's changelog: this build's entry (the history is git's).
cat >"$stage/changelog" <<EOF
postern ($version) unstable; urgency=medium

  * Built from commit $(git rev-parse HEAD).

 -- $maintainer  $(git log -1 --format=%cd --date=rfc2822)
EOF
install -m 644 "$stage/changelog" "$doc/changelog"
find "$root/usr/share/man" "$doc" -type f ! -name copyright ! -name '*.gz' -exec gzip -9n {} +
find "$root" -type d -exec chmod 755 {} +
find "$root/usr/share" "$root/etc" "$root$unitdir" -type f -exec chmod 644 {} +

# --- control ----------------------------------------------------------------
# dpkg-shlibdeps wants a source package's debian/control; a stub in the stage
# serves. -O prints the substitution instead of writing debian/substvars.
mkdir -p "$stage/debian"
printf 'Source: postern\n\nPackage: postern\nArchitecture: any\n' >"$stage/debian/control"
shlibs=$(cd "$stage" && dpkg-shlibdeps -O -e"root/usr/sbin/postern" -e"root/usr/sbin/postern-drop" 2>/dev/null) \
    || die "dpkg-shlibdeps failed on the binaries" 70
depends=${shlibs#shlibs:Depends=}
[[ -n $depends && $depends != "$shlibs" ]] || die "dpkg-shlibdeps found no dependencies: $shlibs" 70

install -m 755 packaging/debian/postinst packaging/debian/prerm packaging/debian/postrm "$root/DEBIAN/"
echo /etc/postern/postern.toml >"$root/DEBIAN/conffiles"
(cd "$root" && find . -path ./DEBIAN -prune -o -path ./etc -prune -o -type f -printf '%P\0' \
    | xargs -0 md5sum | sort -k 2) >"$root/DEBIAN/md5sums"
chmod 644 "$root/DEBIAN/conffiles" "$root/DEBIAN/md5sums"
cat >"$root/DEBIAN/control" <<EOF
Package: postern
Version: $version
Architecture: $arch
Maintainer: $maintainer
Installed-Size: $(du -sk --exclude=DEBIAN "$root" | cut -f1)
Depends: $depends, passwd
Provides: mail-transport-agent
Conflicts: mail-transport-agent
Replaces: mail-transport-agent
Section: mail
Priority: optional
Homepage: https://github.com/postern/postern
Description: outgoing-mail spooler with a sendmail interface
 Postern queues mail that programs and users hand to sendmail in a spool of
 plain directories and JSON envelopes, and delivers it over SMTP: directly
 to each domain's MX hosts (STARTTLS, DANE) or through a smarthost with AUTH.
 It retries with backoff, sends delivery status notifications, and serves
 Prometheus metrics.
 .
 sendmail is a small static set-group-ID program that only drops mail into
 the spool; the daemon, postern run, runs as its own user under systemd.
EOF

mkdir -p "$output"
deb=$output/postern_${version}_${arch}.deb
# --root-owner-group: every file root:root without fakeroot; -Zxz as Debian's archive.
dpkg-deb --root-owner-group -Zxz --build "$root" "$deb" >&2
echo "$deb"
