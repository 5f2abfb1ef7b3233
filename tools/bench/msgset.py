"""The benchmark's message set: deterministic plain-text messages of a fixed size.

Both mail systems get byte-identical input: message i of a set built with the
same seed and size is always the same bytes. Messages are what a cron job or a
PHP script hands to sendmail: LF line endings, a complete header section
(From, To, Subject, Date, Message-ID), ASCII only, short lines, no line that
is a lone dot.

    from msgset import message_bytes, write_set
    write_set("/tmp/msgs", count=2000, size=4096)    # 000001.eml ... 002000.eml
"""
import os
import random

SENDER = "sender@example.org"
RECIPIENT = "rcpt@example.net"

_VOCABULARY = (
    "alpha bravo charlie delta echo foxtrot golf hotel india juliett kilo lima "
    "mike november oscar papa quebec romeo sierra tango uniform victor whiskey "
    "xray yankee zulu invoice report backup nightly disk usage warning ticket "
    "order confirmation newsletter password digest build failed passed cron"
).split()


def message_bytes(index, size=4096, seed=1, crlf=False):
    """Message number `index` (1-based) of the set, exactly `size` bytes long.

    With crlf=True the line endings are CRLF (as stored in a spool) and the
    result is still exactly `size` bytes.
    """
    rng = random.Random(seed * 1_000_003 + index)
    eol = "\r\n" if crlf else "\n"
    head = eol.join([
        f"From: Benchmark <{SENDER}>",
        f"To: <{RECIPIENT}>",
        f"Subject: benchmark message {index}",
        "Date: Thu, 01 Jan 2026 00:00:00 +0000",
        f"Message-ID: <bench-{seed}-{index}@example.org>",
        "MIME-Version: 1.0",
        "Content-Type: text/plain; charset=us-ascii",
    ]) + eol + eol
    lines = []
    used = len(head)
    while used < size:
        words = []
        width = rng.randrange(40, 72)
        while sum(len(w) + 1 for w in words) < width:
            words.append(rng.choice(_VOCABULARY))
        line = " ".join(words)
        lines.append(line)
        used += len(line) + len(eol)
    text = head + eol.join(lines) + eol
    if len(text) > size:
        # Cut to size: the last line is shortened (or padded) so that the
        # message still ends with a line ending exactly at `size` bytes.
        body = text[: size - len(eol)].rstrip("\r\n ")
        text = body.ljust(size - len(eol), "x") + eol
    return text.encode("ascii")


def write_set(folder, count, size=4096, seed=1):
    """Writes messages 1..count as NNNNNN.eml into `folder` (created); reuses
    a folder that already holds the same set (checked by a marker file)."""
    os.makedirs(folder, exist_ok=True)
    marker = os.path.join(folder, ".set")
    want = f"count={count} size={size} seed={seed}\n"
    try:
        with open(marker) as f:
            if f.read() == want:
                return [os.path.join(folder, f"{i:06d}.eml") for i in range(1, count + 1)]
    except FileNotFoundError:
        pass
    paths = []
    for i in range(1, count + 1):
        path = os.path.join(folder, f"{i:06d}.eml")
        with open(path, "wb") as f:
            f.write(message_bytes(i, size, seed))
        paths.append(path)
    with open(marker, "w") as f:
        f.write(want)
    return paths
