#!/usr/bin/env python3
"""tools/crash-harness.py: crash injection at scale (issue #17).

Runs the real daemon (`postern run`) on a temporary spool under load, kills
it with SIGKILL at random moments and restarts it, again and again, while
drops arrive through `postern drop` (root: trusted, renamed) and the
set-group-ID `postern-drop` (an outsider: adopted), a tenth of them killed at
a random moment too. The peer (tools/reliability/peer.py, a scripted SMTP
server on loopback) accepts, defers and rejects each message as a hash of its
Message-ID says, so the right outcome of every message is known. Then it
proves (tools/reliability/ledger.py): every accepted message delivered or
bounced exactly as the peer decided, 0 lost, 0 corrupt (nothing in corrupt/,
`postern check` clean), duplicates only of messages in flight at a kill, no
retry storm.

Two phases:
  random kills     backoff compressed (queue.backoff_base=1s, jitter scaled
                   with it: 10ms instead of 5s) so that deferred mail comes due
                   and expires within the run; with --short also
                   queue.max_attempts=4 and dsn.delay_warning_attempts=3
                   (instead of 8 and 5) to keep the tail short.
  default backoff  every queue setting at its default (7m30s backoff): after
                   each kill, mail that was never attempted is delivered at
                   once, and only the attempts in flight at the kill wait their
                   backoff (the developers' guide: a crash test run only with a
                   1-second backoff once hid a crash delaying the whole queue by
                   7.5 minutes). Then `postern kick --all` lets those go too.

Always different from a user's defaults: relay to the peer, hostname,
metrics.listen="" (other daemons may hold the port), local.aliases=""
(never this machine's /etc/aliases).

Usage (as root; it enters a private mount namespace of its own):
  tools/crash-harness.py --short                  30 kills, then 4: about a minute (tools/test.sh)
  tools/crash-harness.py --kills 300 --default-kills 30   the long form (README's figures)
Options: --binary PATH (default .build/release/postern, else .build/debug/postern),
  --seed N, --keep (leave the work directory). Exit 0 when every check holds, 1 otherwise.
"""
import argparse
import os
import random
import shutil
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.dont_write_bytecode = True   # no __pycache__ in the checkout
sys.path.insert(0, os.path.join(HERE, "reliability"))
from world import PROCS, Feeder, World, close_books, default_binary, enter_namespace, log  # noqa: E402
from peer import Peer  # noqa: E402
from ledger import Ledger  # noqa: E402

MIX = {"accept": 55, "reject-rcpt": 10, "reject-data": 10, "defer-once": 15, "defer": 10}
DEFAULT_MIX = {"accept": 85, "reject-data": 15}


def wait(what, predicate, timeout, problems, interval=0.1):
    """Waits (bounded) until `predicate` holds; a timeout is one of the run's problems."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            problems.append(f"timed out after {timeout:.0f} s waiting for {what}")
            return False
        time.sleep(interval)
    return True


def random_kills(a, work, rng):
    """Phase 1: random kills with a compressed backoff."""
    max_attempts = 4 if a.short else 8
    peer = Peer(a.seed, MIX, delay=0.02).start()
    world = World(a.binary, os.path.join(work, "kills"), a.seed, peer.port,
                  ["queue.backoff_base=1s", "queue.jitter=10ms", f"queue.max_attempts={max_attempts}",
                   f"dsn.delay_warning_attempts={3 if a.short else 5}"])
    ledger = Ledger(peer, a.seed, max_attempts, 1.0, 2.0)
    feeder = Feeder(world, a.seed, pause=(0.0, 0.03))
    problems = []
    try:
        feeder.start()
        t0 = time.monotonic()
        for k in range(a.kills):
            world.start()
            # A random moment: during start-up and the index, or well into delivering.
            time.sleep(rng.uniform(0.05, a.uptime))
            world.kill()
            ledger.kill(time.time(), world.marks())
            if (k + 1) % 10 == 0:
                log(f"kill {k + 1}/{a.kills}: {len(feeder.accepted)} dropped, spool {world.census()}")
        feeder.stop()
        log(f"{a.kills} kills in {time.monotonic() - t0:.0f} s; draining")
        world.start(wait_ready=True)
        tail = sum(2 ** i for i in range(max_attempts)) + 60
        wait("the queue to empty", lambda: world.census()["queue"] == 0 and world.census()["drop"] == 0, tail + 240, problems)
        figures, census = close_books(world, ledger, feeder, problems)
        figures.update(tmp_leftovers=census["tmp"], daemon_starts=world.starts)
        return figures, problems
    finally:
        feeder.running = False
        world.close()
        peer.stop()


def default_backoff(a, work, rng):
    """Phase 2: the defaults; a kill delays only the attempts in flight."""
    # A slow peer (half a second a message) and drops faster than it takes
    # them: at each kill, many messages are due and never attempted (the
    # developers' guide's scenario), besides the ten in flight.
    peer = Peer(a.seed + 1, DEFAULT_MIX, delay=0.5).start()
    world = World(a.binary, os.path.join(work, "defaults"), a.seed + 1, peer.port, [])
    ledger = Ledger(peer, a.seed + 1, 8, 450.0, 2.0)
    feeder = Feeder(world, a.seed + 1, pause=(0.02, 0.08), kill_fraction=0.05)
    problems, restarts, worst = [], [], 0.0
    try:
        feeder.start()
        for k in range(a.default_kills):
            world.start(wait_ready=True)
            restarts.append(time.time())
            time.sleep(rng.uniform(0.5, 2.5))
            world.kill()
            seen = {e[1] for e in peer.snapshot() if e[0] == "rcpt"}
            ledger.kill(time.time(), world.marks())
            restarts[-1] = (restarts[-1], seen, dict(feeder.accepted))
        feeder.stop()
        world.start(wait_ready=True)
        final_start = time.time()
        marked = {n for m in ledger.marks_seen for kind, n in m if kind == "mail"}
        # Everything but the attempts in flight at the kills goes at once.
        wait("all but the marked messages to leave the queue",
             lambda: {n for kind, n in world.queued_numbers() if kind == "mail"} <= marked
             and world.census()["drop"] == 0, 120 + 0.1 * len(feeder.accepted), problems)
        events = peer.snapshot()
        first = {}
        for e in events:
            if e[0] == "rcpt":
                first.setdefault(e[1], e[2])
        later = {}
        for e in events:
            if e[0] == "rcpt" and e[1] in marked:
                later.setdefault(e[1], []).append(e[2])
        # The marked ones waited: no second attempt before the kick.
        for killed_at, marks in ledger.kills:
            for kind, n in marks:
                retried = [t for t in later.get(n, []) if t > killed_at]
                if kind == "mail" and retried:
                    problems.append(f"message {n}, in flight at a kill, tried again {retried[0] - killed_at:.1f} s "
                                    "later: the default backoff is 7m30s")
        # Never-attempted mail went at once after each restart (the next kill's restart is its start).
        starts = [r[0] for r in restarts[1:]] + [final_start]
        waiting = 0
        for (start, seen, accepted), restart in zip(restarts, starts):
            for n, t in accepted.items():
                if n in seen or n in marked:
                    continue
                waiting += 1
                if n not in first:
                    problems.append(f"message {n}, accepted before a kill, never attempted")
                    continue
                worst = max(worst, first[n] - max(restart, t))
        ledger.kicked_at = time.time()
        result = world.postern("kick", "--all")
        if result.returncode != 0:
            problems.append(f"postern kick --all exited {result.returncode}: {result.stdout[-300:]}")
        wait("the queue to empty after the kick",
             lambda: world.census()["queue"] == 0 and world.census()["drop"] == 0, 120, problems)
        figures, _ = close_books(world, ledger, feeder, problems)
        figures.update(delayed_by_kills=len(marked), never_attempted_at_kills=waiting,
                       worst_first_attempt_after_restart=round(worst, 2))
        # A backlog may take its time; a backoff (7m30s) is what a bug costs.
        if worst > 225:
            problems.append(f"mail never attempted waited {worst:.0f} s after a restart")
        return figures, problems
    finally:
        feeder.running = False
        world.close()
        peer.stop()


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--binary")
    p.add_argument("--short", action="store_true", help="about 30 kills and 4 default-backoff kills")
    p.add_argument("--kills", type=int)
    p.add_argument("--default-kills", type=int)
    p.add_argument("--uptime", type=float, default=1.5, help="longest life of the daemon between kills (s)")
    p.add_argument("--seed", type=int, default=int(time.time()) % 100000)
    p.add_argument("--keep", action="store_true")
    a = p.parse_args()
    a.binary = a.binary or default_binary("crash-harness")
    a.kills = a.kills if a.kills is not None else (30 if a.short else 300)
    a.default_kills = a.default_kills if a.default_kills is not None else (4 if a.short else 30)
    enter_namespace()
    work = tempfile.mkdtemp(prefix="postern-crash-")
    rng = random.Random(a.seed)
    log(f"crash harness: {a.binary}, seed {a.seed}, {a.kills} random kills, {a.default_kills} with default backoff, in {work}")
    failed = True   # until both phases have run
    try:
        failed = False
        for name, phase in (("random kills", random_kills), ("default backoff", default_backoff)):
            t0 = time.monotonic()
            figures, problems = phase(a, work, rng)
            shown = " ".join(f"{k}={v}" for k, v in figures.items())
            print(f"crash-harness {name}: {shown} seconds={time.monotonic() - t0:.0f}", flush=True)
            for line in problems[:40]:
                print(f"  FAIL: {line}", flush=True)
            failed |= bool(problems)
    finally:
        PROCS.end_all()
        if not a.keep and not failed:
            shutil.rmtree(work, ignore_errors=True)
        elif failed:
            print(f"crash-harness: work directory kept: {work} (seed {a.seed})", flush=True)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
