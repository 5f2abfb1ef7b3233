#!/usr/bin/env python3
"""Postern versus Postfix on this machine, loopback only: durable enqueue,
drain, live end to end, start-up and listing with a large queue, scheduler
overhead and inodes per message. Run through tools/bench.sh, which builds
postern and installs what is missing; see tools/bench/README.md.

Every measurement is repeated (after warm-up runs that are not recorded), and
Postern and Postfix runs are paired and interleaved (ABBA order), so each pair
gives one Postern/Postfix ratio. Reported: median, min and max of each side
and of the per-pair ratios; never a single absolute time.

File systems (--fs): `root` puts both spools on the root file system (under
--workdir); `loop` on a journaled ext4 image (mkfs.ext4 defaults) mounted
through a loop device; `both` measures everything on each in turn.

Postfix runs as a private instance: its own config_directory, queue_directory
and data_directory under the work directory, smtpd on a free loopback port,
relaying to smtp-sink; /etc/postfix is left alone.
"""
import argparse
import contextlib
import datetime
import json
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
from msgset import RECIPIENT, SENDER, message_bytes, write_set  # noqa: E402

POSTFIX = "/usr/sbin/postfix"
POSTCONF = "/usr/sbin/postconf"
POSTQUEUE = "/usr/sbin/postqueue"
POSTSUPER = "/usr/sbin/postsuper"
SENDMAIL = "/usr/sbin/sendmail"
SMTP_SINK = "/usr/sbin/smtp-sink"
SMTP_SOURCE = "/usr/sbin/smtp-source"
MASTER = "/usr/lib/postfix/sbin/master"
HOSTNAME = "bench.postern.test"
TICK = os.sysconf("SC_CLK_TCK")

MEASUREMENTS = ("ceiling", "enqueue", "e2e", "drain", "list", "startup", "inodes")

FULL = dict(enqueue=2000, e2e=2000, drain=10000, listn=20000, big="100000,1000000", inodes=100,
            runs=5, warmup=1, drain_runs=3, list_runs=5, first_runs=3, big_runs=3)
QUICK = dict(enqueue=100, e2e=100, drain=500, listn=1000, big="2000", inodes=10,
             runs=2, warmup=0, drain_runs=2, list_runs=2, first_runs=2, big_runs=2)


# --------------------------------------------------------------------- utilities

def log(text):
    print(f"[{time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


class BenchError(Exception):
    pass


def run(cmd, check=True, quiet=True, **kw):
    """Runs a command to completion; its output is returned (text)."""
    out = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kw)
    if check and out.returncode != 0:
        raise BenchError(f"{' '.join(map(str, cmd))} exited {out.returncode}: {out.stdout.strip()[-2000:]}")
    if not quiet and out.stdout:
        print(out.stdout, file=sys.stderr, end="")
    return out.stdout


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_open(port):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0


def wait_for(what, predicate, timeout, interval=0.005):
    """Polls `predicate` until it returns a true value or `timeout` s pass."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise BenchError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


def cpu_busy_sample(seconds):
    def snap():
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:]]
        idle = v[3] + v[4]
        return sum(v[:8]) - idle, sum(v[:8])
    b0, t0 = snap()
    time.sleep(seconds)
    b1, t1 = snap()
    return 100.0 * (b1 - b0) / max(1, t1 - t0)


def count_entries(path):
    try:
        return len(os.listdir(path))
    except FileNotFoundError:
        return 0


def count_files(*roots):
    n = 0
    for root in roots:
        for _, _, files in os.walk(root):
            n += len(files)
    return n


def rmtree(path):
    shutil.rmtree(path, ignore_errors=True)


class Procs:
    """Every background process this run started, so that cleanup can end
    exactly those (by pid; each leads its own session and process group)."""

    def __init__(self):
        self.live = []

    def spawn(self, cmd, logfile, env=None):
        out = open(logfile, "ab")
        p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                             env=env, start_new_session=True, close_fds=True)
        out.close()
        self.live.append(p)
        return p

    def end(self, p, sig=signal.SIGTERM, grace=40.0):
        if p is None:
            return None
        if p.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                p.send_signal(sig)
            try:
                p.wait(grace)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(p.pid, signal.SIGKILL)
                p.wait(10)
        if p in self.live:
            self.live.remove(p)
        return p.returncode

    def end_all(self):
        for p in list(self.live):
            self.end(p, grace=5.0)


PROCS = Procs()


def proc_stat(pid):
    """(comm, ppid, utime+stime seconds, cutime+cstime seconds) of a pid, or None."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            data = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return None
    comm = data[data.index("(") + 1:data.rindex(")")]
    rest = data[data.rindex(")") + 2:].split()
    ppid = int(rest[1])
    user, system, cuser, csystem = (int(x) for x in rest[11:15])
    return comm, ppid, user / TICK, system / TICK, cuser / TICK, csystem / TICK


def process_tree(root):
    """pid -> proc_stat for `root` and all its descendants."""
    stats = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            st = proc_stat(int(name))
            if st:
                stats[int(name)] = st
    children = {}
    for pid, st in stats.items():
        children.setdefault(st[1], []).append(pid)
    tree, todo = {}, [root]
    while todo:
        pid = todo.pop()
        if pid in stats:
            tree[pid] = stats[pid]
            todo.extend(children.get(pid, []))
    return tree


class TreeCPU:
    """CPU seconds (user, system) used by a process tree between two points,
    including processes that exited in between (their time reaches the
    root's cutime/cstime when it reaps them; what they had used before the
    first snapshot is taken back out). Per-command totals for live processes."""

    def __init__(self, root):
        self.root = root
        self.before = process_tree(root)

    def stop(self):
        after = process_tree(self.root)
        user = system = 0.0
        by_comm = {}
        for pid, st in after.items():
            b = self.before.get(pid)
            du = st[2] - (b[2] if b else 0.0)
            ds = st[3] - (b[3] if b else 0.0)
            user += du
            system += ds
            by_comm[st[0]] = by_comm.get(st[0], 0.0) + du + ds
        rb, ra = self.before.get(self.root), after.get(self.root)
        if rb and ra:
            reaped_u, reaped_s = ra[4] - rb[4], ra[5] - rb[5]
            for pid, st in self.before.items():
                if pid not in after:
                    reaped_u -= st[2]
                    reaped_s -= st[3]
            user += max(0.0, reaped_u)
            system += max(0.0, reaped_s)
            by_comm["(exited)"] = max(0.0, reaped_u) + max(0.0, reaped_s)
        return user, system, by_comm


def vm_status(pid):
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(("VmHWM", "VmRSS")):
                key, value = line.split(":")
                out[key] = int(value.split()[0]) * 1024
    return out


# ------------------------------------------------------------------------- sink

class Sink:
    """smtp-sink on 127.0.0.1:PORT; with `stop_after` it exits right after the
    N-th message (before answering it: the sender keeps that one queued)."""

    def __init__(self, workdir, stop_after=None):
        self.port = free_port()
        self.out = os.path.join(workdir, f"sink-{self.port}.out")
        cmd = [SMTP_SINK, "-c", "-4", "-u", "nobody"]
        if stop_after:
            cmd += ["-M", str(stop_after)]
        cmd += [f"127.0.0.1:{self.port}", "1024"]
        self.proc = PROCS.spawn(cmd, self.out)
        wait_for("smtp-sink to listen", lambda: port_open(self.port) or self.proc.poll() is not None, 10)
        if self.proc.poll() is not None:
            raise BenchError(f"smtp-sink exited: {open(self.out).read()[-500:]}")

    def count(self):
        try:
            with open(self.out, "rb") as f:
                f.seek(0, os.SEEK_END)
                f.seek(max(0, f.tell() - 200))
                tail = f.read().decode("ascii", "replace")
        except FileNotFoundError:
            return 0
        found = re.findall(r"mesg=(\d+)", tail)
        return int(found[-1]) if found else 0

    def exited(self):
        return self.proc.poll() is not None

    def wait_exit(self, timeout):
        wait_for("smtp-sink to receive every message", self.exited, timeout, 0.002)
        return time.monotonic()

    def wait_first(self, timeout):
        wait_for("the first message at smtp-sink", lambda: self.exited() or self.count() > 0, timeout, 0.002)
        return time.monotonic()

    def stop(self):
        PROCS.end(self.proc, grace=5.0)


# ---------------------------------------------------------------------- postern

class Postern:
    def __init__(self, binary, base):
        self.binary = binary
        self.base = base
        self.spool = os.path.join(base, "postern-spool")
        self.config = os.path.join(base, "postern.toml")
        with open(self.config, "w") as f:
            f.write("# postern benchmark: defaults, everything else through -o\n")
        self.env = dict(os.environ, POSTERN_SPOOL=self.spool, POSTERN_CONFIG=self.config,
                        POSTERN_HOSTNAME=HOSTNAME)
        self.daemon = None
        self.daemon_log = None

    def reset(self, spool=None):
        self.stop()
        spool = spool or self.spool
        rmtree(spool)
        run([self.binary, "init", "--spool", spool], env=self.env)

    def drop_command(self):
        return [self.binary, "drop", "-i", "-f", SENDER, RECIPIENT]

    def generate(self, count, area="queue", deferred=False, spool=None):
        cmd = [sys.executable, os.path.join(HERE, "gen-spool.py"), "--spool", spool or self.spool,
               "--count", str(count), "--area", area]
        if deferred:
            cmd.append("--deferred")
        t0 = time.monotonic()
        run(cmd)
        return time.monotonic() - t0

    def start(self, relay_port, concurrency, spool=None, wait=True, timeout=900):
        """Starts `postern run`; with `wait`, returns once the index is ready:
        (seconds from spawn, the duration the daemon logged)."""
        self.stop()
        self.daemon_log = os.path.join(self.base, f"postern-daemon-{time.time_ns()}.log")
        self.t_spawn = time.monotonic()
        self.daemon = PROCS.spawn([
            self.binary, "run", "--spool", spool or self.spool, "--config", self.config,
            "-o", f"relay=127.0.0.1:{relay_port}", "-o", "relay_tls=none", "-o", f"hostname={HOSTNAME}",
            "-o", f"queue.max_concurrent={concurrency}", "-o", f"queue.per_domain={concurrency}",
        ], self.daemon_log, env=self.env)
        if wait:
            return self.wait_ready(timeout)
        return None

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

    def wait_ready(self, timeout=900):
        line = wait_for("postern's index", self.ready_line, timeout, 0.002)
        wall = time.monotonic() - self.t_spawn
        fields = dict(re.findall(r'(\w+)=("[^"]*"|\S+)', line))
        return wall, float(fields.get("duration", "nan")), int(fields.get("queued", "0")), int(fields.get("held", "0"))

    def stop(self):
        if self.daemon is not None:
            rc = PROCS.end(self.daemon, grace=60.0)
            self.daemon = None
            return rc
        return None

    def cpu(self):
        return TreeCPU(self.daemon.pid)


# ---------------------------------------------------------------------- postfix

MASTER_CF = """\
# service type  private unpriv  chroot  wakeup  maxproc command + args
127.0.0.1:{smtpd_port} inet n - n - - smtpd
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
smtp      unix  -       -       n       -       {concurrency}       smtp
relay     unix  -       -       n       -       {concurrency}       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
"""


class Postfix:
    """A private Postfix instance: DIR/etc (config_directory), DIR/queue,
    DIR/data, DIR/log/maillog; smtpd on 127.0.0.1:smtpd_port (used only to
    fill queues fast); everything relayed to [127.0.0.1]:sink_port."""

    def __init__(self, base, concurrency):
        self.dir = os.path.join(base, "postfix")
        self.etc = os.path.join(self.dir, "etc")
        self.queue = os.path.join(self.dir, "queue")
        self.concurrency = concurrency
        self.smtpd_port = free_port()
        self.sink_port = 1
        self.deferred = False
        for d in ("etc", "log", "queue"):
            os.makedirs(os.path.join(self.dir, d), exist_ok=True)
        os.chmod(self.dir, 0o755)
        self.env = dict(os.environ, MAIL_CONFIG=self.etc)
        self.write_config()
        # Creates the queue directories with Postfix's owners and modes
        # (postfix-script check-fatal, post-install create-missing), so that
        # sendmail works even before the first start.
        run([POSTFIX, "-c", self.etc, "check"])

    def write_config(self):
        d = self.dir
        lines = f"""\
# Written by tools/bench/bench.py: a private relay-only instance.
compatibility_level = 3.6
queue_directory = {d}/queue
data_directory = {d}/data
mail_owner = postfix
setgid_group = postdrop
maillog_file = {d}/log/maillog
maillog_file_prefixes = {d}/log
syslog_name = postern-bench
myhostname = {HOSTNAME}
mydomain = postern.test
myorigin = $myhostname
mydestination =
local_recipient_maps =
local_transport = error:local delivery is disabled
alias_maps =
alias_database =
biff = no
append_dot_mydomain = no
inet_interfaces = loopback-only
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
smtpd_relay_restrictions = permit_mynetworks, reject
smtpd_recipient_restrictions = permit_mynetworks, reject
relayhost = [127.0.0.1]:{self.sink_port}
smtp_tls_security_level = none
smtpd_tls_security_level = none
notify_classes =
default_destination_concurrency_limit = {self.concurrency}
smtp_destination_concurrency_limit = {self.concurrency}
"""
        if self.deferred:
            lines += "defer_transports = smtp relay\n"
        with open(os.path.join(self.etc, "main.cf"), "w") as f:
            f.write(lines)
        with open(os.path.join(self.etc, "master.cf"), "w") as f:
            f.write(MASTER_CF.format(smtpd_port=self.smtpd_port, concurrency=self.concurrency))
        # A config file changed in the last seconds counts as being edited and
        # makes every Postfix program re-read it for a while: backdate it.
        past = time.time() - 60
        for name in ("main.cf", "master.cf"):
            os.utime(os.path.join(self.etc, name), (past, past))

    def configure(self, sink_port=None, deferred=None):
        if sink_port is not None:
            self.sink_port = sink_port
        if deferred is not None:
            self.deferred = deferred
        self.write_config()

    def running(self):
        if not os.path.exists(os.path.join(self.queue, "pid", "master.pid")):
            return False
        return subprocess.run([MASTER, "-c", self.etc, "-t"], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL).returncode != 0

    def master_pid(self):
        with open(os.path.join(self.queue, "pid", "master.pid")) as f:
            return int(f.read().split()[0])

    def start(self):
        if self.running():
            return
        run([POSTFIX, "-c", self.etc, "start"])
        wait_for("Postfix's smtpd", lambda: port_open(self.smtpd_port), 30, 0.02)

    def reload(self):
        run([POSTFIX, "-c", self.etc, "reload"])

    def flush(self):
        run([POSTQUEUE, "-c", self.etc, "-f"])

    def stop(self):
        if not self.running():
            return
        pid = self.master_pid()
        run([POSTFIX, "-c", self.etc, "abort"], check=False)
        try:
            wait_for("Postfix's master to exit", lambda: not self.running(), 15, 0.05)
        except BenchError:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
            wait_for("Postfix's master to exit", lambda: not self.running(), 10, 0.05)

    def sendmail_command(self):
        return [SENDMAIL, "-i", "-f", SENDER, RECIPIENT]

    def queued(self, *queues):
        queues = queues or ("maildrop", "incoming", "active", "deferred", "hold")
        return count_files(*(os.path.join(self.queue, q) for q in queues))

    def clear(self):
        if self.running():
            run([POSTSUPER, "-c", self.etc, "-d", "ALL"], check=False)
        for q in ("maildrop", "incoming", "active", "deferred", "hold", "defer", "bounce", "trace", "flush"):
            for root, _, files in os.walk(os.path.join(self.queue, q)):
                for name in files:
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(os.path.join(root, name))

    def fill(self, count, message_file, timeout):
        """Queues `count` messages through smtpd (10 sessions) while delivery is
        deferred and waits until all sit in deferred/."""
        self.configure(deferred=True)
        if self.running():
            self.reload()
        else:
            self.start()
        run(["timeout", str(int(timeout)), SMTP_SOURCE, "-s", "10", "-m", str(count), "-f", SENDER,
             "-t", RECIPIENT, "-M", HOSTNAME, "-F", message_file, f"127.0.0.1:{self.smtpd_port}"])
        wait_for(f"{count} messages in Postfix's deferred queue",
                 lambda: self.queued("deferred") >= count and self.queued("maildrop", "incoming", "active") == 0,
                 timeout, 0.25)

    def cpu(self):
        return TreeCPU(self.master_pid())

    @staticmethod
    def version():
        return run([POSTCONF, "-d", "-h", "mail_version"], check=False).strip() or "?"


# ----------------------------------------------------------------- inode count

class InodeTrace:
    """Counts inodes allocated on one ext4 file system (kernel tracepoint
    ext4:ext4_allocate_inode, through perf) below a set of directories: each
    event whose parent directory is known counts, and a new directory's
    inode becomes known, so message directories and their files count too."""

    @staticmethod
    def available():
        if not shutil.which("perf"):
            return "perf is not installed (Debian: linux-perf)"
        out = subprocess.run(["perf", "stat", "-e", "ext4:ext4_allocate_inode", "true"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        return None if out.returncode == 0 else f"perf cannot use ext4 tracepoints: {out.stderr.strip()[:200]}"

    def __init__(self, workdir, roots):
        st = os.stat(roots[0])
        kdev = (os.major(st.st_dev) << 20) | os.minor(st.st_dev)
        self.known = set()
        for root in roots:
            for dirpath, dirs, _ in os.walk(root):
                self.known.add(os.stat(dirpath).st_ino)
        self.data = os.path.join(workdir, f"perf-{time.time_ns()}.data")
        self.proc = PROCS.spawn(["perf", "record", "-q", "-a", "-e", "ext4:ext4_allocate_inode",
                                 "--filter", f"dev == {kdev}", "-o", self.data],
                                self.data + ".log")
        time.sleep(1.0)  # perf needs a moment before it records

    def stop(self):
        time.sleep(0.5)
        PROCS.end(self.proc, sig=signal.SIGINT, grace=30)
        out = run(["perf", "script", "-i", self.data, "-F", "comm,pid,trace"], check=False)
        events = []
        for line in out.splitlines():
            m = re.search(r"^\s*(.+?)\s+(\d+)\s+dev \S+ ino (\d+) dir (\d+) mode (0\d+)", line)
            if not m:
                continue
            comm, pid, ino, parent, mode = m.group(1), int(m.group(2)), int(m.group(3)), int(m.group(4)), int(m.group(5), 8)
            if parent not in self.known:
                continue
            kind = "dir" if mode & 0o170000 == 0o040000 else "file"
            if kind == "dir":
                self.known.add(ino)
            events.append((comm, pid, kind))
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.data)
        return events


# ------------------------------------------------------------------- the bench

class Bench:
    def __init__(self, a):
        self.a = a
        self.records = []   # dicts: fs, measure, target, run, metrics
        self.notes = {}     # fs -> [text]
        self.inodes = {}    # fs -> dict
        self.startup_extra = {}
        self.msgdir = None
        self.message_files = []

    # -- bookkeeping
    def record(self, fs, measure, target, run_no, pre_busy, **metrics):
        rec = dict(fs=fs, measure=measure, target=target, run=run_no, pre_busy=round(pre_busy, 1), **metrics)
        self.records.append(rec)
        shown = " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in metrics.items())
        log(f"  {fs} {measure} {target} run {run_no}: {shown} (machine busy before: {pre_busy:.0f}%)")

    def note(self, fs, text):
        self.notes.setdefault(fs, []).append(text)
        log(f"note ({fs}): {text}")

    def settle(self):
        """sync, then wait (bounded) for a quiet machine; returns the busy % seen."""
        os.sync()
        time.sleep(self.a.settle)
        deadline = time.monotonic() + self.a.quiet_wait
        busy = cpu_busy_sample(0.25 if self.a.quick else 0.5)
        told = False
        while busy > self.a.quiet_pct and time.monotonic() < deadline:
            if not told:
                log(f"  waiting for a quiet machine (busy {busy:.0f}% > {self.a.quiet_pct:.0f}%)")
                told = True
            time.sleep(2)
            busy = cpu_busy_sample(0.5)
        return busy

    def pairs(self, runs, warmup):
        """(run number, order) for warm-up runs (number <= 0) then recorded
        runs; order alternates ABBA so that neither side always goes first."""
        for i, r in enumerate(range(1 - warmup, runs + 1)):
            yield r, (("postern", "postfix") if i % 4 in (0, 3) else ("postfix", "postern"))

    def list_file(self, count):
        path = os.path.join(self.work, f"messages-{count}.list")
        with open(path, "w") as f:
            for i in range(count):
                f.write(self.message_files[i % len(self.message_files)] + "\n")
        return path

    def inject(self, command, env, count, writers):
        """Runs `command < message` once per message from `writers` loops;
        returns (seconds, failures)."""
        lst = self.list_file(count)
        errlog = os.path.join(self.work, "inject-errors.log")
        t0 = time.monotonic()
        p = subprocess.Popen([os.path.join(HERE, "inject.sh"), str(writers), lst, errlog, *command],
                             env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, text=True,
                             start_new_session=True)
        try:
            stdout, _ = p.communicate(timeout=self.a.max_wait)
        except BaseException as e:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(p.pid, signal.SIGKILL)
            p.wait()
            if isinstance(e, subprocess.TimeoutExpired):
                raise BenchError(f"submitting {count} messages took over {self.a.max_wait:.0f} s "
                                 f"(see {errlog})") from None
            raise
        t1 = time.monotonic()
        failures = int(stdout.strip() or "0")
        return t1 - t0, failures, t0

    # -- 1. durable enqueue, and the disk's ceiling for the drop protocol
    def ceiling_once(self, base, count, writers):
        root = os.path.join(base, "ceiling")
        rmtree(root)
        tmp, drop = os.path.join(root, "tmp"), os.path.join(root, "drop")
        os.makedirs(tmp)
        os.makedirs(drop)
        body = message_bytes(1, 4096, crlf=True)
        envelope = (json.dumps({"version": "1.0", "id": "X" * 26, "sender": SENDER,
                                "recipients": [{"address": RECIPIENT, "attempts": 0, "state": "pending"}],
                                "arrival": "2026-01-01T00:00:00Z", "size": len(body), "uid": 0,
                                "message_id": "x@" + HOSTNAME, "eight_bit": False, "smtputf8": False,
                                "require_tls": None, "attempts": 0, "history": []},
                               indent=2, sort_keys=True) + "\n").encode()
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC

        def write(path, data):
            fd = os.open(path, flags, 0o640)
            os.write(fd, data)
            os.fsync(fd)
            os.close(fd)

        def fsync_dir(path):
            fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
            os.fsync(fd)
            os.close(fd)

        def worker(k):
            for i in range(k, count, writers):
                name = f"{k:02d}{i:08d}"
                d = os.path.join(tmp, name)
                os.mkdir(d, 0o770)
                write(d + "/message", body)
                write(d + "/envelope.json", envelope)
                fsync_dir(d)
                os.rename(d, os.path.join(drop, name))
                fsync_dir(drop)

        threads = [threading.Thread(target=worker, args=(k,)) for k in range(writers)]
        t0 = time.monotonic()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        seconds = time.monotonic() - t0
        rmtree(root)
        return seconds

    def measure_ceiling(self, fs, base):
        n = self.a.enqueue
        for writers in sorted({1, self.a.writers}):
            log(f"{fs}: disk ceiling of the drop protocol, {n} messages, {writers} writer(s)")
            for r, _ in self.pairs(self.a.runs, self.a.warmup):
                busy = self.settle()
                s = self.ceiling_once(base, n, writers)
                if r > 0:
                    self.record(fs, f"ceiling-w{writers}", "protocol", r, busy, rate=n / s, seconds=s)

    def measure_enqueue(self, fs, postern, postfix):
        n = self.a.enqueue
        postern.stop()
        postfix.stop()
        for writers in sorted({1, self.a.writers}):
            log(f"{fs}: durable enqueue, {n} messages, one process each, {writers} writer(s), delivery paused")
            for r, order in self.pairs(self.a.runs, self.a.warmup):
                for target in order:
                    busy = self.settle()
                    if target == "postern":
                        postern.reset()
                        s, fails, _ = self.inject(postern.drop_command(), postern.env, n, writers)
                        got = count_entries(os.path.join(postern.spool, "drop"))
                        postern.reset()
                    else:
                        postfix.clear()
                        s, fails, _ = self.inject(postfix.sendmail_command(), postfix.env, n, writers)
                        got = postfix.queued("maildrop")
                        postfix.clear()
                    if got != n or fails:
                        self.note(fs, f"enqueue {target} run {r}: {got} of {n} queued, {fails} failed")
                    if r > 0:
                        self.record(fs, f"enqueue-w{writers}", target, r, busy, rate=n / s, seconds=s)

    # -- 3. live end to end
    def measure_e2e(self, fs, postern, postfix):
        n = self.a.e2e
        log(f"{fs}: live end to end, {n} messages dropped one process each while the daemon runs")
        for r, order in self.pairs(self.a.runs, self.a.warmup):
            for target in order:
                sink = Sink(self.work, stop_after=n)
                try:
                    if target == "postern":
                        postern.reset()
                        postern.start(sink.port, self.a.concurrency)
                        command, env = postern.drop_command(), postern.env
                    else:
                        postfix.clear()
                        postfix.configure(sink_port=sink.port, deferred=False)
                        if postfix.running():
                            postfix.reload()
                        else:
                            postfix.start()
                        command, env = postfix.sendmail_command(), postfix.env
                    busy = self.settle()
                    s_inj, fails, t0 = self.inject(command, env, n, 1)
                    t_end = sink.wait_exit(self.a.max_wait)
                finally:
                    sink.stop()
                    postern.stop()
                if fails:
                    self.note(fs, f"e2e {target} run {r}: {fails} submissions failed")
                if r > 0:
                    self.record(fs, "e2e", target, r, busy, rate=n / (t_end - t0), seconds=t_end - t0,
                                enqueue_rate=n / s_inj)
        postern.reset()
        postfix.clear()

    # -- 2 and 5. drain, CPU per message
    def measure_drain(self, fs, postern, postfix):
        n = self.a.drain
        c = self.a.concurrency
        log(f"{fs}: drain of {n} messages queued while delivery was paused, concurrency {c}")
        for r, order in self.pairs(self.a.drain_runs, self.a.warmup):
            for target in order:
                if target == "postern":
                    postern.reset()
                    postern.generate(n, area="hold")
                    sink = Sink(self.work, stop_after=n)
                    postern.start(sink.port, c)
                    busy = self.settle()
                    cpu = postern.cpu()
                    t0 = time.monotonic()
                    rel = subprocess.run([postern.binary, "release", "--all", "--spool", postern.spool],
                                         env=postern.env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                         text=True, timeout=self.a.max_wait)
                    t_cmd = time.monotonic()
                    if rel.returncode != 0:
                        self.note(fs, f"drain postern run {r}: release exited {rel.returncode}: {rel.stderr[-300:]}")
                else:
                    postfix.clear()
                    postfix.configure(sink_port=free_port())
                    postfix.fill(n, self.message_files[0], self.a.max_wait)
                    busy = self.settle()
                    sink = Sink(self.work, stop_after=n)
                    postfix.configure(sink_port=sink.port, deferred=False)
                    cpu = postfix.cpu()
                    t0 = time.monotonic()
                    postfix.reload()
                    postfix.flush()
                    t_cmd = time.monotonic()
                cpu_steady = None
                try:
                    t_first = sink.wait_first(self.a.max_wait)
                    cpu_steady = postern.cpu() if target == "postern" else postfix.cpu()
                    t_end = sink.wait_exit(self.a.max_wait)
                finally:
                    user, system, by_comm = cpu.stop()
                    steady_user, steady_system, steady_by_comm = cpu_steady.stop() if cpu_steady else (0, 0, {})
                    sink.stop()
                if target == "postern":
                    postern.stop()
                    postern.reset()
                else:
                    postfix.clear()
                if r > 0:
                    extra = {}
                    if target == "postfix":
                        top = sorted(steady_by_comm.items(), key=lambda kv: -kv[1])[:5]
                        extra["steady_cpu_s_by_process"] = ", ".join(f"{k} {v:.2f}" for k, v in top)
                    self.record(fs, "drain", target, r, busy, rate=n / (t_end - t0), seconds=t_end - t0,
                                steady_rate=(n - 1) / max(1e-6, t_end - t_first), release_s=t_cmd - t0,
                                first_s=t_first - t0, cpu_s_per_1000=1000 * (user + system) / n,
                                cpu_user_s_per_1000=1000 * user / n, cpu_sys_s_per_1000=1000 * system / n,
                                steady_cpu_ms_per_delivery=1000 * (steady_user + steady_system) / max(1, n - 1),
                                **extra)

    # -- 4. listing and first delivery with a large queue
    def measure_list(self, fs, postern, postfix):
        n = self.a.listn
        c = self.a.concurrency
        log(f"{fs}: listing {n} queued messages; first delivery after start with {n} queued")
        postern.reset()
        postern.generate(n, area="queue", deferred=True)
        first_spool = os.path.join(postern.base, "postern-spool-first")
        postfix.stop()
        postfix.clear()
        t0 = time.monotonic()
        postfix.fill(n, self.message_files[0], self.a.max_wait)
        log(f"  Postfix: {n} messages queued through smtpd in {time.monotonic() - t0:.0f} s")

        def postern_list():
            return subprocess.run([postern.binary, "list", "--json", "--spool", postern.spool],
                                  env=postern.env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)

        def postfix_list():
            return subprocess.run([POSTQUEUE, "-c", postfix.etc, "-j"], env=postfix.env,
                                  stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)

        for r, order in self.pairs(self.a.list_runs, self.a.warmup):
            for target in order:
                busy = self.settle()
                t0 = time.monotonic()
                out = (postern_list if target == "postern" else postfix_list)()
                s = time.monotonic() - t0
                lines = out.stdout.count(b"\n")
                if lines != n:
                    self.note(fs, f"list {target} run {r}: {lines} lines for {n} messages (exit {out.returncode})")
                if r > 0:
                    self.record(fs, "list", target, r, busy, seconds=s, lines=lines)

        # First delivery after start. Postern registers an attempt for a message
        # before delivering it (attempts + 1, next attempt one backoff later), so
        # its spool is generated afresh for every run; Postfix's deferred queue
        # is flushed at every start and is reused.
        for r, order in self.pairs(self.a.first_runs, 0):
            for target in order:
                if target == "postern":
                    postern.reset(first_spool)
                    postern.generate(n, area="queue", spool=first_spool)
                busy = self.settle()
                sink = Sink(self.work)
                extra = {}
                try:
                    if target == "postern":
                        queued = count_entries(os.path.join(first_spool, "queue"))
                        t0 = time.monotonic()
                        postern.start(sink.port, c, spool=first_spool, wait=False)
                        seen = {}

                        def both():
                            now = time.monotonic()
                            if "ready" not in seen and postern.ready_line():
                                seen["ready"] = now
                            if "first" not in seen and sink.count() > 0:
                                seen["first"] = now
                            return len(seen) == 2
                        wait_for("the first delivery and the index", both, self.a.max_wait, 0.002)
                        t_first = seen["first"]
                        _, logged, _, _ = postern.wait_ready(10)
                        extra = dict(index_ready_s=seen["ready"] - t0, index_logged_s=logged)
                        # Its spool is thrown away: no need to wait for a graceful stop.
                        PROCS.end(postern.daemon, sig=signal.SIGKILL)
                        postern.daemon = None
                    else:
                        postfix.stop()
                        queued = postfix.queued()
                        postfix.configure(sink_port=sink.port, deferred=False)
                        t0 = time.monotonic()
                        run([POSTFIX, "-c", postfix.etc, "start"])
                        t_started = time.monotonic()
                        postfix.flush()
                        t_first = sink.wait_first(self.a.max_wait)
                        extra = dict(start_cmd_s=t_started - t0)
                finally:
                    postern.stop()
                    postfix.stop()
                    sink.stop()
                if r > 0:
                    self.record(fs, "first", target, r, busy, seconds=t_first - t0, queued=queued, **extra)
        postern.reset(first_spool)
        rmtree(first_spool)
        postern.reset()
        postfix.stop()
        postfix.clear()
        postfix.configure(deferred=False)

    # -- 4. start-up with a large queue (Postern only)
    def measure_startup(self, fs, postern, base):
        c = self.a.concurrency
        dead_port = free_port()
        postern.reset()
        postern.start(dead_port, c)
        empty = vm_status(postern.daemon.pid)
        postern.stop()
        heap = {}
        failed = False
        for n in self.big:
            if failed:
                self.note(fs, f"start-up with {n}: skipped, a smaller queue already failed")
                continue
            need_bytes, need_inodes = n * 14 * 1024 + (1 << 30), n * 3 + 1000
            st, backing = os.statvfs(base), os.statvfs(self.a.workdir)
            if st.f_bavail * st.f_frsize < need_bytes or (st.f_files and st.f_favail < need_inodes) \
                    or backing.f_bavail * backing.f_frsize < need_bytes:
                self.note(fs, f"start-up with {n}: skipped, the file system lacks space or inodes "
                              f"({need_bytes >> 30} GiB, {need_inodes} inodes needed)")
                continue
            prior = [rec for rec in self.records if rec["fs"] == fs and rec["measure"] == "startup"]
            if prior:
                worst = max(rec["index_s"] / rec["queued"] for rec in prior)
                if worst * n > self.a.max_wait:
                    self.note(fs, f"start-up with {n}: skipped, smaller queues took {worst * 1e6:.0f} us "
                                  f"per message, which predicts {worst * n:.0f} s (over --max-wait {self.a.max_wait:.0f} s)")
                    continue
            log(f"{fs}: start-up with {n} queued (deferred) messages")
            postern.reset()
            gen_s = postern.generate(n, area="queue", deferred=True)
            log(f"  generated {n} messages in {gen_s:.0f} s")
            for r, _ in self.pairs(self.a.big_runs, self.a.warmup):
                busy = self.settle()
                try:
                    wall, logged, queued, _ = postern.start(dead_port, c, timeout=self.a.max_wait)
                except BenchError as e:
                    self.note(fs, f"start-up with {n}: {e}")
                    postern.stop()
                    failed = True
                    break
                vm = vm_status(postern.daemon.pid)
                postern.stop()
                if queued != n:
                    self.note(fs, f"start-up with {n} run {r}: the daemon indexed {queued}")
                if r > 0:
                    self.record(fs, "startup", f"n={n}", r, busy, index_s=wall, logged_s=logged, queued=queued,
                                peak_rss_mib=vm["VmHWM"] / 2**20,
                                rss_per_msg=(vm["VmRSS"] - empty["VmRSS"]) / n,
                                peak_rss_per_msg=(vm["VmHWM"] - empty["VmHWM"]) / n)
            if n not in heap:
                out = run([postern.binary, "index-memory", "--count", str(n)], check=False)
                m = re.search(r"bytes_per_message=([\d.]+)", out)
                heap[n] = (float(m.group(1)) if m else None, out.strip().splitlines()[-1] if out.strip() else "")
            postern.reset()
        self.startup_extra[fs] = dict(empty_rss_mib=empty["VmRSS"] / 2**20, heap=heap)

    # -- inodes per message
    def measure_inodes(self, fs, postern, postfix):
        why = InodeTrace.available()
        if why:
            self.note(fs, f"inode count skipped: {why}")
            return
        n = self.a.inodes
        c = self.a.concurrency
        log(f"{fs}: inodes created per message, {n} messages dropped and delivered")
        result = {}
        # Postern: drops while the daemon runs, until every message is delivered and removed.
        postern.reset()
        sink = Sink(self.work)
        try:
            postern.start(sink.port, c)
            trace = InodeTrace(self.work, [postern.spool])
            self.inject(postern.drop_command(), postern.env, n, 1)
            wait_for("Postern to deliver every message", lambda: sink.count() >= n, self.a.max_wait, 0.05)
            wait_for("Postern's queue to empty",
                     lambda: sum(count_entries(os.path.join(postern.spool, a)) for a in ("drop", "queue", "tmp")) == 0,
                     self.a.max_wait, 0.05)
            events = trace.stop()
            daemon_pid = postern.daemon.pid
        finally:
            sink.stop()
            postern.stop()
        result["postern"] = {
            "drop: directories": sum(1 for e in events if e[1] != daemon_pid and e[2] == "dir") / n,
            "drop: files": sum(1 for e in events if e[1] != daemon_pid and e[2] == "file") / n,
            "daemon: directories": sum(1 for e in events if e[1] == daemon_pid and e[2] == "dir") / n,
            "daemon: files (envelope updates)": sum(1 for e in events if e[1] == daemon_pid and e[2] == "file") / n,
            "total": len(events) / n,
        }
        postern.reset()
        # Postfix: sendmail while the instance delivers.
        sink = Sink(self.work)
        try:
            postfix.clear()
            postfix.configure(sink_port=sink.port, deferred=False)
            postfix.start()
            postfix.reload()
            trace = InodeTrace(self.work, [postfix.queue])
            self.inject(postfix.sendmail_command(), postfix.env, n, 1)
            wait_for("Postfix to deliver every message", lambda: sink.count() >= n, self.a.max_wait, 0.05)
            wait_for("Postfix's queue to empty", lambda: postfix.queued() == 0, self.a.max_wait, 0.05)
            events = trace.stop()
        finally:
            sink.stop()
            postfix.stop()
        by = {}
        for comm, _, kind in events:
            key = f"{comm}: {'directories' if kind == 'dir' else 'files'}"
            by[key] = by.get(key, 0) + 1
        result["postfix"] = {k: v / n for k, v in sorted(by.items())}
        result["postfix"]["total"] = len(events) / n
        self.inodes[fs] = result
        log(f"  inodes per message: Postern {result['postern']['total']:.2f}, Postfix {result['postfix']['total']:.2f}")
        postfix.clear()

    # -- per file system
    def run_fs(self, fs, base):
        os.chmod(base, 0o755)
        postern = Postern(self.a.postern, base)
        postfix = Postfix(base, self.a.concurrency)
        self.describe_fs(fs, base)
        steps = [
            ("ceiling", lambda: self.measure_ceiling(fs, base)),
            ("enqueue", lambda: self.measure_enqueue(fs, postern, postfix)),
            ("e2e", lambda: self.measure_e2e(fs, postern, postfix)),
            ("drain", lambda: self.measure_drain(fs, postern, postfix)),
            ("list", lambda: self.measure_list(fs, postern, postfix)),
            ("inodes", lambda: self.measure_inodes(fs, postern, postfix)),
            ("startup", lambda: self.measure_startup(fs, postern, base)),
        ]
        try:
            for name, step in steps:
                if name not in self.a.only:
                    continue
                try:
                    step()
                except BenchError as e:
                    # One failed measurement must not cost the others: report it, clean up, go on.
                    self.note(fs, f"{name} failed: {e}")
                    postern.stop()
                    postfix.stop()
                    PROCS.end_all()
        finally:
            postern.stop()
            postfix.stop()
            PROCS.end_all()

    def describe_fs(self, fs, path):
        st = os.stat(path)
        best = ("?", "?", "?", "?")
        with open("/proc/mounts") as f:
            for line in f:
                dev, mnt, fstype, opts = line.split()[:4]
                try:
                    if os.stat(mnt).st_dev == st.st_dev and len(mnt) >= len(best[1]) and \
                            (path == mnt or path.startswith(mnt.rstrip("/") + "/")):
                        best = (dev, mnt, fstype, opts)
                except OSError:
                    pass
        dev, mnt, fstype, opts = best
        journal = ""
        if fstype == "ext4":
            try:
                with open(f"/sys/fs/ext4/{os.path.basename(os.path.realpath(dev))}/journal_task") as f:
                    journal = ", no journal" if f.read().strip() == "<none>" else ", journaled"
            except OSError:
                pass
        self.fs_desc[fs] = f"{fstype}{journal} ({dev} on {mnt}, {opts})"

    # -- loop image
    @contextlib.contextmanager
    def loop_fs(self):
        base = tempfile.mkdtemp(prefix="postern-bench-loop.", dir=self.a.workdir)
        os.chmod(base, 0o755)
        image, mnt = os.path.join(base, "ext4.img"), os.path.join(base, "mnt")
        os.mkdir(mnt)
        size = self.a.loop_size
        if not size:
            biggest = max(self.big) if "startup" in self.a.only and self.big else 0
            # mkfs.ext4's default: one inode per 16 KiB; a message needs three.
            size = max(8 << 30, biggest * 3 * 16384 * 5 // 4)
        mounted = False
        try:
            run(["truncate", "-s", str(size), image])
            run(["mkfs.ext4", "-q", "-F", image])
            run(["mount", "-o", "loop", image, mnt])
            mounted = True
            os.chmod(mnt, 0o755)
            self.loop_desc = f"{size >> 30} GiB sparse image on the root file system"
            yield mnt
        finally:
            if mounted:
                for _ in range(20):
                    if subprocess.run(["umount", mnt], stderr=subprocess.DEVNULL).returncode == 0:
                        break
                    time.sleep(0.5)
                else:
                    log(f"could not unmount {mnt}; left mounted (umount -l {mnt}; rm -r {base})")
                    return
            rmtree(base)

    def main(self):
        self.fs_desc = {}
        self.loop_desc = ""
        self.big = [int(x) for x in self.a.big.split(",") if x.strip()] if self.a.big else []
        self.started = datetime.datetime.now()
        self.work = tempfile.mkdtemp(prefix="postern-bench.", dir=self.a.workdir)
        os.chmod(self.work, 0o755)
        try:
            self.msgdir = os.path.join(self.work, "messages")
            count = max(self.a.enqueue, self.a.e2e, self.a.inodes)
            self.message_files = write_set(self.msgdir, count)
            for fs in (("root", "loop") if self.a.fs == "both" else (self.a.fs,)):
                if fs == "root":
                    base = os.path.join(self.work, "root")
                    os.makedirs(base)
                    self.run_fs("root", base)
                    rmtree(base)
                else:
                    try:
                        with self.loop_fs() as mnt:
                            self.run_fs("loop", mnt)
                    except BenchError as e:
                        self.fs_desc.setdefault("loop", "not available")
                        self.note("loop", f"the loop-mounted image could not be set up: {e}")
        finally:
            PROCS.end_all()
            rmtree(self.work)
        self.finished = datetime.datetime.now()
        return report(self)


# ---------------------------------------------------------------------- report

def fmt(x, unit=""):
    if x is None:
        return "–"
    if isinstance(x, str):
        return x
    a = abs(x)
    if a >= 1000:
        s = f"{x:,.0f}"
    elif a >= 100:
        s = f"{x:.0f}"
    elif a >= 10:
        s = f"{x:.1f}"
    elif a >= 1:
        s = f"{x:.2f}"
    else:
        s = f"{x:.3f}"
    return s + unit


def mmm(values, unit=""):
    values = [v for v in values if v is not None]
    if not values:
        return "–"
    if len(values) == 1:
        return f"{fmt(values[0], unit)} (1 run)"
    return f"{fmt(statistics.median(values), unit)} ({fmt(min(values))}–{fmt(max(values))})"


def machine(bench):
    def first_line(cmd):
        try:
            return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                  timeout=60).stdout.strip().splitlines()[0]
        except Exception:  # noqa: BLE001 - description only
            return "?"
    cpu = "?"
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo") as f:
        mem = int(f.readline().split()[1]) / 2**20
    binary = os.path.realpath(bench.a.postern)
    source = binary.split("/.build/")[0] if "/.build/" in binary else REPO
    commit = first_line(["git", "-C", source, "rev-parse", "--short=12", "HEAD"])
    dirty = subprocess.run(["git", "-C", source, "status", "--porcelain", "--", "Sources", "Package.swift"],
                           stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True).stdout.strip()
    if source != REPO:
        commit += f" (binary {binary})"
    distro = "?"
    with contextlib.suppress(OSError), open("/etc/os-release") as f:
        for line in f:
            if line.startswith("PRETTY_NAME="):
                distro = line.split("=", 1)[1].strip().strip('"')
    rows = [
        ("cores", f"{os.cpu_count()} × {cpu}"),
        ("memory", f"{mem:.0f} GiB"),
        ("OS, kernel", f"{distro}, Linux {platform.release()}"),
    ]
    for fs, desc in bench.fs_desc.items():
        extra = f"; {bench.loop_desc}" if fs == "loop" else ""
        rows.append((f"file system `{fs}`", desc + extra))
    rows += [
        ("postern", f"{commit}{' (with uncommitted changes in Sources/)' if dirty else ''}, built with `swift build -c release`"),
        ("Postfix", f"{Postfix.version()} (Debian package), private instance"),
        ("Swift", first_line(["swift", "--version"])),
        ("Python", platform.python_version()),
    ]
    return rows


def pair_ratios(recs, measure, key, fs):
    a = {r["run"]: r[key] for r in recs if r["fs"] == fs and r["measure"] == measure and r["target"] == "postern"}
    b = {r["run"]: r[key] for r in recs if r["fs"] == fs and r["measure"] == measure and r["target"] == "postfix"}
    return [a[k] / b[k] for k in sorted(a) if k in b and b[k]]


def values(recs, fs, measure, target, key):
    return [r[key] for r in recs if r["fs"] == fs and r["measure"] == measure and r["target"] == target and key in r]


def verdict(ok):
    return "–" if ok is None else ("**met**" if ok else "**not met**")


def report(bench):
    a = bench.a
    recs = bench.records
    out = []
    title = "quick run" if a.quick else "run"
    out.append(f"# Postern vs Postfix: benchmark {title} of {bench.started:%Y-%m-%d}")
    out.append("")
    out.append(f"Command: `{a.command_line}` (started {bench.started:%Y-%m-%d %H:%M}, "
               f"took {(bench.finished - bench.started).total_seconds() / 60:.0f} min).")
    out.append("")
    out.append("| machine | |")
    out.append("|---|---|")
    for k, v in machine(bench):
        out.append(f"| {k} | {v} |")
    out.append("")
    out.append(f"Message set: {max(a.enqueue, a.e2e)} distinct messages of 4096 bytes (LF line endings, "
               f"one recipient, `-i -f {SENDER} {RECIPIENT}`). Both mail systems relay everything to "
               f"`smtp-sink` on 127.0.0.1 with concurrency {a.concurrency} (Postern `queue.max_concurrent` and "
               f"`queue.per_domain`; Postfix `default_destination_concurrency_limit` and smtp `maxproc`). "
               f"Runs: {a.runs} (drain {a.drain_runs}, listing {a.list_runs}, first delivery {a.first_runs}, "
               f"start-up {a.big_runs}) after {a.warmup} warm-up run(s) that are not counted. "
               f"Cells: median (min–max). Ratio: Postern/Postfix of each pair of runs, median (min–max).")
    out.append("")
    for fs in bench.fs_desc:
        out.append(f"## File system `{fs}`: {bench.fs_desc[fs]}")
        out.append("")
        out.append("| measurement | Postern | Postfix | Postern/Postfix | target | |")
        out.append("|---|---|---|---|---|---|")

        def row(label, measure, key, unit, target_text="", check=None, better="higher", pf_measure=None):
            pv = values(recs, fs, measure, "postern", key)
            fv = values(recs, fs, pf_measure or measure, "postfix", key)
            if not pv and not fv:
                return
            ratios = pair_ratios(recs, measure, key, fs) if fv and not pf_measure else []
            ok = check(pv, ratios) if check and pv else None
            arrow = " ↑" if better == "higher" else " ↓"
            out.append(f"| {label}{arrow} | {mmm(pv, unit)} | {mmm(fv, unit)} | {mmm(ratios, '×') if ratios else '–'} "
                       f"| {target_text} | {verdict(ok)} |")

        med = statistics.median
        for w in sorted({1, a.writers}):
            label = "serial" if w == 1 else f"{w} concurrent writers"
            row(f"durable enqueue, {label}, msgs/s", f"enqueue-w{w}", "rate", "",
                "≥1.5× Postfix", lambda p, r: bool(r) and med(r) >= 1.5)
        for w in sorted({1, a.writers}):
            cv = values(recs, fs, f"ceiling-w{w}", "protocol", "rate")
            pv = values(recs, fs, f"enqueue-w{w}", "postern", "rate")
            if cv:
                share = f"postern drop reaches {100 * med(pv) / med(cv):.0f}% of it" if pv else ""
                out.append(f"| disk ceiling of the drop protocol (no process start), "
                           f"{'serial' if w == 1 else f'{w} threads'}, msgs/s ↑ | {mmm(cv)} | – | – | {share} | |")
        row("drain, msgs/s (release until the sink has all)", "drain", "rate", "",
            "≥1.5× Postfix", lambda p, r: bool(r) and med(r) >= 1.5)
        row("drain, steady msgs/s (first to last arrival)", "drain", "steady_rate", "")
        row("drain, release command until it returned, s", "drain", "release_s", " s", better="lower")
        row("drain, CPU s per 1,000 messages (daemon / whole instance)", "drain", "cpu_s_per_1000", " s",
            "lower than Postfix", lambda p, r: bool(r) and med(r) < 1.0, better="lower")
        row("scheduler overhead: CPU ms per delivery while draining to an instant sink "
            "(first to last arrival)", "drain", "steady_cpu_ms_per_delivery", " ms", better="lower")
        row("live end to end, msgs/s (first drop to last arrival)", "e2e", "rate", "")
        row("live: enqueue rate while delivering, msgs/s", "e2e", "enqueue_rate", "")
        n_list = a.listn
        at_size = n_list >= 20000
        row(f"first delivery after start, {n_list:,} queued, s", "first", "seconds", " s",
            "< 0.5 s" if at_size else "< 0.5 s at 20,000",
            (lambda p, r: med(p) < 0.5) if at_size else None, better="lower")
        row(f"index ready after start, {n_list:,} queued (fresh), s", "first", "index_ready_s", " s", better="lower")
        row(f"`postern list --json` vs `postqueue -j`, {n_list:,} queued, s", "list", "seconds", " s",
            "≤ 0.5× Postfix" + ("" if at_size else " at 20,000"),
            (lambda p, r: bool(r) and med(r) <= 0.5) if at_size else None, better="lower")
        for rec_target in sorted({r["target"] for r in recs if r["fs"] == fs and r["measure"] == "startup"},
                                 key=lambda t: int(t[2:])):
            n = int(rec_target[2:])
            sel = [r for r in recs if r["fs"] == fs and r["measure"] == "startup" and r["target"] == rec_target]
            goal = {100000: 2.0, 1000000: 20.0}.get(n)
            idx = [r["index_s"] for r in sel]
            ok = (med(idx) < goal) if goal and idx else None
            out.append(f"| start-up, {n:,} queued (deferred): spawn until index ready, s ↓ | {mmm(idx, ' s')} | – | – "
                       f"| {'< %g s' % goal if goal else ''} | {verdict(ok)} |")
            rss = [r["rss_per_msg"] for r in sel]
            extra = bench.startup_extra.get(fs, {}).get("heap", {}).get(n)
            heap = f"; index heap (`postern index-memory`): {extra[0]:.0f} bytes" if extra and extra[0] else ""
            out.append(f"| start-up, {n:,} queued: RSS per queued message after indexing, bytes ↓ | {mmm(rss)}{heap} "
                       f"| – | – | < 300 bytes{'' if n >= 100000 else ' (judged from 100,000)'} "
                       f"| {verdict(med(rss) < 300 if rss and n >= 100000 else None)} |")
            out.append(f"| start-up, {n:,} queued: peak RSS, MiB ↓ | {mmm([r['peak_rss_mib'] for r in sel])} "
                       f"(peak per message {fmt(med([r['peak_rss_per_msg'] for r in sel]))} bytes) | – | – | | |")
        inodes = bench.inodes.get(fs)
        if inodes:
            pn, fx = inodes["postern"], inodes["postfix"]
            pdesc = ", ".join(f"{k} {v:.2f}" for k, v in pn.items() if k != "total" and v)
            fdesc = ", ".join(f"{k} {v:.2f}" for k, v in fx.items() if k != "total" and v)
            out.append(f"| inodes created per message (drop to delivery) ↓ | {pn['total']:.2f} ({pdesc}) "
                       f"| {fx['total']:.2f} ({fdesc}) | {pn['total'] / fx['total']:.2f}× | | |")
        out.append("")
        if bench.notes.get(fs):
            out.append("Notes:")
            out.append("")
            for n in bench.notes[fs]:
                out.append(f"- {n}")
            out.append("")
    out.append("↑ higher is better, ↓ lower is better. Drain: Postern's queue is paused with `postern hold` "
               "(generated straight into `hold/`) and resumed with `postern release --all` while the daemon runs; "
               "Postfix's with `defer_transports` (filled through its smtpd), resumed with `postfix reload` and "
               "`postqueue -f`. CPU: the Postern daemon's user+system time; for Postfix, every process of the "
               "instance (master, qmgr, smtp, ...). Enqueue: no daemon runs on either side (Postern: no `postern run`; "
               "Postfix: master stopped, so mail stays in `maildrop/`). Start-up: deferred messages "
               "(one failed attempt each) written by `tools/bench/gen-spool.py`; warm page cache.")
    out.append("")
    out.append("<details><summary>Every run</summary>")
    out.append("")
    out.append("| fs | measurement | target | run | busy before % | figures |")
    out.append("|---|---|---|---|---|---|")
    for r in recs:
        figures = ", ".join(f"{k} {fmt(v) if not isinstance(v, str) else v}" for k, v in r.items()
                            if k not in ("fs", "measure", "target", "run", "pre_busy"))
        out.append(f"| {r['fs']} | {r['measure']} | {r['target']} | {r['run']} | {r['pre_busy']:.0f} | {figures} |")
    out.append("")
    out.append("</details>")
    out.append("")
    return "\n".join(out)


# ------------------------------------------------------------------------ main

def parse_args(argv):
    ap = argparse.ArgumentParser(prog="tools/bench.sh", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true",
                    help="small sizes and few runs (every measurement, a few minutes)")
    ap.add_argument("--fs", choices=("root", "loop", "both"), default="both",
                    help="where the spools live (default both)")
    ap.add_argument("--only", default=",".join(MEASUREMENTS),
                    help=f"comma-separated subset of: {','.join(MEASUREMENTS)}")
    ap.add_argument("--runs", type=int, help="recorded runs of each paired measurement (full 5, quick 2)")
    ap.add_argument("--warmup", type=int, help="warm-up runs before them (full 1, quick 0)")
    ap.add_argument("--drain-runs", type=int, help="recorded drain runs (full 3)")
    ap.add_argument("--list-runs", type=int, help="recorded listing runs (full 5)")
    ap.add_argument("--first-runs", type=int, help="recorded first-delivery runs (full 3)")
    ap.add_argument("--big-runs", type=int, help="recorded start-up runs per queue size (full 3)")
    ap.add_argument("--enqueue", type=int, metavar="N", help="messages per enqueue run (full 2000)")
    ap.add_argument("--e2e", type=int, metavar="N", help="messages per live end-to-end run (full 2000)")
    ap.add_argument("--drain", type=int, metavar="N", help="messages per drain run (full 10000)")
    ap.add_argument("--list", dest="listn", type=int, metavar="N",
                    help="queued messages for listing and first delivery (full 20000)")
    ap.add_argument("--big", metavar="N,N", help="queue sizes for start-up (full 100000,1000000)")
    ap.add_argument("--inodes", type=int, metavar="N", help="messages for the inode count (full 100)")
    ap.add_argument("--writers", type=int, default=4, help="concurrent writers for enqueue (default 4)")
    ap.add_argument("--concurrency", type=int, default=10, help="delivery concurrency of both (default 10)")
    ap.add_argument("--postern", default=os.path.join(REPO, ".build", "release", "postern"),
                    help="the postern binary (default: this repository's release build)")
    ap.add_argument("--workdir", default="/var/tmp",
                    help="parent of the scratch directory and loop image (root file system; default /var/tmp)")
    ap.add_argument("--loop-size", type=int, default=0, metavar="BYTES",
                    help="size of the sparse ext4 image (default: 8 GiB, more for a big start-up queue)")
    ap.add_argument("--results", default=os.path.join(HERE, "results"),
                    help="where the Markdown report goes (default tools/bench/results)")
    ap.add_argument("--no-results", action="store_true", help="print the report only")
    ap.add_argument("--max-wait", type=float, default=900.0, metavar="S",
                    help="give up on any single wait after this long (default 900)")
    ap.add_argument("--quiet-pct", type=float, default=30.0,
                    help="before each run wait until the machine is at most this busy (%%, default 30)")
    ap.add_argument("--quiet-wait", type=float, metavar="S",
                    help="... but at most this long (full 120 s; quick 0: only records it)")
    ap.add_argument("--settle", type=float, metavar="S",
                    help="pause after sync before each run (full 1 s, quick 0.2 s)")
    a = ap.parse_args(argv)
    preset = QUICK if a.quick else FULL
    for key, value in preset.items():
        if getattr(a, key, None) is None:
            setattr(a, key, value)
    if a.quiet_wait is None:
        a.quiet_wait = 0.0 if a.quick else 120.0
    if a.settle is None:
        a.settle = 0.2 if a.quick else 1.0
    a.only = [m.strip() for m in a.only.split(",") if m.strip()]
    for m in a.only:
        if m not in MEASUREMENTS:
            ap.error(f"unknown measurement {m!r} (choose from {', '.join(MEASUREMENTS)})")
    if a.runs < 1 or a.warmup < 0:
        ap.error("--runs must be at least 1 and --warmup at least 0")
    return a


def main(argv):
    a = parse_args(argv)
    a.command_line = os.environ.get("BENCH_COMMAND") or "tools/bench.sh " + " ".join(argv)
    if os.geteuid() != 0:
        sys.exit("bench: must run as root (Postfix's master, mount, perf)")
    if not os.access(a.postern, os.X_OK):
        sys.exit(f"bench: no postern binary at {a.postern} (build it: swift build -c release)")
    for tool in (POSTFIX, SENDMAIL, SMTP_SINK, SMTP_SOURCE, MASTER):
        if not os.access(tool, os.X_OK):
            sys.exit(f"bench: {tool} is missing (tools/postfix-peer.sh install)")

    def interrupted(signum, _frame):
        raise KeyboardInterrupt(f"signal {signum}")
    signal.signal(signal.SIGTERM, interrupted)
    signal.signal(signal.SIGHUP, interrupted)
    bench = Bench(a)
    try:
        text = bench.main()
    except KeyboardInterrupt:
        log("interrupted; cleaned up")
        return 130
    print(text)
    if not a.no_results:
        os.makedirs(a.results, exist_ok=True)
        name = f"{bench.started:%Y-%m-%d}{'-quick' if a.quick else ''}.md"
        path = os.path.join(a.results, name)
        with open(path, "w") as f:
            f.write(text)
        log(f"report written to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
