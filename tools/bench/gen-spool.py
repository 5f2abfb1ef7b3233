#!/usr/bin/env python3
"""Fill a Postern spool with N messages written directly in the on-disk format
of spool-layout.md (layout version 1), without running `postern drop` N times.

    gen-spool.py --spool DIR --count 100000 [--area queue|hold|drop]
                 [--deferred [--next-attempt-in SECONDS]] [--size 4096]
                 [--domains 1] [--jobs 2] [--no-sync]

The spool must exist (`postern init --spool DIR`). For `queue` and `hold`
(accepted messages) the spool's lock is taken for the whole run, so this
refuses to run next to a daemon, like `postern check`. Each message is built
as spool-layout.md 6.1 says, minus the fsyncs: `mkdir tmp/ID` (0770),
`message` and `envelope.json` (0640, O_CREAT|O_EXCL|O_NOFOLLOW), then one
rename into AREA/ID. Owners: the spool's owner (this must run as that user or
as root); the envelope's uid is the spool owner's.

Messages are CRLF, exactly --size bytes, from the benchmark's message set
(msgset.py; a pool of at most 1,000 distinct bodies is cycled). Queue IDs are
ULIDs of the current millisecond whose random part increases by one per
message (as one process's IDs do), so `ls` order is generation order.

Without --deferred every message is fresh (0 attempts, due at once). With
--deferred each looks like mail that failed once with a 451: attempts 1, a
recipient last_result, one history entry and next_attempt --next-attempt-in
seconds ahead (default one day), so a daemon indexes it but delivers nothing.
Each envelope's modification time is its resting time (spool-layout.md 6.2:
next_attempt, or arrival), as the daemon's writes leave it.

--domains K spreads recipients over K domains (rcpt@d1.example.net ...);
default 1 (everything to example.net). At the end the file system is synced
(sync(2)) unless --no-sync. Prints the IDs' count and the time taken.
Check the result with `postern check --dry-run --spool DIR`.
"""
import argparse
import datetime
import fcntl
import json
import multiprocessing
import os
import secrets
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from msgset import RECIPIENT, SENDER, message_bytes  # noqa: E402

CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
POOL = 1000


def encode_base32(value, length):
    chars = []
    for _ in range(length):
        chars.append(CROCKFORD[value & 31])
        value >>= 5
    return "".join(reversed(chars))


def queue_ids(start_ms, random_part, count):
    """`count` ULIDs of millisecond `start_ms`, random part counting up."""
    prefix = encode_base32(start_ms, 10)
    for k in range(count):
        yield prefix + encode_base32((random_part + k) % (1 << 80), 16)


def rfc3339(t):
    return datetime.datetime.fromtimestamp(int(t), datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def envelope_json(qid, recipient, size, uid, now, deferred, next_in):
    env = {
        "version": "1.0",
        "id": qid,
        "sender": SENDER,
        "recipients": [{"address": recipient, "attempts": 0, "state": "pending"}],
        "arrival": rfc3339(now),
        "size": size,
        "uid": uid,
        "message_id": f"{qid}@bench.postern.test",
        "eight_bit": False,
        "smtputf8": False,
        "require_tls": None,
        "attempts": 0,
        "history": [],
    }
    if deferred:
        result = {"time": rfc3339(now), "code": 451, "enhanced": "4.3.0",
                  "text": "benchmark: try again later", "host": "127.0.0.1",
                  "permanent": False}
        env["attempts"] = 1
        env["next_attempt"] = rfc3339(now + next_in)
        env["last_result"] = result
        env["recipients"][0]["attempts"] = 1
        env["recipients"][0]["last_result"] = result
        env["history"] = [{"time": rfc3339(now), "recipients": [recipient], "host": "127.0.0.1",
                           "ip": "127.0.0.1", "tls": "none", "result": result}]
    return (json.dumps(env, indent=2, sort_keys=True) + "\n").encode()


def write_file(path, data, uid, gid):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o640)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        if uid is not None:
            os.fchown(fd, uid, gid)
    finally:
        os.close(fd)


def worker(args):
    (spool, area, first, count, start_ms, random_part, size, seed, domains, deferred, next_in,
     owner, now) = args
    os.umask(0)
    uid = owner[0]
    chown = owner if os.geteuid() != owner[0] else (None, None)
    bodies = [message_bytes(i + 1, size, seed, crlf=True) for i in range(min(POOL, first + count))]
    tmp = os.path.join(spool, "tmp")
    dest = os.path.join(spool, area)
    for k, qid in enumerate(queue_ids(start_ms, random_part + first, count)):
        n = first + k
        recipient = RECIPIENT if domains <= 1 else f"rcpt@d{n % domains + 1}.example.net"
        body = bodies[n % len(bodies)]
        d = os.path.join(tmp, qid)
        os.mkdir(d, 0o770)
        if chown[0] is not None:
            os.chown(d, *chown)
        write_file(d + "/message", body, *chown)
        write_file(d + "/envelope.json",
                   envelope_json(qid, recipient, len(body), uid, now, deferred, next_in), *chown)
        # The envelope's modification time is when the message is due
        # (spool-layout.md 6.2): what the daemon's start-up index reads.
        resting = int(now + next_in) if deferred else int(now)
        os.utime(d + "/envelope.json", (resting, resting))
        os.rename(d, os.path.join(dest, qid))
    return count


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--spool", required=True)
    ap.add_argument("--count", "-n", type=int, required=True)
    ap.add_argument("--area", choices=("queue", "hold", "drop"), default="queue")
    ap.add_argument("--deferred", action="store_true")
    ap.add_argument("--next-attempt-in", type=float, default=86400.0, metavar="SECONDS")
    ap.add_argument("--size", type=int, default=4096)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--domains", type=int, default=1)
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--no-sync", action="store_true")
    a = ap.parse_args()
    if not 1 <= a.count <= 10_000_000:
        sys.exit("gen-spool.py: --count must be 1..10000000")
    if a.size < 512:
        sys.exit("gen-spool.py: --size must be at least 512")
    spool = os.path.abspath(a.spool)
    try:
        with open(os.path.join(spool, "VERSION")) as f:
            if f.read() != "1\n":
                sys.exit(f"gen-spool.py: {spool}/VERSION is not layout version 1")
    except FileNotFoundError:
        sys.exit(f"gen-spool.py: {spool} is not a spool (run: postern init --spool {spool})")
    lock = None
    if a.area in ("queue", "hold"):
        lock = open(os.path.join(spool, "lock"), "r+")
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            sys.exit("gen-spool.py: the spool is locked (a daemon or postern check runs); stop it first")
    st = os.stat(spool)
    owner = (st.st_uid, st.st_gid)
    if os.geteuid() not in (0, st.st_uid):
        sys.exit("gen-spool.py: run as the spool's owner or as root")

    now = time.time()
    start_ms = int(now * 1000)
    random_part = secrets.randbits(79)  # room to count up without wrapping
    jobs = max(1, min(a.jobs, a.count // 1000 or 1))
    share, extra = divmod(a.count, jobs)
    tasks, first = [], 0
    for j in range(jobs):
        n = share + (1 if j < extra else 0)
        tasks.append((spool, a.area, first, n, start_ms, random_part, a.size, a.seed, a.domains,
                      a.deferred, a.next_attempt_in, owner, now))
        first += n
    t0 = time.monotonic()
    if jobs == 1:
        done = worker(tasks[0])
    else:
        with multiprocessing.get_context("fork").Pool(jobs) as pool:
            done = sum(pool.map(worker, tasks))
    t1 = time.monotonic()
    if not a.no_sync:
        os.sync()
    t2 = time.monotonic()
    print(f"gen-spool.py: {done} messages in {spool}/{a.area} in {t1 - t0:.1f} s "
          f"({done / max(t1 - t0, 1e-9):.0f}/s), sync {t2 - t1:.1f} s", file=sys.stderr)
    if lock:
        lock.close()


if __name__ == "__main__":
    main()
