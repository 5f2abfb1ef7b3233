"""Postern as a benchmark target: one spool under the scratch directory, the
daemon (`postern run`) started with everything it needs on the command line,
and its queue filled either through `postern drop` or straight on disk by
gen-spool.py.

Pausing: Postern's way of keeping mail from being delivered is `postern hold`;
gen-spool.py writes the messages straight into `hold/` (what `hold --all`
would leave), and `postern release --all` resumes them while the daemon runs.
"""
import os
import re
import signal
import subprocess
import sys
import time

from procs import PROCS, BenchError, SetAside, TreeCPU, count_entries, free_port, rmtree, run, vm_status, wait_for
from msgset import RECIPIENT, SENDER
from target import HOSTNAME, ColdStart, Ready, Resumed, Target

HERE = os.path.dirname(os.path.abspath(__file__))


class Postern(Target):
    name = "postern"
    has_index = True

    def __init__(self, binary, base, concurrency, max_wait):
        self.binary = binary
        self.base = base
        self.concurrency = concurrency
        self.max_wait = max_wait
        self.spool = os.path.join(base, "postern-spool")
        self.config = os.path.join(base, "postern.toml")
        with open(self.config, "w") as f:
            f.write("# postern benchmark: defaults, everything else through -o\n")
        self.env = dict(os.environ, POSTERN_SPOOL=self.spool, POSTERN_CONFIG=self.config,
                        POSTERN_HOSTNAME=HOSTNAME)
        self.daemon = None
        self.daemon_pid = None
        self.daemon_log = None
        self.t_spawn = None
        self.smtp_port = free_port()
        self.aside = SetAside(base, "postern")

    # -- the spool
    def empty(self, set_aside=False):
        """Stops the daemon and makes a fresh spool (`postern init`)."""
        self.stop()
        if set_aside and self.holds_entries():
            self.aside.keep(self.spool)
        rmtree(self.spool)
        run([self.binary, "init", "--spool", self.spool], env=self.env)

    def holds_entries(self):
        """Whether any area of the spool holds an entry (a fresh one, from
        `postern init`, frees only its empty directories when deleted)."""
        if not os.path.isdir(self.spool):
            return False
        for name in os.listdir(self.spool):
            area = os.path.join(self.spool, name)
            if os.path.isdir(area) and not os.path.islink(area) and os.listdir(area):
                return True
        return False

    def generate(self, count, area="queue", deferred=False):
        """Writes `count` messages into `area` with gen-spool.py; returns seconds."""
        cmd = [sys.executable, os.path.join(HERE, "gen-spool.py"), "--spool", self.spool,
               "--count", str(count), "--area", area]
        if deferred:
            cmd.append("--deferred")
        t0 = time.monotonic()
        run(cmd)
        return time.monotonic() - t0

    def submit_command(self):
        # What sendmail is: postern-drop, beside postern (not `postern drop`,
        # which would add the large binary's start before the same exec).
        return [os.path.join(os.path.dirname(self.binary), "postern-drop"), "-i", "-f", SENDER, RECIPIENT]

    def submitted(self):
        return count_entries(os.path.join(self.spool, "drop"))

    def queued(self):
        return sum(count_entries(os.path.join(self.spool, a)) for a in ("drop", "queue", "hold"))

    def count_command(self):
        return [self.binary, "count", "--spool", self.spool]

    def list_command(self):
        return [self.binary, "list", "--json", "--spool", self.spool]

    def queue_roots(self):
        return [self.spool]

    # -- the daemon
    def spawn(self, relay_port, tls=False):
        """Starts `postern run` without waiting for anything; with `tls`, it
        uses STARTTLS towards the relay when offered, without certificate
        checks (relay_tls = opportunistic), else plaintext (none). Its
        metrics endpoint listens on a free port rather than the default one,
        which another daemon on the machine may hold, and its SMTP listener
        on smtp_port."""
        self.stop()
        self.daemon_log = os.path.join(self.base, f"postern-daemon-{time.time_ns()}.log")
        self.t_spawn = time.monotonic()
        self.daemon = PROCS.spawn([
            self.binary, "run", "--spool", self.spool, "--config", self.config,
            "-o", f"relay=127.0.0.1:{relay_port}", "-o", f"relay_tls={'opportunistic' if tls else 'none'}",
            "-o", f"hostname={HOSTNAME}", "-o", f"metrics.listen=127.0.0.1:{free_port()}",
            "-o", f"queue.max_concurrent={self.concurrency}", "-o", f"queue.per_domain={self.concurrency}",
            "-o", f'smtp.listen=["127.0.0.1:{self.smtp_port}"]',
        ], self.daemon_log, env=self.env)
        self.daemon_pid = self.daemon.pid

    def start(self, relay_port, timeout=None, tls=False):
        self.spawn(relay_port, tls)
        return self.wait_index(timeout or self.max_wait)

    def ready_line(self):
        try:
            with open(self.daemon_log, errors="replace") as f:
                for line in f:
                    if 'msg="index ready"' in line:
                        return line
        except FileNotFoundError:
            pass
        if self.daemon.poll() is not None:
            raise BenchError(f"postern run exited {self.daemon.returncode}: "
                             f"{open(self.daemon_log).read()[-1500:]}")
        return None

    def index_ready(self):
        return self.ready_line() is not None

    def wait_index(self, timeout):
        line = wait_for("postern's index", self.ready_line, timeout, 0.002)
        wall = time.monotonic() - self.t_spawn
        fields = dict(re.findall(r'(\w+)=("[^"]*"|\S+)', line))
        return Ready(wall, float(fields.get("duration", "nan")), int(fields.get("queued", "0")),
                     int(fields.get("held", "0")))

    def start_paused(self):
        """Delivery paused as far as the listener is concerned: the relay is a
        port where nothing listens (port 1), so each message is accepted into
        the queue, tried once and deferred (the next attempt is one queue.backoff_base, 7m30s, later)."""
        self.spawn(1)
        self.wait_index(self.max_wait)

    def stop(self, discard=False):
        if self.daemon is not None:
            if discard:
                PROCS.end(self.daemon, sig=signal.SIGKILL)
            else:
                PROCS.end(self.daemon, grace=60.0)
            self.daemon = None

    def cpu(self):
        return TreeCPU(self.daemon.pid)

    def memory(self):
        return vm_status(self.daemon.pid)

    def index_memory(self, count):
        out = run([self.binary, "index-memory", "--count", str(count)], check=False)
        m = re.search(r"bytes_per_message=([\d.]+)", out)
        return float(m.group(1)) if m else None, out.strip().splitlines()[-1] if out.strip() else ""

    # -- pause and resume: hold/ and `postern release --all`
    def fill_paused(self, count, relay_port, tls=False):
        self.empty()
        self.generate(count, area="hold")
        self.start(relay_port, tls=tls)

    def resume(self):
        t0 = time.monotonic()
        rel = subprocess.run([self.binary, "release", "--all", "--spool", self.spool],
                             env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                             text=True, timeout=self.max_wait)
        returned = time.monotonic()
        problem = f"release exited {rel.returncode}: {rel.stderr[-300:]}" if rel.returncode else None
        return Resumed(t0, returned, problem)

    # -- big queues: generated on disk
    def fill_deferred(self, count):
        self.empty()
        return self.generate(count, area="queue", deferred=True)

    def fill_cold(self, count):
        """Fresh messages every time: Postern registers an attempt for a message
        before delivering it (attempts + 1, next attempt one backoff later), so
        a queue that was started once is not the same queue again."""
        self.empty()
        self.generate(count, area="queue")

    def cold_start(self, relay_port):
        self.spawn(relay_port)
        return ColdStart(self.t_spawn)

    # -- inodes: the daemon's own, and everyone else's (`postern drop`)
    def inode_breakdown(self, events):
        def count(daemon, kind):
            return sum(1 for e in events if (e[1] == self.daemon_pid) == daemon and e[2] == kind)
        return {
            "drop: directories": count(False, "dir"),
            "drop: files": count(False, "file"),
            "daemon: directories": count(True, "dir"),
            "daemon: files (envelope updates)": count(True, "file"),
        }
