"""Measurements of mail flowing through: the disk's ceiling for the drop
protocol, durable enqueue, live end to end, and the drain of a paused queue
with its CPU cost, in plaintext and over TLS.

Each function takes the session, the file system's name and the targets, and
talks to the targets only through target.Target; what differs between Postern
and Postfix is theirs to do. Runs are paired (session.pairs) and a run is
recorded only when it is not a warm-up run.
"""
import json
import os
import threading
import time

from instruments import Sink, TlsSink, throwaway_cert
from msgset import RECIPIENT, SENDER, message_bytes
from procs import log, rmtree
from records import CeilingRun, DrainRun, EndToEndRun, EnqueueRun, TlsDrainRun
from target import HOSTNAME


def ceiling_once(base, count, writers):
    """spool-layout.md 6.1 from Python threads, with no process start: mkdir,
    two files written and fsynced, directory fsync, rename, fsync of drop/.
    The fastest `postern drop` could possibly be on this disk; returns seconds."""
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


def ceiling(s, fs, base):
    """1. The disk's ceiling for Postern's drop protocol (no target involved)."""
    n = s.a.enqueue
    for writers in sorted({1, s.a.writers}):
        log(f"{fs}: disk ceiling of the drop protocol, {n} messages, {writers} writer(s)")
        for r in s.runs(s.a.runs, s.a.warmup):
            busy = s.settle()
            sec = ceiling_once(base, n, writers)
            if r > 0:
                s.record(CeilingRun(fs, f"ceiling-w{writers}", "protocol", r, busy, rate=n / sec, seconds=sec))


def enqueue(s, fs, targets, measure="enqueue", writer_counts=None):
    """1. Durable enqueue: one process per message, serially and from
    --writers loops, with no daemon running (delivery paused). With
    measure="drop" on a tmpfs, the same loop measures the submitting
    programs themselves, the disk taken out."""
    n = s.a.enqueue
    for t in targets:
        t.stop()
    for writers in writer_counts or sorted({1, s.a.writers}):
        log(f"{fs}: {measure}, {n} messages, one process each, {writers} writer(s), delivery paused")
        for r, order in s.pairs(s.a.runs, s.a.warmup, targets):
            for t in order:
                busy = s.settle()
                t.empty()
                sec, fails, _ = s.inject(t, n, writers)
                got = t.submitted()
                t.empty()
                if got != n or fails:
                    s.note(fs, f"enqueue {t.name} run {r}: {got} of {n} queued, {fails} failed")
                if r > 0:
                    s.record(EnqueueRun(fs, f"{measure}-w{writers}", t.name, r, busy, rate=n / sec, seconds=sec,
                                        wall_ms=1000 * sec * writers / n, cpu_ms=1000 * s.last_inject_cpu / n))


def e2e(s, fs, targets):
    """3. Live end to end: the target runs, messages are submitted one process
    each, serially; from the first submission until the sink has the last."""
    n = s.a.e2e
    log(f"{fs}: live end to end, {n} messages dropped one process each while the daemon runs")
    for r, order in s.pairs(s.a.runs, s.a.warmup, targets):
        for t in order:
            sink = Sink(s.work, stop_after=n)
            try:
                t.empty()
                t.start(sink.port)
                busy = s.settle()
                s_inj, fails, t0 = s.inject(t, n, 1)
                t_end = sink.wait_exit(s.a.max_wait)
            finally:
                sink.stop()
                # Its sink is gone: nothing must keep retrying during the other's run.
                t.stop()
            if fails:
                s.note(fs, f"e2e {t.name} run {r}: {fails} submissions failed")
            if r > 0:
                s.record(EndToEndRun(fs, "e2e", t.name, r, busy, rate=n / (t_end - t0), seconds=t_end - t0,
                                     enqueue_rate=n / s_inj))
    for t in targets:
        t.empty()


def drain(s, fs, targets, tls=False):
    """2 and 5. Drain: N messages queued while delivery is paused, then
    resumed; until the sink has all N. CPU per message over the whole window
    and over its steady part (first to last arrival).

    With `tls`, the drain over TLS: the targets deliver with opportunistic
    STARTTLS to a Postfix smtpd with a throwaway certificate (TlsSink), which
    passes each message on to the same sink, so the end is detected the same
    way and the extra hop is the same for both; what differs is the sender's
    TLS (handshakes, connection reuse, encryption), which its CPU includes.
    That smtpd's log says how many sessions, and how many with TLS: a run
    that delivered without TLS gets a note."""
    n = s.a.drain
    measure = "drain-tls" if tls else "drain"
    cert = throwaway_cert(s.work) if tls else None
    log(f"{fs}: {'drain over TLS' if tls else 'drain'} of {n} messages queued while delivery was paused, "
        f"concurrency {s.a.concurrency}")
    for r, order in s.pairs(s.a.drain_runs, s.a.warmup, targets):
        for t in order:
            sink = Sink(s.work, stop_after=n)
            receiver = seen = t_end = None
            cpu = cpu_steady = None
            try:
                if tls:
                    receiver = TlsSink(s.work, sink.port, cert)
                t.fill_paused(n, receiver.port if receiver else sink.port, tls=tls)
                busy = s.settle()
                cpu = t.cpu()
                resumed = t.resume()
                if resumed.problem:
                    s.note(fs, f"{measure} {t.name} run {r}: {resumed.problem}")
                t_first = sink.wait_first(s.a.max_wait)
                cpu_steady = t.cpu()
                t_end = sink.wait_exit(s.a.max_wait)
            finally:
                user, system, _ = cpu.stop() if cpu else (0, 0, {})
                steady_user, steady_system, steady_by_comm = cpu_steady.stop() if cpu_steady else (0, 0, {})
                sink.stop()
                if receiver:
                    seen = receiver.stop(count=t_end is not None)
            t.empty()
            extra = {}
            if seen:
                connections, tls_sessions, protocol = seen
                if not tls_sessions or tls_sessions < connections:
                    s.note(fs, f"{measure} {t.name} run {r}: {connections - tls_sessions} of {connections} "
                               f"sessions at the receiving smtpd without TLS")
                extra = dict(connections=connections, tls_sessions=tls_sessions, tls=protocol)
            if r > 0:
                by_process = None
                if t.cpu_by_process:
                    top = sorted(steady_by_comm.items(), key=lambda kv: -kv[1])[:5]
                    by_process = ", ".join(f"{k} {v:.2f}" for k, v in top)
                t0 = resumed.t0
                s.record((TlsDrainRun if tls else DrainRun)(
                    fs, measure, t.name, r, busy, rate=n / (t_end - t0), seconds=t_end - t0,
                    steady_rate=(n - 1) / max(1e-6, t_end - t_first), release_s=resumed.returned - t0,
                    first_s=t_first - t0, cpu_s_per_1000=1000 * (user + system) / n,
                    cpu_user_s_per_1000=1000 * user / n, cpu_sys_s_per_1000=1000 * system / n,
                    steady_cpu_ms_per_delivery=1000 * (steady_user + steady_system) / max(1, n - 1),
                    steady_cpu_s_by_process=by_process, **extra))
