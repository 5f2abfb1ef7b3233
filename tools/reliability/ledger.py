"""The harnesses' accounting: what happened to every message, against what
its fate (peer.py) said must happen, and against what the kills allow.

A message whose drop exited 0 was accepted and must end exactly one way:
- delivered (the peer answered 250 to its data) when its fate accepts it,
  and never bounced;
- bounced (a failure DSN, from the null sender to its sender, whose
  In-Reply-To names its Message-ID) when its fate refuses it for good or
  defers it past the last attempt, and never delivered.
A `defer-once` message may also bounce when attempts cut short by kills
(each counts, spool-layout.md 6.5) used up its attempts before the peer saw
its second one; and a message delivered by its last allowed attempt, killed
before the daemon heard, is given up with a DSN saying so. Both are the
documented price of a crash, counted apart (`bounced_after_kills`).
A drop that was killed (or failed) may or may not have been accepted; if its
message shows up, it obeys the same rules, but it is never "lost".

Duplicates: a second 250 for a message is allowed only across a kill at
which that very message had an attempt in flight (its envelope carried a
registration mark when the daemon died); so duplicates <= the messages in
flight at the kills. No retry storm: the peer never sees more attempts of a
message than `max_attempts`, nor two attempts closer together than half the
nominal backoff delay between them.
"""
import email
import email.policy

from peer import PERMANENT, message_id


class Ledger:
    def __init__(self, peer, seed, max_attempts, backoff_base, backoff_factor, max_concurrent=10):
        self.peer = peer
        self.seed = seed
        self.max_attempts = max_attempts
        self.base = backoff_base
        self.factor = backoff_factor
        self.max_concurrent = max_concurrent
        self.kills = []          # (time, {(kind, N): mark} of the attempts in flight at that kill)
        self.marks_seen = []     # every mark in the spool after each kill
        self.kicked_at = None    # an operator's `postern kick --all`: what follows is not a retry

    def kill(self, when, marked):
        """A kill at `when`, after which the spool held `marked` ({(kind, N): mark});
        the marks not there at the kill before are the attempts in flight at this one."""
        before = self.marks_seen[-1] if self.marks_seen else {}
        fresh = {key: mark for key, mark in marked.items() if before.get(key) != mark}
        self.kills.append((when, fresh))
        self.marks_seen.append(marked)

    def save(self, path):
        """The peer's record (without message bodies) and the kills, one JSON object a line, for a post-mortem."""
        import json
        with open(path, "w") as f:
            for e in self.peer.snapshot():
                f.write(json.dumps(list(e[:3]) + [e[3] if isinstance(e[3], int) else len(e[3])]) + "\n")
            for t, marked in self.kills:
                f.write(json.dumps(["kill", t, sorted(map(list, marked))]) + "\n")

    def settle(self, accepted, unsure):
        """Returns (figures, problems): figures a dict for the report,
        problems a list of sentences (empty when everything holds)."""
        events = self.peer.snapshot()
        rcpts, finals, dsns = {}, {}, {}
        for e in events:
            if e[0] == "rcpt":
                rcpts.setdefault(e[1], []).append(e[2])
            elif e[0] == "final" and e[3] == 250:
                finals.setdefault(e[1], []).append(e[2])
            elif e[0] == "dsn":
                dsns.setdefault(e[1], []).append((e[2], e[3]))
        problems = []
        busiest = max((len(m) for _, m in self.kills), default=0)
        if busiest > self.max_concurrent:
            problems.append(f"{busiest} attempts in flight at one kill, more than queue.max_concurrent {self.max_concurrent}")
        f = dict(accepted=len(accepted), unsure_drops=len(unsure), delivered=0, bounced=0,
                 bounced_after_kills=0, lost=0, wrong=0, duplicates=0, duplicate_dsns=0, delay_dsns=0,
                 attempts=sum(len(v) for v in rcpts.values()), max_attempts_seen=0, storm=0,
                 in_flight_at_kills=sum(len(m) for _, m in self.kills), most_in_flight=busiest,
                 kills=len(self.kills))
        for n in sorted(set(accepted) | (set(unsure) & (set(rcpts) | set(dsns)))):
            fate = self.peer.fate(n)
            delivered = sorted(finals.get(n, []))
            failed, delayed, interrupted = self._dsns(n, dsns.get(n, []), problems)
            f["delay_dsns"] += delayed
            attempts = sorted(rcpts.get(n, []))
            f["max_attempts_seen"] = max(f["max_attempts_seen"], len(attempts))
            must_bounce = fate in PERMANENT or fate in ("defer", "hang")
            if delivered and failed and interrupted and all(
                    any(t > max((a for a in attempts if a <= d), default=d) and ("mail", n) in marked
                        for t, marked in self.kills) for d in delivered):
                # Its last allowed attempt delivered it and was killed before
                # the daemon heard: the daemon then gives up on it, saying the
                # outcome is unknown (spool-layout.md 6.5). The price of a crash.
                f["bounced_after_kills"] += 1
            elif delivered and failed:
                problems.append(f"message {n} ({fate}): delivered and bounced")
                f["wrong"] += 1
            elif delivered:
                f["delivered"] += 1
                if must_bounce:
                    problems.append(f"message {n} ({fate}): delivered, the peer refused it")
                    f["wrong"] += 1
            elif failed:
                f["bounced"] += 1
                if fate == "accept" or (fate == "defer-once" and len(attempts) >= 2):
                    problems.append(f"message {n} ({fate}): bounced after {len(attempts)} attempts the peer saw")
                    f["wrong"] += 1
                elif fate == "defer-once":
                    f["bounced_after_kills"] += 1
            elif n in accepted:
                problems.append(f"message {n} ({fate}): lost (accepted, {len(attempts)} attempts, neither delivered nor bounced)")
                f["lost"] += 1
            f["duplicates"] += max(0, len(delivered) - 1)
            f["duplicate_dsns"] += max(0, failed - 1)
            for earlier, later in zip(delivered, delivered[1:]):
                # From the start of the attempt that delivered: its data may
                # reach the peer only after the kill (it was in the socket).
                started = max((t for t in attempts if t <= earlier), default=earlier)
                if not any(started < t < later and ("mail", n) in marked for t, marked in self.kills):
                    problems.append(f"message {n}: delivered twice without a kill during one of its attempts")
            self._storm(n, attempts, problems, f)
        return f, problems

    def _dsns(self, n, received, problems):
        """(failure DSNs, delay DSNs, whether one says the last attempt was
        interrupted) for message n, each checked."""
        failed = delayed = 0
        interrupted = False
        for _, body in received:
            msg = email.message_from_bytes(body, policy=email.policy.compat32)
            subject = msg.get("Subject", "")
            if msg.get("In-Reply-To", "").strip() != f"<{message_id(self.seed, n)}>":
                problems.append(f"DSN for message {n} names another message: {msg.get('In-Reply-To')!r}")
            if subject.startswith("Undelivered"):
                failed += 1
                interrupted |= b"the last one was interrupted" in body
            elif subject.startswith("Delayed"):
                delayed += 1
            else:
                problems.append(f"DSN for message {n} with an unexpected subject {subject!r}")
        return failed, delayed, interrupted

    def _storm(self, n, attempts, problems, f):
        if len(attempts) > self.max_attempts:
            problems.append(f"message {n}: {len(attempts)} attempts, more than max_attempts {self.max_attempts}")
            f["storm"] += 1
        for i, (a, b) in enumerate(zip(attempts, attempts[1:]), start=1):
            if self.kicked_at is not None and b > self.kicked_at:
                break
            nominal = self.base * self.factor ** (i - 1)
            if b - a < nominal / 2:
                problems.append(f"message {n}: attempts {i} and {i + 1} {b - a:.2f} s apart "
                                f"(the backoff allows {nominal:g} s)")
                f["storm"] += 1
