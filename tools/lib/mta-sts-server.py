#!/usr/bin/env python3
"""tools/lib/mta-sts-server.py: the HTTPS server of tools/mta-sts-peer.sh (see
its --help). Serves /.well-known/mta-sts.txt (RFC 8461 3.3) for the host names
listed in DIR/sites, each with its own certificate (chosen by SNI) and answer
(chosen by the Host header). DIR/sites is read again for every connection, so
a test changes answers between fetches by replacing the file (rename).

Usage: mta-sts-server.py DIR PORT
"""
import os
import ssl
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PATH = "/.well-known/mta-sts.txt"
# A client that sends nothing, or a hung answer's client that never leaves,
# holds a thread at most this long.
IDLE_SECONDS = 120


def read_sites(directory):
    """DIR/sites: HOST CERT KEY ACTION [ARGUMENT...] a line; '#' comments."""
    sites = {}
    with open(os.path.join(directory, "sites"), encoding="utf-8") as file:
        for number, line in enumerate(file, 1):
            words = line.split()
            if not words or words[0].startswith("#"):
                continue
            if len(words) < 4:
                raise ValueError(f"sites:{number}: HOST CERT KEY ACTION [ARGUMENT...]: {line.strip()}")
            sites[words[0].lower()] = (words[1], words[2], words[3], words[4:])
    return sites


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, directory, port):
        self.directory = directory
        self.log_lock = threading.Lock()
        super().__init__(("127.0.0.1", port), Handler)
        self.tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.tls.minimum_version = ssl.TLSVersion.TLSv1_2
        self.tls.sni_callback = self.choose_certificate

    def choose_certificate(self, connection, name, _context):
        """SNI picks the site's certificate; no SNI or an unknown name: alert."""
        site = read_sites(self.directory).get((name or "").lower())
        if site is None:
            self.log(f"- {name or '(no SNI)'} - - handshake refused: unknown server name")
            return ssl.ALERT_DESCRIPTION_UNRECOGNIZED_NAME
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(site[0], site[1])
        connection.context = context
        connection.sni = name.lower()
        return None

    def get_request(self):
        # The handshake happens in the request's thread (Handler.setup), so a
        # client that stalls in it does not stop others being accepted.
        sock, address = self.socket.accept()
        return self.tls.wrap_socket(sock, server_side=True, do_handshake_on_connect=False), address

    def handle_error(self, request, client_address):
        self.log(f"- - - - connection failed: {sys.exc_info()[1]!r}")

    def log(self, text):
        with self.log_lock, open(os.path.join(self.directory, "log", "requests.log"), "a", encoding="utf-8") as file:
            file.write(f"{time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())} {text}\n")


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "mta-sts-peer"
    sys_version = ""

    def setup(self):
        self.request.settimeout(IDLE_SECONDS)
        self.request.do_handshake()
        super().setup()

    def log_message(self, format, *args):  # noqa: A002 - the base class's name
        pass  # one line per request instead, from answer()

    def do_GET(self):
        sni = getattr(self.request, "sni", "-")
        host = (self.headers.get("Host") or "-").lower()
        host = host.rsplit(":", 1)[0] if not host.endswith("]") else host
        site = read_sites(self.server.directory).get(host)
        if self.path != PATH or site is None:
            return self.answer(sni, host, 404, b"not found\n")
        action, arguments = site[2], site[3]
        if action == "policy":
            with open(arguments[0], "rb") as file:
                body = file.read()
            content_type = arguments[1] if len(arguments) > 1 else "text/plain"
            return self.answer(sni, host, 200, body, content_type)
        if action == "status":
            return self.answer(sni, host, int(arguments[0]), b"status as configured\n")
        if action == "redirect":
            return self.answer(sni, host, 301, b"moved\n", extra={"Location": arguments[0]})
        if action == "oversized":
            # A valid policy padded with an extension field (RFC 8461 3.2:
            # unknown fields are ignored) to exactly the given size.
            size = int(arguments[0])
            head = b"version: STSv1\r\nmode: enforce\r\nmx: *.test\r\nmax_age: 86400\r\nx-padding: "
            body = head + b"x" * max(size - len(head) - 2, 0) + b"\r\n"
            return self.answer(sni, host, 200, body)
        if action == "hang":
            # Headers read, no answer: wait until the client gives up.
            self.server.log(f"{self.client_address[0]} {sni} {host} {self.path} hang")
            try:
                while self.request.recv(1024):
                    pass
            except OSError:
                pass
            self.close_connection = True
            return None
        return self.answer(sni, host, 500, f"unknown action {action}\n".encode())

    def answer(self, sni, host, status, body, content_type="text/plain", extra=None):
        self.server.log(f"{self.client_address[0]} {sni} {host} {self.path} {status} {len(body)}")
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (extra or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    server = Server(os.path.abspath(sys.argv[1]), int(sys.argv[2]))
    print(f"listening on 127.0.0.1:{sys.argv[2]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
