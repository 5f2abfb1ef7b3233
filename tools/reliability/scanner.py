"""The power-loss harness's scanner (tools/power-loss.py): the real
`postern check` and `postern list` run on one materialized crash state, what
they leave read back, and judged against the general promises and a
scenario's rules (tools/reliability/scenarios.py).
"""
import json
import os
import subprocess
import time

from scenarios import MSGID


# -- the scanner on one crash state
def scan(binary, env, spool, listing=True):
    """Runs `postern check` (repairing) and `postern list --json` on `spool`
    (not with listing=False, the short form); what is there after."""
    check = subprocess.run([binary, "check", "--spool", spool, "--temporary-age", "0s"], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, env=env, timeout=60)
    view = {"check": check.returncode, "check_output": check.stdout.decode(errors="replace"),
            "list": 0, "listed": None, "messages": [], "corrupt": [], "tmp": [], "damage": []}
    if not listing:
        return _read_spool(spool, view)
    listing = subprocess.run([binary, "list", "--json", "--spool", spool], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, env=env, timeout=60)
    view.update(list=listing.returncode, listed=set())
    for line in listing.stdout.decode(errors="replace").splitlines():
        try:
            view["listed"].add(json.loads(line)["id"])
        except (ValueError, KeyError):
            view["damage"].append(f"postern list printed a line that is not an entry: {line[:100]}")
    return _read_spool(spool, view)


def _envelope(directory, name, size):
    """The envelope the spool's reader takes (spool-layout.md 6.2): envelope.json,
    or, when it does not decode or does not fit the message, the spare an
    update left, envelope.json.tmp, if that one does."""
    def read(file):
        with open(os.path.join(directory, file), "rb") as f:
            envelope = json.loads(f.read())
        if envelope.get("id") != name or envelope.get("size") != size:
            raise ValueError(f"{file} does not fit the message")
        return envelope
    try:
        return read("envelope.json")
    except (OSError, ValueError) as e:
        try:
            return read("envelope.json.tmp")
        except (OSError, ValueError):
            raise e


def _read_spool(spool, view):
    for area in ("queue", "hold", "drop"):
        for name in sorted(os.listdir(os.path.join(spool, area))):
            d = os.path.join(spool, area, name)
            try:
                with open(os.path.join(d, "message"), "rb") as f:
                    message = f.read()
                envelope = _envelope(d, name, len(message))
            except (OSError, ValueError) as e:
                view["damage"].append(f"{area}/{name} left unreadable by the scanner: {e}")
                continue
            found = MSGID.search(message)
            view["messages"].append({"area": area, "id": name, "message": message, "envelope": envelope,
                                     "msgid": found.group(1) if found else None})
    for name in sorted(os.listdir(os.path.join(spool, "corrupt"))):
        try:
            with open(os.path.join(spool, "corrupt", name, "reason"), errors="replace") as f:
                reason = f.read()
        except OSError:
            reason = ""
        entry = os.path.join(spool, "corrupt", name, "entry")
        msgid = None
        try:
            with open(os.path.join(entry, "message"), "rb") as f:
                found = MSGID.search(f.read())
                msgid = found.group(1) if found else None
        except OSError:
            pass
        view["corrupt"].append({"name": name, "reason": reason, "msgid": msgid,
                                "entry": os.path.lexists(entry)})
    # What check left in tmp/: only entries whose newest time is still to
    # come (a registration mark, 6.2) may stay; everything else is removed.
    now = time.time_ns()
    for name in os.listdir(os.path.join(spool, "tmp")):
        newest = 0
        for base, dirs, files in os.walk(os.path.join(spool, "tmp", name)):
            for entry in [base] + [os.path.join(base, f) for f in files]:
                newest = max(newest, os.lstat(entry).st_mtime_ns)
        if newest <= now:
            view["tmp"].append(name)
    return view


def judge(view, known, rules, cut, quarantine):
    """The problems of one crash state after the scanner."""
    problems = list(view["damage"])
    if view["check"] not in (0, 65) or "Fatal error" in view["check_output"]:
        problems.append(f"postern check exited {view['check']}: {view['check_output'].strip()[-300:]}")
    if view["list"] != 0:
        problems.append(f"postern list exited {view['list']}")
    # The quarantine scenario's damaged drop may be in corrupt/ under its
    # name, or NAME.1 beside a NAME/ that a power loss cut short (section 8).
    # A quarantine is corruption when it took mail owed at this cut (a message
    # a program had reported accepted and not yet finished); anything else
    # quarantined (a finished message half removed, the damaged drop of the
    # quarantine scenario) is set aside with its reason, which is allowed,
    # and counted.
    owed = {getattr(rule, "owed", None) for first, last, rule in rules
            if cut >= first and (last is None or cut <= last)} - {None}
    notes = []
    for q in view["corrupt"]:
        why = q["reason"].splitlines()[0] if q["reason"] else "no reason"
        if q["msgid"] in owed:
            problems.append(f"accepted message quarantined: {q['name']}: {why}")
        elif q["name"].split(".")[0] not in quarantine and q["entry"]:
            notes.append(f"{q['name']}: {why}")
    if view["tmp"]:
        problems.append(f"tmp/ not cleaned: {view['tmp']}")
    for m in view["messages"]:
        if bytes(m["message"]) not in known:
            problems.append(f"{m['area']}/{m['id']}: a message that was never written whole ({len(m['message'])} octets)")
        if view["listed"] is not None and m["id"] not in view["listed"]:
            problems.append(f"{m['area']}/{m['id']} not listed by postern list")
        if m["envelope"].get("size") != len(m["message"]):
            problems.append(f"{m['area']}/{m['id']}: size {m['envelope'].get('size')} but {len(m['message'])} octets")
    for first, last, rule in rules:
        if cut >= first and (last is None or cut <= last):
            p = rule(view)
            if p:
                problems.append(p)
    return problems, notes


def known_messages(seq):
    """The bytes of every message file complete at some point: the initial
    spool's, each file named `message` as it ended up, and as it was at
    each of its fsyncs (a blank's file holds several messages in turn)."""
    known = set(seq.synced_messages)
    for spool in (seq.initial, seq.final):
        for node in spool.nodes.values():
            if node.kind == "dir":
                for name, ino in node.entries.items():
                    if name == "message":
                        known.add(bytes(spool.nodes[ino].data))
    for b, op in zip(seq.bound, seq.ops):
        if op["op"] == "create" and op["path"].endswith("/message") and "ino" in b:
            known.add(bytes(seq.final.nodes[b["ino"]].data))
    return known


CORRUPT_WORDS = ("quarantined:", "never written whole", "unreadable", "size ", "not an entry")
