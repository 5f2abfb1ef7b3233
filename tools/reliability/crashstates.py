"""The power-loss harness's crash states (tools/power-loss.py), in the spirit
of ALICE (Pillai et al., "All File Systems Are Not Created Equal", OSDI 2014):
a recorded sequence of file-system operations (tools/reliability/syscalls.py)
is replayed onto the spool as it was before the sequence began, keeping only
what a power loss at a chosen point could have left on disk.

The file system is modelled as inodes: a directory maps names to inodes, a
file has bytes, mode, owner and modification time. Each operation is bound,
when recorded, to the inodes it touched (a rename moves an inode from one
directory entry to another; a write changes one inode's bytes), so any subset
of the operations can be replayed. A crash at cut point K (after the K-th
operation) keeps:

  - every operation made durable before K: a file's writes, truncations and
    metadata changes (mode, owner, times) by a later `fsync` of that file
    (`fdatasync`: the bytes only); a directory's entry operations (create,
    mkdir, rename into or out of it, link, unlink, rmdir) by a later `fsync`
    of that directory; everything by `syncfs`/`sync`;
  - any combination of the others, as the model allows:

  strict: each operation not yet durable is independently kept or lost; a
      rename is atomic (kept or lost whole, for both of its directories; an
      fsync of either directory makes it durable); a write may also be torn
      (only its first half kept). Nothing is assumed of journaling: a rename
      may survive while the writes of the file it renamed do not, an unlink
      may survive while the rename before it does not; an fsync of a new
      file does not make its name durable.
  conservative (the default): strict, and one more rule: a rename that
      replaces an existing file is kept only with the bytes written to the
      replacing file before it (ext4's auto_da_alloc, btrfs's flush on a
      replacing rename). Every other reordering of strict stays.
  ext4 (ext4 data=ordered with auto_da_alloc, the Linux default): directory
      and metadata operations reach the
      disk in the order they were made (the journal commits a prefix of
      them); each file's unsynced writes survive as a prefix of themselves;
      a rename that replaces an existing file carries the renamed file's
      bytes with it (auto_da_alloc).

An operation on an inode whose own creation was lost is replayed into an
unreachable inode, as a real file system would leave it (at worst in
lost+found). Writes to SPOOL/lock (the holder's pid, for operators) are left
out: the lock, not the pid, is what counts (section 9).

When a sequence leaves more combinations than `limit` at one cut, the crash
states are: none kept, all kept, each one operation alone lost (or
torn), each one alone kept, each prefix, and random combinations (seeded) up
to the limit; with a limit too small for all of those (the short form), only
the first three kinds. Identical states are kept once.
"""
import hashlib
import itertools
import os
import stat

ENTRY = {"mkdir", "create", "rename", "link", "unlink", "rmdir"}
DATA = {"write", "truncate", "copy"}
META = {"utime", "chmod", "chown"}
BARRIER = {"fsync", "fdatasync", "syncfs"}


class Node:
    __slots__ = ("kind", "data", "mode", "uid", "gid", "mtime_ns", "entries")

    def __init__(self, kind, mode, uid, gid, mtime_ns, data=b"", entries=None):
        self.kind, self.mode, self.uid, self.gid, self.mtime_ns = kind, mode, uid, gid, mtime_ns
        self.data = bytearray(data)
        self.entries = dict(entries or {})

    def copy(self):
        return Node(self.kind, self.mode, self.uid, self.gid, self.mtime_ns, self.data, self.entries)


class Spool:
    """A spool as inodes: `nodes` {ino: Node}, the root is inode 1."""

    def __init__(self, nodes=None):
        self.nodes = nodes or {}

    @classmethod
    def snapshot(cls, root):
        """The spool at `root` as it is on disk now (links are not followed)."""
        spool, counter = cls(), itertools.count(1)

        def visit(path):
            st = os.lstat(path)
            ino = next(counter)
            if stat.S_ISDIR(st.st_mode):
                node = Node("dir", stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid, st.st_mtime_ns)
                spool.nodes[ino] = node
                for name in sorted(os.listdir(path)):
                    node.entries[name] = visit(os.path.join(path, name))
            elif stat.S_ISREG(st.st_mode):
                with open(path, "rb") as f:
                    spool.nodes[ino] = Node("file", stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid,
                                            st.st_mtime_ns, f.read())
            else:
                raise ValueError(f"{path}: not a file or directory (the harness's spools hold none)")
            return ino
        visit(root)
        return spool

    def copy(self):
        return Spool({i: n.copy() for i, n in self.nodes.items()})

    def lookup(self, rel):
        """(parent inode, name, inode or None) of a relative path."""
        parts = [p for p in rel.split("/") if p and p != "."]
        ino = 1
        if not parts:
            return None, ".", 1
        for p in parts[:-1]:
            ino = self.nodes[ino].entries[p]
        return ino, parts[-1], self.nodes[ino].entries.get(parts[-1])

    def materialize(self, dest):
        """Writes the spool out as real files at `dest` (which must not exist)."""
        dirs = []

        def visit(ino, path):
            node = self.nodes[ino]
            if node.kind == "dir":
                os.mkdir(path)
                for name, child in node.entries.items():
                    visit(child, os.path.join(path, name))
                dirs.append((path, node))
            else:
                with open(path, "wb") as f:
                    f.write(node.data)
                _attributes(path, node)
        visit(1, dest)
        for path, node in dirs:   # deepest first: setting a time after the children are made
            _attributes(path, node)

    def digest(self):
        h = hashlib.sha256()

        def visit(ino, path):
            node = self.nodes[ino]
            h.update(f"{path}|{node.kind}|{node.mode:o}|{node.uid}|{node.gid}|{node.mtime_ns}|".encode())
            if node.kind == "dir":
                for name in sorted(node.entries):
                    visit(node.entries[name], f"{path}/{name}")
            else:
                h.update(hashlib.sha256(node.data).digest())
        visit(1, "")
        return h.hexdigest()


def _attributes(path, node):
    os.chown(path, node.uid, node.gid, follow_symlinks=False)
    os.chmod(path, node.mode)
    os.utime(path, ns=(node.mtime_ns, node.mtime_ns), follow_symlinks=False)


class Sequence:
    """A recorded sequence bound to inodes: built by running the operations
    on a copy of the initial spool (`bind`), after which `state(kept)`
    replays any subset of them onto the initial spool."""

    def __init__(self, initial, ops, owners=lambda op: (0, 0), umask=0o022):
        self.initial = initial
        self.ops = ops
        self.bound = []
        self.created = {}      # ino -> (kind, mode, uid, gid, mtime_ns) at its creation
        live = initial.copy()
        fresh = itertools.count(max(initial.nodes) + 1)
        # Each message file's bytes at each fsync of it: a reused file (a blank,
        # spool-layout.md 6.4) holds one whole message after another.
        self.synced_messages = set()
        for op in ops:
            self.bound.append(self._bind(live, op, fresh, owners, umask))
            if op["op"] == "fsync" and op.get("path", "").endswith("/message"):
                _, _, ino = live.lookup(op["path"])
                if ino is not None:
                    self.synced_messages.add(bytes(live.nodes[ino].data))
        self.final = live

    # -- binding: what each operation did, by inode
    def _bind(self, live, op, fresh, owners, umask):
        kind, t_ns = op["op"], int(op["time"] * 1e9)
        b = {"op": kind, "t": t_ns}
        if kind in ("mkdir", "create"):
            parent, name, existing = live.lookup(op["path"])
            if existing is not None and kind == "create":
                b.update(op="truncate" if op.get("trunc") else "touch", ino=existing, size=0)
                if not op.get("trunc"):
                    b = {"op": "none", "t": t_ns}
            else:
                ino = next(fresh)
                uid, gid = owners(op)
                pnode = live.nodes[parent]
                mode = (op.get("mode") or 0) & ~umask & 0o7777
                if pnode.mode & stat.S_ISGID:   # a set-group-ID directory: its group, and for a directory its bit
                    gid = pnode.gid
                    if kind == "mkdir":
                        mode |= stat.S_ISGID
                self.created[ino] = ("dir" if kind == "mkdir" else "file", mode, uid, gid, t_ns)
                b.update(dir=parent, name=name, ino=ino)
        elif kind in DATA:
            _, _, ino = live.lookup(op["path"])
            b["ino"] = ino
            if kind == "write":
                node = live.nodes[ino]
                offset = op["offset"] if op["offset"] >= 0 else len(node.data)
                b.update(offset=offset, data=bytes(op["data"]))
            elif kind == "truncate":
                b["size"] = op["size"]
            else:   # a copy: the bytes the source held at that moment
                _, _, src = live.lookup(op["source"])
                data = live.nodes[src].data
                start = op["source_offset"] if op["source_offset"] is not None else 0
                b.update(op="write", offset=op["offset"], data=bytes(data[start:start + op["length"]]))
        elif kind in META:
            _, _, ino = live.lookup(op["path"])
            b["ino"] = ino
            if kind == "utime":
                b["mtime_ns"] = op["mtime_ns"] if op["mtime_ns"] is not None else t_ns
            elif kind == "chmod":
                b["mode"] = op["mode"]
            else:
                b.update(uid=op["uid"], gid=op["gid"])
        elif kind == "rename":
            sdir, sname, ino = live.lookup(op["path"])
            ddir, dname, replaced = live.lookup(op["to"])
            b.update(sdir=sdir, sname=sname, ddir=ddir, dname=dname, ino=ino, replaced=replaced,
                     exchange=op["flags"] == "exchange")
        elif kind == "link":
            _, _, ino = live.lookup(op["path"])
            ddir, dname, _ = live.lookup(op["to"])
            b.update(dir=ddir, name=dname, ino=ino)
        elif kind in ("unlink", "rmdir"):
            parent, name, ino = live.lookup(op["path"])
            b.update(dir=parent, name=name, ino=ino)
        elif kind in ("fsync", "fdatasync"):
            _, _, ino = live.lookup(op["path"])
            b["ino"] = ino
        elif kind == "syncfs":
            pass
        else:
            b["op"] = "none"   # markers: connect, exit
        self._apply(live, b)
        return b

    # -- replay
    def _node(self, spool, ino):
        node = spool.nodes.get(ino)
        if node is None:   # its creation was lost: an unreachable inode, as created
            kind, mode, uid, gid, t = self.created.get(ino, ("file", 0o600, 0, 0, 0))
            node = spool.nodes[ino] = Node(kind, mode, uid, gid, t)
        return node

    def _apply(self, spool, b, torn=False):
        kind = b["op"]
        if kind in ("mkdir", "create"):
            self._node(spool, b["ino"])
            self._node(spool, b["dir"]).entries[b["name"]] = b["ino"]
        elif kind == "write":
            node = self._node(spool, b["ino"])
            data = b["data"][: len(b["data"]) // 2] if torn else b["data"]
            end = b["offset"] + len(data)
            if len(node.data) < b["offset"]:
                node.data.extend(bytes(b["offset"] - len(node.data)))
            node.data[b["offset"]:end] = data
            node.mtime_ns = b["t"]
        elif kind == "truncate":
            node = self._node(spool, b["ino"])
            del node.data[b["size"]:]
            node.data.extend(bytes(max(0, b["size"] - len(node.data))))
            node.mtime_ns = b["t"]
        elif kind == "utime":
            self._node(spool, b["ino"]).mtime_ns = b["mtime_ns"]
        elif kind == "chmod":
            self._node(spool, b["ino"]).mode = b["mode"]
        elif kind == "chown":
            node = self._node(spool, b["ino"])
            node.uid, node.gid = b["uid"], b["gid"]
        elif kind == "rename":
            src, dst = self._node(spool, b["sdir"]), self._node(spool, b["ddir"])
            self._node(spool, b["ino"])
            if b["exchange"]:
                other = dst.entries.get(b["dname"], b["replaced"])
                dst.entries[b["dname"]] = b["ino"]
                src.entries[b["sname"]] = other
            else:
                if src.entries.get(b["sname"]) == b["ino"]:
                    del src.entries[b["sname"]]
                dst.entries[b["dname"]] = b["ino"]
        elif kind == "link":
            self._node(spool, b["ino"])
            self._node(spool, b["dir"]).entries[b["name"]] = b["ino"]
        elif kind in ("unlink", "rmdir"):
            d = self._node(spool, b["dir"])
            if d.entries.get(b["name"]) == b["ino"]:
                del d.entries[b["name"]]

    def state(self, kept, torn=()):
        """The spool after replaying the operations whose indices are in `kept`
        (in their order), those in `torn` only half written."""
        spool = self.initial.copy()
        for i in sorted(kept):
            self._apply(spool, self.bound[i], torn=i in torn)
        return spool

    # -- what a power loss at a cut can keep
    def durable(self, cut):
        """Indices before `cut` that a barrier before `cut` made durable."""
        if not hasattr(self, "_durable_at"):
            self._durable_at = {}
            for j, b in enumerate(self.bound):
                if b["op"] not in BARRIER:
                    continue
                for i in range(j):
                    if i not in self._durable_at and (b["op"] == "syncfs" or _covers(b, self.bound[i])):
                        self._durable_at[i] = j
        return {i for i, j in self._durable_at.items() if j < cut}

    def changes(self, cut):
        """Indices before `cut` that change the disk (barriers and markers do not)."""
        # SPOOL/lock's pid text is left as it was: the lock, not the pid, counts (section 9).
        return [i for i in range(cut) if self.bound[i]["op"] in ENTRY | DATA | META | {"write"}
                and self.ops[i].get("path") != "lock"]

    def crash_states(self, cut, model, limit, rng):
        """{digest: (spool, description)} of the states a power loss right
        after operation `cut - 1` may leave (cut 0: before the first)."""
        durable = self.durable(cut)
        loose = [i for i in self.changes(cut) if i not in durable]
        self.sampled = not _exhaustive(self, loose, durable, model, limit)
        choices = list(_combinations(self, loose, durable, model, limit, rng))
        out = {}
        for kept, torn in choices:
            spool = self.state(kept | durable, torn)
            digest = spool.digest()
            if digest not in out:
                lost = [i for i in loose if i not in kept]
                out[digest] = (spool, {"cut": cut, "lost": lost, "torn": sorted(torn)})
        return out


def _covers(barrier, op):
    """Whether `barrier` (an fsync or fdatasync) makes `op` durable."""
    target, kind = barrier["ino"], op["op"]
    if kind in DATA or kind == "write":
        return op["ino"] == target
    if kind in META:
        return barrier["op"] == "fsync" and op["ino"] == target
    if kind in ("mkdir", "create", "link", "unlink", "rmdir"):
        return barrier["op"] == "fsync" and op["dir"] == target
    if kind == "rename":
        return barrier["op"] == "fsync" and target in (op["sdir"], op["ddir"])
    return False


def _exhaustive(seq, loose, durable, model, limit):
    """Whether every combination the model allows at this cut fits in `limit`."""
    if model == "ext4":
        last = max((i for i in durable if seq.bound[i]["op"] not in DATA | {"write"}), default=-1)
        meta = [i for i in loose if seq.bound[i]["op"] not in DATA | {"write"} and i > last]
        total = len(meta) + 1
        files = {}
        for i in loose:
            if seq.bound[i]["op"] in DATA | {"write"}:
                files[seq.bound[i]["ino"]] = files.get(seq.bound[i]["ino"], 0) + 1
        for n in files.values():
            total *= n + 1
        return total <= limit
    writes = sum(1 for i in loose if seq.bound[i]["op"] == "write")
    return 2 ** len(loose) * 2 ** writes <= limit


def _combinations(seq, loose, durable, model, limit, rng):
    """(kept indices, torn indices) pairs of the loose operations."""
    if model == "ext4":
        yield from _ext4(seq, loose, durable, limit, rng)
        return
    for kept, torn in _independent(seq, loose, limit, rng):
        if model == "conservative":
            # A replacing rename kept brings the replacing file's bytes, whole.
            for i in sorted(kept):
                b = seq.bound[i]
                if b["op"] == "rename" and b.get("replaced") is not None and not b["exchange"]:
                    carried = {w for w in loose if w < i and seq.bound[w]["op"] in DATA | {"write"}
                               and seq.bound[w]["ino"] == b["ino"]}
                    kept = kept | carried
                    torn = torn - carried
        yield kept, torn


def _independent(seq, loose, limit, rng):
    writes = [i for i in loose if seq.bound[i]["op"] == "write"]
    if _exhaustive(seq, loose, (), "strict", limit):
        for mask in range(2 ** len(loose)):
            kept = {loose[k] for k in range(len(loose)) if mask >> k & 1}
            kept_writes = [i for i in writes if i in kept]
            for tmask in range(2 ** len(kept_writes)):
                yield kept, {kept_writes[k] for k in range(len(kept_writes)) if tmask >> k & 1}
        return
    everything = set(loose)
    yield set(), set()
    yield everything, set()
    for i in loose:
        yield everything - {i}, set()
        if i in writes:
            yield everything, {i}
    if limit < 3 * len(loose) + 2:
        return   # the short form: nothing kept, everything kept, each one lost or torn
    for i in loose:
        yield {i}, set()
    for k in range(len(loose)):
        yield set(loose[:k]), set()
    for _ in range(max(0, limit - 3 * len(loose) - 2)):
        kept = {i for i in loose if rng.random() < 0.5}
        yield kept, {i for i in kept if i in writes and rng.random() < 0.25}


def _ext4(seq, loose, durable, limit, rng):
    """Metadata as a prefix of all metadata operations; each file's writes as
    a prefix of that file's writes; a replacing rename brings its file's
    earlier writes along."""
    meta = [i for i in loose if seq.bound[i]["op"] not in DATA | {"write"}]
    # A durable metadata operation makes every earlier one durable (one journal).
    last_durable = max((i for i in durable if seq.bound[i]["op"] not in DATA | {"write"}), default=-1)
    meta = [i for i in meta if i > last_durable]
    forced = {i for i in loose if seq.bound[i]["op"] not in DATA | {"write"} and i < last_durable}
    files = {}
    for i in loose:
        if seq.bound[i]["op"] in DATA | {"write"}:
            files.setdefault(seq.bound[i]["ino"], []).append(i)
    groups = [list(range(len(meta) + 1))] + [list(range(len(w) + 1)) for w in files.values()]
    picks = itertools.product(*groups) if _exhaustive(seq, loose, durable, "ext4", limit) \
        else _sampled(groups, limit, rng)
    inos = list(files)
    for pick in picks:
        kept = set(forced) | set(meta[: pick[0]])
        for ino, n in zip(inos, pick[1:]):
            kept |= set(files[ino][:n])
        for i in meta[: pick[0]]:   # auto_da_alloc: a replacing rename carries its file's bytes
            b = seq.bound[i]
            if b["op"] == "rename" and b.get("replaced") is not None:
                kept |= {w for w in files.get(b["ino"], []) if w < i}
        yield kept, set()


def _sampled(groups, limit, rng):
    yield tuple(0 for _ in groups)
    yield tuple(g[-1] for g in groups)
    for k in range(len(groups)):
        for v in groups[k]:
            yield tuple(v if j == k else g[-1] for j, g in enumerate(groups))
    for _ in range(limit):
        yield tuple(rng.choice(g) for g in groups)
