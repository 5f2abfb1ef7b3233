#!/usr/bin/env python3
"""tools/fuzz/make-seeds.py: writes the hand-made seed corpora under
tools/fuzz/corpus/TARGET/seed-* (the files it writes are committed; run it
again after changing a target's input layout). Seeds are small and realistic:
envelopes in the spool's format (spool-layout.md 5), real EHLO and reply
transcripts, client sessions, DNS replies as resolvers send them (the record
types and shapes of Sources/PosternTesting/FakeDNSWire.swift's fixtures, with
compression), MTA-STS policies as the integration tests serve them, and
postern.toml.example. Inputs the fuzzers find are kept beside them when a
long run's corpus is merged back (tools/fuzz.sh --merge)."""
import base64
import json
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))


def write(target, name, data):
    if isinstance(data, str):
        data = data.encode()
    folder = os.path.join(HERE, "corpus", target)
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "seed-" + name), "wb") as out:
        out.write(data)


def two(value):
    """FuzzInput.int(in: 1...N) for N > 256 reads two bytes: value - 1 in them."""
    return struct.pack(">H", value - 1)


def envelopes():
    drop = {"version": "1.0", "id": "01KB4Q3F2Z7J4X9V0M2C8D6E5F", "sender": "",
            "recipients": [{"address": "root@example.org"}], "arrival": "2026-11-29T03:17:34Z",
            "size": 1234, "uid": 0, "eight_bit": False, "smtputf8": False, "require_tls": None}
    write("envelope", "drop.json", json.dumps(drop, indent=2, sort_keys=True) + "\n")
    result = {"time": "2026-11-29T03:20:01.250Z", "code": 451, "enhanced": "4.7.1",
              "text": "451 4.7.1 Greylisted, try again later", "host": "mx1.example.net", "permanent": False}
    queued = {
        "version": "1.0", "id": "01KB4Q3F2Z7J4X9V0M2C8D6E5F", "sender": "alice@example.org",
        "recipients": [
            {"address": "bob@example.net", "attempts": 2, "state": "pending", "original": "Bob@Example.NET",
             "last_result": result},
            {"address": "\"john doe\"@xn--bcher-kva.example", "state": "delivered", "attempts": 1},
            {"address": "carol@[192.0.2.7]", "state": "failed", "attempts": 1, "x_future": {"a": [1, 2.5, None, True]}},
        ],
        "arrival": "2026-11-29T03:17:34Z", "size": 52311, "uid": 1000,
        "message_id": "20261129031734.ABC@host.example.org", "eight_bit": True, "smtputf8": False,
        "require_tls": True, "transport": "relay", "max_attempts": 8, "attempts": 2,
        "next_attempt": "2026-11-29T03:27:34.500Z", "hold_reason": "held by admin", "notify": "never",
        "dialed_ips": {"mx1.example.net": ["192.0.2.25", "2001:db8::25"]}, "dsn_pending": ["bob@example.net"],
        "last_result": {"time": "2026-11-29T03:20:01Z", "text": "connection timed out", "permanent": False},
        "history": [{"time": "2026-11-29T03:20:01Z", "recipients": ["bob@example.net"], "host": "mx1.example.net",
                     "ip": "192.0.2.25", "tls": "TLSv1.3 TLS_AES_256_GCM_SHA384", "conn_use": 1, "tls_policy": "dane",
                     "result": dict(result, code=250, enhanced="2.0.0", text="250 2.0.0 Ok: queued as 4ABC")}],
    }
    write("envelope", "queued.json", json.dumps(queued, indent=2, sort_keys=True) + "\n")
    write("envelope", "compact.json", json.dumps(queued, separators=(",", ":"), ensure_ascii=False))
    write("envelope", "escapes.json",
          '{"version":"1.1","id":"01KB4Q3F2Z7J4X9V0M2C8D6E5F","sender":"","recipients":[{"address":'
          '"ren\\u00e9@b\\u00fccher.example","original":"x\\ud83d\\ude00"}],"arrival":"2026-11-29T03:17:34Z",'
          '"size":0,"uid":0,"extra":"\\"\\\\\\/\\b\\f\\n\\r\\t","n":-1.5e-3,"big":12345678901234567890}')


def addresses():
    for index, text in enumerate([
        "user@example.org", "\"john doe\"@example.org", "a.b+tag@sub.example.co.uk", "postmaster@[192.0.2.1]",
        "x@[IPv6:2001:db8::1]", "jörg@bücher.example", "user@xn--bcher-kva.example", "faß@faß.de",
        "user@ＥＸＡＭＰＬＥ。com", "Alice <alice@example.org>, bob@example.net (Bob)",
        "undisclosed: a@b.example, c@d.example;", "root", "\"quoted\\\"pair\"@example.org",
        "user@xn--mnchen-3ya.example", "用户@例子.广告", "=?UTF-8?B?SsO2cmc=?= <j@example.org>",
    ]):
        write("address", "%02d" % index, text)


def messages():
    header = ("From alice Sat Nov 28 10:00:00 2026\n"
              "From: Alice Example <alice@example.org>\r\nTo: bob@example.net, \"Carol C\" <carol@example.com>\r\n"
              "Cc: team: dave@example.org, erin@example.org;\r\nBcc: root\r\nSubject: report\r\n"
              " continued subject\r\nMessage-ID: <20261128.1@example.org>\r\n"
              "Date: Sat, 28 Nov 2026 10:00:00 +0000\r\n\r\nbody line\r\n.\r\n")
    # The first byte is the chunk size (1 to 64).
    write("message", "crlf.eml", b"\x0f" + header.encode())
    write("message", "lf.eml", b"\x02" + header.replace("\r\n", "\n").encode())
    write("message", "cr.eml", b"\x06" + b"To: root\rSubject: cron\r\rold mac\r")
    write("message", "body-only.eml", b"\x00" + b"just a body line\nand another\n")
    write("message", "utf8.eml", b"\x1f" + "To: jörg@bücher.example\nFrom: Jörg <j@example.org>\n\nHallo\n".encode())


def replies():
    # Two bytes choose the read sizes (1 to 600, then 1 to 17).
    ehlo = (b"220 mx.example.net ESMTP Postfix\r\n250-mx.example.net\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n"
            b"250-VRFY\r\n250-ETRN\r\n250-STARTTLS\r\n250-AUTH PLAIN LOGIN SCRAM-SHA-256\r\n"
            b"250-ENHANCEDSTATUSCODES\r\n250-8BITMIME\r\n250-DSN\r\n250-SMTPUTF8\r\n250-REQUIRETLS\r\n"
            b"250-LIMITS RCPTMAX=100 MAILMAX=10\r\n250 CHUNKING\r\n")
    write("smtp-reply", "ehlo", b"\x00\x04" + ehlo)
    write("smtp-reply", "transaction", b"\x00\x00" +
          b"250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n550 5.1.1 <x@example.net>: Recipient address rejected: User unknown\r\n"
          b"354 End data with <CR><LF>.<CR><LF>\r\n250 2.0.0 Ok: queued as 4ABCD\r\n221 2.0.0 Bye\r\n")
    write("smtp-reply", "multiline", b"\x0f\x02" +
          b"451-4.7.1 Greylisted\n451-4.7.1 see https://example.net/grey\r\n451 4.7.1 try later\r\n421 4.3.2 shutting down\r\n")
    write("smtp-reply", "scram", b"\x3f\x01" + b"334 " +
          base64.b64encode(b"r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096") + b"\r\n334 " +
          base64.b64encode(b"v=rmF9pqV8S7suAoZWja4dJRkFsKQ=") + b"\r\n235 2.7.0 Authentication successful\r\n")


def sessions():
    # Read size (1 to 300, two bytes), loopback or not, DATA outcome, then the client's octets.
    def session(name, chunk, loopback, text):
        write("smtp-server", name, two(chunk) + bytes([1 if loopback else 0, 3]) + text)
    session("relay", 64, True,
            b"EHLO client.example.org\r\nMAIL FROM:<alice@example.org> SIZE=1234 BODY=8BITMIME\r\n"
            b"RCPT TO:<bob@example.net> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;Bob+40example.net\r\n"
            b"RCPT TO:<Postmaster>\r\nDATA\r\nRSET\r\nNOOP\r\nVRFY bob\r\nHELP\r\nQUIT\r\n")
    session("tls-auth", 300, False,
            b"EHLO client.example.org\r\nSTARTTLS\r\nEHLO client.example.org\r\nAUTH PLAIN " +
            base64.b64encode(b"\0user\0secret") + b"\r\nMAIL FROM:<> REQUIRETLS ENVID=abc+2Bdef RET=HDRS\r\n"
            b"RCPT TO:<x@example.net> NOTIFY=NEVER\r\nDATA\r\n")
    session("login", 7, False,
            b"HELO c\r\nEHLO c\r\nSTARTTLS\r\nEHLO c\r\nAUTH LOGIN\r\n" + base64.b64encode(b"user") + b"\r\n" +
            base64.b64encode(b"wrong") + b"\r\nAUTH PLAIN\r\n*\r\n" +
            "MAIL FROM: <\"a b\"@example.org> SMTPUTF8\r\nRCPT TO:<@relay.example:jörg@bücher.example>\r\n".encode())
    session("bare-lf", 1, True,
            b"EHLO c\nMAIL FROM:<a@b.example>\r\nRCPT TO:<c@d.example>\nDATA\r\n" + b"X" * 2100 + b"\r\nQUIT\r\n")


class DNS:
    """A reply as a resolver sends it: names compressed against earlier ones."""

    def __init__(self, qname, qtype, flags=0x8180, rcode=0):
        self.out = bytearray(struct.pack(">HHHHHH", 0x1234, flags | rcode, 1, 0, 0, 0))
        self.names = {}
        self.name(qname)
        self.out += struct.pack(">HH", qtype, 1)
        self.counts = [0, 0, 0]

    def name(self, name):
        labels = [label for label in name.split(".") if label]
        for index in range(len(labels)):
            suffix = ".".join(labels[index:]).lower()
            if suffix in self.names:
                self.out += struct.pack(">H", 0xC000 | self.names[suffix])
                return
            if len(self.out) < 0x3FFF:
                self.names[suffix] = len(self.out)
            label = labels[index].encode()
            self.out += bytes([len(label)]) + label
        self.out += b"\0"

    def record(self, owner, rtype, rdata, section=0, ttl=300):
        self.name(owner)
        self.out += struct.pack(">HHIH", rtype, 1, ttl, 0)
        start = len(self.out)
        rdata(self)
        struct.pack_into(">H", self.out, start - 2, len(self.out) - start)
        self.counts[section] += 1

    def opt(self, extended=0):
        self.out += b"\0" + struct.pack(">HHIH", 41, 1232, extended << 24, 0)
        self.counts[2] += 1

    def bytes(self):
        struct.pack_into(">HHH", self.out, 6, *self.counts)
        return bytes(self.out)


def dns():
    reply = DNS("example.org", 15, flags=0x81A0)
    reply.record("example.org", 15, lambda m: (m.out.extend(struct.pack(">H", 10)), m.name("mx1.example.org")))
    reply.record("example.org", 15, lambda m: (m.out.extend(struct.pack(">H", 20)), m.name("mx2.example.org")))
    reply.record("mx1.example.org", 1, lambda m: m.out.extend(bytes([192, 0, 2, 25])), section=2)
    reply.opt()
    write("dns", "mx", reply.bytes())
    reply = DNS("www.example.org", 28)
    reply.record("www.example.org", 5, lambda m: m.name("web.example.net"))
    reply.record("web.example.net", 28, lambda m: m.out.extend(bytes.fromhex("20010db8000000000000000000000025")))
    write("dns", "cname-aaaa", reply.bytes())
    reply = DNS("_mta-sts.example.org", 16)
    reply.record("_mta-sts.example.org", 16, lambda m: m.out.extend(b"\x0cv=STSv1; id=\x0f20261129T031734"))
    write("dns", "txt", reply.bytes())
    reply = DNS("_25._tcp.mx1.example.org", 52, flags=0x81A0)
    reply.record("_25._tcp.mx1.example.org", 52, lambda m: m.out.extend(bytes([3, 1, 1]) + bytes(range(32))))
    write("dns", "tlsa", reply.bytes())
    reply = DNS("nowhere.example.org", 1, rcode=3)
    reply.record("example.org", 6, lambda m: (m.name("ns1.example.org"), m.name("hostmaster.example.org"),
                                             m.out.extend(struct.pack(">IIIII", 1, 7200, 3600, 1209600, 300))), section=1)
    reply.opt()
    write("dns", "nxdomain", reply.bytes())
    reply = DNS("example.org", 15)
    reply.record("example.org", 15, lambda m: m.out.extend(b"\0\0\0"))  # RFC 7505 null MX
    write("dns", "null-mx", reply.bytes())
    write("dns", "servfail", DNS("example.org", 1, rcode=2).bytes())


def dsns():
    # FuzzInput fields: flags as bytes, strings up to a NUL (see DSNFuzzer.makeReport).
    def field(text):
        return text.encode() + b"\0"
    recipient = (b"\x01" + field("Bob@Example.NET") + field("bob@example.net") + b"\x01" + field("5.1.1") +
                 b"\x01" + field("mx1.example.net") +
                 b"\x01" + field("550-5.1.1 The email account that you tried to reach does not exist.\n"
                                 "550 5.1.1 Please try double-checking the recipient's email address") +
                 b"\x00" + b"\x01" + b"\x01\x02\x03\x04")
    header = b"Received: by host.example.org\r\nFrom: Alice <alice@example.org>\r\nSubject: hi\r\n\r\n"
    write("dsn", "failed", b"\x01\x00\x00" + b"\x01" + recipient + b"\x00" + field("host.example.org") +
          field("MAILER-DAEMON@host.example.org") + field("alice@example.org") + field("01KB4Q3F2Z7J4X9V0M2C8D6E5F") +
          b"\x01\x02\x03\x04\x01\x02\x03\x09" + field("01KB4Q3F2Z7J4X9V0M2C8D6E5G@host.example.org") + b"\x01" +
          field("20261128.1@example.org") + header)
    write("dsn", "delayed-global", b"\x00\x01\x01" + b"\x02" + recipient + recipient.replace(b"mx1", b"mx2") + b"\x02" +
          b"\x10\x00\x20\x00\x30\x00\x40\x00" + field("host.example.org") + field("MAILER-DAEMON@host.example.org") +
          field("jörg@bücher.example") + field("01KB4Q3F2Z7J4X9V0M2C8D6E5F") + b"\x01\x02\x03\x04\x01\x02\x03\x09" +
          field("id@host.example.org") + b"\x00" + "From: Jörg <jörg@bücher.example>\r\n\r\nHallo\r\n".encode())


def configs():
    with open(os.path.join(HERE, "..", "..", "postern.toml.example"), "rb") as example:
        write("config", "example.toml", example.read())
    write("config", "relay.toml",
          'hostname = "host.example.org"\nrelay = "smtp.example.net:587"\nrelay_tls = "starttls"\n\n'
          '[queue]\nmax_concurrent = 20\nbackoff_base = "7m30s"\n\n[drop]\nmax_message_size = 10_485_760\n'
          'max_recipients = 100\n\n[transports.submission]\ntype = "relay"\nhost = "smtp.example.net"\nport = 587\n\n'
          '[[routes]]\ndomains = ["example.com", "*.example.com"]\ntransport = "submission"\n')
    write("config", "overrides.toml", 'hostname = "a.example"\n\0queue.max_attempts=3\nrelay=127.0.0.1:2525\n')
    write("config", "drop-keys.toml",
          '\ufeff# comment\n"hostname" = \'literal.example\'\ndrop.max_recipients = 5 # trailing\n'
          '[log]\nlevel = "debug"\n[drop]\nmax_message_size = 1_000\n')


def policies():
    write("mta-sts", "enforce.txt", "version: STSv1\r\nmode: enforce\r\nmx: mx1.example.org\r\nmx: *.mail.example.org\r\nmax_age: 86400\r\n")
    write("mta-sts", "testing-lf.txt", "version: STSv1\nmode: testing\nmx: mx.testing.test\nmax_age: 604800\nextension_x: y\n")
    write("mta-sts", "none.txt", "version: STSv1\r\nmode: none\r\nmax_age: 31557600\r\n")
    write("mta-sts", "txt-records", "v=STSv1; id=20261129T031734\nv=spf1 -all\n")


if __name__ == "__main__":
    envelopes()
    addresses()
    messages()
    replies()
    sessions()
    dns()
    dsns()
    configs()
    policies()
