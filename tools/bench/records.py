"""What a run produces, as typed records, and their JSON Lines file.

Every record is written the moment it exists, one JSON object a line,
flushed, to tools/bench/results/DATE[-quick].jsonl: a run stopped by Ctrl-C
after two hours keeps two hours of measurements, and the Markdown report is
only ever rendered from these records (at the end of a run, or later with
`tools/bench.sh --report FILE.jsonl`), so the report and the data cannot
disagree.

The "kind" field names the record's class; the other fields are the
dataclass's, in declaration order, which is also the order the report's
"Every run" table lists a run's figures in. Floats are written with repr(),
so a re-read record renders exactly as the original did.
"""
import json
import os
from dataclasses import asdict, dataclass, field, fields
from typing import ClassVar


@dataclass
class Header:
    """The run's first record: how it was started, its sizes, the machine."""
    KIND: ClassVar[str] = "run"
    command: str
    started: str  # ISO 8601, local time
    quick: bool
    only: list
    enqueue: int
    e2e: int
    drain: int
    listn: int
    big: str
    inodes: int
    runs: int
    warmup: int
    drain_runs: int
    list_runs: int
    first_runs: int
    big_runs: int
    writers: int
    concurrency: int
    machine: list = field(default_factory=list)   # [label, text] rows before the file systems
    software: list = field(default_factory=list)  # ... and after them
    smtp: int = 0  # messages per SMTP listener run (absent from runs before it)


@dataclass
class FileSystem:
    """A file system the run measured on, described when it started on it."""
    KIND: ClassVar[str] = "fs"
    fs: str           # "root" or "loop"
    description: str  # type, journal, device, mount point, options
    backing: str = ""  # for the loop image: what it is stored on


@dataclass
class Note:
    """Anything the reader of a report must know: a skipped size, a failed step,
    a run that lost messages."""
    KIND: ClassVar[str] = "note"
    fs: str
    text: str


@dataclass
class Run:
    """One recorded (not warm-up) run of one measurement on one target."""
    KIND: ClassVar[str] = "?"
    fs: str
    measure: str   # "enqueue-w4", "drain", ...
    target: str    # "postern", "postfix"; "protocol" for the ceiling; "n=N" for start-up
    run: int       # 1, 2, ...; pairs of runs share the number
    pre_busy: float  # % the machine was busy just before

    def figures(self):
        """(name, value) of the measured figures, None left out."""
        base = {f.name for f in fields(Run)}
        return [(f.name, getattr(self, f.name)) for f in fields(self)
                if f.name not in base and getattr(self, f.name) is not None]


@dataclass
class CeilingRun(Run):
    KIND: ClassVar[str] = "ceiling"
    rate: float
    seconds: float


@dataclass
class EnqueueRun(Run):
    KIND: ClassVar[str] = "enqueue"
    rate: float
    seconds: float
    wall_ms: float | None = None   # per message, one process each
    cpu_ms: float | None = None    # per message: every submitting process, and inject.sh's share


@dataclass
class EndToEndRun(Run):
    KIND: ClassVar[str] = "e2e"
    rate: float
    seconds: float
    enqueue_rate: float


@dataclass
class DrainRun(Run):
    KIND: ClassVar[str] = "drain"
    rate: float
    seconds: float
    steady_rate: float
    release_s: float
    first_s: float
    cpu_s_per_1000: float
    cpu_user_s_per_1000: float
    cpu_sys_s_per_1000: float
    steady_cpu_ms_per_delivery: float
    steady_cpu_s_by_process: str | None = None  # for targets of many processes


@dataclass
class TlsDrainRun(DrainRun):
    """A drain to a Postfix smtpd that offers STARTTLS (instruments.TlsSink):
    the drain's figures, and what that smtpd saw of the sender's sessions."""
    KIND: ClassVar[str] = "drain-tls"
    connections: int | None = None   # SMTP sessions the sender opened
    tls_sessions: int | None = None  # ... of them with TLS (a handshake each)
    tls: str | None = None           # protocol and cipher, as the receiving smtpd logged them


@dataclass
class SmtpInjectRun(Run):
    """SMTP injection at --concurrency sessions, durable before each 250, delivery paused."""
    KIND: ClassVar[str] = "smtp-inject"
    rate: float
    seconds: float


@dataclass
class SmtpEndToEndRun(Run):
    """SMTP injection while delivering to smtp-sink: until the sink has the last."""
    KIND: ClassVar[str] = "smtp-e2e"
    rate: float
    seconds: float
    inject_rate: float


@dataclass
class ListRun(Run):
    KIND: ClassVar[str] = "list"
    seconds: float
    lines: int
    first_line_s: float | None = None   # spawn until the first line of output


@dataclass
class FirstRun(Run):
    KIND: ClassVar[str] = "first"
    seconds: float
    queued: int
    index_ready_s: float | None = None   # targets with an index
    index_logged_s: float | None = None
    start_cmd_s: float | None = None     # targets whose start command blocks


@dataclass
class StartupRun(Run):
    KIND: ClassVar[str] = "startup"
    index_s: float
    logged_s: float
    queued: int
    peak_rss_mib: float
    rss_per_msg: float
    peak_rss_per_msg: float
    first_s: float | None = None   # spawn until one fresh message among them reached the sink
    cold: bool = False             # page cache dropped before the start (echo 3 > drop_caches)


@dataclass
class CountRun(Run):
    """`postern count` of a big queue (names only)."""
    KIND: ClassVar[str] = "count"
    seconds: float
    counted: int


@dataclass
class FirstLineRun(Run):
    """Spawn of a listing of a big queue until its first line (`measure` is
    the command: "list" or "list --json")."""
    KIND: ClassVar[str] = "first-line"
    seconds: float


@dataclass
class Inodes:
    """Inodes one target created per message, drop to delivery, by what made them."""
    KIND: ClassVar[str] = "inodes"
    fs: str
    target: str
    messages: int
    per_message: dict  # {what: inodes per message}, in display order, with "total"


@dataclass
class EmptyDaemon:
    """The memory of a target's daemon with an empty queue (start-up's baseline)."""
    KIND: ClassVar[str] = "empty-daemon"
    fs: str
    target: str
    rss_mib: float
    peak_rss_mib: float


@dataclass
class IndexMemory:
    """The index's own heap per message for a queue size, as the target computes it."""
    KIND: ClassVar[str] = "index-memory"
    fs: str
    target: str
    queued: int
    bytes_per_message: float | None
    output: str


@dataclass
class Finished:
    """The last record of a run that was not interrupted."""
    KIND: ClassVar[str] = "finished"
    at: str  # ISO 8601, local time


KINDS = {cls.KIND: cls for cls in (Header, FileSystem, Note, CeilingRun, EnqueueRun, EndToEndRun,
                                   DrainRun, TlsDrainRun, SmtpInjectRun, SmtpEndToEndRun, ListRun, FirstRun, StartupRun,
                                   CountRun, FirstLineRun, Inodes, EmptyDaemon,
                                   IndexMemory, Finished)}


def dumps(record):
    return json.dumps({"kind": record.KIND, **asdict(record)}, ensure_ascii=False)


def loads(line):
    data = json.loads(line)
    return KINDS[data.pop("kind")](**data)


class RecordFile:
    """Appends records to a .jsonl file, each flushed as it is written."""

    def __init__(self, path):
        self.path = path
        self.file = open(path, "a", encoding="utf-8")

    def write(self, record):
        self.file.write(dumps(record) + "\n")
        self.file.flush()

    def close(self):
        self.file.close()


def read(path):
    """The records of a .jsonl file. A last line cut short (the run was killed
    while writing it) is dropped; anything else malformed is an error."""
    with open(path, encoding="utf-8") as f:
        lines = f.read().split("\n")
    tail = lines.pop()  # "" when the file ends with a newline, as every whole record does
    records = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            records.append(loads(line))
        except (ValueError, KeyError, TypeError) as e:
            raise ValueError(f"{path}:{number}: not a benchmark record: {e}") from None
    if tail.strip():
        try:
            records.append(loads(tail))
        except (ValueError, KeyError, TypeError):
            pass  # cut short
    return records


def fresh_path(folder, date, quick):
    """DATE[-N][-quick].jsonl in `folder` that does not exist yet: a second run
    on the same day keeps the first one's records (and report) beside its own."""
    os.makedirs(folder, exist_ok=True)
    suffix = "-quick" if quick else ""
    n = 1
    while True:
        stem = f"{date}{f'-{n}' if n > 1 else ''}{suffix}"
        path = os.path.join(folder, stem + ".jsonl")
        if not os.path.exists(path) and not os.path.exists(os.path.join(folder, stem + ".md")):
            return path
        n += 1
