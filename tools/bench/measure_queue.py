"""Measurements of a large queue: listing it, the first delivery after a
cold start, start-up with 100,000 and more queued (targets with an index),
and the inodes each message costs from submission to delivery.

As in measure_flow, everything goes through target.Target; a measurement
that only makes sense for some targets asks for a capability (has_index),
never for a name.
"""
import os
import subprocess
import time

from instruments import InodeTrace, Sink
from procs import BenchError, free_port, log, wait_for
from records import CountRun, EmptyDaemon, FirstLineRun, FirstRun, IndexMemory, Inodes, ListRun, StartupRun


def drop_caches():
    """A cold page cache: written back, then dropped (a start after a reboot)."""
    os.sync()
    with open("/proc/sys/vm/drop_caches", "w") as f:
        f.write("3\n")


def listing(s, fs, targets):
    """4. Listing N queued messages with each target's listing command."""
    n = s.a.listn
    log(f"{fs}: listing {n} queued messages; first delivery after start with {n} queued")
    for t in targets:
        sec = t.fill_deferred(n)
        log(f"  {t.name}: {n} deferred messages queued in {sec:.0f} s")
    for r, order in s.pairs(s.a.list_runs, s.a.warmup, targets):
        for t in order:
            busy = s.settle()
            sec, first, lines, status = read_listing(t.list_command(), t.env)
            if lines != n:
                s.note(fs, f"list {t.name} run {r}: {lines} lines for {n} messages (exit {status})")
            if r > 0:
                s.record(ListRun(fs, "list", t.name, r, busy, seconds=sec, lines=lines, first_line_s=first))


def read_listing(cmd, env, whole=True):
    """Runs a listing command and reads its output as it comes: (seconds
    until its end, seconds until its first line, lines, exit status). With
    whole=False it is killed after the first line (lines and status None)."""
    t0 = time.monotonic()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    first, lines = None, 0
    while True:
        chunk = proc.stdout.read1(1 << 20)
        if not chunk:
            break
        lines += chunk.count(b"\n")
        if first is None and lines:
            first = time.monotonic() - t0
            if not whole:
                proc.kill()
                break
    proc.stdout.close()
    status = proc.wait()
    return time.monotonic() - t0, first, (lines if whole else None), (status if whole else None)


def first_delivery(s, fs, targets):
    """4. First delivery after a cold start with N queued: from the start
    command until the sink has a message; for a target with an index, also
    until it reports the index ready. No warm-up runs."""
    n = s.a.listn
    for r, order in s.pairs(s.a.first_runs, 0, targets):
        for t in order:
            t.fill_cold(n)
            busy = s.settle()
            sink = Sink(s.work)
            try:
                queued = t.queued()
                cold = t.cold_start(sink.port)
                seen = {}

                def done():
                    now = time.monotonic()
                    if t.has_index and "ready" not in seen and t.index_ready():
                        seen["ready"] = now
                    if "first" not in seen and (sink.exited() or sink.count() > 0):
                        seen["first"] = now
                    return "first" in seen and ("ready" in seen or not t.has_index)
                wait_for("the first delivery" + (" and the index" if t.has_index else ""), done,
                         s.a.max_wait, 0.002)
                extra = {}
                if t.has_index:
                    extra = dict(index_ready_s=seen["ready"] - cold.t0,
                                 index_logged_s=t.wait_index(10).logged_s)
                if cold.start_cmd_s is not None:
                    extra["start_cmd_s"] = cold.start_cmd_s
            finally:
                # What it delivered is gone and it attempted the rest: the next
                # run starts from fill_cold() again.
                t.stop(discard=True)
                sink.stop()
            if r > 0:
                s.record(FirstRun(fs, "first", t.name, r, busy, seconds=seen["first"] - cold.t0, queued=queued,
                                  **extra))
    for t in targets:
        t.stop()
        t.empty()


def startup(s, fs, targets, base, sizes):
    """4. Start-up with big queues of deferred messages (targets with an
    index): spawn until the index is ready, RSS per queued message. A size
    the file system has no room for, or that smaller sizes predict to take
    over --max-wait, is skipped with a note."""
    for t in targets:
        if t.has_index:
            startup_of(s, fs, t, base, sizes)


def startup_of(s, fs, t, base, sizes):
    dead_port = free_port()
    t.empty()
    t.start(dead_port)
    empty = t.memory()
    t.stop()
    s.emit(EmptyDaemon(fs, t.name, rss_mib=empty["VmRSS"] / 2**20, peak_rss_mib=empty["VmHWM"] / 2**20))
    failed = False
    for n in sizes:
        if failed:
            s.note(fs, f"start-up with {n}: skipped, a smaller queue already failed")
            continue
        need_bytes, need_inodes = n * 14 * 1024 + (1 << 30), n * 3 + 1000
        st, backing = os.statvfs(base), os.statvfs(s.a.workdir)
        if st.f_bavail * st.f_frsize < need_bytes or (st.f_files and st.f_favail < need_inodes) \
                or backing.f_bavail * backing.f_frsize < need_bytes:
            s.note(fs, f"start-up with {n}: skipped, the file system lacks space or inodes "
                       f"({need_bytes >> 30} GiB, {need_inodes} inodes needed)")
            continue
        prior = [rec for rec in s.records if isinstance(rec, StartupRun) and rec.fs == fs]
        if prior:
            worst = max(rec.index_s / rec.queued for rec in prior)
            if worst * n > s.a.max_wait:
                s.note(fs, f"start-up with {n}: skipped, smaller queues took {worst * 1e6:.0f} us "
                           f"per message, which predicts {worst * n:.0f} s (over --max-wait {s.a.max_wait:.0f} s)")
                continue
        log(f"{fs}: start-up with {n} queued (deferred) messages")
        gen_s = t.fill_deferred(n)
        log(f"  generated {n} messages in {gen_s:.0f} s")
        # The warm runs, then one with the page cache dropped (a restart
        # after a reboot): each with one fresh message among the deferred,
        # timed from the spawn to its arrival at the sink.
        runs = [(r, False) for r in s.runs(s.a.big_runs, s.a.warmup)] + [(s.a.big_runs + 1, True)]
        for r, cold in runs:
            t.generate(1)
            if cold:
                drop_caches()
            busy = s.settle()
            sink = Sink(s.work)
            try:
                t.spawn(sink.port)
                seen = {}

                def done():
                    now = time.monotonic()
                    if "ready" not in seen and t.index_ready():
                        seen["ready"] = now
                    if "first" not in seen and (sink.exited() or sink.count() > 0):
                        seen["first"] = now
                    return "first" in seen and "ready" in seen
                wait_for(f"the first delivery and the index with {n} queued", done, s.a.max_wait, 0.002)
                ready = t.wait_index(10)
            except BenchError as e:
                s.note(fs, f"start-up with {n}: {e}")
                t.stop()
                sink.stop()
                failed = True
                break
            vm = t.memory()
            t.stop()
            sink.stop()
            if ready.queued != n + 1:
                s.note(fs, f"start-up with {n} run {r}: the daemon indexed {ready.queued} of {n + 1}")
            if r > 0:
                s.record(StartupRun(fs, "startup", f"n={n}", r, busy, index_s=seen["ready"] - t.t_spawn,
                                    logged_s=ready.logged_s, queued=ready.queued, peak_rss_mib=vm["VmHWM"] / 2**20,
                                    rss_per_msg=(vm["VmRSS"] - empty["VmRSS"]) / n,
                                    peak_rss_per_msg=(vm["VmHWM"] - empty["VmHWM"]) / n,
                                    first_s=seen["first"] - t.t_spawn, cold=cold))
        if failed:
            continue
        # `postern count` of the same queue: directory listings alone.
        for r in s.runs(s.a.big_runs, s.a.warmup):
            busy = s.settle()
            t0 = time.monotonic()
            out = subprocess.run(t.count_command(), env=t.env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
            sec = time.monotonic() - t0
            if r > 0:
                s.record(CountRun(fs, "count", f"n={n}", r, busy, seconds=sec,
                                  counted=int(out.stdout.strip() or 0)))
        # The first line of `list` and `list --json` of the same queue (issue
        # #15: within 50 ms for any queue size); the rest is not read.
        for command in ("list", "list --json"):
            argv = t.list_command()
            if command == "list":
                argv = [a for a in argv if a != "--json"]
            for r in s.runs(s.a.big_runs, s.a.warmup):
                busy = s.settle()
                _, first, _, _ = read_listing(argv, t.env, whole=False)
                if first is None:
                    s.note(fs, f"{command} with {n} queued run {r}: no output")
                elif r > 0:
                    s.record(FirstLineRun(fs, command, f"n={n}", r, busy, seconds=first))
        per_message, line = t.index_memory(n)
        s.emit(IndexMemory(fs, t.name, n, per_message, line))
        t.empty()


def inodes(s, fs, targets):
    """Inodes created per message from submission to delivery, counted by the
    kernel (InodeTrace) below the target's queue while it runs and delivers."""
    why = InodeTrace.available()
    if why:
        s.note(fs, f"inode count skipped: {why}")
        return
    n = s.a.inodes
    log(f"{fs}: inodes created per message, {n} messages dropped and delivered")
    totals = []
    for t in targets:
        t.empty()
        sink = Sink(s.work)
        try:
            t.start(sink.port)
            trace = InodeTrace(s.work, t.queue_roots())
            s.inject(t, n, 1)
            wait_for(f"{t.name} to deliver every message", lambda: sink.count() >= n, s.a.max_wait, 0.05)
            wait_for(f"{t.name}'s queue to empty", lambda: t.queued() == 0, s.a.max_wait, 0.05)
            events = trace.stop()
            by = t.inode_breakdown(events)
        finally:
            sink.stop()
            t.stop()
        per_message = {k: v / n for k, v in by.items()}
        per_message["total"] = len(events) / n
        s.emit(Inodes(fs, t.name, n, per_message))
        totals.append(f"{t.name} {per_message['total']:.2f}")
        t.empty()
    log(f"  inodes per message: {', '.join(totals)}")
