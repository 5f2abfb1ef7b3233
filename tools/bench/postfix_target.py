"""Postfix as a benchmark target: a private instance under the scratch
directory, configured by `tools/postfix-peer.sh configure` (the same script
that sets up the test suite's Postfix peer, so there is one place that knows
how to run a private Postfix), and driven with Postfix's own commands, which
are what the benchmark times: `postfix start`, `reload`, `postqueue -f`,
`postqueue -j`, `sendmail`.

Pausing: `defer_transports = smtp relay` (`configure --defer`) makes Postfix
accept and queue mail but defer every delivery; a configuration without it, a
reload and a flush resume. Queues are filled through its smtpd with
smtp-source, ten sessions at once: the fastest way in that Postfix offers.

TLS towards the relay (`configure --tls`) is `smtp_tls_security_level = may`
with every other setting Postfix's default, as an administrator who turns on
opportunistic TLS gets it.
"""
import contextlib
import os
import subprocess
import time

from procs import BenchError, SetAside, TreeCPU, count_files, free_port, port_open, run, wait_for
from msgset import RECIPIENT, SENDER
from target import HOSTNAME, ColdStart, Resumed, Target

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PEER = os.path.join(REPO, "tools", "postfix-peer.sh")
POSTFIX = "/usr/sbin/postfix"
POSTCONF = "/usr/sbin/postconf"
POSTQUEUE = "/usr/sbin/postqueue"
POSTSUPER = "/usr/sbin/postsuper"
SENDMAIL = "/usr/sbin/sendmail"
SMTP_SOURCE = "/usr/sbin/smtp-source"
MASTER = "/usr/lib/postfix/sbin/master"
TOOLS = (POSTFIX, SENDMAIL, SMTP_SOURCE, MASTER)

ACTIVE_QUEUES = ("maildrop", "incoming", "active", "deferred", "hold")


class Postfix(Target):
    """DIR/etc (config_directory), DIR/queue, DIR/data, DIR/log/maillog;
    smtpd on 127.0.0.1:smtpd_port (used only to fill queues fast);
    everything relayed to [127.0.0.1]:relay_port."""

    name = "postfix"
    cpu_by_process = True

    def __init__(self, base, concurrency, max_wait, message_file):
        self.dir = os.path.join(base, "postfix")
        self.etc = os.path.join(self.dir, "etc")
        self.queue = os.path.join(self.dir, "queue")
        self.concurrency = concurrency
        self.max_wait = max_wait
        self.message_file = message_file
        self.smtpd_port = free_port()
        self.smtp_port = self.smtpd_port
        self.relay_port = 1  # nothing listens there: delivery fails until a sink is given
        self.deferred = False
        self.tls = False
        self.env = dict(os.environ, MAIL_CONFIG=self.etc)
        self.aside = SetAside(base, "postfix")
        # The first configure also creates the queue (postfix check), so that
        # sendmail works before the first start.
        self.configure()

    # -- configuration, through tools/postfix-peer.sh
    def configure(self, relay_port=None, deferred=None, tls=None):
        """Rewrites main.cf and master.cf; a running instance applies them at
        its next reload. What is not given stays as it was."""
        if relay_port is not None:
            self.relay_port = relay_port
        if deferred is not None:
            self.deferred = deferred
        if tls is not None:
            self.tls = tls
        cmd = [PEER, "configure", self.dir, str(self.smtpd_port), str(self.relay_port),
               "--concurrency", str(self.concurrency)]
        if self.deferred:
            cmd.append("--defer")
        if self.tls:
            cmd.append("--tls")
        run(cmd)

    # -- the master
    def running(self):
        if not os.path.exists(os.path.join(self.queue, "pid", "master.pid")):
            return False
        return subprocess.run([MASTER, "-c", self.etc, "-t"], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL).returncode != 0

    def master_pid(self):
        with open(os.path.join(self.queue, "pid", "master.pid")) as f:
            return int(f.read().split()[0])

    def up(self):
        """Starts the master unless it runs, or reloads it to apply the config."""
        if self.running():
            self.reload()
            return
        run([POSTFIX, "-c", self.etc, "start"])
        wait_for("Postfix's smtpd", lambda: port_open(self.smtpd_port), 30, 0.02)

    def reload(self):
        run([POSTFIX, "-c", self.etc, "reload"])

    def flush(self):
        run([POSTQUEUE, "-c", self.etc, "-f"])

    def start(self, relay_port, timeout=None, tls=False):
        self.configure(relay_port=relay_port, deferred=False, tls=tls)
        self.up()
        return None

    def start_paused(self):
        self.configure(deferred=True)
        self.up()

    def stop(self, discard=False):
        """`postfix-peer.sh stop`: `postfix abort`, then SIGKILL to the master's
        process group if it is not gone in 10 s. Aborting is already fast, so
        `discard` changes nothing."""
        if self.running():
            run([PEER, "stop", self.dir])
            if self.running():
                raise BenchError(f"Postfix's master in {self.dir} did not stop")

    def cpu(self):
        return TreeCPU(self.master_pid())

    @staticmethod
    def version():
        return run([POSTCONF, "-d", "-h", "mail_version"], check=False).strip() or "?"

    # -- the queue
    def submit_command(self):
        return [SENDMAIL, "-i", "-f", SENDER, RECIPIENT]

    def submitted(self):
        return self.count("maildrop")

    def count(self, *queues):
        return count_files(*(os.path.join(self.queue, q) for q in queues or ACTIVE_QUEUES))

    def queued(self):
        return self.count()

    def empty(self, set_aside=False):
        """Deletes every message (postsuper if the master runs, else the
        files); with `set_aside`, stops the master and renames each queue file
        aside instead (procs.SetAside)."""
        if set_aside:
            self.stop()
        elif self.running():
            run([POSTSUPER, "-c", self.etc, "-d", "ALL"], check=False)
        for q in ACTIVE_QUEUES + ("defer", "bounce", "trace", "flush"):
            for root, _, files in os.walk(os.path.join(self.queue, q)):
                for name in files:
                    with contextlib.suppress(FileNotFoundError):
                        if set_aside:
                            self.aside.keep(os.path.join(root, name))
                        else:
                            os.unlink(os.path.join(root, name))

    def list_command(self):
        return [POSTQUEUE, "-c", self.etc, "-j"]

    def queue_roots(self):
        return [self.queue]

    # -- filling through smtpd while deliveries are deferred
    def fill(self, count):
        """Queues `count` messages through smtpd (10 sessions) while delivery is
        deferred and waits until all sit in deferred/; leaves the master running."""
        self.configure(deferred=True)
        self.up()
        run(["timeout", str(int(self.max_wait)), SMTP_SOURCE, "-s", "10", "-m", str(count), "-f", SENDER,
             "-t", RECIPIENT, "-M", HOSTNAME, "-F", self.message_file, f"127.0.0.1:{self.smtpd_port}"])
        wait_for(f"{count} messages in Postfix's deferred queue",
                 lambda: self.count("deferred") >= count and self.count("maildrop", "incoming", "active") == 0,
                 self.max_wait, 0.25)

    def fill_paused(self, count, relay_port, tls=False):
        self.empty()
        self.configure(relay_port=relay_port, tls=tls)
        self.fill(count)

    def resume(self):
        self.configure(deferred=False)  # read at the reload: not part of the resume's time
        t0 = time.monotonic()
        self.reload()
        self.flush()
        return Resumed(t0, time.monotonic())

    def fill_deferred(self, count):
        self.stop()
        self.empty()
        t0 = time.monotonic()
        self.fill(count)
        return time.monotonic() - t0

    def fill_cold(self, count):
        """Postfix tries its whole deferred queue at every start, and what it
        delivered in one cold start is gone: the queue is reused as it is (a
        little shorter each time) and only filled when empty."""
        if self.queued() == 0:
            self.fill(count)
        self.stop()

    def cold_start(self, relay_port):
        self.configure(relay_port=relay_port, deferred=False, tls=False)
        t0 = time.monotonic()
        run([POSTFIX, "-c", self.etc, "start"])
        started = time.monotonic()
        self.flush()
        return ColdStart(t0, started - t0)

    def inode_breakdown(self, events):
        by = {}
        for comm, _, kind in events:
            key = f"{comm}: {'directories' if kind == 'dir' else 'files'}"
            by[key] = by.get(key, 0) + 1
        return dict(sorted(by.items()))
