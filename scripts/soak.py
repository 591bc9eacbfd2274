"""Soak and fault harness: a long mixed load with clients failing in every way, then
a shutdown in the middle of it, against one server or all of them.

For each server kind of scripts.launch it

1. starts the server serving sample_site, warms it up (every endpoint, then one
   concurrent round so thread pools reach their size) and records its baseline:
   resident memory, open descriptors, threads and child processes, summed over the
   server process and its children (psutil);
2. runs the steady phase: --connections clients (64) work through a fixed, seeded
   plan of --requests well-formed requests over every endpoint of the site (keep-alive
   sessions, uploads of random sizes to /echo whose SHA-256 is checked, /stream and
   /events bodies checked byte for byte, slow readers, slow heads), interleaved with
   faults that expect nothing (clients vanishing mid-head, mid-body, mid-response),
   requests from the malformed corpus (tests/http11_corpus.py, each expecting its
   4xx), and two bursts above the server's concurrency limit, run while the rest of
   the load waits (a 503 there is an expected answer and counted apart);
   WebSocket echo sessions join the mix when the server answers /ws/echo with 101;
3. waits for the server to return to its baseline (descriptors, threads, children),
   measured, like the baseline, right after a full garbage collection in the server
   (scripts/soak_apps.py adds the endpoint that runs it, and says why);
4. sends SIGTERM with --in-flight requests under way (uploads, streams, event streams,
   slow views) and checks that each one completes, or is cut cleanly (never a
   corrupted body), that the server exits 0 within its graceful timeout, and that
   nothing of its process group is left.

It prints a table and the goals of issue 17 with pass or fail, and writes
results/soak.json with the run's metadata. Nothing here asserts a timing.

    python -m scripts.soak --servers wsgi --requests 2000
    python -m scripts.soak --servers all --requests 20000     # what `make soak` runs
    python -m scripts.soak --report-from results/soak.json    # print an earlier run again
    python -m scripts.soak --report-from a.json b.json        # several runs in one table
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import hashlib
import importlib.metadata
import json
import os
import random
import re
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil
from tqdm import tqdm

from scripts.launch import KINDS, REPO, ServerProcess, free_port, interface_of, server_command
from scripts.soak_apps import COLLECT_PATH
from tests.http11_corpus import INVALID

TOY_SERVERS = ("cgi", "wsgi", "asgi")
GRACEFUL_TIMEOUT = 30          # seconds a server may take to finish what is in flight
CLIENT_TIMEOUT = 120.0         # a response slower than this counts as lost
SETTLE_TIMEOUT = 30.0          # how long to wait for the return to baseline
MAX_ERRORS_KEPT = 20           # error descriptions kept in the JSON per server


class Lost(Exception):
    """The connection ended (closed, reset, timed out) before the whole answer arrived."""


class Wrong(Exception):
    """An answer arrived, and it is not the one expected."""


# ── A raw-socket HTTP/1.1 client that checks framing byte for byte ──────────────────────

class Response:
    __slots__ = ("status", "headers", "body", "close")

    def __init__(self, status, headers, body, close):
        self.status, self.headers, self.body, self.close = status, headers, body, close


_STATUS_LINE = re.compile(rb"HTTP/1\.([01]) ([1-5]\d\d)(?: [^\r\n]*)?")


class Client:
    """One connection. `read_size` and `read_pause` make it a slow reader."""

    def __init__(self, address, *, timeout=CLIENT_TIMEOUT, receive_buffer=None):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if receive_buffer:
            # Set before connecting, so the window the server sees is small from the start.
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
        self.sock.settimeout(timeout)
        try:
            self.sock.connect(address)
        except OSError as error:
            self.sock.close()
            raise Lost(f"connect: {error}") from None
        self.buffer = bytearray()
        self.read_size = 65536
        self.read_pause = 0.0

    def send(self, data):
        try:
            self.sock.sendall(data)
        except OSError as error:
            raise Lost(f"send: {error}") from None

    def close(self, reset=False):
        if reset:
            # SO_LINGER with a zero timeout: close() sends RST, as a crashed client would.
            with contextlib.suppress(OSError):
                self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.sock.close()

    def _fill(self):
        if self.read_pause:
            time.sleep(self.read_pause)
        try:
            data = self.sock.recv(self.read_size)
        except socket.timeout:
            raise Lost("timed out") from None
        except OSError as error:
            raise Lost(f"recv: {error}") from None
        if not data:
            raise Lost("connection closed")
        self.buffer += data

    def _take_until(self, marker, limit):
        while (end := self.buffer.find(marker)) < 0:
            if len(self.buffer) > limit:
                raise Wrong(f"no {marker!r} within {limit} bytes")
            self._fill()
        data = bytes(self.buffer[:end])
        del self.buffer[:end + len(marker)]
        return data

    def _take(self, size):
        while len(self.buffer) < size:
            self._fill()
        data = bytes(self.buffer[:size])
        del self.buffer[:size]
        return data

    def read_head(self):
        """(status, http minor version, headers) of the next final response (or 101)."""
        while True:
            head = self._take_until(b"\r\n\r\n", 65536)
            status_line, *lines = head.split(b"\r\n")
            match = _STATUS_LINE.fullmatch(status_line)
            if not match:
                raise Wrong(f"bad status line {status_line[:80]!r}")
            status = int(match[2])
            headers = {}
            for line in lines:
                name, colon, value = line.partition(b":")
                if not colon or not name or name != name.strip():
                    raise Wrong(f"bad header line {line[:80]!r}")
                headers[name.decode("latin-1").lower()] = value.strip().decode("latin-1")
            # 100 Continue and 103 Early Hints come before the answer; 101 is the answer.
            if status >= 200 or status == 101:
                return status, int(match[1]), headers

    def read_response(self, method="GET"):
        status, minor, headers = self.read_head()
        connection = headers.get("connection", "").lower()
        close = "close" in connection or (minor == 0 and "keep-alive" not in connection)
        if method == "HEAD" or status in (204, 304):
            body = b""
        elif headers.get("transfer-encoding", "").lower() == "chunked":
            body = self._read_chunked()
        elif "content-length" in headers:
            if not headers["content-length"].isdigit():
                raise Wrong(f"bad Content-Length {headers['content-length']!r}")
            body = self._take(int(headers["content-length"]))
        else:
            body = self._read_to_eof()
            close = True
        return Response(status, headers, body, close)

    def _read_chunked(self):
        body = bytearray()
        while True:
            line = self._take_until(b"\r\n", 4096)
            size_text = line.split(b";")[0].strip()
            if not re.fullmatch(rb"[0-9A-Fa-f]+", size_text):
                raise Wrong(f"bad chunk size line {line[:40]!r}")
            size = int(size_text, 16)
            if size == 0:
                while self._take_until(b"\r\n", 65536):  # trailer fields, up to the empty line
                    pass
                return bytes(body)
            body += self._take(size)
            if self._take(2) != b"\r\n":
                raise Wrong("chunk data not followed by CRLF")

    def _read_to_eof(self):
        with contextlib.suppress(Lost):
            while True:
                self._fill()
        body = bytes(self.buffer)
        self.buffer.clear()
        return body


def request_bytes(method, target, *, body=b"", chunked_pieces=None, close=False, headers=()):
    lines = [f"{method} {target} HTTP/1.1", "Host: 127.0.0.1", *headers]
    if chunked_pieces is not None:
        lines.append("Transfer-Encoding: chunked")
        payload = b"".join(b"%x\r\n%s\r\n" % (len(piece), piece) for piece in chunked_pieces if piece)
        payload += b"0\r\n\r\n"
    elif body or method == "POST":
        lines.append(f"Content-Length: {len(body)}")
        payload = body
    else:
        payload = b""
    if close:
        lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + payload


# ── What each endpoint must answer ────────────────────────────────────────────────────

def cpu_result(n):
    """The number /cpu?n=N computes, computed here too, so its answer can be checked."""
    total = 0
    for i in range(n):
        total = (total + i * i) % 1_000_003
    return total


def json_body(response):
    try:
        return json.loads(response.body)
    except ValueError:
        raise Wrong(f"not JSON: {response.body[:80]!r}") from None


class Exchange:
    """One well-formed request and the check of its answer."""

    def __init__(self, method, target, check, *, body=b"", chunked_pieces=None, status=200):
        self.method, self.target, self.check, self.status = method, target, check, status
        self.body, self.chunked_pieces = body, chunked_pieces

    def raw(self, close=False):
        return request_bytes(self.method, self.target, body=self.body,
                             chunked_pieces=self.chunked_pieces, close=close)

    def verify(self, response):
        if response.status != self.status:
            raise Wrong(f"{self.method} {self.target}: status {response.status}, "
                        f"expected {self.status}: {response.body[:120]!r}")
        problem = self.check(response)
        if problem:
            raise Wrong(f"{self.method} {self.target}: {problem}")


def exactly(expected):
    def check(response):
        if response.body != expected:
            return f"body {response.body[:120]!r}, expected {expected[:120]!r}"
        return None
    check.exact = expected
    return check


def containing(fragment):
    def check(response):
        return None if fragment in response.body else f"no {fragment!r} in {response.body[:120]!r}"
    return check


def api_products(response):
    count = json_body(response).get("count")
    return None if count == 50 else f"count {count!r}, expected 50"


def inspect_report(response):
    return None if "interface" in json_body(response) else "no 'interface' key"


def echo_of(body):
    digest = hashlib.sha256(body).hexdigest()

    def check(response):
        report = json_body(response)
        if report.get("body_length") != len(body) or report.get("sha256") != digest:
            return (f"echoed {report.get('body_length')} bytes sha256 {report.get('sha256')}, "
                    f"sent {len(body)} bytes sha256 {digest}")
        return None
    return check


def stream_body(chunks):
    return "".join(f"chunk {n} of {chunks}\n" for n in range(1, chunks + 1)).encode()


def events_body(count):
    return "".join(f"data: {n}\n\n" for n in range(1, count + 1)).encode()


def upload_size(rng):
    """Mostly small bodies, some large ones: the sizes a class would send."""
    roll = rng.random()
    if roll < 0.70:
        return rng.randint(0, 4096)
    if roll < 0.95:
        return rng.randint(4096, 256 * 1024)
    return rng.randint(256 * 1024, 2 * 1024 * 1024)


def random_pieces(rng, body):
    pieces, start = [], 0
    while start < len(body):
        size = rng.randint(1, max(1, len(body) // 3))
        pieces.append(body[start:start + size])
        start += size
    return pieces


def random_exchange(rng):
    """A well-formed request to a random endpoint of the site, with its check."""
    roll = rng.randrange(14)
    if roll == 0:
        return Exchange("GET", "/", containing(b"/hello-async"))
    if roll == 1:
        return Exchange("GET", "/hello", exactly(b"Hello, world!\n"))
    if roll == 2:
        return Exchange("GET", "/hello-async", exactly(b"Hello, world!\n"))
    if roll == 3:
        return Exchange("GET", "/products", containing(b"</html>"))
    if roll == 4:
        return Exchange("GET", "/api/products", api_products)
    if roll == 5:
        ms = rng.randint(0, 20)
        return Exchange("GET", f"/io?ms={ms}", exactly(f"slept {ms} ms\n".encode()))
    if roll == 6:
        ms = rng.randint(0, 20)
        return Exchange("GET", f"/io-async?ms={ms}", exactly(f"slept {ms} ms\n".encode()))
    if roll == 7:
        n = rng.randint(1, 3000)
        return Exchange("GET", f"/cpu?n={n}", exactly(f"n={n} result={cpu_result(n)}\n".encode()))
    if roll == 8:
        chunks = rng.randint(1, 20)
        return Exchange("GET", f"/stream?chunks={chunks}&delay_ms={rng.randint(0, 5)}",
                        exactly(stream_body(chunks)))
    if roll == 9:
        count = rng.randint(1, 10)
        return Exchange("GET", f"/events?count={count}&interval_ms={rng.randint(0, 5)}",
                        exactly(events_body(count)))
    if roll == 10:
        return Exchange("GET", "/inspect", inspect_report)
    if roll == 11:
        return Exchange("GET", "/io?ms=oops", containing(b"ms"), status=400)
    body = rng.randbytes(upload_size(rng))
    if rng.random() < 0.3:
        return Exchange("POST", "/echo", echo_of(body), chunked_pieces=random_pieces(rng, body))
    return Exchange("POST", "/echo", echo_of(body), body=body)


# ── The tally of one server's run ──────────────────────────────────────────────────────

class Tally:
    """Counts, safe to update from many client threads."""

    KEYS = ("sent", "correct", "wrong", "lost", "limited_503", "malformed_sent",
            "malformed_refused", "malformed_wrong", "faults", "websocket_sessions")

    def __init__(self):
        self.lock = threading.Lock()
        self.counts = collections.Counter()
        self.errors: list[str] = []

    def add(self, key, amount=1):
        with self.lock:
            self.counts[key] += amount

    def error(self, key, description):
        with self.lock:
            self.counts[key] += 1
            if len(self.errors) < MAX_ERRORS_KEPT:
                self.errors.append(f"{key}: {description}")

    def as_dict(self):
        operations = {key.removeprefix("operation "): value for key, value in self.counts.items()
                      if key.startswith("operation ")}
        return {**{key: self.counts[key] for key in self.KEYS}, "operations": operations}


# ── The operations of the mix: each takes a connection's worth of work ────────────────

class Context:
    def __init__(self, kind, address, tally, limit_kind):
        self.kind, self.address, self.tally = kind, address, tally
        self.limit_kind = limit_kind   # True when a burst may be answered 503


def run_exchange(ctx, client, exchange, close=False):
    """Send one request on `client`, read and check its answer; False if the connection ends."""
    ctx.tally.add("sent")
    try:
        client.send(exchange.raw(close))
        response = client.read_response(exchange.method)
        exchange.verify(response)
    except Lost as lost:
        ctx.tally.error("lost", f"{exchange.method} {exchange.target}: {lost}")
        return False
    except Wrong as wrong:
        ctx.tally.error("wrong", str(wrong))
        return False
    ctx.tally.add("correct")
    return not response.close


def op_session(ctx, rng):
    """A keep-alive connection carrying one to four requests."""
    exchanges = [random_exchange(rng) for _ in range(rng.randint(1, 4))]
    client = None
    try:
        for number, exchange in enumerate(exchanges):
            if client is None:
                try:
                    client = Client(ctx.address)
                except Lost as lost:
                    ctx.tally.add("sent")
                    ctx.tally.error("lost", f"{exchange.method} {exchange.target}: {lost}")
                    return
            last = number == len(exchanges) - 1
            if not run_exchange(ctx, client, exchange, close=last and rng.random() < 0.5):
                client.close()
                client = None
    finally:
        if client is not None:
            client.close()


def op_slow_reader(ctx, rng):
    """A client with a tiny receive window that reads a big answer a little at a time."""
    chunks = rng.randint(200, 600)
    exchange = rng.choice([
        Exchange("GET", "/products", containing(b"</html>")),
        Exchange("GET", f"/stream?chunks={chunks}&delay_ms=0", exactly(stream_body(chunks))),
        Exchange("GET", "/api/products", api_products),
    ])
    try:
        client = Client(ctx.address, receive_buffer=4096)
    except Lost as lost:
        ctx.tally.add("sent")
        ctx.tally.error("lost", f"slow reader: {lost}")
        return
    client.read_size, client.read_pause = 1024, 0.002
    try:
        run_exchange(ctx, client, exchange, close=True)
    finally:
        client.close()


def op_slow_head(ctx, rng):
    """A client that sends its request head in pieces over about a second."""
    exchange = random_exchange(rng)
    while exchange.method != "GET":
        exchange = random_exchange(rng)
    raw = exchange.raw(close=True)
    cuts = sorted(rng.sample(range(1, len(raw)), min(8, len(raw) - 1)))
    ctx.tally.add("sent")
    try:
        client = Client(ctx.address)
    except Lost as lost:
        ctx.tally.error("lost", f"slow head: {lost}")
        return
    try:
        start = 0
        for cut in cuts + [len(raw)]:
            client.send(raw[start:cut])
            start = cut
            time.sleep(0.12)
        exchange.verify(client.read_response())
        ctx.tally.add("correct")
    except Lost as lost:
        ctx.tally.error("lost", f"slow head {exchange.target}: {lost}")
    except Wrong as wrong:
        ctx.tally.error("wrong", f"slow head: {wrong}")
    finally:
        client.close()


def vanish(client, rng):
    client.close(reset=rng.random() < 0.5)


def op_vanish_mid_head(ctx, rng):
    raw = random_exchange(rng).raw()
    head_end = raw.index(b"\r\n\r\n") + 2
    ctx.tally.add("faults")
    with contextlib.suppress(Lost):
        client = Client(ctx.address)
        with contextlib.suppress(Lost):
            client.send(raw[:rng.randint(1, head_end)])
        vanish(client, rng)


def op_vanish_mid_body(ctx, rng):
    body = rng.randbytes(rng.randint(10_000, 500_000))
    raw = request_bytes("POST", "/echo", body=body)
    head_length = len(raw) - len(body)
    ctx.tally.add("faults")
    with contextlib.suppress(Lost):
        client = Client(ctx.address)
        with contextlib.suppress(Lost):
            client.send(raw[:head_length + rng.randint(0, len(body) - 1)])
        vanish(client, rng)


def op_vanish_mid_response(ctx, rng):
    target = rng.choice(["/stream?chunks=100&delay_ms=5", "/events?count=100&interval_ms=5",
                         "/products", "/io?ms=200", "/io-async?ms=200"])
    ctx.tally.add("faults")
    with contextlib.suppress(Lost, Wrong):
        client = Client(ctx.address)
        try:
            client.send(request_bytes("GET", target))
            if rng.random() < 0.5:
                client.read_head()
                client.read_size = rng.randint(1, 200)
                client._fill()
        finally:
            vanish(client, rng)


def op_malformed(ctx, rng):
    name, raw, status = rng.choice(INVALID)
    ctx.tally.add("malformed_sent")
    try:
        client = Client(ctx.address)
    except Lost as lost:
        ctx.tally.error("malformed_wrong", f"{name}: {lost}")
        return
    try:
        # The server may answer and close before taking every byte: a failed send is fine,
        # the answer is what counts.
        with contextlib.suppress(Lost):
            client.send(raw)
        got = client.read_head()[0]
        if got == status:
            ctx.tally.add("malformed_refused")
        else:
            ctx.tally.error("malformed_wrong", f"{name}: status {got}, expected {status}")
    except (Lost, Wrong) as problem:
        ctx.tally.error("malformed_wrong", f"{name}: {problem}")
    finally:
        client.close()


# WebSocket (RFC 6455), spoken with raw frames so that the harness needs no client library.
WS_KEY = "dGhlIHNhbXBsZSBub25jZQ=="   # RFC 6455 §1.3's example key; any 16 random bytes do
WS_HANDSHAKE = (
    "GET /ws/echo HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    f"Sec-WebSocket-Key: {WS_KEY}\r\nSec-WebSocket-Version: 13\r\nOrigin: http://127.0.0.1\r\n\r\n"
).encode()


def websocket_frame(opcode, payload, rng):
    # RFC 6455 §5.3: "The masking key is a 32-bit value chosen at random by the client."
    mask = rng.randbytes(4)
    length = len(payload)
    if length < 126:
        header = struct.pack("!BB", 0x80 | opcode, 0x80 | length)
    elif length < 65536:
        header = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, length)
    else:
        header = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, length)
    masked = bytes(byte ^ mask[index % 4] for index, byte in enumerate(payload))
    return header + mask + masked


def read_websocket_frame(client):
    first, second = client._take(2)
    length = second & 0x7F
    if second & 0x80:
        raise Wrong("the server masked a frame")
    if length == 126:
        length = struct.unpack("!H", client._take(2))[0]
    elif length == 127:
        length = struct.unpack("!Q", client._take(8))[0]
    return first & 0x0F, client._take(length)


def websocket_offered(address):
    """True when the server answers the /ws/echo upgrade with 101 Switching Protocols."""
    try:
        client = Client(address, timeout=30)
    except Lost:
        return False
    try:
        client.send(WS_HANDSHAKE)
        return client.read_head()[0] == 101
    except (Lost, Wrong):
        return False
    finally:
        client.close()


def op_websocket(ctx, rng):
    """A WebSocket session on /ws/echo: a few text messages echoed, then a clean close."""
    ctx.tally.add("websocket_sessions")
    messages = [f"soak {rng.random()} " * rng.randint(1, 50) for _ in range(rng.randint(1, 5))]
    ctx.tally.add("sent", len(messages) + 1)   # each message, and the closing handshake
    try:
        client = Client(ctx.address)
    except Lost as lost:
        ctx.tally.error("lost", f"websocket: {lost}")
        return
    correct = 0
    try:
        client.send(WS_HANDSHAKE)
        status = client.read_head()[0]
        if status != 101:
            raise Wrong(f"websocket handshake answered {status}")
        for message in messages:
            client.send(websocket_frame(0x1, message.encode(), rng))
            opcode, payload = read_websocket_frame(client)
            if (opcode, payload) != (0x1, message.encode()):
                raise Wrong(f"websocket echo {opcode} {payload[:60]!r}, sent {message[:60]!r}")
            correct += 1
        client.send(websocket_frame(0x8, struct.pack("!H", 1000), rng))
        opcode, _ = read_websocket_frame(client)
        if opcode != 0x8:
            raise Wrong(f"websocket close answered with opcode {opcode}")
        correct += 1
        ctx.tally.add("correct", correct)
    except Lost as lost:
        ctx.tally.add("correct", correct)
        ctx.tally.error("lost", f"websocket: {lost}")
        ctx.tally.add("lost", len(messages) - correct)
    except Wrong as wrong:
        ctx.tally.add("correct", correct)
        ctx.tally.error("wrong", str(wrong))
        ctx.tally.add("wrong", len(messages) - correct)
    finally:
        client.close()


FAULTS = {
    "vanish-mid-head": op_vanish_mid_head,
    "vanish-mid-body": op_vanish_mid_body,
    "vanish-mid-response": op_vanish_mid_response,
    "slow-reader": op_slow_reader,
    "slow-head": op_slow_head,
    "malformed": op_malformed,
}


def burst(ctx, size):
    """`size` connections at once, each holding a slow request: over any concurrency limit."""
    ms = 500
    target = f"/io-async?ms={ms}" if ctx.kind in ("asgi",) else f"/io?ms={ms}"
    expected = f"slept {ms} ms\n".encode()
    barrier = threading.Barrier(size)

    def one():
        ctx.tally.add("sent")
        try:
            client = Client(ctx.address)
        except Lost as lost:
            with contextlib.suppress(threading.BrokenBarrierError):
                barrier.wait(timeout=60)
            ctx.tally.error("lost", f"burst: {lost}")
            return
        try:
            with contextlib.suppress(threading.BrokenBarrierError):
                barrier.wait(timeout=60)
            client.send(request_bytes("GET", target, close=True))
            response = client.read_response()
            if response.status == 503 and ctx.limit_kind:
                ctx.tally.add("limited_503")
            elif response.status == 200 and response.body == expected:
                ctx.tally.add("correct")
            else:
                ctx.tally.error("wrong", f"burst: {response.status} {response.body[:80]!r}")
        except Lost as lost:
            ctx.tally.error("lost", f"burst: {lost}")
        except Wrong as wrong:
            ctx.tally.error("wrong", f"burst: {wrong}")
        finally:
            client.close()

    threads = [threading.Thread(target=one, daemon=True) for _ in range(size)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def make_plan(requests, seed, websocket):
    """The seeded list of operations: (name, seed), until `requests` well-formed requests."""
    rng = random.Random(seed)
    plan, expected_requests = [], 0
    fault_names = list(FAULTS)
    while expected_requests < requests:
        roll = rng.random()
        if roll < 0.15:
            name = rng.choice(fault_names)
            expected_requests += name in ("slow-reader", "slow-head")
        elif websocket and roll < 0.20:
            name = "websocket"
            expected_requests += 3
        else:
            name = "session"
            expected_requests += 2.5
        plan.append((name, rng.getrandbits(64)))
    # Every kind of fault at least once, however short the run.
    for name in fault_names:
        if all(name != planned for planned, _ in plan):
            plan.insert(rng.randrange(len(plan) + 1), (name, rng.getrandbits(64)))
    # Two bursts, at a third and at two thirds of the run.
    for fraction in (2 / 3, 1 / 3):
        plan.insert(int(len(plan) * fraction), ("burst", 0))
    return plan


OPERATIONS = {"session": op_session, "websocket": op_websocket, **FAULTS}


# ── Process metrics (psutil): the server and its children ─────────────────────────────

def process_metrics(pid, transient_children=False):
    """Resident memory, descriptors, threads and children of pid and its descendants.

    With transient_children (CGI: a child lives for one request) the memory is the
    server's own: a child caught in the middle of its request says nothing of a leak."""
    try:
        root = psutil.Process(pid)
        processes = [root] + root.children(recursive=True)
    except psutil.NoSuchProcess:
        return {"rss": 0, "fds": 0, "threads": 0, "children": 0}
    totals = {"rss": 0, "fds": 0, "threads": 0, "children": len(processes) - 1}
    for process in processes:
        with contextlib.suppress(psutil.NoSuchProcess, psutil.ZombieProcess):
            with process.oneshot():
                if process is root or not transient_children:
                    totals["rss"] += process.memory_info().rss
                totals["fds"] += process.num_fds()
                totals["threads"] += process.num_threads()
    return totals


def settled_metrics(pid, baseline=None, timeout=SETTLE_TIMEOUT):
    """Metrics once they stop moving (or, given a baseline, once back at or under it)."""
    deadline = time.monotonic() + timeout
    previous = process_metrics(pid)
    while True:
        time.sleep(0.5)
        current = process_metrics(pid)
        if baseline is None:
            done = all(current[key] == previous[key] for key in ("fds", "threads", "children"))
        else:
            done = all(current[key] <= baseline[key] for key in ("fds", "threads", "children"))
        if done or time.monotonic() > deadline:
            return current
        previous = current


# ── One server: warm-up, steady phase, return to baseline, shutdown under load ─────────

SERVER_FLAGS = {
    "wsgi": ["--graceful-timeout", str(GRACEFUL_TIMEOUT)],
    "gunicorn": ["--graceful-timeout", str(GRACEFUL_TIMEOUT)],
    "gunicorn-gthread": ["--graceful-timeout", str(GRACEFUL_TIMEOUT)],
    "gunicorn-uvicorn": ["--graceful-timeout", str(GRACEFUL_TIMEOUT)],
    "uvicorn": ["--timeout-graceful-shutdown", str(GRACEFUL_TIMEOUT)],
    "uvicorn-fast": ["--timeout-graceful-shutdown", str(GRACEFUL_TIMEOUT)],
}


def server_flags(kind, connections):
    """The flags a server runs with, and whether bursts over its limit may get 503."""
    if kind == "asgi":
        return ["--graceful-timeout", str(GRACEFUL_TIMEOUT),
                "--limit-concurrency", str(2 * connections)], True
    if kind == "cgi":
        return ["--graceful-timeout", str(GRACEFUL_TIMEOUT),
                "--max-children", "8", "--queue", str(connections)], True
    return SERVER_FLAGS.get(kind, []), False


def burst_size(kind, connections):
    if kind == "asgi":
        return 2 * connections + connections // 2   # half again above --limit-concurrency
    if kind == "cgi":
        return 8 + connections + connections // 2   # above --max-children + --queue
    return connections                              # more than any thread pool here


class Gate:
    """Lets the steady load run, or holds it while a burst has the server to itself."""

    def __init__(self):
        self.condition = threading.Condition()
        self.active = 0
        self.held = False

    @contextlib.contextmanager
    def passage(self):
        with self.condition:
            self.condition.wait_for(lambda: not self.held)
            self.active += 1
        try:
            yield
        finally:
            with self.condition:
                self.active -= 1
                self.condition.notify_all()

    @contextlib.contextmanager
    def alone(self):
        with self.condition:
            self.condition.wait_for(lambda: not self.held)
            self.held = True
            self.condition.wait_for(lambda: self.active == 0)
        try:
            yield
        finally:
            with self.condition:
                self.held = False
                self.condition.notify_all()


def warm_up(ctx, connections):
    """Every endpoint about once, then slow endpoints and 4xx answers from all connections
    at once, three times, so that thread pools (the event loop's default executor under
    ASGI, the servers' own) reach their size before the baseline is taken: a pool that
    grows later, up to its bound, is not a leak."""
    rng = random.Random(0)
    scratch = Context(ctx.kind, ctx.address, Tally(), ctx.limit_kind)
    for _ in range(10):
        op_session(scratch, rng)
    if scratch.tally.counts["correct"] == 0:
        raise RuntimeError(f"{ctx.kind}: no correct answer during warm-up: {scratch.tally.errors[:3]}")
    if ctx.kind == "cgi":
        return   # no pool to fill: every request is a new process
    slow = [Exchange("GET", "/stream?chunks=2&delay_ms=100", exactly(stream_body(2))),
            Exchange("GET", "/events?count=2&interval_ms=100", exactly(events_body(2))),
            Exchange("GET", "/io?ms=100", exactly(b"slept 100 ms\n")),
            Exchange("GET", "/io-async?ms=100", exactly(b"slept 100 ms\n")),
            Exchange("POST", "/echo", echo_of(b"warm"), body=b"warm"),
            # Django under ASGI logs a 4xx in a thread of the loop's default executor.
            Exchange("GET", "/io?ms=oops", containing(b"ms"), status=400),
            Exchange("GET", "/no-such-page", containing(b""), status=404)] * 3
    together = threading.Barrier(connections)

    def all_at_once():
        for exchange in slow:
            with contextlib.suppress(threading.BrokenBarrierError):
                together.wait(timeout=60)
            try:
                client = Client(ctx.address)
            except Lost:
                continue
            with contextlib.closing(client.sock):
                run_exchange(scratch, client, exchange, close=True)

    threads = [threading.Thread(target=all_at_once, daemon=True) for _ in range(connections)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def steady_phase(ctx, plan, connections, pid, progress):
    """Run the plan over `connections` client threads; sample memory at start, middle, end."""
    gate = Gate()
    lock = threading.Lock()
    position = 0
    done = 0
    transient = ctx.kind == "cgi"
    memory = {"start": process_metrics(pid, transient)["rss"]}

    def worker():
        nonlocal position, done
        while True:
            with lock:
                if position >= len(plan):
                    return
                name, seed = plan[position]
                position += 1
            rng = random.Random(seed)
            ctx.tally.add(f"operation {name}")
            if name == "burst":
                with gate.alone():
                    burst(ctx, burst_size(ctx.kind, connections))
            else:
                with gate.passage():
                    OPERATIONS[name](ctx, rng)
            with lock:
                done += 1
                if done == len(plan) // 2:
                    memory["middle"] = process_metrics(pid, transient)["rss"]
            progress.update(1)

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(connections)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    memory["end"] = process_metrics(pid, transient)["rss"]
    memory.setdefault("middle", memory["end"])
    return memory


# What is in flight when SIGTERM arrives: each a request and the exact answer body.
def shutdown_exchanges(count, rng):
    kinds = []
    for number in range(count):
        slot = number % 4
        if slot == 0:
            body = rng.randbytes(2 * 1024 * 1024)
            kinds.append(Exchange("POST", "/echo", echo_of(body), body=body))
        elif slot == 1:
            kinds.append(Exchange("GET", "/stream?chunks=20&delay_ms=100", exactly(stream_body(20))))
        elif slot == 2:
            kinds.append(Exchange("GET", "/io?ms=2000", exactly(b"slept 2000 ms\n")))
        else:
            kinds.append(Exchange("GET", "/events?count=10&interval_ms=200", exactly(events_body(10))))
    return kinds


def classify_cut(client, exchange):
    """After the connection ended early: 'cut' if what arrived is a clean prefix of the
    right answer (nothing, part of the head, or a body that is a prefix of the right one),
    else 'corrupt'."""
    raw = bytes(client.buffer)
    head_end = raw.find(b"\r\n\r\n")
    if head_end < 0:
        return "cut" if raw == b"HTTP/1.1 "[:len(raw)] or raw.startswith(b"HTTP/1.") else "corrupt"
    body = raw[head_end + 4:]
    expected = getattr(exchange.check, "exact", None)
    if expected is None:
        return "cut"   # a JSON answer cut short cannot be a wrong one that looks right
    if b"transfer-encoding: chunked" in raw[:head_end].lower():
        decoded, rest = bytearray(), body
        while (line_end := rest.find(b"\r\n")) >= 0:
            size = int(rest[:line_end].split(b";")[0] or b"0", 16)
            piece = rest[line_end + 2:line_end + 2 + size]
            decoded += piece
            if len(piece) < size or size == 0:
                break
            rest = rest[line_end + 4 + size:]
        body = bytes(decoded)
    return "cut" if expected.startswith(body) else "corrupt"


def shutdown_under_load(server, in_flight, seed):
    """SIGTERM with `in_flight` requests under way: completed, cut cleanly or corrupted."""
    address = (server.host, server.port)
    exchanges = shutdown_exchanges(in_flight, random.Random(seed))
    outcomes = collections.Counter()
    outcomes_lock = threading.Lock()
    started = threading.Barrier(in_flight + 1)
    problems = []

    def record(outcome):
        with outcomes_lock:
            outcomes[outcome] += 1

    def one(exchange):
        client = None
        try:
            client = Client(address, timeout=GRACEFUL_TIMEOUT + 30)
            raw = exchange.raw(close=True)
            if exchange.method == "POST":
                # The upload is still being sent when SIGTERM arrives.
                head_length = len(raw) - len(exchange.body)
                client.send(raw[:head_length + 65536])
                started.wait(timeout=60)
                for start in range(head_length + 65536, len(raw), 65536):
                    client.send(raw[start:start + 65536])
                    time.sleep(0.05)
            else:
                client.send(raw)
                started.wait(timeout=60)
            exchange.verify(client.read_response(exchange.method))
            record("completed")
        except Lost as lost:
            verdict = classify_cut(client, exchange) if client else "cut"
            record(verdict)
            if verdict == "corrupt":
                problems.append(f"{exchange.target}: corrupt after {lost}")
        except Wrong as wrong:
            record("corrupt")
            problems.append(str(wrong))
        except threading.BrokenBarrierError:
            record("not started")
            problems.append(f"{exchange.target}: not under way when SIGTERM was sent")
        finally:
            if client is not None:
                client.close()

    threads = [threading.Thread(target=one, args=(exchange,), daemon=True) for exchange in exchanges]
    for thread in threads:
        thread.start()
    with contextlib.suppress(threading.BrokenBarrierError):
        started.wait(timeout=60)
    accepted = wait_for_accepted(server.pid, server.port, in_flight)
    sent_at = time.monotonic()
    server.signal(signal.SIGTERM)
    bound = GRACEFUL_TIMEOUT + 10
    try:
        returncode = server.wait(timeout=bound)
        exit_seconds = time.monotonic() - sent_at
    except subprocess.TimeoutExpired:   # still running past the bound: the launcher kills it
        returncode, exit_seconds = None, None
    for thread in threads:
        thread.join(timeout=GRACEFUL_TIMEOUT + 40)
    try:
        os.killpg(server.pid, 0)
        group_left = True
    except ProcessLookupError:
        group_left = False
    return {
        "in_flight": in_flight,
        "accepted_at_sigterm": accepted,
        "completed": outcomes["completed"],
        "cut_cleanly": outcomes["cut"],
        "corrupt": outcomes["corrupt"],
        "not_started": outcomes["not started"],
        "exit_status": returncode,
        "exit_seconds": round(exit_seconds, 2) if exit_seconds is not None else None,
        "bound_seconds": bound,
        "group_left": group_left,
        "problems": problems[:MAX_ERRORS_KEPT],
    }


def wait_for_accepted(pid, port, wanted, timeout=10.0):
    """How many client connections the server (or its workers) holds, waiting up to `timeout`
    for `wanted` of them: requests still in the listen backlog are not in flight yet."""
    deadline = time.monotonic() + timeout
    while True:
        count = 0
        with contextlib.suppress(psutil.NoSuchProcess):
            root = psutil.Process(pid)
            for process in [root] + root.children(recursive=True):
                with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
                    count += sum(1 for connection in process.net_connections("tcp")
                                 if connection.laddr and connection.laddr.port == port
                                 and connection.status == psutil.CONN_ESTABLISHED)
        if count >= wanted or time.monotonic() > deadline:
            return count
        time.sleep(0.05)


def soak_app(kind):
    """The site with scripts.soak_apps' garbage-collection endpoint (None for CGI, whose
    server runs no Python application itself: its default script)."""
    if kind == "cgi":
        return None
    return f"scripts.soak_apps:{interface_of(kind)}_application"


def collect_garbage(ctx):
    """Ask the server to run a full garbage collection (scripts/soak_apps.py says why);
    the number of objects it freed, or None where there is no such endpoint (CGI)."""
    if ctx.kind == "cgi":
        return None
    client = Client(ctx.address, timeout=60)
    try:
        client.send(request_bytes("POST", COLLECT_PATH, close=True))
        response = client.read_response()
    finally:
        client.close()
    if response.status != 200:
        raise RuntimeError(f"{ctx.kind}: {COLLECT_PATH} answered {response.status}")
    return int(response.body.split()[1])


def soak_server(kind, *, requests, connections, in_flight, seed, progress_position=0):
    """The whole run against one server kind: its row of the result."""
    flags, limit_kind = server_flags(kind, connections)
    port = free_port()
    server = ServerProcess(server_command(kind, port=port, app=soak_app(kind), extra=flags),
                           port=port, ready_timeout=60)
    tally = Tally()
    with server:
        ctx = Context(kind, (server.host, server.port), tally, limit_kind)
        websocket = websocket_offered(ctx.address)
        warm_up(ctx, connections)
        collect_garbage(ctx)
        baseline = settled_metrics(server.pid)
        plan = make_plan(requests, seed, websocket)
        with tqdm(total=len(plan), desc=f"soak {kind}", unit="op", position=progress_position,
                  leave=False, file=sys.stderr) as progress:
            memory = steady_phase(ctx, plan, connections, server.pid, progress)
        settled_metrics(server.pid)   # the last connections closed, their requests ended
        collected = collect_garbage(ctx)
        after = settled_metrics(server.pid, baseline)
        shutdown = shutdown_under_load(server, in_flight, seed)
        output_tail = server.output()[-2000:]
    growth = (memory["end"] - memory["middle"]) / memory["middle"] if memory["middle"] else None
    return {
        "kind": kind,
        "flags": flags,
        "websocket": websocket,
        "requests_planned": requests,
        "connections": connections,
        **tally.as_dict(),
        "errors": tally.errors,
        "rss_start": memory["start"], "rss_middle": memory["middle"], "rss_end": memory["end"],
        "rss_growth_middle_to_end": round(growth, 4) if growth is not None else None,
        "baseline": baseline,
        "after": after,
        "collected_before_after": collected,
        "shutdown": shutdown,
        "server_output_tail": output_tail if (tally.errors or shutdown["problems"]) else "",
    }


# ── Goals, table, JSON ────────────────────────────────────────────────────────────────

GOAL_REQUESTS = 20_000


def goals(row):
    """(goal, measured, verdict) for one server's row: verdicts PASS, FAIL or SHORT (no
    failure, but fewer requests than the goal asks for)."""
    shutdown = row["shutdown"]
    base, after = row["baseline"], row["after"]
    bad = row["wrong"] + row["lost"]
    growth = row["rss_growth_middle_to_end"]
    limited = f" + {row['limited_503']:,} 503 in bursts over the limit" if row["limited_503"] else ""
    shutdown_ok = (shutdown["completed"] == shutdown["in_flight"] and shutdown["exit_status"] == 0
                   and not shutdown["group_left"])
    return [
        (f"{GOAL_REQUESTS:,} mixed requests, 0 wrong or lost",
         f"{row['sent']:,} sent: {row['correct']:,} correct{limited}, {row['wrong']} wrong, "
         f"{row['lost']} lost",
         "FAIL" if bad else ("PASS" if row["sent"] >= GOAL_REQUESTS else "SHORT")),
        ("every malformed request refused with its status",
         f"{row['malformed_refused']}/{row['malformed_sent']}",
         "PASS" if row["malformed_refused"] == row["malformed_sent"] else "FAIL"),
        ("memory growth middle->end < 10 %",
         f"{growth * 100:+.1f} %" if growth is not None else "n/a",
         "PASS" if growth is not None and growth < 0.10 else "FAIL"),
        ("descriptors back to baseline", f"{base['fds']} -> {after['fds']}",
         "PASS" if after["fds"] <= base["fds"] else "FAIL"),
        ("threads back to baseline", f"{base['threads']} -> {after['threads']}",
         "PASS" if after["threads"] <= base["threads"] else "FAIL"),
        ("child processes back to baseline (CGI: 0 left)", f"{base['children']} -> {after['children']}",
         "PASS" if after["children"] <= base["children"] else "FAIL"),
        (f"shutdown {shutdown['in_flight']}/{shutdown['in_flight']} in flight, exit 0, nothing left",
         f"{shutdown['accepted_at_sigterm']} accepted by SIGTERM; "
         f"{shutdown['completed']} completed, {shutdown['cut_cleanly']} cut cleanly, "
         f"{shutdown['corrupt']} corrupt, exit {shutdown['exit_status']} "
         f"in {shutdown['exit_seconds']} s (bound {shutdown['bound_seconds']} s), "
         f"group {'left' if shutdown['group_left'] else 'empty'}",
         "PASS" if shutdown_ok else "FAIL"),
    ]


def mib(value):
    return f"{value / 2**20:.1f}"


def table(rows):
    from scripts.bench import format_table
    header = ["server", "sent", "correct", "wrong", "lost", "503 burst", "corpus 4xx", "faults",
              "RSS start/mid/end MiB", "fds", "threads", "children", "shutdown", "exit"]
    body = []
    for row in rows:
        shutdown = row["shutdown"]
        body.append([
            row["kind"], row["sent"], row["correct"], row["wrong"], row["lost"], row["limited_503"],
            f"{row['malformed_refused']}/{row['malformed_sent']}", row["faults"],
            "/".join(mib(row[key]) for key in ("rss_start", "rss_middle", "rss_end")),
            f"{row['baseline']['fds']}->{row['after']['fds']}",
            f"{row['baseline']['threads']}->{row['after']['threads']}",
            f"{row['baseline']['children']}->{row['after']['children']}",
            f"{shutdown['completed']}/{shutdown['in_flight']}"
            + (f" ({shutdown['cut_cleanly']} cut)" if shutdown["cut_cleanly"] else ""),
            f"{shutdown['exit_status']} in {shutdown['exit_seconds']} s",
        ])
    return format_table(header, body)


def report(rows):
    lines = table(rows) + [""]
    for row in rows:
        websocket = ("WebSocket /ws/echo answered 101: echo sessions joined the mix"
                     if row["websocket"] else
                     "WebSocket /ws/echo not offered (no 101): left out of the mix")
        lines.append(f"{row['kind']}: {websocket}")
        scope = "goals" if row["kind"] in TOY_SERVERS else "goals (a reference, for comparison)"
        lines.append(f"  {scope}:")
        for goal, measured, verdict in goals(row):
            lines.append(f"    [{verdict:5}] {goal}: {measured}")
        for error in row["errors"][:5] + row["shutdown"]["problems"][:5]:
            lines.append(f"    ! {error}")
    return lines


def package_version(name):
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m scripts.soak",
        description="Soak and fault harness: a bounded mixed load with faults over every "
                    "endpoint of sample_site, then SIGTERM under load, per server. Prints a "
                    "table and issue 17's goals; writes a JSON result.")
    parser.add_argument("--servers", default="all",
                        help=f"comma-separated server kinds, 'toy' ({', '.join(TOY_SERVERS)}) or "
                             f"'all' ({', '.join(KINDS)}) (default all)")
    parser.add_argument("--requests", type=int, default=GOAL_REQUESTS,
                        help=f"well-formed requests per server in the steady phase "
                             f"(default {GOAL_REQUESTS}, the goal)")
    parser.add_argument("--connections", type=int, default=64,
                        help="client connections at once in the steady phase (default 64)")
    parser.add_argument("--in-flight", type=int, default=24,
                        help="requests under way when SIGTERM is sent (default 24)")
    parser.add_argument("--seed", type=int, default=17, help="seed of the plan (default 17)")
    parser.add_argument("--out", type=Path, default=REPO / "results" / "soak.json",
                        help="where to write the JSON result (default results/soak.json)")
    parser.add_argument("--report-from", type=Path, nargs="+", metavar="JSON",
                        help="print the table and goals of earlier runs' JSON results, run "
                             "nothing; several results (one server each, say) make one table")
    args = parser.parse_args(argv)
    if args.report_from:
        rows = []
        for path in args.report_from:
            try:
                rows += json.loads(path.read_text())["rows"]
            except (OSError, ValueError, KeyError, TypeError) as error:
                parser.error(f"cannot read a soak result from {path}: {error}")
        print("\n".join(report(rows)))
        return 0
    if args.servers == "all":
        kinds = list(KINDS)
    elif args.servers == "toy":
        kinds = list(TOY_SERVERS)
    else:
        kinds = [kind.strip() for kind in args.servers.split(",") if kind.strip()]
        unknown = [kind for kind in kinds if kind not in KINDS]
        if unknown:
            parser.error(f"unknown server kind {', '.join(unknown)}; choose from {', '.join(KINDS)}, toy, all")
    for name in ("requests", "connections", "in_flight"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")

    from scripts.bench import metadata
    meta = metadata({"requests": args.requests, "connections": args.connections,
                     "in_flight": args.in_flight, "seed": args.seed, "servers": kinds},
                    {}, None, None)
    meta["packages"].update({name: package_version(name) for name in
                             ("psutil", "daphne", "granian", "uvicorn-worker", "asgiref")})
    meta["command"] = "python -m scripts.soak " + " ".join(argv if argv is not None else sys.argv[1:])
    rows = []
    for kind in tqdm(kinds, desc="servers", unit="server", file=sys.stderr):
        rows.append(soak_server(kind, requests=args.requests, connections=args.connections,
                                in_flight=args.in_flight, seed=args.seed, progress_position=1))
    lines = report(rows)
    print("\n".join(lines))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"metadata": meta, "rows": rows, "report": lines}, indent=1))
    print(f"\nwritten: {args.out}")
    toy_failures = [row["kind"] for row in rows if row["kind"] in TOY_SERVERS
                    and any(verdict == "FAIL" for _, _, verdict in goals(row))]
    return 1 if toy_failures else 0


if __name__ == "__main__":
    sys.exit(main())
