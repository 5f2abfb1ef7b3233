"""The power-loss harness's recorder (tools/power-loss.py): a program run
under strace(1), and its log turned into the file-system operations it made
on the spool, in the order they completed.

strace runs with `-f -y -ttt -xx -s 1048576`: every thread followed, each
descriptor shown with the path it is open on (so `fsync(5</spool/drop>)`
names the directory it syncs), every string in hexadecimal (nothing to
unquote) and whole (a write's bytes are what the crash states are built
from). Only calls that succeeded and that touch a path under one of the
spool's roots are kept; reads are not traced.

An operation is a dict:
    {"op": KIND, "path": REL, ...}   REL relative to the spool root
KIND and its fields:
    mkdir path mode          create path mode excl       write path offset data
    truncate path size       copy path source offset length (copy_file_range)
    fsync path               fdatasync path              syncfs
    rename path to flags ("noreplace" | "exchange" | "")
    link path to             unlink path                 rmdir path
    utime path mtime_ns      chmod path mode             chown path uid gid
    connect port             exit status                 (markers, no path)
    reply code text          (a marker: the SMTP listener's reply to a client)
with "pid" and "time" (seconds since the epoch) on each.
"""
import re

TRACED = ("openat,open,creat,write,pwrite64,writev,fsync,fdatasync,syncfs,sync,"
          "rename,renameat,renameat2,link,linkat,unlink,unlinkat,mkdir,mkdirat,rmdir,"
          "utimensat,fchmod,fchmodat,chmod,fchown,fchownat,chown,ftruncate,truncate,"
          "copy_file_range,fallocate,connect,sendto,exit_group")

STRACE = ["strace", "-f", "-y", "-ttt", "-qq", "-xx", "-s", "1048576", "-e", f"trace={TRACED}"]

_LINE = re.compile(r"^(\d+)\s+(\d+\.\d+)\s+(.*)$")
_CALL = re.compile(r"^(\w+)\((.*)\)\s+=\s+(-?\d+)(.*)$", re.S)
_HEX = re.compile(r'"((?:\\x[0-9a-f]{2})*)"(\.\.\.)?')
_FD = re.compile(r"^(-?\d+|AT_FDCWD)<((?:\\x[0-9a-f]{2})*)>")


def traced(cmd, log_path, extra=()):
    """`cmd` prefixed with strace writing to `log_path` (`extra`: more strace options)."""
    return STRACE + list(extra) + ["-o", log_path, "--"] + list(cmd)


def _text(hexes):
    return bytes.fromhex(hexes.replace("\\x", "")).decode("utf-8", "surrogateescape")


def _bytes(arg):
    m = _HEX.fullmatch(arg.strip())
    if not m:
        raise ValueError(f"not a string: {arg[:80]}")
    if m.group(2):
        raise ValueError("a string strace cut short (raise -s)")
    return bytes.fromhex(m.group(1).replace("\\x", ""))


def _split(args):
    """Top-level comma-separated arguments (strings are hex: no quotes to skip)."""
    out, depth, cur = [], 0, []
    for ch in args:
        if ch in "[{(":
            depth += 1
        elif ch in "]})":
            depth -= 1
        if ch == "," and depth == 0:
            out.append("".join(cur).strip())
            cur = []
        else:
            cur.append(ch)
    if cur:
        out.append("".join(cur).strip())
    return out


def _fd(arg):
    """(number or None, path) of a descriptor argument `5<\\x2f...>`."""
    m = _FD.match(arg.strip())
    if not m:
        return None, None
    return m.group(1), _text(m.group(2))


def _at(dirfd_arg, path_arg):
    """The absolute path an *at call names."""
    path = _bytes(path_arg).decode("utf-8", "surrogateescape")
    if path.startswith("/"):
        return path
    _, base = _fd(dirfd_arg)
    return f"{base}/{path}" if path else base


def _mode(arg):
    return int(arg.split("|")[-1], 8) if re.fullmatch(r"(S_\w+\|)*0?\d+", arg) else None


def merged_lines(log_path):
    """(pid, time, text) of each completed call, with `<unfinished ...>` halves joined."""
    pending = {}
    with open(log_path, errors="surrogateescape") as f:
        for raw in f:
            m = _LINE.match(raw.rstrip("\n"))
            if not m:
                continue
            pid, t, rest = int(m.group(1)), float(m.group(2)), m.group(3)
            if rest.endswith("<unfinished ...>"):
                pending[pid] = (t, rest[: -len("<unfinished ...>")].rstrip())
                continue
            if rest.startswith("<..."):
                start_t, head = pending.pop(pid, (t, ""))
                tail = rest.split("resumed>", 1)[1] if "resumed>" in rest else ""
                rest = head + tail
                t = start_t
            yield pid, t, rest


class Recorder:
    """Turns one strace log into operations on the spool at `roots` (the
    spool's path, and any other path it is mounted at)."""

    def __init__(self, roots):
        self.roots = [r.rstrip("/") for r in roots]
        self.offsets = {}      # (pid-group key, fd) -> file offset
        self.injected = []     # calls strace skipped (fault injection)

    def relative(self, path):
        for root in self.roots:
            if path == root:
                return "."
            if path.startswith(root + "/"):
                return path[len(root) + 1:]
        return None

    def parse(self, log_path):
        ops = []
        for pid, t, text in merged_lines(log_path):
            if text.startswith("exit_group("):
                status = re.match(r"exit_group\((-?\d+)\)", text)
                ops.append({"op": "exit", "status": int(status.group(1)) if status else -1, "pid": pid, "time": t})
                continue
            m = _CALL.match(text)
            if not m:
                continue
            name, args, ret, after = m.group(1), _split(m.group(2)), int(m.group(3)), m.group(4)
            if name == "connect":
                if ret == 0 or "EINPROGRESS" in after:
                    port = re.search(r"htons\((\d+)\)", m.group(2))
                    ops.append({"op": "connect", "port": int(port.group(1)) if port else 0, "pid": pid, "time": t})
                continue
            if "(INJECTED)" in after:   # skipped by strace's fault injection (--mutate): it did not happen
                self.injected.append(f"{name} {self.relative(_fd(args[0])[1] or '') or args[0][:40]}")
                continue
            if ret < 0:
                continue
            for op in self._ops(name, args, ret, after, pid):
                op.update(pid=pid, time=t)
                ops.append(op)
        return ops

    def _ops(self, name, args, ret, after, pid):
        rel = self.relative
        if name in ("open", "openat", "creat"):
            if name == "openat":
                path, flags = _at(args[0], args[1]), args[2]
            elif name == "open":
                path, flags = _bytes(args[0]).decode("utf-8", "surrogateescape"), args[1]
            else:
                path, flags = _bytes(args[0]).decode("utf-8", "surrogateescape"), "O_CREAT|O_WRONLY|O_TRUNC"
            r = rel(path)
            fd_number = ret
            if r is None:
                return []
            self.offsets[(pid, fd_number)] = 0
            out = []
            if "O_CREAT" in flags:
                mode = _mode(args[-1]) if len(args) > (3 if name == "openat" else 2) else 0o600
                out.append({"op": "create", "path": r, "mode": mode, "excl": "O_EXCL" in flags,
                            "trunc": "O_TRUNC" in flags})
            elif "O_TRUNC" in flags:
                out.append({"op": "truncate", "path": r, "size": 0})
            return out
        if name in ("write", "sendto") and (_fd(args[0])[1] or "").startswith("socket:"):
            # A reply of the SMTP listener (the client's commands never start
            # with three digits): the moment it tells a client its mail is accepted.
            data = _bytes(args[1])[:ret]
            if re.match(rb"\d{3}[ -]", data):
                return [{"op": "reply", "code": int(data[:3]), "text": data.split(b"\r\n")[0].decode(errors="replace")}]
            return []
        if name in ("write", "pwrite64"):
            number, path = _fd(args[0])
            r = rel(path) if path else None
            if r is None:
                return []
            data = _bytes(args[1])[:ret]
            if name == "pwrite64":
                offset = int(args[3])
            else:
                offset = self.offsets.get((pid, int(number)), None)
                if offset is None:
                    offset = -1  # unknown: an append
                self.offsets[(pid, int(number))] = (offset if offset >= 0 else 0) + ret
            return [{"op": "write", "path": r, "offset": offset, "data": data}]
        if name == "writev":
            raise ValueError("writev on the spool is not modelled")
        if name in ("fsync", "fdatasync", "syncfs"):
            _, path = _fd(args[0])
            r = rel(path) if path else None
            if r is None:
                return []
            if name == "syncfs":
                return [{"op": "syncfs", "path": r}]
            return [{"op": name, "path": r}]
        if name == "sync":
            return [{"op": "syncfs", "path": "."}]
        if name in ("rename", "renameat", "renameat2"):
            if name == "rename":
                a = _bytes(args[0]).decode("utf-8", "surrogateescape")
                b = _bytes(args[1]).decode("utf-8", "surrogateescape")
                flags = ""
            else:
                a, b = _at(args[0], args[1]), _at(args[2], args[3])
                flags = args[4] if name == "renameat2" else ""
            ra, rb = rel(a), rel(b)
            if ra is None and rb is None:
                return []
            if ra is None or rb is None:
                raise ValueError(f"a rename across the spool's edge: {a} -> {b}")
            kind = "exchange" if "RENAME_EXCHANGE" in flags else "noreplace" if "RENAME_NOREPLACE" in flags else ""
            return [{"op": "rename", "path": ra, "to": rb, "flags": kind}]
        if name in ("link", "linkat"):
            if name == "link":
                a, b = (_bytes(x).decode("utf-8", "surrogateescape") for x in args[:2])
            else:
                a, b = _at(args[0], args[1]), _at(args[2], args[3])
            if rel(b) is None:
                return []
            return [{"op": "link", "path": rel(a), "to": rel(b)}]
        if name in ("unlink", "unlinkat", "rmdir"):
            if name == "unlinkat":
                path, removedir = _at(args[0], args[1]), "AT_REMOVEDIR" in args[2]
            else:
                path, removedir = _bytes(args[0]).decode("utf-8", "surrogateescape"), name == "rmdir"
            r = rel(path)
            if r is None:
                return []
            return [{"op": "rmdir" if removedir else "unlink", "path": r}]
        if name in ("mkdir", "mkdirat"):
            path = _bytes(args[0]).decode("utf-8", "surrogateescape") if name == "mkdir" else _at(args[0], args[1])
            r = rel(path)
            if r is None:
                return []
            return [{"op": "mkdir", "path": r, "mode": _mode(args[-1])}]
        if name == "utimensat":
            if args[1] == "NULL":
                _, path = _fd(args[0])
            else:
                path = _at(args[0], args[1])
            r = rel(path) if path else None
            if r is None:
                return []
            times = args[2]
            mtime = re.split(r",\s*(?=\{|UTIME)", times.strip("[]"))[-1] if times != "NULL" else "UTIME_NOW"
            m = re.search(r"tv_sec=(\d+), tv_nsec=(\d+)", mtime)
            if "UTIME_OMIT" in mtime and not m:
                return []
            return [{"op": "utime", "path": r, "mtime_ns": int(m.group(1)) * 10**9 + int(m.group(2)) if m else None}]
        if name in ("fchmod", "chmod", "fchmodat"):
            if name == "fchmod":
                _, path = _fd(args[0])
            elif name == "chmod":
                path = _bytes(args[0]).decode("utf-8", "surrogateescape")
            else:
                path = _at(args[0], args[1])
            r = rel(path) if path else None
            if r is None:
                return []
            return [{"op": "chmod", "path": r, "mode": _mode(args[-1] if name != "fchmodat" else args[2])}]
        if name in ("fchown", "chown", "fchownat"):
            if name == "fchown":
                _, path = _fd(args[0])
                uid, gid = args[1], args[2]
            elif name == "chown":
                path, uid, gid = _bytes(args[0]).decode("utf-8", "surrogateescape"), args[1], args[2]
            else:
                path, uid, gid = _at(args[0], args[1]), args[2], args[3]
            r = rel(path) if path else None
            if r is None:
                return []
            return [{"op": "chown", "path": r, "uid": int(uid), "gid": int(gid)}]
        if name in ("ftruncate", "truncate"):
            if name == "ftruncate":
                _, path = _fd(args[0])
            else:
                path = _bytes(args[0]).decode("utf-8", "surrogateescape")
            r = rel(path) if path else None
            return [] if r is None else [{"op": "truncate", "path": r, "size": int(args[1])}]
        if name == "copy_file_range":
            _, src = _fd(args[0])
            number, dst = _fd(args[2])
            rs, rd = rel(src) if src else None, rel(dst) if dst else None
            if rd is None:
                return []
            off_in = re.search(r"\[(\d+)", args[1])
            off_out = re.search(r"\[(\d+)", args[3])
            key = (pid, int(number))
            offset = int(off_out.group(1)) if off_out else self.offsets.get(key, 0)
            if not off_out:
                self.offsets[key] = offset + ret
            # strace prints the offsets after the call: the source offset it
            # shows has already advanced by the bytes copied.
            source_offset = int(off_in.group(1)) - ret if off_in else None
            return [{"op": "copy", "path": rd, "source": rs, "source_offset": source_offset,
                     "offset": offset, "length": ret}]
        if name == "fallocate":
            raise ValueError("fallocate on the spool is not modelled")
        return []


def show(op):
    """One line for an operation, as the protocol checker and reports print it."""
    kind = op["op"]
    if kind in ("rename", "link"):
        extra = f" {op['to']}" + (f" ({op['flags']})" if op.get("flags") else "")
    elif kind == "write":
        extra = f" {len(op['data'])}@{op['offset']}"
    elif kind == "copy":
        extra = f" from {op['source']} {op['length']}"
    elif kind == "exit":
        return f"exit {op['status']} (pid {op['pid']})"
    elif kind == "connect":
        return f"connect :{op['port']}"
    elif kind == "reply":
        return f"reply {op['text'][:60]}"
    elif kind == "create":
        extra = " (excl)" if op.get("excl") else ""
    else:
        extra = ""
    return f"{kind} {op.get('path', '')}{extra}"
