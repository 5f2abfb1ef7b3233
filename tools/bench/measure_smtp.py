"""The SMTP listener against Postfix's smtpd (issue #18): the same 4 KiB
message injected over SMTP by smtp-source, one message per session, at
--concurrency sessions at once (10), into each target's SMTP port.

- smtp-inject: delivery paused, from the first connection until smtp-source
  has the last 250. Both answer 250 only once the message is durable:
  Postfix's cleanup fsyncs its queue file before smtpd replies, Postern's
  listener commits the drop (spool-layout.md 6.1) first. Postfix is paused by
  defer_transports, as for the drain; Postern's daemon relays to a port where
  nothing listens, so each message is accepted into the queue and deferred
  once, as Postfix's qmgr defers each into deferred/.
- smtp-e2e: both deliver to smtp-sink while the messages come in; from the
  first connection until the sink has the last message.

Between runs each target's queue is set aside, not deleted (procs.SetAside:
on ext4 without a journal, inodes freed seconds before slow down every
allocation of the next run), and deleted once both measurements are over.
"""
import subprocess
import time

from instruments import Sink
from msgset import RECIPIENT, SENDER
from procs import BenchError, log, wait_for
from records import SmtpEndToEndRun, SmtpInjectRun
from target import HOSTNAME

SMTP_SOURCE = "/usr/sbin/smtp-source"


def inject(s, port, count):
    """smtp-source: `count` messages, one per session, --concurrency sessions
    at once; returns (seconds, monotonic start)."""
    cmd = [SMTP_SOURCE, "-s", str(s.a.concurrency), "-m", str(count), "-f", SENDER, "-t", RECIPIENT,
           "-M", HOSTNAME, "-F", s.message_files[0], f"127.0.0.1:{port}"]
    t0 = time.monotonic()
    p = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, timeout=s.a.max_wait)
    seconds = time.monotonic() - t0
    if p.returncode != 0:
        raise BenchError(f"smtp-source exited {p.returncode}: {p.stderr[-500:]}")
    return seconds, t0


def smtp(s, fs, targets):
    n = s.a.smtp
    log(f"{fs}: SMTP injection of {n} messages, {s.a.concurrency} sessions at once, delivery paused")
    for r, order in s.pairs(s.a.runs, s.a.warmup, targets):
        for t in order:
            try:
                t.empty(set_aside=True)
                t.start_paused()
                busy = s.settle()
                seconds, _ = inject(s, t.smtp_port, n)
                wait_for(f"{n} messages in {t.name}'s queue", lambda: t.queued() >= n, s.a.max_wait, 0.1)
                got = t.queued()
            finally:
                t.stop(discard=True)
            if got != n:
                s.note(fs, f"smtp-inject {t.name} run {r}: {got} of {n} queued")
            if r > 0:
                s.record(SmtpInjectRun(fs, "smtp-inject", t.name, r, busy, rate=n / seconds, seconds=seconds))
            t.empty(set_aside=True)
    log(f"{fs}: SMTP end to end, {n} messages injected at {s.a.concurrency} sessions while delivering to smtp-sink")
    for r, order in s.pairs(s.a.runs, s.a.warmup, targets):
        for t in order:
            sink = Sink(s.work, stop_after=n)
            try:
                t.empty(set_aside=True)
                t.start(sink.port)
                busy = s.settle()
                seconds, t0 = inject(s, t.smtp_port, n)
                t_end = sink.wait_exit(s.a.max_wait)
            finally:
                sink.stop()
                t.stop()
            if r > 0:
                s.record(SmtpEndToEndRun(fs, "smtp-e2e", t.name, r, busy, rate=n / (t_end - t0),
                                         seconds=t_end - t0, inject_rate=n / seconds))
            t.empty(set_aside=True)
    for t in targets:
        t.purge_set_aside()
