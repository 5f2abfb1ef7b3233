"""The Markdown report, rendered from a run's records and nothing else.

It is a pure function of the records (records.py), so the report at the end of
a run and `tools/bench.sh --report FILE.jsonl` a month later are the same
text, and a run cut short still renders what it measured. Goals and verdicts
come from goals.GOALS.

Layout: title and command, the machine table, the message set, then per file
system one table (Postern, Postfix, ratio, goal, verdict) and its notes, a
legend, and every recorded run in a collapsed table.
"""
import datetime
import statistics

from goals import goal_for
from msgset import RECIPIENT, SENDER
from records import (EmptyDaemon, FileSystem, Finished, Header, IndexMemory, Inodes, Note, Run,
                     StartupRun, CountRun, FirstLineRun)


def fmt(x, unit=""):
    """Three significant digits or so; thousands with separators."""
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
    """median (min–max), the cell format: never one run's figure alone."""
    values = [v for v in values if v is not None]
    if not values:
        return "–"
    if len(values) == 1:
        return f"{fmt(values[0], unit)} (1 run)"
    return f"{fmt(statistics.median(values), unit)} ({fmt(min(values))}–{fmt(max(values))})"


def verdict(ok):
    return "–" if ok is None else ("**met**" if ok else "**not met**")


class Results:
    """A run's records, sorted by kind, with the lookups the tables need."""

    def __init__(self, records):
        self.header = next(r for r in records if isinstance(r, Header))
        self.filesystems = {}
        for r in records:
            if isinstance(r, FileSystem):
                self.filesystems.setdefault(r.fs, r)
        self.notes = [r for r in records if isinstance(r, Note)]
        self.runs = [r for r in records if isinstance(r, Run)]
        self.inodes = {(r.fs, r.target): r for r in records if isinstance(r, Inodes)}
        self.heap = {(r.fs, r.queued): r for r in records if isinstance(r, IndexMemory)}
        self.empty = [r for r in records if isinstance(r, EmptyDaemon)]
        self.finished = next((r for r in records if isinstance(r, Finished)), None)

    def values(self, fs, measure, target, key):
        return [getattr(r, key) for r in self.runs
                if r.fs == fs and r.measure == measure and r.target == target and getattr(r, key, None) is not None]

    def ratios(self, fs, measure, key):
        """Postern/Postfix of each pair of runs (same run number)."""
        def by_run(target):
            return {r.run: getattr(r, key) for r in self.runs
                    if r.fs == fs and r.measure == measure and r.target == target}
        a, b = by_run("postern"), by_run("postfix")
        return [a[k] / b[k] for k in sorted(a) if k in b and b[k]]


def render(records):
    res = Results(records)
    h = res.header
    started = datetime.datetime.fromisoformat(h.started)
    out = [f"# Postern vs Postfix: benchmark {'quick run' if h.quick else 'run'} of {started:%Y-%m-%d}", ""]
    if res.finished:
        took = (datetime.datetime.fromisoformat(res.finished.at) - started).total_seconds() / 60
        out.append(f"Command: `{h.command}` (started {started:%Y-%m-%d %H:%M}, took {took:.0f} min).")
    else:
        out.append(f"Command: `{h.command}` (started {started:%Y-%m-%d %H:%M}, interrupted: "
                   f"only what was measured before is below).")
    out += ["", "| machine | |", "|---|---|"]
    rows = [tuple(r) for r in h.machine]
    for fs, d in res.filesystems.items():
        rows.append((f"file system `{fs}`", d.description + (f"; {d.backing}" if d.backing else "")))
    rows += [tuple(r) for r in h.software]
    out += [f"| {k} | {v} |" for k, v in rows]
    out.append("")
    out.append(f"Message set: {max(h.enqueue, h.e2e)} distinct messages of 4096 bytes (LF line endings, "
               f"one recipient, `-i -f {SENDER} {RECIPIENT}`). Both mail systems relay everything to "
               f"`smtp-sink` on 127.0.0.1 with concurrency {h.concurrency} (Postern `queue.max_concurrent` and "
               f"`queue.per_domain`; Postfix `default_destination_concurrency_limit` and smtp `maxproc`). "
               f"Runs: {h.runs} (drain {h.drain_runs}, listing {h.list_runs}, first delivery {h.first_runs}, "
               f"start-up {h.big_runs}) after {h.warmup} warm-up run(s) that are not counted. "
               f"Cells: median (min–max). Ratio: Postern/Postfix of each pair of runs, median (min–max).")
    out.append("")
    for fs in res.filesystems:
        out += fs_section(res, fs)
    out.append("↑ higher is better, ↓ lower is better. Drain: Postern's queue is paused with `postern hold` "
               "(generated straight into `hold/`) and resumed with `postern release --all` while the daemon runs; "
               "Postfix's with `defer_transports` (filled through its smtpd), resumed with `postfix reload` and "
               "`postqueue -f`. CPU: the Postern daemon's user+system time; for Postfix, every process of the "
               "instance (master, qmgr, smtp, ...). Enqueue: no daemon runs on either side (Postern: no `postern run`; "
               "Postfix: master stopped, so mail stays in `maildrop/`). Start-up: deferred messages "
               "(one failed attempt each) written by `tools/bench/gen-spool.py`; warm page cache."
               + (TLS_LEGEND if any(r.measure == "drain-tls" for r in res.runs) else ""))
    out += ["", "<details><summary>Every run</summary>", "",
            "| fs | measurement | target | run | busy before % | figures |", "|---|---|---|---|---|---|"]
    for r in res.runs:
        figures = ", ".join(f"{k} {fmt(v) if not isinstance(v, str) else v}" for k, v in r.figures())
        out.append(f"| {r.fs} | {r.measure} | {r.target} | {r.run} | {r.pre_busy:.0f} | {figures} |")
    out += ["", "</details>", ""]
    return "\n".join(out)


TLS_LEGEND = (" Drain over TLS: the same drain, delivered to a Postfix smtpd (a private instance) that offers "
              "STARTTLS with a throwaway self-signed certificate and passes each message on to `smtp-sink` "
              "(`smtpd_proxy_filter`, nothing queued); Postern with `relay_tls = opportunistic`, Postfix with "
              "`smtp_tls_security_level = may` and `smtp_tls_connection_reuse = yes` (through `tlsproxy`), so that "
              "both keep TLS connections in their connection caches; TLS sessions as that smtpd logged them.")


def fs_section(res, fs):
    """One file system's table and notes."""
    h = res.header
    med = statistics.median
    out = [f"## File system `{fs}`: {res.filesystems[fs].description}", "",
           "| measurement | Postern | Postfix | Postern/Postfix | target | |", "|---|---|---|---|---|---|"]

    def row(label, measure, key, unit, better="higher", size=None):
        pv = res.values(fs, measure, "postern", key)
        fv = res.values(fs, measure, "postfix", key)
        if not pv and not fv:
            return
        ratios = res.ratios(fs, measure, key) if fv else []
        text, goal = goal_for(measure, key, size)
        ok = goal.met(pv, ratios) if goal else None
        arrow = " ↑" if better == "higher" else " ↓"
        out.append(f"| {label}{arrow} | {mmm(pv, unit)} | {mmm(fv, unit)} | {mmm(ratios, '×') if ratios else '–'} "
                   f"| {text} | {verdict(ok)} |")

    writers = sorted({1, h.writers})
    for w in writers:
        row(f"durable enqueue, {'serial' if w == 1 else f'{w} concurrent writers'}, msgs/s", f"enqueue-w{w}",
            "rate", "")
    for w in writers:
        row(f"durable enqueue, {'serial' if w == 1 else f'{w} concurrent writers'}, CPU ms per message "
            f"(every submitting process)", f"enqueue-w{w}", "cpu_ms", " ms", better="lower")
    row("the drop program alone (spool on tmpfs, serial), wall ms per message", "drop-w1", "wall_ms", " ms",
        better="lower")
    row("the drop program alone (spool on tmpfs, serial), CPU ms per message", "drop-w1", "cpu_ms", " ms",
        better="lower")
    for w in writers:
        cv = res.values(fs, f"ceiling-w{w}", "protocol", "rate")
        pv = res.values(fs, f"enqueue-w{w}", "postern", "rate")
        if cv:
            share = f"postern drop reaches {100 * med(pv) / med(cv):.0f}% of it" if pv else ""
            out.append(f"| disk ceiling of the drop protocol (no process start), "
                       f"{'serial' if w == 1 else f'{w} threads'}, msgs/s ↑ | {mmm(cv)} | – | – | {share} | |")
    row("drain, msgs/s (release until the sink has all)", "drain", "rate", "")
    row("drain, steady msgs/s (first to last arrival)", "drain", "steady_rate", "")
    row("drain, release command until it returned, s", "drain", "release_s", " s", better="lower")
    row("drain, release command until the first message arrived, s", "drain", "first_s", " s", better="lower")
    row("drain, CPU s per 1,000 messages (daemon / whole instance)", "drain", "cpu_s_per_1000", " s",
        better="lower")
    row("scheduler overhead: CPU ms per delivery while draining to an instant sink "
        "(first to last arrival)", "drain", "steady_cpu_ms_per_delivery", " ms", better="lower")
    row("drain over TLS (STARTTLS, connection reuse), msgs/s (release until the sink has all)", "drain-tls",
        "rate", "")
    row("drain over TLS, CPU s per 1,000 messages (daemon / whole instance)", "drain-tls", "cpu_s_per_1000", " s",
        better="lower")
    row(f"drain over TLS, TLS sessions (handshakes) at the receiving smtpd for {h.drain:,} messages",
        "drain-tls", "tls_sessions", "", better="lower")
    c = h.concurrency
    row(f"SMTP injection, {c} sessions, 4 KiB, durable before 250, delivery paused, msgs/s", "smtp-inject", "rate", "")
    row(f"SMTP end to end, {c} sessions, to smtp-sink (first connection to last arrival), msgs/s", "smtp-e2e",
        "rate", "")
    row("SMTP end to end: injection rate while delivering, msgs/s", "smtp-e2e", "inject_rate", "")
    row("live end to end, msgs/s (first drop to last arrival)", "e2e", "rate", "")
    row("live: enqueue rate while delivering, msgs/s", "e2e", "enqueue_rate", "")
    n = h.listn
    row(f"first delivery after start, {n:,} queued, s", "first", "seconds", " s", better="lower", size=n)
    row(f"index ready after start, {n:,} queued (fresh), s", "first", "index_ready_s", " s", better="lower")
    row(f"`postern list --json` vs `postqueue -j`, {n:,} queued, s", "list", "seconds", " s",
        better="lower", size=n)
    row(f"`postern list --json` vs `postqueue -j`, {n:,} queued: spawn until the first line, s", "list",
        "first_line_s", " s", better="lower", size=n)
    out += startup_rows(res, fs)
    pn, fx = res.inodes.get((fs, "postern")), res.inodes.get((fs, "postfix"))
    if pn and fx:
        pn, fx = pn.per_message, fx.per_message
        pdesc = ", ".join(f"{k} {v:.2f}" for k, v in pn.items() if k != "total" and v)
        fdesc = ", ".join(f"{k} {v:.2f}" for k, v in fx.items() if k != "total" and v)
        out.append(f"| inodes created per message (drop to delivery) ↓ | {pn['total']:.2f} ({pdesc}) "
                   f"| {fx['total']:.2f} ({fdesc}) | {pn['total'] / fx['total']:.2f}× | | |")
    out.append("")
    notes = [r.text for r in res.notes if r.fs == fs]
    if notes:
        out += ["Notes:", ""] + [f"- {t}" for t in notes] + [""]
    return out


def startup_rows(res, fs):
    """Start-up with a big queue: Postern only (Postfix has no index to build)."""
    med = statistics.median
    out = []
    sizes = sorted({r.target for r in res.runs if r.fs == fs and isinstance(r, StartupRun)},
                   key=lambda t: int(t[2:]))
    for label in sizes:
        n = int(label[2:])
        every = [r for r in res.runs if r.fs == fs and isinstance(r, StartupRun) and r.target == label]
        sel = [r for r in every if not r.cold]
        cold = [r for r in every if r.cold]
        idx = [r.index_s for r in sel]
        text, goal = goal_for("startup", "index_s", n)
        out.append(f"| start-up, {n:,} queued (deferred): spawn until index ready, warm cache, s ↓ | {mmm(idx, ' s')} "
                   f"| – | – | {text} | {verdict(goal.met(idx, []) if goal else None)} |")
        first = [r.first_s for r in sel if r.first_s is not None]
        if first:
            text, goal = goal_for("startup", "first_s", n)
            out.append(f"| start-up, {n:,} queued and one fresh: spawn until the fresh one is delivered, s ↓ "
                       f"| {mmm(first, ' s')} | – | – | {text} | {verdict(goal.met(first, []) if goal else None)} |")
        if cold:
            out.append(f"| start-up, {n:,} queued, cold cache (`drop_caches`): index ready / first delivery, s ↓ "
                       f"| {mmm([r.index_s for r in cold], ' s')} / "
                       f"{mmm([r.first_s for r in cold if r.first_s is not None], ' s')} | – | – | | |")
        rss = [r.rss_per_msg for r in sel]
        heap = res.heap.get((fs, n))
        heap = (f"; index heap (`postern index-memory`): {heap.bytes_per_message:.0f} bytes"
                if heap and heap.bytes_per_message else "")
        text, goal = goal_for("startup", "rss_per_msg", n)
        out.append(f"| start-up, {n:,} queued: RSS per queued message after indexing, bytes ↓ | {mmm(rss)}{heap} "
                   f"| – | – | {text} | {verdict(goal.met(rss, []) if goal else None)} |")
        out.append(f"| start-up, {n:,} queued: peak RSS, MiB ↓ | {mmm([r.peak_rss_mib for r in sel])} "
                   f"(peak per message {fmt(med([r.peak_rss_per_msg for r in sel]))} bytes) | – | – | | |")
        for command in ("list", "list --json"):
            firsts = [r.seconds for r in res.runs if r.fs == fs and isinstance(r, FirstLineRun)
                      and r.target == label and r.measure == command]
            if firsts:
                text, goal = goal_for("first-line", "seconds", n)
                out.append(f"| `postern {command}`, {n:,} queued: spawn until the first line, s ↓ | {mmm(firsts, ' s')} "
                           f"| – | – | {text} | {verdict(goal.met(firsts, []) if goal else None)} |")
        counts = [r.seconds for r in res.runs if r.fs == fs and isinstance(r, CountRun) and r.target == label]
        if counts:
            text, goal = goal_for("count", "seconds", n)
            out.append(f"| `postern count`, {n:,} queued, s ↓ | {mmm(counts, ' s')} | – | – | {text} "
                       f"| {verdict(goal.met(counts, []) if goal else None)} |")
    return out
