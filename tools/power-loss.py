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
    crash; no message a program had reported as accepted is missing; nothing
    is quarantined (except the damaged drop of the quarantine scenario);
    every message left is whole (its bytes are those of a message a program
    wrote completely) with a valid envelope; tmp/ is clean; and each
    scenario's own promise (a hold survives once `postern hold` exits, a
    deleted message stays deleted, a failure recorded is not forgotten and
    its DSN is never lost).

Scenarios: drop (root's `postern drop`), drop-setgid (an outsider's
set-group-ID `postern-drop`), accept-defer (the daemon accepts a trusted drop
into queue/, the peer answers 451: an envelope update), adopt-defer (the same
for an outsider's drop: adoption), deliver (accepted, delivered, removed),
reject-dsn (rejected with 550: the failure recorded, the DSN dropped,
accepted and delivered, the message removed), hold, hold-reason, release,
delete, fail (`postern fail`: the failure and its DSN), quarantine (`postern
check` moving a damaged drop to corrupt/).

Usage (as root; it enters a private mount namespace of its own):
  tools/power-loss.py --short        the structured crash states only (tools/test.sh, about 30 s)
  tools/power-loss.py                the full form (README's figures)
Options: --binary PATH (default .build/debug/postern, else release), --model
conservative|strict|ext4 (default conservative; tools/reliability/crashstates.py), --limit N (crash states per cut, default 256;
--short 3, and no `postern list`), --scenario NAME (repeatable), --seed N, --keep, --verbose
(print each sequence), --mutate (each fsync of the drop skipped in turn: each
mutant must fail), --skip-fsync K (a mutant by hand: the K-th fsync of each
recorded program skipped). Exit 0 when
every check holds, 1 otherwise.
"""
import argparse
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(HERE, "reliability"))
from world import OUTSIDER, DROP_GROUP, enter_namespace, recipient, sender  # noqa: E402
from peer import Peer  # noqa: E402
from msgset import message_bytes  # noqa: E402
from syscalls import Recorder, show, traced  # noqa: E402
from crashstates import Sequence, Spool  # noqa: E402
import protocols  # noqa: E402

SYSTEM_SPOOL = "/var/spool/postern"
_MSGID = re.compile(rb"^Message-ID:\s*<([^>\r\n]+)>", re.I | re.M)


def log(text):
    print(f"[{time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


class Bench:
    """One scenario's world: a temporary spool, its configuration, the peer."""

    def __init__(self, binary, work, seed, name):
        self.binary = os.path.abspath(binary)
        self.work = os.path.join(work, name)
        self.seed = seed
        self.spool = os.path.join(self.work, "spool")
        os.makedirs(self.work)
        os.chmod(self.work, 0o755)
        self.config = os.path.join(self.work, "postern.toml")
        with open(self.config, "w") as f:
            f.write("# the power-loss harness: defaults, the rest through -o\n")
        self.env = dict(os.environ, POSTERN_CONFIG=self.config)
        self.run([self.binary, "init", "--spool", self.spool, "--drop-group", "nogroup"])
        self.peer = None
        self.mounted = False
        self.logs = 0
        self.strace_extra = []
        self.injected = []

    def run(self, cmd, stdin=None, check=True):
        p = subprocess.run(cmd, input=stdin, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=self.env,
                           timeout=120)
        if check and p.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} exited {p.returncode}: {p.stdout.decode(errors='replace')[-800:]}")
        return p

    def postern(self, *args, check=True):
        return self.run([self.binary, *args, "--spool", self.spool], check=check)

    def mount(self):
        """The set-group-ID drop writes to /var/spool/postern: this spool, in the namespace."""
        os.makedirs("/etc/postern", exist_ok=True)
        subprocess.run(["mount", "--bind", self.spool, SYSTEM_SPOOL], check=True)
        subprocess.run(["mount", "-t", "tmpfs", "none", "/etc/postern"], check=True)
        self.mounted = True
        sgid = os.path.join(self.work, "postern-drop-sgid")
        shutil.copy(os.path.join(os.path.dirname(self.binary), "postern-drop"), sgid)
        os.chown(sgid, 0, DROP_GROUP)
        os.chmod(sgid, 0o2755)
        return sgid

    def close(self):
        if self.peer:
            self.peer.stop()
        if self.mounted:
            for path in ("/etc/postern", SYSTEM_SPOOL):
                subprocess.run(["umount", "-l", path], check=False)

    def drop_cmd(self, n, setgid=None):
        args = ["-i", "-f", sender(n), recipient(n)]
        if setgid:
            return ["setpriv", "--reuid", str(OUTSIDER), "--regid", str(OUTSIDER), "--clear-groups", "--",
                    setgid] + args
        return [self.binary, "drop", "--spool", self.spool] + args

    def message(self, n):
        return message_bytes(n, 1500, self.seed)

    def ids(self, area):
        return sorted(os.listdir(os.path.join(self.spool, area)))

    def start_peer(self, mix):
        self.peer = Peer(self.seed, mix).start()
        return self.peer

    def daemon_cmd(self):
        overrides = [f"relay=127.0.0.1:{self.peer.port}", "hostname=powerloss.test", "metrics.listen=",
                     "local.aliases="]
        return [self.binary, "run", "--spool", self.spool] + [a for o in overrides for a in ("-o", o)]

    # -- recording
    def trace_path(self):
        self.logs += 1
        return os.path.join(self.work, f"strace.{self.logs}")

    def record(self, cmd, stdin=None):
        """Runs `cmd` under strace; returns (exit status, operations)."""
        path = self.trace_path()
        p = subprocess.run(traced(cmd, path, self.strace_extra), input=stdin, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           env=self.env, timeout=120)
        return p.returncode, self.parse(path), p.stdout.decode(errors="replace")

    def record_daemon(self, done, timeout=60):
        """Runs the daemon under strace until `done()` holds, then SIGTERM."""
        path = self.trace_path()
        out = open(os.path.join(self.work, "daemon.log"), "ab")
        p = subprocess.Popen(traced(self.daemon_cmd(), path, self.strace_extra), stdout=out, stderr=subprocess.STDOUT, env=self.env,
                             start_new_session=True)
        try:
            deadline = time.monotonic() + timeout
            while not done():
                if p.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"the daemon did not get there (exit {p.poll()}); see {self.work}/daemon.log")
                time.sleep(0.05)
            child = _child_of(p.pid)
            if child:
                os.kill(child, signal.SIGTERM)
            p.wait(timeout=60)
        finally:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()
            out.close()
        return self.parse(path)

    def parse(self, path):
        recorder = Recorder([self.spool, SYSTEM_SPOOL] if self.mounted else [self.spool])
        ops = recorder.parse(path)
        self.injected += recorder.injected
        return ops

    def envelope(self, area, qid):
        with open(os.path.join(self.spool, area, qid, "envelope.json")) as f:
            return json.load(f)


def _child_of(pid):
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            kids = f.read().split()
        return int(kids[0]) if kids else None
    except OSError:
        return None


def _empty(b, *areas):
    return all(not b.ids(a) for a in areas)


# -- scenarios: each prepares (untraced), records, and says what every crash state must show.
# A scenario returns (ops, rules, owners, options); a rule is (first cut, last cut, check(view) -> problem or None).

def sc_drop(b):
    status, ops, out = b.record(b.drop_cmd(1), stdin=b.message(1))
    if status != 0:
        raise RuntimeError(f"postern drop exited {status}: {out}")
    done = _exit_cut(ops)
    return ops, [(done, None, present(b, 1, ("drop",)))], {}


def sc_drop_setgid(b):
    sgid = b.mount()
    status, ops, out = b.record(b.drop_cmd(2, sgid), stdin=b.message(2))
    if status != 0:
        raise RuntimeError(f"postern-drop exited {status}: {out}")
    done = _exit_cut(ops, last=True)
    owners = lambda op: (OUTSIDER, DROP_GROUP)  # noqa: E731 (every operation is the outsider's)
    return ops, [(done, None, present(b, 2, ("drop",)))], {"owners": owners}


def _deferred(b):
    ids = b.ids("queue")
    return bool(ids) and not b.ids("drop") and b.envelope("queue", ids[0]).get("attempts", 0) >= 1


def sc_accept_defer(b):
    b.start_peer({"defer": 100})
    b.run(b.drop_cmd(3), stdin=b.message(3))
    ops = b.record_daemon(lambda: _deferred(b))
    return ops, [(0, None, present(b, 3, ("drop", "queue")))], {}


def sc_adopt_defer(b):
    sgid = b.mount()
    b.start_peer({"defer": 100})
    b.run(b.drop_cmd(4, sgid), stdin=b.message(4))
    ops = b.record_daemon(lambda: _deferred(b))
    return ops, [(0, None, present(b, 4, ("drop", "queue")))], {}


def sc_deliver(b):
    b.start_peer({"accept": 100})
    b.run(b.drop_cmd(5), stdin=b.message(5))
    ops = b.record_daemon(lambda: any(e[0] == "final" and e[3] == 250 for e in b.peer.snapshot())
                          and _empty(b, "queue", "drop", "tmp"))
    delivered = _first(ops, lambda op: op["op"] == "rename" and op["path"].startswith("queue/")
                       and op["to"].startswith("tmp/"))
    return ops, [(0, delivered, present(b, 5, ("drop", "queue"))),
                 (delivered, None, present(b, 5, ("queue",), optional=True))], {}


def sc_reject_dsn(b):
    b.start_peer({"reject-rcpt": 100})
    b.run(b.drop_cmd(6), stdin=b.message(6))
    ops = b.record_daemon(lambda: any(e[0] == "dsn" for e in b.peer.snapshot())
                          and _empty(b, "queue", "drop", "tmp"))
    qid = _first_id(ops, "queue/")
    # The failure must be on disk before the daemon goes on to drop its DSN
    # (the DSN's mkdir in tmp/); the original is removed once the DSN has
    # committed; the DSN leaves once the peer took it.
    recorded = _first(ops, lambda op: op["op"] == "mkdir" and op["path"].startswith("tmp/"))
    removed = _first(ops, lambda op: op["op"] == "rename" and op["path"] == f"queue/{qid}")
    dsn_gone = _first(ops, lambda op: op["op"] == "rename" and op["path"].startswith("queue/")
                      and op["path"] != f"queue/{qid}" and op["to"].startswith("tmp/"))
    return ops, [(0, removed, present(b, 6, ("drop", "queue"))),
                 (recorded, None, failure_kept(b, 6)),
                 (recorded, dsn_gone, dsn_owed(b, 6))], {}


def _queued(b, n, hold=False):
    """Message n dropped and accepted into queue/ (or hold/) by the commands themselves (no daemon)."""
    b.run(b.drop_cmd(n), stdin=b.message(n))
    b.postern("kick", "--all")
    if hold:
        b.postern("hold", "--all")
    return (b.ids("hold") if hold else b.ids("queue"))[0]


def sc_hold(b):
    qid = _queued(b, 7)
    status, ops, out = b.record([b.binary, "hold", qid, "--spool", b.spool])
    _expect_ok(status, out, "postern hold")
    done = _exit_cut(ops)
    return ops, [(0, done, present(b, 7, ("queue", "hold"))), (done, None, present(b, 7, ("hold",)))], {}


def sc_hold_reason(b):
    qid = _queued(b, 8)
    status, ops, out = b.record([b.binary, "hold", qid, "--reason", "checked by hand", "--spool", b.spool])
    _expect_ok(status, out, "postern hold --reason")
    done = _exit_cut(ops)
    return ops, [(0, done, present(b, 8, ("queue", "hold"))), (done, None, present(b, 8, ("hold",)))], {}


def sc_release(b):
    qid = _queued(b, 9, hold=True)
    status, ops, out = b.record([b.binary, "release", qid, "--spool", b.spool])
    _expect_ok(status, out, "postern release")
    done = _exit_cut(ops)
    return ops, [(0, done, present(b, 9, ("queue", "hold"))), (done, None, present(b, 9, ("queue",)))], {}


def sc_delete(b):
    qid = _queued(b, 10)
    status, ops, out = b.record([b.binary, "delete", qid, "--spool", b.spool])
    _expect_ok(status, out, "postern delete")
    done = _exit_cut(ops)
    return ops, [(0, done, present(b, 10, ("queue",), optional=True)), (done, None, absent(b, 10))], \
        {"fsynced_delete": True}


def sc_fail(b):
    qid = _queued(b, 11)
    status, ops, out = b.record([b.binary, "fail", qid, "--reason", "given up by hand", "--spool", b.spool])
    _expect_ok(status, out, "postern fail")
    done = _exit_cut(ops)
    return ops, [(0, None, present(b, 11, ("queue",))),
                 (done, None, failure_kept(b, 11)), (done, None, dsn_owed(b, 11))], {}


def sc_quarantine(b):
    b.run(b.drop_cmd(12), stdin=b.message(12))
    qid = b.ids("drop")[0]
    with open(os.path.join(b.spool, "drop", qid, "message"), "ab") as f:
        f.write(b"one octet too many\r\n")   # the size no longer matches the envelope: damage
    os.sync()
    status, ops, out = b.record([b.binary, "check", "--spool", b.spool])
    if status != 65:
        raise RuntimeError(f"postern check exited {status} (65 expected: one quarantined): {out}")
    done = _exit_cut(ops)
    return ops, [(done, None, quarantined(qid))], {"quarantine": {qid}}


SCENARIOS = {
    "drop": sc_drop, "drop-setgid": sc_drop_setgid, "accept-defer": sc_accept_defer, "adopt-defer": sc_adopt_defer,
    "deliver": sc_deliver, "reject-dsn": sc_reject_dsn, "hold": sc_hold, "hold-reason": sc_hold_reason,
    "release": sc_release, "delete": sc_delete, "fail": sc_fail, "quarantine": sc_quarantine,
}


def _expect_ok(status, out, what):
    if status != 0:
        raise RuntimeError(f"{what} exited {status}: {out}")


def _first(ops, pred):
    return next((i for i, op in enumerate(ops) if pred(op)), None)


def _first_id(ops, prefix):
    for op in ops:
        for key in ("path", "to"):
            p = op.get(key) or ""
            if p.startswith(prefix) and len(p.split("/")) >= 2:
                return p.split("/")[1]
    raise RuntimeError(f"no {prefix} entry in the recording")


def _exit_cut(ops, last=False):
    """The first cut at which the program had reported: after its exit."""
    exits = [i for i, op in enumerate(ops) if op["op"] == "exit"]
    if not exits:
        raise RuntimeError("the program's exit was not recorded")
    return (exits[-1] if last else exits[0]) + 1


# -- what a crash state must show (after the scanner), by message number
def _msgid(seed, n):
    return f"bench-{seed}-{n}@example.org".encode()


def _find(view, seed, n):
    return [m for m in view["messages"] if m["msgid"] == _msgid(seed, n) and m["envelope"].get("sender") != ""]


def present(b, n, areas, optional=False):
    def rule(view):
        found = _find(view, b.seed, n)
        if not found:
            return None if optional else f"message {n} lost (accepted, in none of {', '.join(areas)})"
        if len(found) > 1:
            return f"message {n} found {len(found)} times: {[m['area'] for m in found]}"
        if found[0]["area"] not in areas:
            return f"message {n} in {found[0]['area']}/, expected {' or '.join(areas)}"
        return None
    rule.owed = None if optional else _msgid(b.seed, n)
    return rule


def absent(b, n):
    def rule(view):
        found = _find(view, b.seed, n)
        return f"message {n} deleted, but back in {found[0]['area']}/" if found else None
    return rule


def failure_kept(b, n):
    """A permanent failure once recorded is not forgotten: the message, while it is there, says failed."""
    def rule(view):
        for m in _find(view, b.seed, n):
            states = [r.get("state", "pending") for r in m["envelope"].get("recipients", [])]
            if "pending" in states:
                return f"message {n}: its recorded failure is lost (recipient pending again)"
        return None
    return rule


def dsn_owed(b, n):
    """The failure DSN is never lost: the mark (dsn_pending) or the DSN itself is in the spool."""
    def rule(view):
        marked = any(m["envelope"].get("dsn_pending") for m in _find(view, b.seed, n))
        dsn = any(m["envelope"].get("sender") == "" and _msgid(b.seed, n) in m["message"] for m in view["messages"])
        return None if marked or dsn else f"message {n}: its failure DSN is lost (no dsn_pending mark, no DSN)"
    return rule


def quarantined(qid):
    def rule(view):
        return None if any(q["name"].split(".")[0] == qid and "reason:" in q["reason"] for q in view["corrupt"]) \
            else f"the damaged drop {qid} is not in corrupt/ with a reason"
    return rule


# -- the scanner on one crash state
def scan(binary, env, spool, listing=True):
    """Runs `postern check` (repairing) and `postern list --json` on `spool`
    (not with listing=False, the short form); what is there after."""
    check = subprocess.run([binary, "check", "--spool", spool, "--temporary-age", "0s"], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, env=env, timeout=60)
    view = {"check": check.returncode, "check_output": check.stdout.decode(errors="replace"),
            "list": 0, "listed": None, "messages": [], "corrupt": [], "tmp": [], "damage": []}
    if not listing:
        return _read_spool(spool, view)
    listing = subprocess.run([binary, "list", "--json", "--spool", spool], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, env=env, timeout=60)
    view.update(list=listing.returncode, listed=set())
    for line in listing.stdout.decode(errors="replace").splitlines():
        try:
            view["listed"].add(json.loads(line)["id"])
        except (ValueError, KeyError):
            view["damage"].append(f"postern list printed a line that is not an entry: {line[:100]}")
    return _read_spool(spool, view)


def _read_spool(spool, view):
    for area in ("queue", "hold", "drop"):
        for name in sorted(os.listdir(os.path.join(spool, area))):
            d = os.path.join(spool, area, name)
            try:
                with open(os.path.join(d, "message"), "rb") as f:
                    message = f.read()
                with open(os.path.join(d, "envelope.json"), "rb") as f:
                    envelope = json.loads(f.read())
            except (OSError, ValueError) as e:
                view["damage"].append(f"{area}/{name} left unreadable by the scanner: {e}")
                continue
            found = _MSGID.search(message)
            view["messages"].append({"area": area, "id": name, "message": message, "envelope": envelope,
                                     "msgid": found.group(1) if found else None})
    for name in sorted(os.listdir(os.path.join(spool, "corrupt"))):
        try:
            with open(os.path.join(spool, "corrupt", name, "reason"), errors="replace") as f:
                reason = f.read()
        except OSError:
            reason = ""
        entry = os.path.join(spool, "corrupt", name, "entry")
        msgid = None
        try:
            with open(os.path.join(entry, "message"), "rb") as f:
                found = _MSGID.search(f.read())
                msgid = found.group(1) if found else None
        except OSError:
            pass
        view["corrupt"].append({"name": name, "reason": reason, "msgid": msgid,
                                "entry": os.path.lexists(entry)})
    # What check left in tmp/: only entries whose newest time is still to
    # come (a registration mark, 6.2) may stay; everything else is removed.
    now = time.time_ns()
    for name in os.listdir(os.path.join(spool, "tmp")):
        newest = 0
        for base, dirs, files in os.walk(os.path.join(spool, "tmp", name)):
            for entry in [base] + [os.path.join(base, f) for f in files]:
                newest = max(newest, os.lstat(entry).st_mtime_ns)
        if newest <= now:
            view["tmp"].append(name)
    return view


def judge(view, known, rules, cut, quarantine):
    """The problems of one crash state after the scanner."""
    problems = list(view["damage"])
    if view["check"] not in (0, 65) or "Fatal error" in view["check_output"]:
        problems.append(f"postern check exited {view['check']}: {view['check_output'].strip()[-300:]}")
    if view["list"] != 0:
        problems.append(f"postern list exited {view['list']}")
    # The quarantine scenario's damaged drop may be in corrupt/ under its
    # name, or NAME.1 beside a NAME/ that a power loss cut short (section 8).
    # A quarantine is corruption when it took mail owed at this cut (a message
    # a program had reported accepted and not yet finished); anything else
    # quarantined (a finished message half removed, the damaged drop of the
    # quarantine scenario) is set aside with its reason, which is allowed,
    # and counted.
    owed = {getattr(rule, "owed", None) for first, last, rule in rules
            if cut >= first and (last is None or cut <= last)} - {None}
    notes = []
    for q in view["corrupt"]:
        why = q["reason"].splitlines()[0] if q["reason"] else "no reason"
        if q["msgid"] in owed:
            problems.append(f"accepted message quarantined: {q['name']}: {why}")
        elif q["name"].split(".")[0] not in quarantine and q["entry"]:
            notes.append(f"{q['name']}: {why}")
    if view["tmp"]:
        problems.append(f"tmp/ not cleaned: {view['tmp']}")
    for m in view["messages"]:
        if bytes(m["message"]) not in known:
            problems.append(f"{m['area']}/{m['id']}: a message that was never written whole ({len(m['message'])} octets)")
        if view["listed"] is not None and m["id"] not in view["listed"]:
            problems.append(f"{m['area']}/{m['id']} not listed by postern list")
        if m["envelope"].get("size") != len(m["message"]):
            problems.append(f"{m['area']}/{m['id']}: size {m['envelope'].get('size')} but {len(m['message'])} octets")
    for first, last, rule in rules:
        if cut >= first and (last is None or cut <= last):
            p = rule(view)
            if p:
                problems.append(p)
    return problems, notes


def known_messages(seq):
    """The bytes of every message file complete at some point: the initial
    spool's, and each file named `message` as it ended up."""
    known = set()
    for spool in (seq.initial, seq.final):
        for node in spool.nodes.values():
            if node.kind == "dir":
                for name, ino in node.entries.items():
                    if name == "message":
                        known.add(bytes(spool.nodes[ino].data))
    for b, op in zip(seq.bound, seq.ops):
        if op["op"] == "create" and op["path"].endswith("/message") and "ino" in b:
            known.add(bytes(seq.final.nodes[b["ino"]].data))
    return known


def run_scenario(a, work, name, rng, totals, skip_fsync=None):
    """Records scenario `name`, checks its protocol and every crash state;
    returns its problems. `skip_fsync=K`: strace skips the program's K-th
    fsync (a mutation the checks must catch)."""
    b = Bench(a.binary, work, a.seed, name if skip_fsync is None else f"{name}-without-fsync-{skip_fsync}")
    if skip_fsync is not None:
        b.strace_extra = ["-e", f"inject=fsync:retval=0:when={skip_fsync}"]
    problems = []
    try:
        os.sync()
        initial_holder = {}

        # The spool as it is before the recording starts is the initial state:
        # record() and record_daemon() begin right after the preparation, so
        # the snapshot is taken by wrapping them.
        def snap(fn):
            def wrapped(*args, **kw):
                os.sync()
                initial_holder["spool"] = Spool.snapshot(b.spool)
                return fn(*args, **kw)
            return wrapped
        b.record, b.record_daemon = snap(b.record), snap(b.record_daemon)
        ops, rules, opts = SCENARIOS[name](b)
        seq = Sequence(initial_holder["spool"], ops, owners=opts.get("owners", lambda op: (0, 0)))
        instances, broken = protocols.check(seq, fsynced_delete=opts.get("fsynced_delete", False))
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
        noted = []
        for cut in range(len(ops) + 1):
            for digest, (spool, how) in seq.crash_states(cut, a.model, a.limit, rng).items():
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
            f"{failed_states} failed; protocol instances {len(instances)}")
        if failed_states > 5:
            problems.append(f"... {failed_states} failed crash states in all")
        if a.verbose:
            for i, op in enumerate(ops):
                print(f"    {i:3d} {show(op)}", file=sys.stderr)
    except Exception as e:   # one scenario's failure to run is its problem, reported with the rest
        problems.append(f"could not run: {e!r}")
    finally:
        b.close()
    if skip_fsync is not None:
        return problems, b.injected
    return problems


def mutations(a, work, rng):
    """Each fsync of root's `postern drop` skipped in turn (strace's fault
    injection: the call returns 0 and does nothing, as if the line that makes
    it were deleted): the protocol checker and the crash states must each
    fail the mutant. Returns the problems (a mutant that got through)."""
    problems = []
    scratch = dict.fromkeys(("sequences", "operations", "cuts", "states", "distinct", "failed_states", "instances",
                             "lost", "corrupt", "quarantined_not_owed"), 0)
    for k in range(1, 5):
        found, skipped = run_scenario(a, work, "drop", rng, scratch, skip_fsync=k)
        protocol = [p for p in found if p.startswith("protocol:")]
        states = [p for p in found if p.startswith("power loss")]
        what = skipped[0] if skipped else "nothing (no such fsync)"
        log(f"mutant {k}: {what} skipped: protocol checker {'caught it' if protocol else 'MISSED it'}, "
            f"crash states {'caught it' if states else 'MISSED it'}")
        for p in (protocol + states)[:2]:
            log(f"    {p}")
        if not skipped or not protocol or not states:
            problems.append(f"mutant {k} ({what} skipped) got through: protocol {bool(protocol)}, states {bool(states)}")
    return problems


CORRUPT_WORDS = ("quarantined:", "never written whole", "unreadable", "size ", "not an entry")

REQUIRED = {
    "drop": {"commit"}, "drop-setgid": {"commit"}, "accept-defer": {"move", "update"},
    "adopt-defer": {"commit", "update", "adoption"}, "deliver": {"move", "remove"},
    "reject-dsn": {"move", "update", "commit", "remove"}, "hold": {"move"}, "hold-reason": {"move", "update"},
    "release": {"move"}, "delete": {"remove"}, "fail": {"update", "commit"}, "quarantine": {"quarantine"},
}


def default_binary():
    root = os.path.dirname(HERE)
    for b in (f"{root}/.build/debug/postern", f"{root}/.build/release/postern"):
        if os.path.exists(b):
            return b
    sys.exit("power-loss: no built postern (swift build first)")


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                epilog=__doc__.split("\n\n", 1)[1], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--binary")
    p.add_argument("--short", action="store_true", help="few crash states per cut (tools/test.sh)")
    p.add_argument("--model", choices=("conservative", "strict", "ext4"), default="conservative",
                   help="what a power loss may keep (tools/reliability/crashstates.py)")
    p.add_argument("--limit", type=int)
    p.add_argument("--scenario", action="append", choices=sorted(SCENARIOS))
    p.add_argument("--seed", type=int, default=int(time.time()) % 100000)
    p.add_argument("--keep", action="store_true")
    p.add_argument("--verbose", action="store_true", help="print each recorded sequence")
    p.add_argument("--skip-fsync", type=int, metavar="K",
                   help="a mutant by hand: strace skips the K-th fsync of each recorded program (expect failures)")
    p.add_argument("--mutate", action="store_true",
                   help="also skip each fsync of `postern drop` in turn (strace -e inject): each mutant must fail")
    a = p.parse_args()
    a.binary = a.binary or default_binary()
    a.limit = a.limit or (3 if a.short else 256)
    enter_namespace()
    work = tempfile.mkdtemp(prefix="postern-powerloss-")
    rng = random.Random(a.seed)
    names = a.scenario or list(SCENARIOS)
    log(f"power loss: {a.binary}, model {a.model}, limit {a.limit} per cut, seed {a.seed}, in {work}")
    totals = dict.fromkeys(("sequences", "operations", "cuts", "states", "distinct", "failed_states", "instances",
                            "lost", "corrupt", "quarantined_not_owed"), 0)
    failed = False
    t0 = time.monotonic()
    try:
        for name in names:
            if a.skip_fsync:
                problems, skipped = run_scenario(a, work, name, rng, totals, skip_fsync=a.skip_fsync)
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
