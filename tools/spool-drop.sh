#!/bin/sh
# spool-drop.sh SPOOL SENDER RECIPIENT... < message
#
# Drops one message into a Postern spool without the postern binary, by the
# protocol in spool-layout.md ("Writing a drop"), and prints its queue ID.
# It is the reference for writers in other languages, and a test checks that
# the scanner accepts what it writes.
#
# The message on standard input must already be what is to be sent: CRLF line
# endings, lines of at most 998 octets, From:, Date: and Message-ID: present.
# SENDER may be empty for the null sender. Addresses must be plain mailboxes:
# this script refuses quotes, backslashes and control characters rather than
# escape them for JSON.
set -eu
[ $# -ge 3 ] || { echo "usage: $0 SPOOL SENDER RECIPIENT..." >&2; exit 64; }
spool=$1 sender=$2
shift 2
for address in "$sender" "$@"; do
    case $address in
        *[\"\\]* | *[[:cntrl:]]*) echo "$0: unsafe address: $address" >&2; exit 65 ;;
    esac
done

# Queue ID (ULID layout): 10 characters of Crockford base32 for the time in
# milliseconds, then 16 characters from 16 random bytes (5 bits each).
alphabet=0123456789ABCDEFGHJKMNPQRSTVWXYZ
ms=$(date +%s%3N)
id=
for _ in 1 2 3 4 5 6 7 8 9 10; do
    id=$(printf %s "$alphabet" | cut -c $((ms % 32 + 1)))$id
    ms=$((ms / 32))
done
for byte in $(od -An -N16 -tu1 /dev/urandom); do
    id=$id$(printf %s "$alphabet" | cut -c $((byte % 32 + 1)))
done

# A drop is its writer's alone; a writer other than the spool owner (the owner
# of tmp/) lets the owner in by a POSIX ACL that gives the group nothing
# (spool-layout.md section 3). setfacl(1) is in Debian's acl package.
owner=$(stat -c %u "$spool/tmp")
acl() {
    [ "$owner" = "$(id -u)" ] && return 0
    command -v setfacl > /dev/null || { echo "$0: setfacl(1) is needed to drop as another user than the spool owner" >&2; exit 75; }
    setfacl -m "u:$owner:$1,g::-,m::$1,o::-" "$2" || exit 75
}

# 1. Build the message directory in tmp/ (removed again if anything fails).
tmp=$spool/tmp/$id
mkdir -m 0700 "$tmp"
trap 'rm -rf "$tmp"' EXIT
acl rwx "$tmp"
# 2. Write the message and fsync it (coreutils' sync FILE calls fsync(2) on it).
(umask 077 && cat > "$tmp/message")
acl r "$tmp/message"
sync "$tmp/message"
# 3. Write the envelope and fsync it.
size=$(wc -c < "$tmp/message")
recipients=
for address in "$@"; do
    recipients="$recipients${recipients:+,}{\"address\":\"$address\"}"
done
printf '{"version":"1.0","id":"%s","sender":"%s","recipients":[%s],"arrival":"%s","size":%d,"uid":%d}\n' \
    "$id" "$sender" "$recipients" "$(date -u +%Y-%m-%dT%H:%M:%SZ)" $((size)) "$(id -u)" > "$tmp/envelope.json"
chmod 0600 "$tmp/envelope.json"
acl r "$tmp/envelope.json"
sync "$tmp/envelope.json"
# 4. fsync the message directory, so its entries are durable before it is visible.
sync "$tmp"
# 5. The commit point: rename it into drop/ (-T: never move it inside an existing directory).
mv -T "$tmp" "$spool/drop/$id"
trap - EXIT
# 6. fsync drop/, so the rename survives a power failure. A drop-group member
#    may not open drop/ (no read permission): syncfs(2) through its own
#    directory (sync -f) commits the rename instead.
sync "$spool/drop" 2>/dev/null || sync -f "$spool/drop/$id"
echo "$id"
