"""What the measurements observe the mail systems with, the same for both:
the receiving end (smtp-sink, behind a Postfix smtpd that offers STARTTLS for
the drain over TLS) and the inode counter (perf on an ext4 tracepoint).

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
OPENSSL = "openssl"
POSTFIX = "/usr/sbin/postfix"
PEER = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "postfix-peer.sh")


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
        """When it exited after the last message. An exit on a signal is not
        that (something else on the machine killed it: a `pkill smtp-sink`),
        and a run timed by it would be bogus: an error."""
        wait_for("smtp-sink to receive every message", self.exited, timeout, 0.002)
        t = time.monotonic()
        if self.proc.returncode != 0:
            raise BenchError(f"smtp-sink exited {self.proc.returncode} after {self.count()} messages, "
                             f"not after its last one: killed by someone else?")
        return t

    def wait_first(self, timeout):
        wait_for("the first message at smtp-sink", lambda: self.exited() or self.count() > 0, timeout, 0.002)
        return time.monotonic()

    def stop(self):
        PROCS.end(self.proc, grace=5.0)


def throwaway_cert(workdir):
    """A self-signed certificate and its key for the TLS sink, made now and
    valid for two days: nothing checks it (both senders use STARTTLS without
    verification), it only has to exist. Returns (certificate, key) paths."""
    if not shutil.which(OPENSSL):
        raise BenchError("openssl is not installed (tools/postfix-peer.sh install)")
    cert, key = os.path.join(workdir, "tls-sink-cert.pem"), os.path.join(workdir, "tls-sink-key.pem")
    run([OPENSSL, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
         "-subj", "/CN=tls-sink.bench.test", "-keyout", key, "-out", cert])
    return cert, key


class TlsSink:
    """A Postfix smtpd on 127.0.0.1:PORT that offers STARTTLS with `cert` and
    passes every transaction, as it arrives, to the smtp-sink on sink_port
    (`postfix-peer.sh configure-tls-sink`: a private instance under the work
    directory, nothing queued). The sink still counts the messages, so a
    drain over TLS ends the way every other drain does; this instance's log
    says how many TLS sessions the senders made, and with what. One instance
    per run, started fresh, so neither target inherits the other's smtpd
    processes or TLS state.

    Its master is Postfix's, detached from us: `live` keeps every instance
    not yet stopped, so that the run's cleanup (stop_all) ends them even if
    the measurement's own stop was cut short (a second Ctrl-C)."""

    live = set()

    def __init__(self, workdir, sink_port, cert):
        self.port = free_port()
        self.dir = os.path.join(workdir, f"tls-sink-{self.port}")
        self.etc = os.path.join(self.dir, "etc")
        self.log = os.path.join(self.dir, "log", "maillog")
        self.start_offset = 0
        run([PEER, "configure-tls-sink", self.dir, str(self.port), str(sink_port), *cert])
        TlsSink.live.add(self)
        try:
            run([POSTFIX, "-c", self.etc, "start"])
            wait_for("the TLS sink's smtpd", lambda: port_open(self.port), 30, 0.02)
            # That probe is a session too (without TLS): begin counting after it.
            self.start_offset = wait_for("the TLS sink's log of the probe", self.probe_logged, 10, 0.02)
        except BaseException:
            self.stop(count=False)
            raise

    def probe_logged(self):
        """The log's size once the probe's disconnect is in it, else None."""
        try:
            with open(self.log, "rb") as f:
                data = f.read()
        except FileNotFoundError:
            return None
        return len(data) if b"]: disconnect from " in data else None

    def sessions(self):
        """(SMTP sessions, TLS sessions, "protocol cipher" of the last TLS
        session or None) since the start, from the log once it stops growing
        (postlogd writes a moment after smtpd logs)."""
        def read():
            try:
                with open(self.log, "rb") as f:
                    f.seek(self.start_offset)
                    return f.read().decode("utf-8", "replace")
            except FileNotFoundError:
                return ""
        text = read()
        while True:
            time.sleep(0.3)
            again = read()
            if again == text:
                break
            text = again
        connections = len(re.findall(r"\]: connect from ", text))
        tls = re.findall(r"TLS connection established from \S+: (\S+) with cipher (\S+)", text)
        return connections, len(tls), " ".join(tls[-1]) if tls else None

    def stop(self, count=True):
        """Stops the instance (postfix-peer.sh stop) and removes its files;
        returns sessions() as they were just before, or None if not `count`
        (a run cut short: no time to wait for the log)."""
        try:
            return self.sessions() if count else None
        finally:
            run([PEER, "stop", self.dir], check=False)
            shutil.rmtree(self.dir, ignore_errors=True)
            TlsSink.live.discard(self)

    @classmethod
    def stop_all(cls):
        for sink in list(cls.live):
            sink.stop(count=False)


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
