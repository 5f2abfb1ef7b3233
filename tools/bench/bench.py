#!/usr/bin/env python3
"""Postern versus Postfix on this machine, loopback only: durable enqueue,
drain (in plaintext and over TLS), live end to end, start-up and listing with a large queue, scheduler
overhead and inodes per message. Run through tools/bench.sh, which builds
postern and installs what is missing; see tools/bench/README.md.

Every measurement is repeated (after warm-up runs that are not recorded), and
Postern and Postfix runs are paired and interleaved (ABBA order), so each pair
gives one Postern/Postfix ratio. Reported: median, min and max of each side
and of the per-pair ratios; never a single absolute time.

File systems (--fs): `root` puts both spools on the root file system (under
--workdir); `loop` on a journaled ext4 image (mkfs.ext4 defaults) mounted
through a loop device; `both` measures everything on each in turn.

Postfix runs as a private instance set up by tools/postfix-peer.sh configure:
its own config_directory, queue_directory and data_directory under the work
directory, smtpd on a free loopback port, relaying to smtp-sink; /etc/postfix
is left alone. The drain over TLS delivers to another such instance (its smtpd
offers STARTTLS and passes each message on to smtp-sink).

Each record is appended to RESULTS/DATE[-quick].jsonl as soon as it is
measured, so an interrupted run keeps what it measured; the Markdown report
is rendered from that file (stdout and RESULTS/DATE[-quick].md), and
`--report FILE.jsonl` renders it again from any such file.
"""
import argparse
import datetime
import os
import signal
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
import measure_flow  # noqa: E402
import measure_queue  # noqa: E402
import measure_smtp  # noqa: E402
import records  # noqa: E402
from instruments import SMTP_SINK, TlsSink  # noqa: E402
from machine import describe, describe_fs, loop_fs, loop_size, tmpfs_fs  # noqa: E402
from msgset import write_set  # noqa: E402
from postern_target import Postern  # noqa: E402
from postfix_target import TOOLS as POSTFIX_TOOLS, Postfix  # noqa: E402
from procs import PROCS, BenchError, log, rmtree  # noqa: E402
from report import render  # noqa: E402
from session import Session  # noqa: E402

MEASUREMENTS = ("ceiling", "enqueue", "e2e", "smtp", "drain", "tls", "list", "startup", "inodes")

FULL = dict(enqueue=2000, e2e=2000, smtp=5000, drain=10000, listn=20000, big="100000,1000000", inodes=100,
            runs=5, warmup=1, drain_runs=3, list_runs=5, first_runs=3, big_runs=3)
QUICK = dict(enqueue=100, e2e=100, smtp=500, drain=500, listn=1000, big="2000", inodes=10,
             runs=2, warmup=0, drain_runs=2, list_runs=2, first_runs=2, big_runs=2)


def listing_and_first(s, fs, targets):
    """`--only list`: the listing, then the first delivery from the same queue size."""
    measure_queue.listing(s, fs, targets)
    measure_queue.first_delivery(s, fs, targets)


# In the order they run on each file system (names as --only spells them).
STEPS = [
    ("ceiling", lambda s, fs, base, targets: measure_flow.ceiling(s, fs, base)),
    ("enqueue", lambda s, fs, base, targets: measure_flow.enqueue(s, fs, targets)),
    ("e2e", lambda s, fs, base, targets: measure_flow.e2e(s, fs, targets)),
    ("smtp", lambda s, fs, base, targets: measure_smtp.smtp(s, fs, targets)),
    ("drain", lambda s, fs, base, targets: measure_flow.drain(s, fs, targets)),
    ("tls", lambda s, fs, base, targets: measure_flow.drain(s, fs, targets, tls=True)),
    ("list", lambda s, fs, base, targets: listing_and_first(s, fs, targets)),
    ("inodes", lambda s, fs, base, targets: measure_queue.inodes(s, fs, targets)),
    ("startup", lambda s, fs, base, targets: measure_queue.startup(s, fs, targets, base, s.a.big_sizes)),
]


def run_fs(s, fs, base, backing=""):
    """Every selected measurement on one file system; one that fails is noted
    and the others still run. Whatever it started is stopped when it ends."""
    os.chmod(base, 0o755)
    s.emit(records.FileSystem(fs, describe_fs(base), backing))
    targets = (Postern(s.a.postern, base, s.a.concurrency, s.a.max_wait),
               Postfix(base, s.a.concurrency, s.a.max_wait, s.message_files[0]))

    def stop_all():
        for t in targets:
            try:
                t.stop()
            except BenchError as e:
                log(f"stopping {t.name}: {e}")
        TlsSink.stop_all()
        PROCS.end_all()
    try:
        for name, step in STEPS:
            if name not in s.a.only:
                continue
            try:
                step(s, fs, base, targets)
            except BenchError as e:
                # One failed measurement must not cost the others: report it, clean up, go on.
                s.note(fs, f"{name} failed: {e}")
                stop_all()
    finally:
        stop_all()


def run_tmpfs(s, base, backing):
    """The drop programs alone, serially, with their spools on a tmpfs."""
    s.emit(records.FileSystem("tmpfs", describe_fs(base), backing))
    targets = (Postern(s.a.postern, base, s.a.concurrency, s.a.max_wait),
               Postfix(base, s.a.concurrency, s.a.max_wait, s.message_files[0]))
    try:
        measure_flow.enqueue(s, "tmpfs", targets, measure="drop", writer_counts=[1])
    except BenchError as e:
        s.note("tmpfs", f"drop failed: {e}")
    finally:
        for t in targets:
            try:
                t.stop()
            except BenchError as e:
                log(f"stopping {t.name}: {e}")
        PROCS.end_all()


def header(a, started):
    machine, software = describe(a.postern, Postfix.version())
    return records.Header(
        command=a.command_line, started=started.isoformat(timespec="seconds"), quick=a.quick, only=a.only,
        enqueue=a.enqueue, e2e=a.e2e, drain=a.drain, listn=a.listn, big=a.big, inodes=a.inodes, runs=a.runs,
        warmup=a.warmup, drain_runs=a.drain_runs, list_runs=a.list_runs, first_runs=a.first_runs,
        big_runs=a.big_runs, writers=a.writers, concurrency=a.concurrency, machine=machine, software=software,
        smtp=a.smtp)


def bench(a, record_file):
    """The whole run; returns its records."""
    started = datetime.datetime.now()
    work = tempfile.mkdtemp(prefix="postern-bench.", dir=a.workdir)
    os.chmod(work, 0o755)
    try:
        message_files = write_set(os.path.join(work, "messages"), max(a.enqueue, a.e2e, a.inodes))
        s = Session(a, work, message_files, record_file)
        s.emit(header(a, started))
        for fs in (("root", "loop") if a.fs == "both" else (a.fs,)):
            if fs == "root":
                base = os.path.join(work, "root")
                os.makedirs(base)
                run_fs(s, "root", base)
                rmtree(base)
                continue
            biggest = max(a.big_sizes) if "startup" in a.only and a.big_sizes else 0
            try:
                with loop_fs(a.workdir, loop_size(a.loop_size, biggest)) as (mnt, backing):
                    run_fs(s, "loop", mnt, backing)
            except BenchError as e:
                s.emit(records.FileSystem("loop", "not available"))
                s.note("loop", f"the loop-mounted image could not be set up: {e}")
        if "enqueue" in a.only:
            # The disk taken out: what a drop costs in the submitting programs alone.
            with tmpfs_fs(a.workdir) as (mnt, backing):
                run_tmpfs(s, mnt, backing)
    finally:
        PROCS.end_all()
        rmtree(work)
    s.emit(records.Finished(datetime.datetime.now().isoformat(timespec="seconds")))
    return s.records


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
    ap.add_argument("--drain-runs", type=int, help="recorded drain runs, in plaintext and over TLS each (full 3)")
    ap.add_argument("--list-runs", type=int, help="recorded listing runs (full 5)")
    ap.add_argument("--first-runs", type=int, help="recorded first-delivery runs (full 3)")
    ap.add_argument("--big-runs", type=int, help="recorded start-up runs per queue size (full 3)")
    ap.add_argument("--enqueue", type=int, metavar="N", help="messages per enqueue run (full 2000)")
    ap.add_argument("--e2e", type=int, metavar="N", help="messages per live end-to-end run (full 2000)")
    ap.add_argument("--smtp", type=int, metavar="N", help="messages per SMTP listener run (full 5000)")
    ap.add_argument("--drain", type=int, metavar="N",
                    help="messages per drain run, in plaintext and over TLS (full 10000)")
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
                    help="where the run's records (.jsonl) and Markdown report go (default tools/bench/results)")
    ap.add_argument("--no-results", action="store_true", help="print the report only, write no files")
    ap.add_argument("--report", metavar="FILE.jsonl",
                    help="measure nothing: render the report of an earlier run's records again "
                         "(stdout, and FILE.md beside it unless --no-results)")
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
    a.big_sizes = [int(x) for x in a.big.split(",") if x.strip()] if a.big else []
    return a


def write_report(text, jsonl_path):
    path = os.path.splitext(jsonl_path)[0] + ".md"
    with open(path, "w") as f:
        f.write(text)
    log(f"report written to {path}")


def rerender(a):
    """--report: the Markdown of an earlier run, from its records only."""
    try:
        text = render(records.read(a.report))
    except (OSError, ValueError, StopIteration) as e:
        sys.exit(f"bench: cannot render {a.report}: {str(e) or 'no run header in it'}")
    print(text)
    if not a.no_results:
        write_report(text, a.report)
    return 0


def main(argv):
    a = parse_args(argv)
    if a.report:
        return rerender(a)
    a.command_line = os.environ.get("BENCH_COMMAND") or "tools/bench.sh " + " ".join(argv)
    if os.geteuid() != 0:
        sys.exit("bench: must run as root (Postfix's master, mount, perf)")
    if not os.access(a.postern, os.X_OK):
        sys.exit(f"bench: no postern binary at {a.postern} (build it: swift build -c release)")
    for tool in POSTFIX_TOOLS + (SMTP_SINK,):
        if not os.access(tool, os.X_OK):
            sys.exit(f"bench: {tool} is missing (tools/postfix-peer.sh install)")

    def interrupted(signum, _frame):
        raise KeyboardInterrupt(f"signal {signum}")
    signal.signal(signal.SIGTERM, interrupted)
    signal.signal(signal.SIGHUP, interrupted)
    path = None if a.no_results else records.fresh_path(a.results, f"{datetime.date.today():%Y-%m-%d}", a.quick)
    record_file = records.RecordFile(path) if path else None
    if path:
        log(f"records go to {path}")
    try:
        recs = bench(a, record_file)
    except KeyboardInterrupt:
        if path:
            record_file.close()
            log(f"interrupted; cleaned up; what was measured is in {path} "
                f"(its report: tools/bench.sh --report {os.path.relpath(path)})")
        else:
            log("interrupted; cleaned up")
        return 130
    if path:
        record_file.close()
        recs = records.read(path)  # the report is rendered from the file, as --report would
    text = render(recs)
    print(text)
    if path:
        write_report(text, path)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
