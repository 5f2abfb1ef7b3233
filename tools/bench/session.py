"""One benchmark run's shared state and habits: the options, the scratch
directory and message set, the record file, and the rules every measurement
follows (settle before each run, pair the targets in ABBA order, submit one
process per message).

These rules live here, not in the measurements, because they are what makes
two systems' figures comparable: a measurement that settled differently, or
always ran Postern first, would measure the machine's state rather than the
mail systems.
"""
import contextlib
import resource
import os
import signal
import subprocess
import time

from procs import BenchError, cpu_busy_sample, log
from records import Note

HERE = os.path.dirname(os.path.abspath(__file__))


class Session:
    def __init__(self, options, work, message_files, record_file=None):
        self.a = options
        self.work = work
        self.message_files = message_files
        self.record_file = record_file  # records.RecordFile, or None (--no-results)
        self.records = []

    # -- records
    def emit(self, record):
        """Keeps a record and appends it to the run's .jsonl at once."""
        self.records.append(record)
        if self.record_file:
            self.record_file.write(record)

    def record(self, run):
        """A measured run (records.Run): kept, written, and shown as progress."""
        self.emit(run)
        shown = " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in run.figures())
        log(f"  {run.fs} {run.measure} {run.target} run {run.run}: {shown} "
            f"(machine busy before: {run.pre_busy:.0f}%)")

    def note(self, fs, text):
        self.emit(Note(fs, text))
        log(f"note ({fs}): {text}")

    # -- the rules
    def settle(self):
        """sync, then wait (bounded) for a quiet machine; returns the busy % seen,
        rounded as records keep it."""
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
        return round(busy, 1)

    @staticmethod
    def runs(runs, warmup):
        """Run numbers: warm-up runs (number <= 0, not recorded), then 1..runs."""
        return range(1 - warmup, runs + 1)

    def pairs(self, runs, warmup, targets):
        """(run number, targets in order) for warm-up runs then recorded runs;
        the order alternates ABBA so that neither side always goes first."""
        first, second = targets
        for i, r in enumerate(self.runs(runs, warmup)):
            yield r, ((first, second) if i % 4 in (0, 3) else (second, first))

    # -- submitting
    def list_file(self, count):
        path = os.path.join(self.work, f"messages-{count}.list")
        with open(path, "w") as f:
            for i in range(count):
                f.write(self.message_files[i % len(self.message_files)] + "\n")
        return path

    def inject(self, target, count, writers):
        """Runs the target's submit command once per message (on standard input)
        from `writers` loops side by side (inject.sh); returns (seconds,
        failures, monotonic start time)."""
        lst = self.list_file(count)
        errlog = os.path.join(self.work, "inject-errors.log")
        t0 = time.monotonic()
        self.children_cpu_before = children_cpu()
        p = subprocess.Popen([os.path.join(HERE, "inject.sh"), str(writers), lst, errlog, *target.submit_command()],
                             env=target.env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, text=True,
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
        # Every submitting process (sendmail and postdrop, postern-drop) has been
        # reaped by inject.sh, and it by us: their CPU is in RUSAGE_CHILDREN.
        self.last_inject_cpu = children_cpu() - self.children_cpu_before
        failures = int(stdout.strip() or "0")
        return t1 - t0, failures, t0


def children_cpu():
    """User and system seconds of every reaped descendant so far."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime
