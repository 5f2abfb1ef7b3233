"""What the measurements observe the mail systems with, the same for both:
the receiving end (smtp-sink) and the inode counter (perf on an ext4
tracepoint).

Neither belongs to a target: a measurement that asked each mail system how
much it had delivered, or how many files it made, would be comparing two
systems' own accounts. Counting at the sink and in the kernel keeps both sides
on one ruler.
"""
import contextlib
import os
import re
import shutil
import signal
import subprocess
import time

from procs import PROCS, BenchError, free_port, port_open, run, wait_for

SMTP_SINK = "/usr/sbin/smtp-sink"


class Sink:
    """smtp-sink on 127.0.0.1:PORT; with `stop_after` it exits right after the
    N-th message (before answering it: the sender keeps that one queued), so
    the moment it exits is the moment the last message arrived."""

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
        """Messages received so far (-c prints a running count; its last one)."""
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


class InodeTrace:
    """Counts inodes allocated on one ext4 file system (kernel tracepoint
    ext4:ext4_allocate_inode, through perf) below a set of directories: each
    event whose parent directory is known counts, and a new directory's
    inode becomes known, so message directories and their files count too.
    stop() returns the events as (command, pid, "dir" or "file")."""

    @staticmethod
    def available():
        """None if perf can trace ext4 here, else why not."""
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
