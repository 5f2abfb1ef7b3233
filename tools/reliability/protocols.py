"""The power-loss harness's protocol checker (tools/power-loss.py): a recorded
sequence of operations (tools/reliability/syscalls.py) held against the
write protocols of spool-layout.md section 6, in order.

Each protocol instance is recognised by its commit point, a rename:

  commit    tmp/X -> drop/ID or queue/ID        6.1 a drop; 6.5 an adoption
      before: every file in tmp/X written and fsynced, tmp/X/ fsynced after
      its last entry, RENAME_NOREPLACE; after: drop/ or queue/ fsynced (or a
      syncfs) before the writer reports (it exits, the daemon connects to
      deliver, the SMTP listener replies, the next message is committed, or
      the daemon clears the dsn_pending mark a DSN's drop answers).
  update    AREA/ID/envelope.json.tmp -> envelope.json       6.2
      always: created with O_EXCL, its modification time set before the
      rename (the resting time), no write to it after the rename. An update
      that fails a recipient or sets dsn_pending is power-loss durable: the
      file fsynced (after its time was set) before the rename and AREA/ID/
      fsynced after it, before the writer goes on (the DSN's drop, an exit,
      a connect). Any other update (a deferral, a delivery, a hold reason
      cleared) is process-crash only: no fsync is required, and none is
      checked.
  move      drop|queue|hold/ID -> queue|hold/ID                6.3
      RENAME_NOREPLACE; TO/ and FROM/ fsynced before the report.
  remove    AREA/ID -> tmp/ID                                  6.4
      the daemon's removal of a finished message is process-crash only (no
      fsync); `postern delete`'s is fsynced (AREA/ before it exits).
  quarantine  AREA/NAME -> corrupt/NAME/entry                  8
      corrupt/NAME/reason written and fsynced, corrupt/NAME/ and corrupt/
      fsynced before the rename; the source area and corrupt/NAME/ fsynced
      after it, before the report.
  adopted drop removed   unlink/rmdir under drop/ID          6.5 step 5
      only once the adoption's commit (queue/ID) is durable.

`check(seq, reports)` returns (instances, problems): each instance as
(kind, description, verdict), and what broke the order.
"""
import json

AREAS = ("drop", "queue", "hold")


def _parts(path):
    return path.split("/")


def _is_area_entry(path, areas=AREAS):
    p = _parts(path)
    return len(p) == 2 and p[0] in areas


class Checker:
    def __init__(self, seq, report_kinds=("exit", "connect"), fsynced_delete=False):
        self.seq = seq
        self.ops = seq.ops
        self.report_kinds = report_kinds
        self.fsynced_delete = fsynced_delete
        self.instances = []
        self.problems = []

    # -- helpers on the sequence
    def _next_report(self, after, extra=lambda op: False, writer=False):
        """The next moment the program acts on its work: an exit or a connection
        to deliver; with `writer` (a drop's commit) also the listener's reply."""
        kinds = self.report_kinds if writer else ("exit", "connect")
        for j in range(after + 1, len(self.ops)):
            op = self.ops[j]
            if op["op"] in kinds or extra(op):
                return j
        return len(self.ops)

    def _durable_by(self, i, j):
        return i in self.seq.durable(j)

    def _synced_dir_between(self, path, start, end):
        """Whether `path` (a directory) was fsynced, or the file system synced, in (start, end)."""
        return any(op["op"] == "syncfs" or (op["op"] == "fsync" and op.get("path") == path)
                   for op in self.ops[start + 1:end])

    def _fail(self, kind, text):
        self.problems.append(f"{kind}: {text}")
        return "BROKEN"

    # -- the protocols
    def check(self):
        for i, op in enumerate(self.ops):
            if op["op"] != "rename":
                continue
            src, dst = op["path"], op["to"]
            sp, dp = _parts(src), _parts(dst)
            if sp[0] == "tmp" and len(sp) == 2 and _is_area_entry(dst, ("drop", "queue")):
                self._commit(i, op)
            elif len(sp) == 3 and sp[2] == "envelope.json.tmp" and dp[-1] == "envelope.json":
                self._update(i, op)
            elif _is_area_entry(src) and _is_area_entry(dst, ("queue", "hold")):
                self._move(i, op)
            elif _is_area_entry(src) and dp[0] == "tmp" and len(dp) == 2:
                self._remove(i, op)
            elif dp[0] == "corrupt" and len(dp) == 3 and dp[2] == "entry":
                self._quarantine(i, op)
            elif op["flags"] == "exchange":
                self.instances.append(("exchange", f"{src} <-> {dst}", "not checked (adoption in place)"))
        return self.instances, self.problems

    def _commit(self, i, op):
        kind, src, dst = "commit", op["path"], op["to"]
        verdict = "ok"
        if op["flags"] != "noreplace":
            verdict = self._fail(kind, f"{src} -> {dst} without RENAME_NOREPLACE")
        durable = self.seq.durable(i)
        ino = self.seq.bound[i]["ino"]
        for k in range(i):
            b = self.seq.bound[k]
            if b["op"] in ("write", "truncate") and self._inside(b["ino"], ino, k) and k not in durable:
                verdict = self._fail(kind, f"{self._name(k)} not fsynced before the commit {src} -> {dst}")
            if b["op"] in ("create", "mkdir", "unlink", "rename") and b.get("dir") == ino and k not in durable:
                verdict = self._fail(kind, f"{self._name(k)} (an entry of {src}) not made durable "
                                           f"(fsync {src}/) before the commit")
        # The writer goes on: it reports, commits the next message, or (the
        # daemon, after a DSN's drop) clears the mark that owed it, by
        # removing the failed message or rewriting its envelope (6.5).
        report = self._next_report(i, lambda o: o["op"] == "rename" and o is not op and (
            (_parts(o["to"])[0] in ("drop", "queue") and _parts(o["path"])[0] == "tmp")
            or (_is_area_entry(o["path"]) and _parts(o["to"])[0] == "tmp")
            or _parts(o["to"])[-1] == "envelope.json"), writer=True)
        area = _parts(dst)[0]
        if not self._synced_dir_between(area, i, report):
            verdict = self._fail(kind, f"{area}/ not fsynced after {src} -> {dst} before "
                                       f"{self._what(report)}")
        self.instances.append((kind, f"{src} -> {dst}", verdict))

    def _inside(self, file_ino, dir_ino, k):
        """Whether inode `file_ino` was named in directory `dir_ino` when operation k ran."""
        for b in self.seq.bound[:k + 1]:
            if b["op"] == "create" and b["ino"] == file_ino:
                return b["dir"] == dir_ino
        return False

    def _update(self, i, op):
        kind, path = "update", op["to"]
        tmp_ino = self.seq.bound[i]["ino"]
        # Created (O_EXCL), or the spare the last update left, opened truncated (6.2).
        create = next((k for k in range(i - 1, -1, -1) if self.ops[k]["op"] in ("create", "truncate")
                       and self.ops[k]["path"] == op["path"]), None)
        verdict = "ok (process-crash only)"
        if create is None:
            verdict = self._fail(kind, f"{op['path']} renamed but its creation was not recorded")
            self.instances.append((kind, path, verdict))
            return
        if self.ops[create]["op"] == "create" and not self.ops[create].get("excl"):
            verdict = self._fail(kind, f"{op['path']} created without O_EXCL")
        if op["flags"] != "exchange" and self._previous_envelope(path, create) is not None:
            verdict = self._fail(kind, f"{op['path']} renamed over the envelope: no spare kept (6.2)")
        utimes = [k for k in range(create, i) if self.ops[k]["op"] == "utime" and self.ops[k]["path"] == op["path"]]
        if not utimes:
            verdict = self._fail(kind, f"{op['path']}: no resting time set before the rename (6.2)")
        # Until the message leaves its directory: a finished one's may then be
        # a blank (6.4), whose files carry the next message.
        directory = op["to"].rsplit("/", 1)[0]
        end = next((j for j in range(i + 1, len(self.ops)) if self.ops[j]["op"] == "rename"
                    and self.ops[j]["path"] == directory), len(self.ops))
        if any(b["op"] == "write" and b.get("ino") == tmp_ino for b in self.seq.bound[i + 1:end]):
            verdict = self._fail(kind, f"{op['path']} written after its rename")
        data = bytearray()
        for b in self.seq.bound[create:i]:
            if b["op"] == "write" and b["ino"] == tmp_ino:
                data[b["offset"]:b["offset"] + len(b["data"])] = b["data"]
        old = self._previous_envelope(path, create)
        if _needs_power_loss(old, bytes(data)):
            verdict = "ok (power-loss durable)" if verdict.startswith("ok") else verdict
            syncs = [k for k in range(create, i) if self.ops[k]["op"] == "fsync" and self.ops[k]["path"] == op["path"]]
            if not syncs:
                verdict = self._fail(kind, f"{op['path']} (a failure, or dsn_pending) not fsynced before the rename")
            elif utimes and max(utimes) > max(syncs):
                verdict = self._fail(kind, f"{op['path']}: its time set after the fsync (6.2)")
            directory = path.rsplit("/", 1)[0]
            report = self._next_report(i, lambda o: o["op"] == "rename" and _parts(o["to"])[0] == "drop"
                                       and _parts(o["path"])[0] == "tmp")
            if not self._synced_dir_between(directory, i, report):
                verdict = self._fail(kind, f"{directory}/ not fsynced after the update, before {self._what(report)}")
        self.instances.append((kind, path, verdict))

    def _previous_envelope(self, path, before):
        """The envelope at `path` just before operation `before`, from the live replay."""
        state = self.seq.state(set(range(before)))
        try:
            _, _, ino = state.lookup(path)
            return bytes(state.nodes[ino].data) if ino else None
        except KeyError:
            return None

    def _move(self, i, op):
        kind, src, dst = "move", op["path"], op["to"]
        verdict = "ok"
        if op["flags"] != "noreplace":
            verdict = self._fail(kind, f"{src} -> {dst} without RENAME_NOREPLACE")
        report = self._next_report(i)
        for area in (_parts(dst)[0], _parts(src)[0]):
            if not self._synced_dir_between(area, i, report):
                verdict = self._fail(kind, f"{area}/ not fsynced after {src} -> {dst} before {self._what(report)}")
        self.instances.append((kind, f"{src} -> {dst}", verdict))

    def _remove(self, i, op):
        kind, src = "remove", op["path"]
        if not self.fsynced_delete:
            self.instances.append((kind, f"{src} -> {op['to']}", "ok (process-crash only: no fsync promised)"))
            return
        verdict = "ok (fsynced: an operator's delete)"
        report = self._next_report(i)
        area = _parts(src)[0]
        if not self._synced_dir_between(area, i, report):
            verdict = self._fail(kind, f"{area}/ not fsynced after deleting {src}, before {self._what(report)}")
        self.instances.append((kind, f"{src} -> {op['to']}", verdict))

    def _quarantine(self, i, op):
        kind, src, dst = "quarantine", op["path"], op["to"]
        box = dst.rsplit("/", 1)[0]
        verdict = "ok"
        before = self.ops[:i]
        reason = f"{box}/reason"
        if not any(o["op"] == "fsync" and o.get("path") == reason for o in before):
            verdict = self._fail(kind, f"{reason} not fsynced before the rename")
        for d in (box, "corrupt"):
            if not any(o["op"] == "fsync" and o.get("path") == d for o in before):
                verdict = self._fail(kind, f"{d}/ not fsynced before the rename of {src}")
        report = self._next_report(i)
        for d in (_parts(src)[0], box):
            if not self._synced_dir_between(d, i, report):
                verdict = self._fail(kind, f"{d}/ not fsynced after moving {src}, before {self._what(report)}")
        self.instances.append((kind, f"{src} -> {dst}", verdict))

    def adopted_removals(self):
        """6.5 step 5: a drop/ID removed only after queue/ID is durable."""
        commits = {}
        for i, op in enumerate(self.ops):
            if op["op"] == "rename" and _parts(op["path"])[0] == "tmp" and _is_area_entry(op["to"], ("queue",)):
                commits[_parts(op["to"])[1]] = i
        for j, op in enumerate(self.ops):
            if op["op"] in ("unlink", "rmdir") and _parts(op["path"])[0] == "drop" and len(_parts(op["path"])) >= 2:
                qid = _parts(op["path"])[1]
                if qid in commits:
                    c = commits[qid]
                    if j < c or c not in self.seq.durable(j):
                        self._fail("adoption", f"{op['path']} removed before queue/{qid} was durable")
                        self.instances.append(("adoption", f"drop/{qid} removed", "BROKEN"))
                        return
        for qid in commits:
            if any(o["op"] in ("unlink", "rmdir") and o.get("path", "").startswith(f"drop/{qid}") for o in self.ops):
                self.instances.append(("adoption", f"drop/{qid} removed after queue/{qid} was durable", "ok"))

    def _name(self, k):
        op = self.ops[k]
        return f"{op['op']} {op.get('path', '')}"

    def _what(self, j):
        if j >= len(self.ops):
            return "the end of the recording"
        op = self.ops[j]
        if op["op"] == "reply":
            return f"the listener's reply \"{op['text']}\""
        return {"exit": "the program's exit", "connect": "the daemon's connection to deliver"}.get(
            op["op"], f"{op['op']} {op.get('path', '')} -> {op.get('to', '')}")


def _needs_power_loss(old, new):
    """Whether an envelope update from `old` to `new` (bytes) records a
    permanent failure or sets dsn_pending: the updates 6.5 fsyncs."""
    try:
        after = json.loads(new)
    except ValueError:
        return False
    try:
        before = json.loads(old) if old else {}
    except ValueError:
        before = {}
    failed_before = {r.get("address") for r in before.get("recipients", []) if r.get("state") == "failed"}
    failed_after = {r.get("address") for r in after.get("recipients", []) if r.get("state") == "failed"}
    return bool(failed_after - failed_before) or bool(set(after.get("dsn_pending") or []) - set(before.get("dsn_pending") or []))


def check(seq, fsynced_delete=False, reports=()):
    """`reports`: more marker kinds at which a program tells someone its work is done ("reply": the listener's)."""
    c = Checker(seq, report_kinds=("exit", "connect") + tuple(reports), fsynced_delete=fsynced_delete)
    c.check()
    c.adopted_removals()
    return c.instances, c.problems
