#!/usr/bin/env python3
"""tools/power-loss.py: the write protocols under strace, and every power loss
they could meet (issue #17).

For each scenario below, the real programs (the built `postern`, the
set-group-ID `postern-drop`, the daemon `postern run` against a scripted SMTP
peer on loopback, tools/reliability/peer.py) run on a temporary spool under
strace(1), and the system calls they made on the spool become a sequence of
file-system operations (tools/reliability/syscalls.py). Then:

 1. The protocol checker (tools/reliability/protocols.py) holds the sequence
    against spool-layout.md section 6: what must be fsynced before each
    commit point, what after it and before the program reports success, and,
    where the layout promises only process-crash durability (a deferral, the
    removal of a delivered message), only what it promises.
 2. For every cut point (before the first operation, and after each one),
    the crash states a power loss there could leave are built
    (tools/reliability/crashstates.py: what was fsynced is kept, what was not
    may be lost, in the model chosen with --model), each materialized as a
    real spool, and the real scanner is run on it: `postern check` (the
    offline repair, --temporary-age 0s so that leftovers of tmp/ go), then
    `postern list --json`. Each result must hold: the scanner did not fail or
    crash; no message a program had reported as accepted (and not yet
    finished) is missing or quarantined; every message left is whole (its
    bytes are those of a message a program wrote completely) with a valid
    envelope; tmp/ is clean; what a process crash alone leaves (nothing
    lost) is never quarantined; and each scenario's own promise (a hold
    survives once `postern hold` exits, a deleted message stays deleted, a
    failure recorded is not forgotten and its DSN is never lost). A delivered
    message that a power loss left half removed may be quarantined with its
    reason: it is counted (quarantined_not_owed), not failed.

Scenarios: drop (root's `postern drop`), drop-setgid (an outsider's
set-group-ID `postern-drop`), listener (a message through the daemon's SMTP
listener), listener-blank (three, each delivered before the next: the third
built in the first's directory, a blank), listener-blank-updated (the same with
each message deferred once first: the blank's envelope was swapped with its
spare, so its directory is fsynced when it is kept), accept-defer (the daemon accepts a trusted drop into queue/, the
peer answers 451: an envelope update), accept-batch (three at once),
adopt-defer (the same for an outsider's drop: adoption), deliver (accepted,
delivered, removed), reject-dsn (rejected with 550: the failure recorded,
the DSN dropped, accepted and delivered, the message removed), hold,
hold-reason, hold-all, release, delete, fail (`postern fail`: the failure
and its DSN), quarantine (`postern check` moving a damaged drop to
corrupt/).

Usage (as root; it enters a private mount namespace of its own):
  tools/power-loss.py --short --mutate   the structured crash states (tools/test.sh, about a minute)
  tools/power-loss.py --mutate           the full form (README's figures)
Options: --binary PATH (default .build/debug/postern, else release);
--model conservative|strict|ext4 (default conservative; see
tools/reliability/crashstates.py); --limit N (crash states per cut, default
256; --short 3, and no `postern list`); --scenario NAME (repeatable); --seed
N; --keep; --verbose (print each sequence); --mutate (each fsync of the drop
skipped in turn by strace's fault injection, then the syncfs of the
listener's first blanks made ahead: each mutant must fail);
--skip-fsync K (a mutant by hand: the K-th fsync of each recorded program
skipped, failures expected). Exit 0 when every check holds, 1 otherwise.
"""
import argparse
import os
import random
import shutil
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(HERE, "reliability"))
from world import enter_namespace  # noqa: E402
from syscalls import show  # noqa: E402
from crashstates import Sequence  # noqa: E402
from scenarios import REQUIRED, SCENARIOS, Bench  # noqa: E402
from scanner import CORRUPT_WORDS, judge, known_messages, scan  # noqa: E402
import protocols  # noqa: E402


def log(text):
    print(f"[{time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


def run_scenario(a, work, name, rng, totals, skip=None):
    """Records scenario `name`, checks its protocol and every crash state;
    returns its problems. `skip=(CALL, K)`: strace skips each thread's K-th
    CALL (`fsync`, `syncfs`; a mutation the checks must catch)."""
    b = Bench(a.binary, work, a.seed, name if skip is None else f"{name}-without-{skip[0]}-{skip[1]}")
    if skip is not None:
        b.strace_extra = ["-e", f"inject={skip[0]}:retval=0:when={skip[1]}"]
    problems = []
    try:
        ops, rules, opts = SCENARIOS[name](b)
        seq = Sequence(b.initial, ops, owners=opts.get("owners", lambda op: (0, 0)))
        instances, broken = protocols.check(seq, fsynced_delete=opts.get("fsynced_delete", False),
                                             reports=opts.get("reports", ()))
        problems += [f"protocol: {p}" for p in broken]
        kinds = {k for k, _, _ in instances}
        for k, what, verdict in instances:
            log(f"  {name}: {k} {what}: {verdict}")
        required = REQUIRED.get(name, set())
        if not required <= kinds:
            problems.append(f"protocol: the recording has no {', '.join(sorted(required - kinds))}")
        known = known_messages(seq)
        cache = {}
        states = 0
        failed_states = 0
        sampled = 0
        noted = []
        for cut in range(len(ops) + 1):
            found_states = seq.crash_states(cut, a.model, a.limit, rng)
            totals["sampled_cuts"] += seq.sampled
            sampled += seq.sampled
            for digest, (spool, how) in found_states.items():
                states += 1
                if digest not in cache:
                    dest = os.path.join(b.work, "state")
                    shutil.rmtree(dest, ignore_errors=True)
                    spool.materialize(dest)
                    cache[digest] = scan(b.binary, b.env, dest, listing=not a.short)
                found, notes = judge(cache[digest], known, rules, cut, opts.get("quarantine", set()))
                if notes and not [i for i in how["lost"] + how["torn"] if ops[i]["path"] != "lock"]:
                    # What a process crash leaves (nothing lost but the lock's pid) never quarantines.
                    found = found + [f"quarantined after a mere crash: {notes}"]
                elif notes:
                    totals["quarantined_not_owed"] += 1
                    if not noted:
                        noted.append(f"{name}: power loss after op {cut}, lost "
                                     f"{[show(ops[i]) for i in how['lost']]}: quarantined {notes}")
                        log(f"  note: {noted[-1]}")
                if found:
                    failed_states += 1
                    totals["lost"] += any(" lost" in p for p in found)
                    totals["corrupt"] += any(w in p for p in found for w in CORRUPT_WORDS)
                    if failed_states <= 5:
                        lost = [show(ops[i]) for i in how["lost"]]
                        torn = [show(ops[i]) for i in how["torn"]]
                        problems.append(f"power loss {f'after op {cut - 1} ({show(ops[cut - 1])})' if cut else 'before op 0'}, "
                                        f"lost {lost}{', torn ' + str(torn) if torn else ''}: {'; '.join(found)}")
        totals["sequences"] += 1
        totals["operations"] += len(ops)
        totals["cuts"] += len(ops) + 1
        totals["states"] += states
        totals["distinct"] += len(cache)
        totals["failed_states"] += failed_states
        totals["instances"] += len(instances)
        log(f"{name}: {len(ops)} operations, {len(ops) + 1} cuts, {states} crash states ({len(cache)} distinct), "
            f"{failed_states} failed; {sampled} cuts sampled; protocol instances {len(instances)}")
        if failed_states > 5:
            problems.append(f"... {failed_states} failed crash states in all")
        if a.verbose:
            for i, op in enumerate(ops):
                print(f"    {i:3d} {show(op)}", file=sys.stderr)
    except Exception as e:   # one scenario's failure to run is its problem, reported with the rest
        problems.append(f"could not run: {e!r}")
    finally:
        b.close()
    if skip is not None:
        return problems, b.injected
    return problems


def mutations(a, work, rng):
    """Each fsync of root's `postern drop` skipped in turn, and the `syncfs`
    that makes the listener's first blanks made ahead durable (strace's fault
    injection: the call returns 0 and does nothing, as if the line that makes
    it were deleted): the protocol checker and the crash states must each
    fail the mutant. Returns the problems (a mutant that got through)."""
    problems = []
    scratch = dict.fromkeys(("sequences", "operations", "cuts", "states", "distinct", "failed_states", "instances",
                             "lost", "corrupt", "quarantined_not_owed", "sampled_cuts"), 0)
    cases = [("drop", ("fsync", k)) for k in range(1, 5)] + [("listener-blank", ("syncfs", 1))]
    for number, (name, skip) in enumerate(cases, 1):
        found, skipped = run_scenario(a, work, name, rng, scratch, skip=skip)
        protocol = [p for p in found if p.startswith("protocol:")]
        states = [p for p in found if p.startswith("power loss")]
        what = f"{name}: {skipped[0]}" if skipped else f"{name}: nothing (no {skip[0]} number {skip[1]})"
        log(f"mutant {number}: {what} skipped: protocol checker {'caught it' if protocol else 'MISSED it'}, "
            f"crash states {'caught it' if states else 'MISSED it'}")
        for p in (protocol + states)[:2]:
            log(f"    {p}")
        if not skipped or not protocol or not states:
            problems.append(f"mutant {number} ({what} skipped) got through: protocol {bool(protocol)}, states {bool(states)}")
    return problems


def default_binary():
    root = os.path.dirname(HERE)
    for b in (f"{root}/.build/debug/postern", f"{root}/.build/release/postern"):
        if os.path.exists(b):
            return b
    sys.exit("power-loss: no built postern (swift build first)")


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                epilog=__doc__.split("\n\n", 1)[1], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--binary", help="the built postern (postern-drop beside it)")
    p.add_argument("--short", action="store_true", help="the structured crash states of each cut (tools/test.sh)")
    p.add_argument("--model", choices=("conservative", "strict", "ext4"), default="conservative",
                   help="what a power loss may keep (tools/reliability/crashstates.py)")
    p.add_argument("--limit", type=int, help="crash states per cut before sampling (256; --short 3)")
    p.add_argument("--scenario", action="append", choices=sorted(SCENARIOS))
    p.add_argument("--seed", type=int, default=int(time.time()) % 100000, help="of the sampling and the messages")
    p.add_argument("--keep", action="store_true", help="leave the work directory (kept anyway on a failure)")
    p.add_argument("--verbose", action="store_true", help="print each recorded sequence")
    p.add_argument("--skip-fsync", type=int, metavar="K",
                   help="a mutant by hand: strace skips the K-th fsync of each recorded program (expect failures)")
    p.add_argument("--mutate", action="store_true",
                   help="also skip each fsync of `postern drop` in turn, then the syncfs of the listener's first blanks "
                        "made ahead (strace -e inject): each mutant must fail")
    a = p.parse_args()
    a.binary = a.binary or default_binary()
    a.limit = a.limit or (3 if a.short else 256)
    enter_namespace()
    work = tempfile.mkdtemp(prefix="postern-powerloss-")
    rng = random.Random(a.seed)
    names = a.scenario or list(SCENARIOS)
    log(f"power loss: {a.binary}, model {a.model}, limit {a.limit} per cut, seed {a.seed}, in {work}")
    totals = dict.fromkeys(("sequences", "operations", "cuts", "states", "distinct", "failed_states", "instances",
                            "lost", "corrupt", "quarantined_not_owed", "sampled_cuts"), 0)
    failed = False
    t0 = time.monotonic()
    try:
        for name in names:
            if a.skip_fsync:
                problems, skipped = run_scenario(a, work, name, rng, totals, skip=("fsync", a.skip_fsync))
                log(f"{name}: skipped {skipped}")
            else:
                problems = run_scenario(a, work, name, rng, totals)
            for line in problems[:12]:
                print(f"  FAIL {name}: {line}", flush=True)
            failed |= bool(problems)
        if a.mutate:
            for line in mutations(a, work, rng):
                print(f"  FAIL mutation: {line}", flush=True)
                failed = True
    finally:
        if not a.keep and not failed:
            shutil.rmtree(work, ignore_errors=True)
        else:
            print(f"power-loss: work directory kept: {work} (seed {a.seed})", flush=True)
    shown = " ".join(f"{k}={v}" for k, v in totals.items())
    print(f"power-loss model={a.model}: {shown} seconds={time.monotonic() - t0:.0f}", flush=True)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
