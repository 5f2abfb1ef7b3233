"""Processes: running commands, spawning daemons, waiting, CPU accounting of
process trees, and cleanup.

Everything the benchmark starts in the background goes through PROCS, so that
an interrupted run (Ctrl-C, SIGTERM, a failed measurement) ends exactly the
processes it started, by pid, and never anything else on the machine. Each
one leads its own session and process group, so a SIGKILL to the group also
takes whatever it forked.

CPU accounting reads /proc directly rather than trusting a daemon to report
its own usage: the same code counts Postern's one daemon and Postfix's dozen
short-lived processes, which is what makes the two comparable.
"""
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time

TICK = os.sysconf("SC_CLK_TCK")


def log(text):
    """Progress goes to standard error, so standard output holds the report only."""
    print(f"[{time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


class BenchError(Exception):
    """A measurement cannot go on; the run notes it and carries on with the next one."""


def run(cmd, check=True, quiet=True, **kw):
    """Runs a command to completion; its output is returned (text)."""
    out = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kw)
    if check and out.returncode != 0:
        raise BenchError(f"{' '.join(map(str, cmd))} exited {out.returncode}: {out.stdout.strip()[-2000:]}")
    if not quiet and out.stdout:
        print(out.stdout, file=sys.stderr, end="")
    return out.stdout


def free_port():
    """A loopback port nobody listens on right now (a closed port is also how a
    daemon is given a relay that never answers)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_open(port):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0


def wait_for(what, predicate, timeout, interval=0.005):
    """Polls `predicate` until it returns a true value or `timeout` s pass.
    Short intervals: the polling is part of what some measurements time."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise BenchError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


def cpu_busy_sample(seconds):
    """How busy the whole machine is (%) over `seconds`, from /proc/stat."""
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


class SetAside:
    """Where a target's emptied queue goes between the runs of one
    measurement instead of being deleted: a directory beside the queue, on
    the same file system, removed by `purge()` once the measurement is over.

    Why: ext4 without a journal will not reuse an inode freed in the last 60
    seconds (360 while its inode-table block is dirty) and walks past each
    such inode, from the start of the block group, at every allocation. A
    run that starts seconds after the previous run's queue was deleted pays
    for thousands of them at each new file, more the more inodes a message
    has and the sooner it follows: the SMTP injection's runs measured 1,532,
    then 901 msg/s for the same Postern, one run later (2026-12-05). Setting
    the queue aside frees nothing, so each run meets the file system as the
    first did, whatever its place in the order."""

    def __init__(self, base, owner):
        self.dir = os.path.join(base, "set-aside-" + owner)
        self.count = 0

    def keep(self, path):
        """Renames `path` (a file or directory) into the set-aside directory."""
        os.makedirs(self.dir, exist_ok=True)
        self.count += 1
        os.rename(path, os.path.join(self.dir, str(self.count)))

    def purge(self):
        rmtree(self.dir)


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
        """Signals `p`, waits `grace` s for it, then SIGKILLs its process group."""
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
    """(comm, ppid, user, system, children's user, children's system) of a pid
    in seconds, or None once it is gone."""
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
        """(user s, system s, {command: s}) since construction."""
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
    """{"VmHWM": bytes, "VmRSS": bytes} of a live process: its peak and current RSS."""
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(("VmHWM", "VmRSS")):
                key, value = line.split(":")
                out[key] = int(value.split()[0]) * 1024
    return out
