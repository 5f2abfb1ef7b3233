"""The crash and soak harnesses' world: a temporary spool, the real daemon
(`postern run`) on it, drops through both of Postern's drop paths, and what
the spool holds, read the way spool-layout.md says a reader may.

The set-group-ID drop: `postern-drop` installed set-group-ID ignores --spool
and drops into /var/spool/postern (spool-layout.md section 3), so the
harness runs in a private mount namespace (`unshare --mount`, entered by
`enter_namespace()`) where that path is the temporary spool and
/etc/postern an empty tmpfs; nothing outside the namespace sees either. An
outsider (uid 65533, not in the drop group) runs a set-group-ID copy of
`postern-drop` through setpriv(1), so its drops are adopted (6.5); root runs
`postern drop`, whose drops are trusted and renamed. Both are killed now and
then at random moments.
"""
import datetime
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "bench"))
from msgset import message_bytes  # noqa: E402
from procs import PROCS, log, run, vm_status  # noqa: E402

OUTSIDER = 65533
DROP_GROUP = 65534          # nogroup: the drop group of the temporary spool
DOMAINS = 20                # recipient domains d0.test .. d19.test (queue.per_domain is per domain)
_INSIDE = "POSTERN_HARNESS_NAMESPACE"


def enter_namespace():
    """Re-runs this program in a private mount namespace, once (as root)."""
    if os.environ.get(_INSIDE):
        return
    if os.geteuid() != 0:
        sys.exit(f"{sys.argv[0]}: run as root (a mount namespace, another user's drops)")
    for path in ("/var/spool/postern", "/etc/postern"):
        os.makedirs(path, exist_ok=True)
    env = dict(os.environ, **{_INSIDE: "1"})
    os.execvpe("unshare", ["unshare", "--mount", "--propagation", "private", "--", sys.executable] + sys.argv, env)


def recipient(n):
    return f"m{n}@d{n % DOMAINS}.test"


def sender(n):
    return f"s{n}@senders.test"


def number_of(envelope):
    """The message number an envelope is about: ("mail", N) or ("dsn", N)."""
    for r in envelope.get("recipients", []):
        address = r.get("address", "")
        for prefix, kind in (("m", "mail"), ("s", "dsn")):
            local = address.split("@")[0]
            if local.startswith(prefix) and local[1:].isdigit():
                return kind, int(local[1:])
    return None, None


def parse_time(text):
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


class World:
    def __init__(self, binary, work, seed, relay_port, overrides):
        self.binary = os.path.abspath(binary)
        self.drop_binary = os.path.join(os.path.dirname(self.binary), "postern-drop")
        self.work = work
        self.seed = seed
        self.spool = os.path.join(work, "spool")
        self.config = os.path.join(work, "postern.toml")
        self.daemon_log = os.path.join(work, "daemon.log")
        os.makedirs(work, exist_ok=True)
        os.chmod(work, 0o755)   # the outsider runs the set-group-ID copy from here
        with open(self.config, "w") as f:
            f.write("# the harness: defaults, everything else through -o\n")
        self.env = dict(os.environ, POSTERN_CONFIG=self.config)
        self.overrides = [f"relay=127.0.0.1:{relay_port}", "hostname=harness.test",
                          "metrics.listen=", "local.aliases="] + overrides
        run([self.binary, "init", "--spool", self.spool, "--drop-group", "nogroup"], env=self.env)
        self.sgid_drop = os.path.join(work, "postern-drop-sgid")
        shutil.copy(self.drop_binary, self.sgid_drop)
        os.chown(self.sgid_drop, 0, DROP_GROUP)
        os.chmod(self.sgid_drop, 0o2755)
        run(["mount", "--bind", self.spool, "/var/spool/postern"])
        run(["mount", "-t", "tmpfs", "none", "/etc/postern"])
        self.daemon = None
        self.starts = 0

    def close(self):
        self.kill()
        for path in ("/etc/postern", "/var/spool/postern"):
            subprocess.run(["umount", "-l", path], check=False)

    # -- the daemon
    def start(self, wait_ready=False, extra=()):
        offset = os.path.getsize(self.daemon_log) if os.path.exists(self.daemon_log) else 0
        self.daemon = PROCS.spawn([self.binary, "run", "--spool", self.spool]
                                  + [a for o in self.overrides + list(extra) for a in ("-o", o)],
                                  self.daemon_log, env=self.env)
        self.starts += 1
        if wait_ready:
            deadline = time.monotonic() + 60
            while not self.ready_since(offset):
                if self.daemon.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"postern run did not get ready (exit {self.daemon.poll()}); see {self.daemon_log}")
                time.sleep(0.005)
        return self.daemon

    def ready_since(self, offset):
        """Whether the daemon logged that its index is ready after `offset` of its log."""
        with open(self.daemon_log, errors="replace") as f:
            f.seek(offset)
            return 'msg="index ready"' in f.read()

    def kill(self):
        """SIGKILL: the status it died with (-9), or its exit status if it had exited."""
        if self.daemon is None:
            return None
        status = PROCS.end(self.daemon, sig=signal.SIGKILL, grace=10)
        self.daemon = None
        return status

    def stop(self):
        status = PROCS.end(self.daemon, sig=signal.SIGTERM, grace=60)
        self.daemon = None
        return status

    def finish(self, problems):
        """Stops the daemon gracefully and checks the spool offline: nothing
        left, nothing quarantined, `postern check` clean. Returns the census."""
        status = self.stop()
        if status != 0:
            problems.append(f"postern run exited {status} on SIGTERM")
        census = self.census()
        for area in ("queue", "drop", "hold", "corrupt"):
            if census[area]:
                problems.append(f"{census[area]} entries left in {area}/: {sorted(self.names(area))[:5]}")
        check = self.postern("check")
        if check.returncode != 0 or "quarantine" in check.stdout:
            problems.append(f"postern check exited {check.returncode}: {check.stdout.strip()[-500:]}")
        return census

    def postern(self, *args):
        return subprocess.run([self.binary, *args, "--spool", self.spool], env=self.env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=120)

    # -- drops
    def drop(self, n, setgid, kill_after=None, size=2048):
        """Drops message `n`; returns the exit status (0: accepted; negative: the signal that killed it)."""
        args = ["-i", "-f", sender(n), recipient(n)]
        if setgid:
            cmd = ["setpriv", "--reuid", str(OUTSIDER), "--regid", str(OUTSIDER), "--clear-groups", "--",
                   self.sgid_drop] + args
        else:
            cmd = [self.binary, "drop", "--spool", self.spool] + args
        p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                             env=self.env)
        if kill_after is not None:
            # The message first, then the kill at a random moment of the drop's own work.
            threading.Timer(kill_after, lambda: p.poll() is None and p.send_signal(signal.SIGKILL)).start()
        try:
            p.communicate(message_bytes(n, size, self.seed), timeout=60)
        except BrokenPipeError:
            p.wait()
        return p.returncode

    # -- what the spool holds
    def names(self, area):
        try:
            return os.listdir(os.path.join(self.spool, area))
        except FileNotFoundError:
            return []

    def census(self):
        return {a: len(self.names(a)) for a in ("drop", "queue", "hold", "corrupt", "tmp")}

    def queued_numbers(self):
        """{(kind, N)} of the messages in queue/ and drop/."""
        out = set()
        for area in ("queue", "drop"):
            for name in self.names(area):
                try:
                    with open(os.path.join(self.spool, area, name, "envelope.json")) as f:
                        out.add(number_of(json.load(f)))
                except (OSError, ValueError):
                    out.add(("unreadable", name))
        return out

    def marks(self):
        """{(kind, N): mark} of the messages whose envelope carries an attempt's
        registration mark (spool-layout.md 6.2, a whole second more than one
        second past the resting time): attempts in flight when the daemon
        died, or at an earlier death and not due since. Read only while no
        daemon runs."""
        marked = {}
        queue = os.path.join(self.spool, "queue")
        for name in self.names("queue"):
            path = os.path.join(queue, name, "envelope.json")
            try:
                st = os.stat(path, follow_symlinks=False)
                with open(path) as f:
                    envelope = json.load(f)
            except (OSError, ValueError):
                continue
            pending = any(r.get("state", "pending") == "pending" for r in envelope.get("recipients", []))
            resting = envelope["arrival"]
            if pending and not envelope.get("dsn_pending"):
                resting = envelope.get("next_attempt") or resting
            if st.st_mtime_ns % 1_000_000_000 == 0 and st.st_mtime - parse_time(resting) > 1:
                marked[number_of(envelope)] = st.st_mtime_ns
        return marked


def default_binary(program):
    """The built postern beside tools/: release if there is one, else debug."""
    root = os.path.dirname(os.path.dirname(HERE))
    found = next((b for b in (f"{root}/.build/release/postern", f"{root}/.build/debug/postern") if os.path.exists(b)), None)
    if not found:
        sys.exit(f"{program}: no built postern (swift build first)")
    return found


def close_books(world, ledger, feeder, problems):
    """The end of a run: the daemon stopped and the spool checked
    (`World.finish`), the peer's record saved beside the spool, and every
    message accounted for (`Ledger.settle`). Returns (figures, census)."""
    census = world.finish(problems)
    ledger.save(os.path.join(world.work, "events.jsonl"))
    figures, found = ledger.settle(feeder.accepted, feeder.unsure)
    problems += found
    figures["drop_failures"] = len(feeder.failed)
    if feeder.failed:
        problems.append(f"drops failed without being killed: {dict(list(feeder.failed.items())[:5])}")
    return figures, census


class Feeder:
    """Drops arriving throughout: `threads` writers, each dropping the next
    message number, now through `postern drop` (root), now through the
    set-group-ID `postern-drop` (an outsider), a fraction of them killed at
    a random moment. `accepted[N]` is the time drop N exited 0;
    `unsure` holds the numbers of drops that were killed (or failed)."""

    def __init__(self, world, seed, threads=2, pause=(0.0, 0.02), kill_fraction=0.1, kill_window=0.012):
        self.world = world
        self.rng = random.Random(seed)
        self.threads = threads
        self.pause = pause
        self.kill_fraction = kill_fraction
        self.kill_window = kill_window
        self.lock = threading.Lock()
        self.next = 1
        self.accepted = {}
        self.unsure = set()
        self.failed = {}
        self.running = False
        self.workers = []

    def start(self):
        self.running = True
        self.workers = [threading.Thread(target=self._work, daemon=True) for _ in range(self.threads)]
        for w in self.workers:
            w.start()

    def stop(self):
        self.running = False
        for w in self.workers:
            w.join()

    def _work(self):
        while self.running:
            with self.lock:
                n = self.next
                self.next += 1
                setgid = self.rng.random() < 0.5
                kill = self.rng.uniform(0, self.kill_window) if self.rng.random() < self.kill_fraction else None
                pause = self.rng.uniform(*self.pause)
            status = self.world.drop(n, setgid, kill)
            with self.lock:
                if status == 0:
                    self.accepted[n] = time.time()
                else:
                    self.unsure.add(n)
                    if kill is None:
                        self.failed[n] = status
            time.sleep(pause)


class Sampler:
    """RSS, descriptors and threads of one process (and `extra()`), every `interval` seconds."""

    def __init__(self, interval=1.0, extra=lambda: 0):
        self.interval = interval
        self.extra = extra  # one more figure per sample (the queue's size)
        self.samples = []   # (t, rss bytes, fds, threads, extra)
        self.pid = None
        self.running = False

    def watch(self, pid):
        self.pid = pid

    def start(self):
        self.running = True
        threading.Thread(target=self._loop, daemon=True).start()

    def stop(self):
        self.running = False

    def _loop(self):
        while self.running:
            pid = self.pid
            try:
                rss = vm_status(pid)["VmRSS"]
                fds = len(os.listdir(f"/proc/{pid}/fd"))
                with open(f"/proc/{pid}/status") as f:
                    threads = next(int(line.split()[1]) for line in f if line.startswith("Threads:"))
                self.samples.append((time.time(), rss, fds, threads, self.extra()))
            except (OSError, KeyError, StopIteration, TypeError):
                pass
            time.sleep(self.interval)


__all__ = ["World", "Feeder", "Sampler", "close_books", "default_binary", "enter_namespace", "log", "PROCS"]
