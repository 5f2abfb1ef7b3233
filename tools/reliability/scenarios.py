"""The power-loss harness's scenarios (tools/power-loss.py): each prepares
a temporary spool (untraced), records what the real programs do to it under
strace, and says what every crash state of the recording must show once the
scanner has run: rules (first cut, last cut or None, rule), a rule taking
the scanner's view of the spool and returning a problem or None.

Messages are tools/bench/msgset.py's, numbered; the peer
(tools/reliability/peer.py) answers each as the mix a scenario gives it says.
"""
import json
import os
import re
import shutil
import signal
import smtplib
import subprocess
import time

from world import OUTSIDER, DROP_GROUP, recipient, sender
from peer import Peer
from msgset import message_bytes
from procs import free_port, port_open
from syscalls import Recorder, traced
from crashstates import Spool

SYSTEM_SPOOL = "/var/spool/postern"
MSGID = re.compile(rb"^Message-ID:\s*<([^>\r\n]+)>", re.I | re.M)


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
        # Blanks made ahead (spool-layout.md 6.4) two at a time, not 32: each
        # is made the same way, and every operation recorded multiplies the
        # crash states to check.
        self.env = dict(os.environ, POSTERN_CONFIG=self.config, POSTERN_TEST_BLANK_BATCH="2")
        self.run([self.binary, "init", "--spool", self.spool, "--drop-group", "nogroup"])
        self.peer = None
        self.mounted = False
        self.logs = 0
        self.strace_extra = []
        self.injected = []
        self.initial = None

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

    def daemon_cmd(self, extra=()):
        overrides = [f"relay=127.0.0.1:{self.peer.port}", "hostname=powerloss.test", "metrics.listen=",
                     "local.aliases="] + list(extra)
        return [self.binary, "run", "--spool", self.spool] + [a for o in overrides for a in ("-o", o)]

    # -- recording
    def trace_path(self):
        self.logs += 1
        return os.path.join(self.work, f"strace.{self.logs}")

    def snapshot(self):
        """The spool as the recording starts: the state every crash state is built on."""
        os.sync()
        self.initial = Spool.snapshot(self.spool)

    def record(self, cmd, stdin=None):
        """Runs `cmd` under strace; returns (exit status, operations, output)."""
        self.snapshot()
        path = self.trace_path()
        p = subprocess.run(traced(cmd, path, self.strace_extra), input=stdin, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           env=self.env, timeout=120)
        return p.returncode, self.parse(path), p.stdout.decode(errors="replace")

    def record_daemon(self, done, timeout=60, overrides=()):
        """Runs the daemon under strace until `done()` holds, then SIGTERM."""
        self.snapshot()
        path = self.trace_path()
        out = open(os.path.join(self.work, "daemon.log"), "ab")
        p = subprocess.Popen(traced(self.daemon_cmd(overrides), path, self.strace_extra), stdout=out, stderr=subprocess.STDOUT, env=self.env,
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


def _kept(b):
    """The finished messages' directories in tmp/ (blanks made ahead, 6.4, are there too, empty)."""
    def holds_a_message(name):
        try:
            return os.lstat(os.path.join(b.spool, "tmp", name, "message")).st_size > 0
        except OSError:
            return False
    return [name for name in b.ids("tmp") if holds_a_message(name)]


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


def _deferred(b, count=1):
    ids = b.ids("queue")
    return len(ids) == count and not b.ids("drop") and all(b.envelope("queue", i).get("attempts", 0) >= 1 for i in ids)


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


def sc_accept_batch(b):
    """Three trusted drops accepted together (one fsync of queue/ and drop/ for the batch, 6.3), each deferred."""
    b.start_peer({"defer": 100})
    for n in (20, 21, 22):
        b.run(b.drop_cmd(n), stdin=b.message(n))
    ops = b.record_daemon(lambda: _deferred(b, count=3))
    return ops, [(0, None, present(b, n, ("drop", "queue"))) for n in (20, 21, 22)], {}


def sc_listener(b):
    """A message through the daemon's SMTP listener (6.1, "Straight into the queue"): committed by its
    rename from tmp/ into queue/ and durable before the 250 after the final dot; then deferred."""
    b.start_peer({"defer": 100})
    port = free_port()
    n = 26
    message = b.message(n).replace(b"\n", b"\r\n")

    def send():
        with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
            client.sendmail(sender(n), [recipient(n)], message)
        return True
    sent = {}

    def done():
        if not sent and port_open(port):
            sent["ok"] = send()
        return sent and _deferred(b)
    ops = b.record_daemon(done, overrides=[f'smtp.listen=["127.0.0.1:{port}"]'])
    replied = _first(ops, lambda op: op["op"] == "reply" and op["code"] == 250 and "queued" in op["text"].lower())
    if replied is None:
        raise RuntimeError("the listener's 250 after the final dot was not recorded: "
                           f"{[op['text'] for op in ops if op['op'] == 'reply']}")
    return ops, [(replied + 1, None, present(b, n, ("drop", "queue")))], {"reports": ("reply",)}


def sc_listener_blank(b):
    """Three messages through the listener, each delivered before the next arrives: the first's
    directory, emptied (a blank, 6.4), is handed out once the second's commit has fsynced queue/
    (its removal is then durable), and the third is built in it by the same durable steps (files
    opened truncated instead of created, its directory not fsynced: its entries are durable),
    committed by the rename into queue/."""
    return _through_a_blank(b, {"accept": 100}, (27, 28, 29))


def sc_listener_blank_updated(b):
    """The same, each message deferred once (an envelope update swaps the envelope with its spare,
    6.2, without fsync) and delivered on its retry a second later: the first's directory is kept as
    a blank only once its spare is removed and the directory fsynced (6.4), since the third, built
    in it, fsyncs its files but not that directory (6.1 step 4)."""
    return _through_a_blank(b, {"defer-once": 100}, (30, 31, 32),
                            overrides=("queue.backoff_base=1s", "queue.jitter=0s"), updated=True)


def _through_a_blank(b, mix, numbers, overrides=(), updated=False):
    """Three messages through the listener, each sent once the one before is delivered; the second
    must be built in a blank made ahead (the first, finding none, had them made), the third in the
    first's directory."""
    b.start_peer(mix)
    port = free_port()
    sent = []

    def send(n):
        with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
            client.sendmail(sender(n), [recipient(n)], b.message(n).replace(b"\n", b"\r\n"))
        sent.append(n)

    def delivered():
        return sum(1 for e in b.peer.snapshot() if e[0] == "final" and e[3] == 250)

    def done():
        if not sent:
            if port_open(port):
                send(numbers[0])
        elif len(sent) < 3 and delivered() == len(sent) and _empty(b, "queue") and len(_kept(b)) == len(sent):
            send(numbers[len(sent)])   # the earlier ones' directories wait in tmp/ as blanks
        return len(sent) == 3 and delivered() == 3 and _empty(b, "queue", "drop")
    ops = b.record_daemon(done, overrides=[f'smtp.listen=["127.0.0.1:{port}"]', *overrides])
    replies = [i for i, op in enumerate(ops) if op["op"] == "reply" and op["code"] == 250 and "queued" in op["text"].lower()]
    removals = [i for i, op in enumerate(ops) if op["op"] == "rename" and op["path"].startswith("queue/")
                and op["to"].startswith("tmp/")]
    if len(replies) != 3 or len(removals) != 3:
        raise RuntimeError(f"expected three 250s and three removals, saw {len(replies)} and {len(removals)}")
    blank = ops[removals[0]]["to"]
    if updated and _first(ops, lambda op: op["op"] == "unlink" and op["path"] == blank + "/envelope.json.tmp") is None:
        raise RuntimeError(f"the spare of {blank} was not removed: no update was recorded")
    if _first(ops[removals[0]:], lambda op: op["op"] == "rename" and op["path"] == blank and op["to"].startswith("queue/")) is None:
        raise RuntimeError(f"no later message was built in the blank {blank}")
    # The second came while the first's blank was not ready yet: it was built in one made ahead,
    # a directory made in tmp/ under a name no message had (a message's own is named by its ID).
    commits = [op for op in ops if op["op"] == "rename" and op["path"].startswith("tmp/") and op["to"].startswith("queue/")]
    ids = {"tmp/" + op["to"][len("queue/"):] for op in commits}
    made = {op["path"] for op in ops if op["op"] == "mkdir" and op["path"].startswith("tmp/")} - ids
    if len(commits) != 3 or commits[1]["path"] not in made:
        raise RuntimeError(f"the second message was not built in a blank made ahead: {commits[1:2]}")
    return ops, [(reply + 1, removal, present(b, n, ("queue",)))
                 for reply, removal, n in zip(replies, removals, numbers)], {"reports": ("reply",)}


def sc_hold_all(b):
    """`postern hold --all` of three messages: renamed, then both areas fsynced once before it answers (6.3)."""
    for n in (23, 24, 25):
        b.run(b.drop_cmd(n), stdin=b.message(n))
    b.postern("kick", "--all")
    status, ops, out = b.record([b.binary, "hold", "--all", "--spool", b.spool])
    _expect_ok(status, out, "postern hold --all")
    done = _exit_cut(ops)
    return ops, [rule for n in (23, 24, 25) for rule in
                 ((0, done, present(b, n, ("queue", "hold"))), (done, None, present(b, n, ("hold",))))], {}


def _command(b, n, verb, *args, held=False):
    """Records `postern VERB ID ARGS` on message n (queued, or held); returns (ops, the cut after its exit)."""
    qid = _queued(b, n, hold=held)
    status, ops, out = b.record([b.binary, verb, qid, *args, "--spool", b.spool])
    _expect_ok(status, out, f"postern {verb}")
    return ops, _exit_cut(ops)


def _moved(b, n, verb, to, *args, held=False):
    """A move by a command: in either area until it exits, in `to` from then on (6.3: fsynced before it answers)."""
    ops, done = _command(b, n, verb, *args, held=held)
    return ops, [(0, done, present(b, n, ("queue", "hold"))), (done, None, present(b, n, (to,)))], {}


def sc_hold(b):
    return _moved(b, 7, "hold", "hold")


def sc_hold_reason(b):
    return _moved(b, 8, "hold", "hold", "--reason", "checked by hand")


def sc_release(b):
    return _moved(b, 9, "release", "queue", held=True)


def sc_delete(b):
    ops, done = _command(b, 10, "delete")
    return ops, [(0, done, present(b, 10, ("queue",), optional=True)), (done, None, absent(b, 10))], \
        {"fsynced_delete": True}


def sc_fail(b):
    ops, done = _command(b, 11, "fail", "--reason", "given up by hand")
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
    "accept-batch": sc_accept_batch, "listener": sc_listener, "listener-blank": sc_listener_blank,
    "listener-blank-updated": sc_listener_blank_updated,
    "deliver": sc_deliver, "reject-dsn": sc_reject_dsn, "hold": sc_hold, "hold-all": sc_hold_all,
    "hold-reason": sc_hold_reason,
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
            if optional or any(q["msgid"] == _msgid(b.seed, n) for q in view["corrupt"]):
                return None   # quarantined: the judge counts that as corrupt, not lost
            return f"message {n} lost (accepted, in none of {', '.join(areas)})"
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


REQUIRED = {
    "drop": {"commit"}, "drop-setgid": {"commit"}, "accept-defer": {"move", "update"},
    "adopt-defer": {"commit", "update", "adoption"}, "deliver": {"move", "remove"},
    "accept-batch": {"move", "update"}, "listener": {"commit", "update"}, "listener-blank": {"commit", "remove"},
    "listener-blank-updated": {"commit", "update", "remove"}, "hold-all": {"move"},
    "reject-dsn": {"move", "update", "commit", "remove"}, "hold": {"move"}, "hold-reason": {"move", "update"},
    "release": {"move"}, "delete": {"remove"}, "fail": {"update", "commit"}, "quarantine": {"quarantine"},
}
