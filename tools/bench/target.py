"""The one interface the measurements see a mail system through.

A measurement says what it wants done ("queue N messages with delivery
paused", "resume", "how much CPU did you use"), and each mail system does it
its own way: Postern with `postern hold`/`release`, Postfix with
`defer_transports` and a reload. That is the whole point of the split: a
measurement that never asks which system it is driving cannot treat the two
differently by accident, and the differences that are real (Postern keeps an
index it reports ready, Postfix's CPU is spread over a dozen processes) are
stated once, as capabilities, where a reader can see them.

Timing rule for implementers: whatever a step needs that is not the act being
measured (rewriting a configuration file, say) happens before the clock
starts. Methods that start a clock return the monotonic time they started it
(Resumed.t0, ColdStart.t0), so that preparation inside them stays outside.
"""
from abc import ABC, abstractmethod
from dataclasses import dataclass

HOSTNAME = "bench.postern.test"


@dataclass
class Ready:
    """A target with an index, once it reports the index ready."""
    wall_s: float    # from spawning the daemon until we saw it ready
    logged_s: float  # the duration the daemon itself logged
    queued: int      # messages it indexed
    held: int


@dataclass
class Resumed:
    """resume(): when the command was issued and when it returned (the
    monotonic clock); `problem` if it failed without making the run useless."""
    t0: float
    returned: float
    problem: str | None = None


@dataclass
class ColdStart:
    """cold_start(): when the start command was issued; `start_cmd_s` is how
    long it took to return, for a target whose start command blocks until the
    system is up (None if it returns at once)."""
    t0: float
    start_cmd_s: float | None = None


class Target(ABC):
    """A mail system under test: it accepts messages (from one process per
    message, or in bulk while paused), delivers them to an SMTP relay on
    loopback, and lists its queue. Targets never start a sink: the
    measurement owns the receiving end and passes its port."""

    name = "?"             # what records call it ("postern", "postfix")
    has_index = False      # builds an in-memory index at start and reports it ready
    cpu_by_process = False  # its CPU is spread over processes worth naming in records

    env = None  # the environment for submit_command() and list_command()
    smtp_port = None  # where it accepts SMTP on 127.0.0.1 (Postfix's smtpd, Postern's listener)

    # -- running
    @abstractmethod
    def start(self, relay_port, timeout=None, tls=False):
        """Runs, delivering to 127.0.0.1:relay_port; returns once it accepts
        and delivers (a Ready for a target with an index, else None). With
        `tls`, it uses STARTTLS when the relay offers it, checking no
        certificate (opportunistic TLS), else it never does."""

    @abstractmethod
    def stop(self, discard=False):
        """Stops every process of the target. `discard`: the queue is about to
        be thrown away, so no graceful shutdown is needed."""

    @abstractmethod
    def empty(self, set_aside=False):
        """No message queued anywhere, and no delivery under way. With
        `set_aside`, what was queued is renamed into a directory of its own on
        the same file system instead of deleted (see procs.SetAside), until
        `purge_set_aside()`."""

    def purge_set_aside(self):
        """Deletes what `empty(set_aside=True)` kept."""
        self.aside.purge()

    @abstractmethod
    def cpu(self):
        """A procs.TreeCPU over every process of the running target."""

    @abstractmethod
    def start_paused(self):
        """Runs, accepting SMTP on smtp_port, with delivery paused: what it
        accepts stays queued (for the SMTP injection)."""

    # -- submitting one process per message
    @abstractmethod
    def submit_command(self):
        """argv that submits the message on standard input (sendmail-style)."""

    @abstractmethod
    def submitted(self):
        """Messages submitted while no daemon ran, still where submission put them."""

    @abstractmethod
    def queued(self):
        """Messages anywhere in the queue (submitted, queued, held, being written)."""

    # -- pause and resume
    @abstractmethod
    def fill_paused(self, count, relay_port, tls=False):
        """Queues `count` messages that are not delivered until resume(); on
        return it runs (delivering to relay_port once resumed, with `tls` as
        for start())."""

    @abstractmethod
    def resume(self):
        """Releases what fill_paused() queued; returns a Resumed."""

    # -- big queues
    @abstractmethod
    def fill_deferred(self, count):
        """Queues `count` messages it will not try again for a long time (mail
        that failed once), for listing and start-up; returns seconds taken."""

    @abstractmethod
    def list_command(self):
        """argv that lists the whole queue, one line per message."""

    @abstractmethod
    def fill_cold(self, count):
        """Stopped, with about `count` messages queued that are due at once, for
        a cold start."""

    @abstractmethod
    def cold_start(self, relay_port):
        """Starts from fill_cold()'s queue and asks for delivery at once;
        returns a ColdStart without waiting for any delivery."""

    # -- an index (has_index)
    def index_ready(self):
        """Whether the index is ready (after cold_start())."""
        raise NotImplementedError(f"{self.name} has no index")

    def wait_index(self, timeout):
        """Waits for the index; returns a Ready."""
        raise NotImplementedError(f"{self.name} has no index")

    def memory(self):
        """procs.vm_status() of the process that holds the index."""
        raise NotImplementedError(f"{self.name} has no index")

    def index_memory(self, count):
        """(bytes per message or None, the tool's last line): the index's heap
        for `count` messages as the target computes it without a queue."""
        raise NotImplementedError(f"{self.name} has no index")

    # -- files
    @abstractmethod
    def queue_roots(self):
        """The directories its queue lives in (for the inode count)."""

    @abstractmethod
    def inode_breakdown(self, events):
        """{what made them: count} for InodeTrace events, in display order."""
