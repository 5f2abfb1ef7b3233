"""A scripted SMTP server on loopback whose answers are known in advance: the
far end of the crash and soak harnesses (tools/crash-harness.py, tools/soak.py).

Every message the harness drops has its own envelope recipient,
`m<N>@d<K>.test`, and sender, `s<N>@senders.test`; the message's fate is a
pure function of N and the run's seed (a hash of its Message-ID, which is
made from the same two), so the outcome of every message is known before the
daemon ever sees it, whatever the kills do to the order:

    accept          250 at the end of DATA
    reject-rcpt     550 5.1.1 at RCPT            (permanent: a failure DSN)
    reject-data     554 5.6.0 after the data     (permanent: a failure DSN)
    defer-once      451 4.3.0 on the first attempt the server sees, then 250
    defer           451 4.3.0 at RCPT or after DATA, always (expires: a failure DSN)
    hang            (soak only) no reply to the final dot for `hang` seconds,
                    then the connection is closed: the client's attempt
                    times out

Mail from the null sender is a DSN: always accepted and kept whole, with the
message number taken from its recipient (`s<N>@senders.test`).

The server records what it saw with time stamps (`Peer.events`), counts the
transactions open right now (`in_transaction`), and never trusts its client:
lines are bounded (4 KiB), messages too (`max_message`), and every read has a
deadline.
"""
import hashlib
import re
import socket
import socketserver
import threading
import time

FATES = ("accept", "reject-rcpt", "reject-data", "defer-once", "defer", "hang")
PERMANENT = {"reject-rcpt", "reject-data"}
LINE_MAX = 4096

_RCPT = re.compile(rb"^RCPT TO:\s*<m(\d+)@d\d+\.test>", re.I)
_DSN_RCPT = re.compile(rb"^RCPT TO:\s*<s(\d+)@senders\.test>", re.I)


def message_id(seed, n):
    """The Message-ID (without brackets) of message `n`: msgset.message_bytes's."""
    return f"bench-{seed}-{n}@example.org"


def fate_of(seed, n, mix):
    """The fate of message `n`: a hash of its Message-ID, spread over `mix`
    ({fate: weight}, weights summing to 100) in a fixed order."""
    digest = hashlib.sha256(message_id(seed, n).encode()).digest()
    point = int.from_bytes(digest[:4], "big") % 100
    for fate in FATES:
        point -= mix.get(fate, 0)
        if point < 0:
            return fate
    return "accept"


def stage_of(seed, n):
    """Where a refusing fate answers: at RCPT or after DATA (another hash bit)."""
    return "rcpt" if hashlib.sha256(message_id(seed, n).encode()).digest()[4] & 1 else "data"


class Peer:
    """The server: `start()`, then read `events` (list of tuples, appended
    under `lock`): ("rcpt", n, t, code), ("final", n, t, code),
    ("dsn", n, t, bytes), ("hang", n, t, 0)."""

    def __init__(self, seed, mix, delay=0.0, hang=0.0, max_message=1 << 20):
        self.seed = seed
        self.mix = mix
        self.delay = delay          # seconds before each final reply (keeps attempts in flight)
        self.hang = hang            # how long a "hang" fate holds its reply
        self.max_message = max_message
        self.lock = threading.Lock()
        self.events = []
        self.attempts = {}          # n -> RCPT commands seen
        self.in_transaction = 0
        self.server = None
        self.port = None

    # -- what the harness asks
    def fate(self, n):
        return fate_of(self.seed, n, self.mix)

    def snapshot(self):
        with self.lock:
            return list(self.events)

    def start(self):
        peer = self

        class Handler(socketserver.StreamRequestHandler):
            timeout = 60

            def handle(self):
                peer._session(self.request, self.rfile, self.wfile)

        class Server(socketserver.ThreadingTCPServer):
            daemon_threads = True
            allow_reuse_address = True
            request_queue_size = 128

        self.server = Server(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self):
        if self.server:
            self.server.shutdown()
            self.server.server_close()

    # -- one SMTP session (RFC 5321 4.1), with PIPELINING (RFC 2920): replies in order
    def _record(self, *event):
        with self.lock:
            self.events.append(event)

    def _session(self, sock, rfile, wfile):
        def reply(text):
            wfile.write(text.encode() + b"\r\n")
            wfile.flush()

        def reset():
            return {"dsn": False, "n": None, "code": None, "open": False}

        state = reset()

        def close_transaction():
            if state["open"]:
                with self.lock:
                    self.in_transaction -= 1
                state["open"] = False

        try:
            reply("220 fate.test ESMTP harness")
            while True:
                line = rfile.readline(LINE_MAX)
                if not line:
                    return
                if not line.endswith(b"\n"):
                    reply("500 5.5.0 line too long")
                    return
                verb = line[:4].upper()
                if verb in (b"EHLO", b"HELO"):
                    close_transaction()
                    state = reset()
                    reply("250-fate.test\r\n250-PIPELINING\r\n250-8BITMIME\r\n250-ENHANCEDSTATUSCODES\r\n250 SIZE 10485760"
                          if verb == b"EHLO" else "250 fate.test")
                elif verb == b"MAIL":
                    close_transaction()
                    state = reset()
                    state["dsn"] = b"FROM:<>" in line.upper().replace(b" ", b"")
                    reply("250 2.1.0 ok")
                elif verb == b"RCPT":
                    self._rcpt(line, state, reply)
                elif verb == b"DATA":
                    if state["n"] is None or state["code"] is None:
                        reply("554 5.5.1 no valid recipients")
                        continue
                    reply("354 go ahead")
                    body = self._read_data(rfile)
                    if body is None:
                        return
                    if not self._final(state, body, reply, sock):
                        return
                    close_transaction()
                    state = reset()
                elif verb == b"RSET":
                    close_transaction()
                    state = reset()
                    reply("250 2.0.0 ok")
                elif verb == b"NOOP":
                    reply("250 2.0.0 ok")
                elif verb == b"QUIT":
                    reply("221 2.0.0 bye")
                    return
                else:
                    reply("502 5.5.2 not implemented")
        except (OSError, ValueError):
            return
        finally:
            close_transaction()

    def _rcpt(self, line, state, reply):
        now = time.time()
        if state["dsn"]:
            m = _DSN_RCPT.match(line)
            if not m:
                reply("550 5.1.1 unknown DSN recipient")
                return
            state["n"], state["code"] = int(m.group(1)), 250
            reply("250 2.1.5 ok")
            return
        m = _RCPT.match(line)
        if not m:
            reply("550 5.1.1 unknown recipient")
            return
        n = int(m.group(1))
        with self.lock:
            seen = self.attempts.get(n, 0)
            self.attempts[n] = seen + 1
            if not state["open"]:
                self.in_transaction += 1
                state["open"] = True
        fate = self.fate(n)
        stage = stage_of(self.seed, n)
        code = 550 if fate == "reject-rcpt" else 451 if fate == "defer" and stage == "rcpt" else 250
        # The final reply, decided now from this attempt's number.
        final = {"accept": 250, "reject-rcpt": 550, "reject-data": 554, "defer": 451,
                 "defer-once": 451 if seen == 0 else 250, "hang": 0}[fate]
        self._record("rcpt", n, now, code)
        state["n"] = n
        state["code"] = final if code == 250 else None
        reply({250: "250 2.1.5 ok", 550: "550 5.1.1 no such user here (fate)",
               451: "451 4.3.0 try again later (fate)"}[code])

    def _read_data(self, rfile):
        body, size = [], 0
        while True:
            line = rfile.readline(LINE_MAX)
            if not line:
                return None
            if line in (b".\r\n", b".\n"):
                return b"".join(body)
            size += len(line)
            if size <= self.max_message:
                body.append(line[1:] if line.startswith(b"..") else line)

    def _final(self, state, body, reply, sock):
        """The reply to the final dot; False when the session must end."""
        n, code, now = state["n"], state["code"], time.time()
        if state["dsn"]:
            self._record("dsn", n, now, body)
            reply("250 2.0.0 dsn kept")
            return True
        if code == 0:   # hang: hold the reply past the client's attempt timeout, then go away
            self._record("hang", n, now, 0)
            time.sleep(self.hang)
            sock.shutdown(socket.SHUT_RDWR)
            return False
        # Committed at the final dot, as a real server's queue file is before
        # it answers: the client may be killed while waiting for the reply.
        self._record("final", n, now, code)
        if self.delay:
            time.sleep(self.delay)
        reply({250: "250 2.0.0 queued as fate", 451: "451 4.3.0 try again later (fate)",
               554: "554 5.6.0 message refused (fate)", 550: "550 5.1.1 no such user here (fate)"}[code])
        return True
