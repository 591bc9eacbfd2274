"""An HTTP/1.1 and WebSocket load generator on asyncio and raw sockets.

What it does: holds N connections to one URL and sends the same pre-built request
over each, one at a time (a closed loop: a connection sends its next request as soon
as the previous response has been read), for a duration or a fixed number of
requests. With --new-connection every request opens its own connection, which
shows what connection set-up costs (and is how a CGI server is usually met).
It records each response's latency, status and size, counts errors by kind
(refused, reset, timeout, protocol, non-2xx) and prints the percentiles.

What it leaves out: pipelining, TLS, redirects, cookies, and reading the bodies
(it only counts their bytes). It uses uvloop when that is installed: the loader must
never be the thing that limits the server it measures.

    python -m scripts.loadgen http://127.0.0.1:8000/hello -c 32 -d 10
    python -m scripts.loadgen http://127.0.0.1:8000/echo -X POST --body-size 1000000 -n 200
    python -m scripts.loadgen --check-against-wrk
    python -m scripts.loadgen ws://127.0.0.1:8000/ws/echo -c 64 -d 10     # WebSocket echo round trips
    python -m scripts.loadgen ws://127.0.0.1:8000/ws/echo -c 5000 --hold 10   # 5,000 idle WebSockets

With a ws:// URL it is a WebSocket client instead (its own minimal RFC 6455 client side:
handshake, masked frames, a frame reader; no library in the hot path): each connection
sends a message to an echo endpoint, waits for it to come back, checks it byte for byte,
and sends the next; it reports round trips per second, their latency percentiles, errors
by kind, and its own CPU share (near 100 % means the loader set the pace).

As a library:

    from scripts.loadgen import run
    result = run("http://127.0.0.1:8000/hello", connections=32, duration=5)
    result.rps, result.percentile(99), result.errors
    ws = websocket_run("ws://127.0.0.1:8000/ws/echo", connections=64, duration=5)
    ws.rtps, ws.percentile(99), ws.errors, ws.loader_cpu_share
"""

import argparse
import array
import asyncio
import base64
import collections
import contextlib
import dataclasses
import errno
import hashlib
import json
import math
import os
import socket
import statistics
import struct
import sys
import time
import urllib.parse

from scripts.system import raise_open_files_limit

try:
    import uvloop
except ImportError:
    uvloop = None

MAX_HEAD = 64 * 1024
ERROR_KINDS = ("refused", "reset", "timeout", "protocol", "non-2xx")


class ProtocolError(Exception):
    """The server sent bytes that are not an HTTP/1.1 response."""


# --- the request, built once --------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Target:
    """Where to send, and the exact bytes of the request, built once for the whole run."""

    host: str
    port: int
    url: str
    method: str
    request: bytes

    @classmethod
    def build(cls, url, method="GET", body=b"", headers=(), close=False):
        parts = urllib.parse.urlsplit(url)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"only http://HOST[:PORT]/PATH URLs are supported, not {url!r}")
        port = parts.port or 80
        host_header = parts.netloc.rsplit("@", 1)[-1]
        target = parts.path or "/"
        if parts.query:
            target += "?" + parts.query
        lines = [f"{method} {target} HTTP/1.1", f"Host: {host_header}", "User-Agent: loadgen"]
        lines += list(headers)
        if body or method in ("POST", "PUT", "PATCH"):
            lines.append(f"Content-Length: {len(body)}")
        if close:
            lines.append("Connection: close")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        return cls(parts.hostname, port, url, method, head + body)


# --- the response parser ------------------------------------------------------------------

class ResponseParser:
    """Frames responses out of a byte stream, and reports each one's status and size.

    Only what framing needs is parsed (RFC 9112 §6.3, message body length): a response
    to HEAD, any 1xx, 204 and 304 has no body; then Transfer-Encoding: chunked; then
    Content-Length; otherwise the body runs until the server closes the connection.
    """

    def __init__(self, on_response, head_request=False, capture_server_timing=False):
        self._on_response = on_response
        self._head_request = head_request
        self._capture = capture_server_timing
        self._buffer = bytearray()
        self._state = self._read_head
        self._remaining = 0
        self._status = 0
        self._size = 0
        self._timing = None
        self.keep_alive = True

    def feed(self, data):
        """Consume bytes; call on_response(status, size, server_timing) for each complete response."""
        self._buffer += data
        # Each state returns True when it moved on, False when it needs more bytes.
        while self._state():
            pass

    def feed_eof(self):
        """The server closed. True if that ended a close-delimited body; otherwise a response was cut short."""
        if self._state != self._read_until_close:
            return False
        self._finish()
        return True

    def _read_head(self):
        buffer = self._buffer
        end = buffer.find(b"\r\n\r\n")
        if end < 0:
            if len(buffer) > MAX_HEAD:
                raise ProtocolError("response head larger than 64 KiB")
            return False
        if not buffer.startswith(b"HTTP/1.") or buffer[12:13] not in (b" ", b"\r"):
            raise ProtocolError(f"not an HTTP/1.x status line: {bytes(buffer[:40])!r}")
        try:
            status = int(buffer[9:12])
        except ValueError:
            raise ProtocolError(f"bad status code: {bytes(buffer[:40])!r}") from None
        head = bytes(buffer[:end + 2]).lower()
        del buffer[:end + 4]
        self._size += end + 4
        if 100 <= status < 200:
            # RFC 9110 §15.2: an interim response; the final one follows on the same connection.
            return True
        self._status = status
        if self._capture:
            self._timing = _header(head, b"server-timing")
        connection = _header(head, b"connection")
        self.keep_alive = not (connection and b"close" in connection) and head.startswith(b"http/1.1")
        if self._head_request or status in (204, 304):
            self._finish()
            return True
        transfer_encoding = _header(head, b"transfer-encoding")
        if transfer_encoding is not None:
            if not transfer_encoding.rstrip().endswith(b"chunked"):
                raise ProtocolError("Transfer-Encoding without chunked last")
            self._state = self._read_chunk_size
            return True
        content_length = _header(head, b"content-length")
        if content_length is not None:
            # RFC 9110 §8.6: a list of identical values may be taken as that one value.
            values = {value.strip() for value in content_length.split(b",")}
            try:
                if len(values) != 1:
                    raise ValueError
                self._remaining = int(values.pop())
            except ValueError:
                raise ProtocolError(f"bad Content-Length: {content_length!r}") from None
            self._state = self._read_fixed_body
            return True
        self.keep_alive = False
        self._state = self._read_until_close
        return True

    def _skip_remaining(self):
        """Count and drop up to self._remaining body bytes; True once all have arrived."""
        buffer = self._buffer
        if len(buffer) < self._remaining:
            self._remaining -= len(buffer)
            self._size += len(buffer)
            buffer.clear()
            return False
        del buffer[:self._remaining]
        self._size += self._remaining
        return True

    def _read_fixed_body(self):
        if not self._skip_remaining():
            return False
        self._finish()
        return True

    def _read_chunk_size(self):
        # RFC 9112 §7.1: chunk = chunk-size [ chunk-ext ] CRLF chunk-data CRLF
        buffer = self._buffer
        end = buffer.find(b"\r\n")
        if end < 0:
            if len(buffer) > 4096:
                raise ProtocolError("chunk size line too long")
            return False
        try:
            size = int(bytes(buffer[:end]).split(b";", 1)[0], 16)
        except ValueError:
            raise ProtocolError(f"bad chunk size line: {bytes(buffer[:end])!r}") from None
        del buffer[:end + 2]
        self._size += end + 2
        if size == 0:
            self._state = self._read_trailers
        else:
            self._remaining = size + 2
            self._state = self._read_chunk_data
        return True

    def _read_chunk_data(self):
        if not self._skip_remaining():
            return False
        self._state = self._read_chunk_size
        return True

    def _read_trailers(self):
        # RFC 9112 §7.1.2: trailer fields, then the empty line that ends the message.
        buffer = self._buffer
        end = 0 if buffer.startswith(b"\r\n") else buffer.find(b"\r\n\r\n")
        if end < 0:
            return False
        consumed = 2 if end == 0 else end + 4
        del buffer[:consumed]
        self._size += consumed
        self._finish()
        return True

    def _read_until_close(self):
        self._size += len(self._buffer)
        self._buffer.clear()
        return False

    def _finish(self):
        status, size, timing = self._status, self._size, self._timing
        self._state = self._read_head
        self._size = 0
        self._timing = None
        self._on_response(status, size, timing)


def _header(lowered_head, name):
    """The value of one header in a lower-cased head, or None (repeats joined with ',')."""
    values = []
    start = 0
    needle = b"\r\n" + name + b":"
    while (found := lowered_head.find(needle, start)) >= 0:
        end = lowered_head.find(b"\r\n", found + 2)
        values.append(lowered_head[found + len(needle):end].strip())
        start = end
    return b",".join(values) if values else None


def parse_server_timing(value):
    """'app;dur=1.2, total;dur=3' -> {'app': 1.2, 'total': 3.0} (milliseconds)."""
    phases = {}
    for metric in value.decode("latin-1").split(","):
        name, *params = [part.strip() for part in metric.split(";")]
        for param in params:
            key, _, number = param.partition("=")
            if key.strip() == "dur":
                phases[name] = float(number.strip().strip('"'))
    return phases


# --- the result -----------------------------------------------------------------------------

@dataclasses.dataclass(kw_only=True)
class Latencies:
    """What an HTTP run and a WebSocket run both measure: one latency per completed
    exchange (a response, an echoed message), the errors by kind, and percentiles."""

    duration: float = 0.0
    latencies: array.array = dataclasses.field(default_factory=lambda: array.array("d"))
    errors: collections.Counter = dataclasses.field(default_factory=collections.Counter)
    unfinished: int = 0
    _sorted: list = dataclasses.field(default=None, repr=False)

    @property
    def error_count(self):
        return sum(self.errors.values())

    def percentile(self, p):
        """Latency in seconds below which p percent of the exchanges came (nearest rank)."""
        if not self.latencies:
            return math.nan
        if self._sorted is None or len(self._sorted) != len(self.latencies):
            self._sorted = sorted(self.latencies)
        rank = max(1, math.ceil(p / 100 * len(self._sorted)))
        return self._sorted[rank - 1]

    def latency_figures(self):
        """p50, p90, p99, max and mean, in milliseconds, as a results row keeps them."""
        return {
            "p50_ms": _ms(self.percentile(50)),
            "p90_ms": _ms(self.percentile(90)),
            "p99_ms": _ms(self.percentile(99)),
            "max_ms": _ms(max(self.latencies, default=math.nan)),
            "mean_ms": _ms(sum(self.latencies) / len(self.latencies) if self.latencies else math.nan),
        }


@dataclasses.dataclass
class Result(Latencies):
    """What one run measured. latencies/statuses/sizes are parallel, one entry per response."""

    url: str
    method: str
    connections: int
    new_connection: bool
    statuses: array.array = dataclasses.field(default_factory=lambda: array.array("H"))
    sizes: array.array = dataclasses.field(default_factory=lambda: array.array("Q"))
    server_timings: list = dataclasses.field(default_factory=list)

    @property
    def requests(self):
        return len(self.latencies)

    @property
    def rps(self):
        return self.requests / self.duration if self.duration else 0.0

    @property
    def bytes_received(self):
        return sum(self.sizes)

    def status_counts(self):
        return dict(sorted(collections.Counter(self.statuses).items()))

    def summary_dict(self):
        """The figures a benchmark row keeps (latencies in milliseconds)."""
        return {
            "url": self.url,
            "method": self.method,
            "connections": self.connections,
            "new_connection": self.new_connection,
            "duration_s": round(self.duration, 4),
            "requests": self.requests,
            "rps": round(self.rps, 2),
            "bytes": self.bytes_received,
            **self.latency_figures(),
            "statuses": {str(k): v for k, v in self.status_counts().items()},
            "errors": {kind: self.errors.get(kind, 0) for kind in ERROR_KINDS},
            "unfinished": self.unfinished,
        }

    def summary(self):
        mode = "a new connection per request" if self.new_connection else "keep-alive"
        d = self.summary_dict()
        errors = ", ".join(f"{kind} {n:,}" for kind, n in d["errors"].items() if n) or "none"
        statuses = ", ".join(f"{status}: {n:,}" for status, n in d["statuses"].items()) or "-"
        return "\n".join([
            f"{self.method} {self.url}",
            f"  {self.connections} connections, {mode}, {self.duration:.2f} s",
            f"  requests     {self.requests:,}   {self.rps:,.1f} req/s   (status {statuses})",
            f"  latency      p50 {d['p50_ms']:.2f} ms   p90 {d['p90_ms']:.2f} ms   "
            f"p99 {d['p99_ms']:.2f} ms   max {d['max_ms']:.2f} ms",
            f"  received     {self.bytes_received / 1e6:,.2f} MB",
            f"  errors       {errors}" + (f"   ({self.unfinished} in flight at the end)" if self.unfinished else ""),
        ])


def _ms(seconds):
    return round(seconds * 1000, 3) if not math.isnan(seconds) else None


# --- the closed loop ------------------------------------------------------------------------

class _Connection:
    """One client connection on a raw non-blocking socket: send the request, read the
    response, record it, send again.

    No asyncio transport or task per connection: the event loop only tells us when the
    socket is readable (or writable, while a large body is still going out). When the
    connection ends (the server closed it, a request failed, or one request per connection
    was asked for), the next one is opened from the same callback, as wrk does: gunicorn's
    sync worker, for one, waits for the client to close before it accepts the next
    connection, so a loader slow to react would measure itself.
    """

    def __init__(self, run, sock, sent_at):
        self.run = run
        self.sock = sock
        self.fd = sock.fileno()
        self.parser = ResponseParser(self._response, run.target.method == "HEAD", run.capture_server_timing)
        self.sent_at = sent_at
        self.busy = False
        self.closed = False
        self.refused = False
        self.pending = b""
        run.open.add(self)
        run.loop.add_reader(self.fd, self._readable)

    def send(self, sent_at):
        """Send the request: usually all of it at once; the rest when the socket is writable."""
        self.busy = True
        self.sent_at = sent_at
        request = self.run.target.request
        try:
            sent = self.sock.send(request)
        except (BlockingIOError, InterruptedError):
            sent = 0  # still connecting (not loopback), or the send buffer is full
        except OSError as error:
            self._fail(_error_kind(error))
            return
        if sent < len(request):
            self.pending = memoryview(request)[sent:]
            self.run.loop.add_writer(self.fd, self._writable)

    def _writable(self):
        try:
            sent = self.sock.send(self.pending)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as error:
            self._fail(_error_kind(error))
            return
        self.pending = self.pending[sent:]
        if not len(self.pending):
            self.run.loop.remove_writer(self.fd)

    def _readable(self):
        try:
            data = self.sock.recv(262144)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as error:
            self._fail(_error_kind(error))
            return
        if not data:
            # The server closed: the end of a close-delimited body, or a request cut short.
            if self.busy and not self.parser.feed_eof():
                self._fail("reset")
            else:
                self._end()
            return
        try:
            self.parser.feed(data)
        except ProtocolError:
            self._fail("protocol")

    def _response(self, status, size, timing):
        run = self.run
        self.busy = False
        now = time.perf_counter()
        run.record(now - self.sent_at, status, size, timing)
        if run.new_connection or not self.parser.keep_alive or not run.take_ticket():
            self._end()
        else:
            self.send(now)

    def _fail(self, kind):
        if self.busy:
            self.busy = False
            self.run.errors[kind] += 1
        self.refused = kind == "refused"
        self._end(abort=True)

    def _end(self, abort=False):
        """Close and open this slot's next connection.

        abort: close with a reset (as wrk does for a timeout), and open the next connection
        from the event loop rather than from here, so that failures in a row (a server
        refusing every connection) cannot recurse; after a refusal, 10 ms later.
        """
        if self.closed:
            return
        self.closed = True
        if not abort:
            # The FIN first: a server that lingers for it (gunicorn's sync worker) goes on at once.
            with contextlib.suppress(OSError):
                self.sock.shutdown(socket.SHUT_WR)
        loop = self.run.loop
        loop.remove_reader(self.fd)
        if len(self.pending):
            loop.remove_writer(self.fd)
        if abort:
            # SO_LINGER with a zero timeout: close() sends RST at once.
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.sock.close()
        run = self.run
        run.open.discard(self)
        if not abort:
            run.open_connection()
        elif run.stopping:
            run.open_connection()  # ends the slot
        else:
            run.loop.call_later(0.01 if self.refused else 0, run.open_connection)


class _Run:
    """The state shared by all connections of one run.

    A slot is one of the N concurrent clients. Each slot opens its next connection when
    the last one ends, until the tickets run out (--requests) or the duration is over;
    the run is done when every slot has stopped.
    """

    def __init__(self, target, connections, requests, timeout, new_connection, capture_server_timing, result):
        self.loop = asyncio.get_running_loop()
        self.target = target
        self.family, _, _, _, self.address = socket.getaddrinfo(
            target.host, target.port, type=socket.SOCK_STREAM)[0]
        self.tickets = requests
        self.timeout = timeout
        self.new_connection = new_connection
        self.capture_server_timing = capture_server_timing
        self.result = result
        self.errors = result.errors
        self.open = set()
        self.stopping = False
        self.slots = connections
        self.done = self.loop.create_future()
        self._latencies = result.latencies
        self._statuses = result.statuses
        self._sizes = result.sizes

    def take_ticket(self):
        """May one more request be sent? (In --requests mode each request, failed or not, takes one.)"""
        if self.stopping:
            return False
        if self.tickets is None:
            return True
        if self.tickets <= 0:
            return False
        self.tickets -= 1
        return True

    def record(self, latency, status, size, timing):
        self._latencies.append(latency)
        self._statuses.append(status)
        self._sizes.append(size)
        if not 200 <= status < 300:
            self.errors["non-2xx"] += 1
        if self.capture_server_timing:
            self.result.server_timings.append(parse_server_timing(timing) if timing else {})

    def open_connection(self):
        """Open this slot's next connection and send its request, or stop the slot."""
        if not self.take_ticket():
            self.slots -= 1
            if self.slots == 0 and not self.done.done():
                self.done.set_result(None)
            return
        started = time.perf_counter()
        sock = socket.socket(self.family, socket.SOCK_STREAM)
        sock.setblocking(False)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        # On loopback the handshake completes inside connect(), which still answers
        # EINPROGRESS on a non-blocking socket; the request can be sent straight away.
        error = sock.connect_ex(self.address)
        if error not in (0, errno.EINPROGRESS):
            sock.close()
            self.errors[_error_kind(OSError(error, os.strerror(error)))] += 1
            # Nothing is listening: wait a moment rather than spin on the refusal.
            self.loop.call_later(0.01, self.open_connection)
            return
        connection = _Connection(self, sock, started)
        connection.send(started if self.new_connection else time.perf_counter())

    async def watch_timeouts(self):
        """Abort any connection whose response (or connection set-up) is later than the timeout."""
        interval = min(0.25, self.timeout / 4)
        while True:
            await asyncio.sleep(interval)
            now = time.perf_counter()
            for connection in list(self.open):
                if connection.busy and now - connection.sent_at > self.timeout:
                    connection._fail("timeout")

    def stop(self):
        """The duration is over: what is still in flight is abandoned (and counted as unfinished)."""
        self.stopping = True
        self.result.unfinished = sum(1 for connection in self.open if connection.busy)
        for connection in list(self.open):
            connection.busy = False
            connection._end(abort=True)


def _error_kind(error):
    """refused (nothing listens), timeout (the kernel gave up), or reset (anything else)."""
    if error.errno == errno.ECONNREFUSED:
        return "refused"
    if error.errno == errno.ETIMEDOUT:
        return "timeout"
    return "reset"


async def run_async(url, *, connections=1, duration=None, requests=None, method="GET", body=b"",
                    headers=(), new_connection=False, timeout=10.0, warmup=0.0,
                    capture_server_timing=False):
    """Run the closed loop in the current event loop; see run()."""
    if (duration is None) == (requests is None):
        raise ValueError("give exactly one of duration and requests")
    target = Target.build(url, method, body, headers, close=new_connection)
    if warmup:
        await run_async(url, connections=connections, duration=warmup, method=method, body=body,
                        headers=headers, new_connection=new_connection, timeout=timeout)
    result = Result(url, method, connections, new_connection)
    run = _Run(target, connections, requests, timeout, new_connection, capture_server_timing, result)
    watcher = asyncio.ensure_future(run.watch_timeouts())
    started = time.perf_counter()
    try:
        for _ in range(connections):
            run.open_connection()
        if duration is None:
            await run.done
            result.duration = time.perf_counter() - started
        else:
            # Like wrk: what finished within the duration counts; what is still in flight does not.
            await asyncio.wait([run.done], timeout=duration)
            result.duration = duration
            if not run.done.done():
                run.stop()
                await run.done
    finally:
        watcher.cancel()
        run.stopping = True
        for connection in list(run.open):
            connection._end(abort=True)
    return result


def run(url, **options):
    """Run one load test and return its Result. Options as run_async:

    connections (1), duration (seconds) or requests (a count), method ("GET"), body (bytes),
    headers (["Name: value", ...]), new_connection (False), timeout (10 s per request),
    warmup (seconds of the same load, not recorded), capture_server_timing (False).
    """
    with asyncio.Runner(loop_factory=uvloop.new_event_loop if uvloop else None) as runner:
        return runner.run(run_async(url, **options))


# --- long-lived streams (server-sent events) -------------------------------------------------

@dataclasses.dataclass
class StreamHold:
    """How many of the requested streams the server answered and kept open."""

    requested: int
    held: int
    failed: int
    seconds_to_open: float
    probe: object = None


async def hold_streams_async(url, count, *, timeout=10.0, probe=None, hold=0.0):
    """Open `count` streams to url and wait until each has sent its head and first body bytes.

    Then call probe() (for instance: read the server's memory) while they are all open,
    keep them `hold` seconds more, and close them. A stream counts as held when its first
    bytes came within `timeout`.
    """
    target = Target.build(url)
    started = time.perf_counter()

    async def open_one():
        reader, writer = await asyncio.open_connection(target.host, target.port, limit=MAX_HEAD)
        writer.write(target.request)
        head = await reader.readuntil(b"\r\n\r\n")
        if not head.startswith(b"HTTP/1.1 200"):
            writer.close()
            raise ProtocolError(head.split(b"\r\n", 1)[0].decode("latin-1"))
        await reader.read(1)
        return writer

    tasks = [asyncio.ensure_future(open_one()) for _ in range(count)]
    done, pending = await asyncio.wait(tasks, timeout=timeout)
    for task in pending:
        task.cancel()
    writers = [task.result() for task in done if not task.exception()]
    hold_result = StreamHold(count, len(writers), count - len(writers), time.perf_counter() - started)
    try:
        if probe is not None:
            hold_result.probe = probe()
        if hold:
            await asyncio.sleep(hold)
    finally:
        for writer in writers:
            writer.transport.abort()
        await asyncio.gather(*pending, return_exceptions=True)
    return hold_result


def hold_streams(url, count, **options):
    with asyncio.Runner(loop_factory=uvloop.new_event_loop if uvloop else None) as runner:
        return runner.run(hold_streams_async(url, count, **options))


# --- WebSocket echo round trips ---------------------------------------------------------------
#
# The WebSocket mode holds N connections to an echo endpoint; each sends a message, waits
# for it to come back, checks it byte for byte, and sends the next (a closed loop again,
# with round trips where the HTTP mode has requests). Its client side of RFC 6455 is the
# minimum a load generator needs and is written here, so that no library sits in the hot
# path: the opening handshake, masked client frames, and a reader for the server's frames.

WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
WS_ERROR_KINDS = ("refused", "reset", "timeout", "handshake", "protocol", "closed", "mismatch")
OP_CONTINUATION, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA
# How many handshakes may be in progress at once: thousands at the same instant would
# overflow the server's listen backlog, and a dropped SYN is retried only a second later.
WS_HANDSHAKES_AT_ONCE = 128


class HandshakeError(Exception):
    """The server did not switch to WebSocket (not 101, or a wrong Sec-WebSocket-Accept)."""


def ws_accept(key):
    """The Sec-WebSocket-Accept value that proves a server read our Sec-WebSocket-Key."""
    return base64.b64encode(hashlib.sha1(key + WS_GUID).digest())


def mask(payload, key):
    """RFC 6455 §5.3: each octet XORed with octet i modulo 4 of the masking key. One big-integer
    XOR instead of a Python loop over the bytes."""
    size = len(payload)
    if not size:
        return b""
    repeated = (key * (size // 4 + 1))[:size]
    return (int.from_bytes(payload, "big") ^ int.from_bytes(repeated, "big")).to_bytes(size, "big")


def client_frame(opcode, payload):
    """One final (FIN) frame from the client, masked.

    RFC 6455 §5.1: "a client MUST mask all frames that it sends to the server". §5.3: "The
    masking key is a 32-bit value chosen at random by the client.  When preparing a masked
    frame, the client MUST pick a fresh masking key from the set of allowed 32-bit values."
    """
    key = os.urandom(4)
    size = len(payload)
    if size < 126:
        head = struct.pack("!BB", 0x80 | opcode, 0x80 | size)
    elif size < 65536:
        head = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, size)
    else:
        head = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, size)
    return head + key + mask(payload, key)


class FrameReader:
    """Frames and messages out of the server's byte stream.

    feed(data) returns the events it completed: ("message", opcode, payload) for a whole
    text or binary message (fragments joined), ("ping", payload) and ("close", code). A
    frame a server may not send raises ProtocolError.
    """

    def __init__(self):
        self._buffer = bytearray()
        self._fragments = None     # (opcode, [payloads]) while a fragmented message arrives

    def feed(self, data):
        # The usual case, taken without copying: exactly one whole unfragmented text or binary
        # frame under 126 bytes (first byte FIN and the opcode, second the length, mask bit clear).
        if (not self._buffer and self._fragments is None and len(data) >= 2 and data[0] in (0x81, 0x82)
                and data[1] < 126 and len(data) == data[1] + 2):
            return [("message", data[0] & 0x0F, data[2:])]
        buffer = self._buffer
        buffer += data
        events = []
        while len(buffer) >= 2:
            first, second = buffer[0], buffer[1]
            if second & 0x80:
                # RFC 6455 §5.1: "A server MUST NOT mask any frames that it sends to the client.
                # A client MUST close a connection if it detects a masked frame."
                raise ProtocolError("the server sent a masked frame")
            if first & 0x70:
                raise ProtocolError("RSV bits set, and no extension was negotiated")
            size, offset = second & 0x7F, 2
            if size == 126:
                if len(buffer) < 4:
                    break
                size, offset = int.from_bytes(buffer[2:4], "big"), 4
            elif size == 127:
                if len(buffer) < 10:
                    break
                size, offset = int.from_bytes(buffer[2:10], "big"), 10
            if len(buffer) < offset + size:
                break
            payload = bytes(buffer[offset:offset + size])
            del buffer[:offset + size]
            events.extend(self._frame(first & 0x80, first & 0x0F, payload))
        return events

    def _frame(self, fin, opcode, payload):
        if opcode >= OP_CLOSE:
            if not fin or len(payload) > 125:
                raise ProtocolError("a control frame fragmented or longer than 125 bytes")
            if opcode == OP_PING:
                return [("ping", payload)]
            if opcode == OP_PONG:
                return []
            if opcode == OP_CLOSE:
                return [("close", int.from_bytes(payload[:2], "big") if len(payload) >= 2 else 1005)]
            raise ProtocolError(f"unknown control opcode {opcode:#x}")
        if opcode == OP_CONTINUATION:
            if self._fragments is None:
                raise ProtocolError("a continuation frame with no message to continue")
            self._fragments[1].append(payload)
        elif opcode in (OP_TEXT, OP_BINARY):
            if self._fragments is not None:
                raise ProtocolError("a new message inside a fragmented one")
            if fin:
                return [("message", opcode, payload)]
            self._fragments = (opcode, [payload])
        else:
            raise ProtocolError(f"unknown data opcode {opcode:#x}")
        if not fin:
            return []
        opcode, pieces = self._fragments
        self._fragments = None
        return [("message", opcode, b"".join(pieces))]


@dataclasses.dataclass(frozen=True)
class WebSocketTarget:
    """Where to connect, and the opening handshake (all but its key, which is new per connection)."""

    host: str
    port: int
    url: str
    head_template: str

    @classmethod
    def build(cls, url, origin=None):
        parts = urllib.parse.urlsplit(url)
        if parts.scheme != "ws" or not parts.hostname:
            raise ValueError(f"only ws://HOST[:PORT]/PATH URLs are supported, not {url!r}")
        host_header = parts.netloc.rsplit("@", 1)[-1]
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        # Django Channels' AllowedHostsOriginValidator refuses a handshake without an
        # Origin that names an allowed host: say we come from the server's own origin.
        origin = origin or f"http://{host_header}"
        lines = [f"GET {target} HTTP/1.1", f"Host: {host_header}", "Upgrade: websocket",
                 "Connection: Upgrade", "Sec-WebSocket-Key: {key}", "Sec-WebSocket-Version: 13",
                 f"Origin: {origin}", "User-Agent: loadgen"]
        return cls(parts.hostname, parts.port or 80, url, "\r\n".join(lines) + "\r\n\r\n")

    def handshake(self, key):
        return self.head_template.replace("{key}", key.decode("ascii")).encode("latin-1")


@dataclasses.dataclass
class WebSocketResult(Latencies):
    """What one WebSocket run measured: one latency per verified round trip."""

    url: str
    connections: int
    message_size: int
    binary: bool
    error_samples: dict = dataclasses.field(default_factory=dict)
    handshakes: int = 0
    loader_cpu_s: float = 0.0

    @property
    def round_trips(self):
        return len(self.latencies)

    @property
    def rtps(self):
        return self.round_trips / self.duration if self.duration else 0.0

    @property
    def loader_cpu_share(self):
        """The loader's CPU time over the run's duration: near 1.0, the loader is what limits the rate."""
        return self.loader_cpu_s / self.duration if self.duration else 0.0

    def summary_dict(self):
        return {
            "url": self.url,
            "connections": self.connections,
            "message_size": self.message_size,
            "binary": self.binary,
            "duration_s": round(self.duration, 4),
            "round_trips": self.round_trips,
            "rtps": round(self.rtps, 2),
            **self.latency_figures(),
            "handshakes": self.handshakes,
            "errors": {kind: self.errors.get(kind, 0) for kind in WS_ERROR_KINDS},
            "error_samples": dict(self.error_samples),
            "unfinished": self.unfinished,
            "loader_cpu_share": round(self.loader_cpu_share, 3),
        }

    def summary(self):
        d = self.summary_dict()
        errors = ", ".join(f"{kind} {n:,}" for kind, n in d["errors"].items() if n) or "none"
        kind = "binary" if self.binary else "text"
        lines = [
            f"WebSocket echo {self.url}",
            f"  {self.connections} connections, {self.message_size}-byte {kind} messages, {self.duration:.2f} s",
            f"  round trips  {self.round_trips:,}   {self.rtps:,.1f} per second   "
            f"({self.handshakes:,} handshakes)",
            f"  latency      p50 {d['p50_ms'] or math.nan:.2f} ms   p90 {d['p90_ms'] or math.nan:.2f} ms   "
            f"p99 {d['p99_ms'] or math.nan:.2f} ms   max {d['max_ms'] or math.nan:.2f} ms",
            f"  errors       {errors}" + (f"   ({self.unfinished} in flight at the end)" if self.unfinished else ""),
            f"  loader CPU   {self.loader_cpu_share:.0%} of one core (near 100%: the loader, not the server, "
            f"set the rate)",
        ]
        lines += [f"  first {kind}: {message}" for kind, message in self.error_samples.items()]
        return "\n".join(lines)


class _WebSocketConnection:
    """One open WebSocket on a raw non-blocking socket; the event loop calls back when it is readable.

    In echo mode it sends its next message as soon as the last one came back (while the run
    has tickets left); in hold mode it stays idle after the first and only answers pings.
    """

    def __init__(self, run, sock, leftover):
        self.run = run
        self.sock = sock
        self.fd = sock.fileno()
        self.reader = FrameReader()
        self.ended = run.loop.create_future()
        self.expected = b""
        self.sent_at = 0.0
        self.busy = False
        self.verified = False      # one echo came back exactly as sent
        self.closed = False
        self.pending = b""
        self.sequence = 0
        self.number = run.next_number()
        run.open.add(self)
        run.loop.add_reader(self.fd, self._readable)
        if leftover:
            self._received(leftover)

    def send_message(self):
        self.sequence += 1
        payload = self.run.payload(self.number, self.sequence)
        self.expected = payload
        self.busy = True
        self.sent_at = time.perf_counter()
        self._write(client_frame(self.run.opcode, payload))

    def _write(self, data):
        if len(self.pending):
            self.pending = bytes(self.pending) + data
            return
        try:
            sent = self.sock.send(data)
        except (BlockingIOError, InterruptedError):
            sent = 0
        except OSError as error:
            self.fail(_error_kind(error), str(error))
            return
        if sent < len(data):
            self.pending = memoryview(data)[sent:]
            self.run.loop.add_writer(self.fd, self._writable)

    def _writable(self):
        try:
            sent = self.sock.send(self.pending)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as error:
            self.fail(_error_kind(error), str(error))
            return
        self.pending = self.pending[sent:]
        if not len(self.pending):
            self.run.loop.remove_writer(self.fd)

    def _readable(self):
        try:
            data = self.sock.recv(262144)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as error:
            self.fail(_error_kind(error), str(error))
            return
        if not data:
            self.fail("closed", "the server closed the connection without a close frame")
            return
        self._received(data)

    def _received(self, data):
        try:
            events = self.reader.feed(data)
        except ProtocolError as error:
            self.fail("protocol", str(error))
            return
        for event in events:
            if self.closed:
                return
            if event[0] == "message":
                self._echo(event[2])
            elif event[0] == "ping":
                # RFC 6455 §5.5.2: "Upon receipt of a Ping frame, an endpoint MUST send a Pong
                # frame in response, unless it already received a Close frame." §5.5.3: "A Pong
                # frame sent in response to a Ping frame must have identical "Application data"
                # as found in the message body of the Ping frame being replied to."
                self._write(client_frame(OP_PONG, event[1]))
            else:
                self.fail("closed", f"the server closed the WebSocket with code {event[1]}")

    def _echo(self, payload):
        run = self.run
        if not self.busy or payload != self.expected:
            self.busy = False
            run.errors["mismatch"] += 1
            run.samples.setdefault("mismatch", f"sent {bytes(self.expected[:40])!r}, got {payload[:40]!r}")
        else:
            self.busy = False
            self.verified = True
            run.latencies.append(time.perf_counter() - self.sent_at)
        if run.hold:
            return
        if run.take_ticket():
            self.send_message()
        else:
            self.end()

    def fail(self, kind, message):
        """Count the error (unless the run is over) and end this connection with a reset."""
        if not self.closed and not self.run.stopping:
            self.run.errors[kind] += 1
            self.run.samples.setdefault(kind, message)
        self.end(abort=True)

    def end(self, abort=False):
        """Close: with a close frame (1000, normal closure) and a FIN, or with a reset (abort)."""
        if self.closed:
            return
        self.closed = True
        self.busy = False
        loop = self.run.loop
        loop.remove_reader(self.fd)
        if len(self.pending):
            loop.remove_writer(self.fd)
        if abort:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        else:
            with contextlib.suppress(OSError):
                self.sock.send(client_frame(OP_CLOSE, (1000).to_bytes(2, "big")))
                self.sock.shutdown(socket.SHUT_WR)
        self.sock.close()
        self.run.open.discard(self)
        if not self.ended.done():
            self.ended.set_result(None)


class _WebSocketRun:
    """What the connections of one WebSocket run share: the target, the message, the counts."""

    def __init__(self, target, result, *, message_size, binary, timeout, round_trips=None, hold=False):
        self.loop = asyncio.get_running_loop()
        self.target = target
        self.result = result
        self.family, _, _, _, self.address = socket.getaddrinfo(
            target.host, target.port, type=socket.SOCK_STREAM)[0]
        self.opcode = OP_BINARY if binary else OP_TEXT
        self.message_size = message_size
        self.filler = b"x" * message_size
        self.timeout = timeout
        self.tickets = round_trips
        self.hold = hold
        self.latencies = result.latencies
        self.errors = result.errors
        self.samples = result.error_samples
        self.open = set()
        self.stopping = False
        self.numbers = 0
        self.handshake_slots = asyncio.Semaphore(WS_HANDSHAKES_AT_ONCE)

    def next_number(self):
        self.numbers += 1
        return self.numbers

    def payload(self, number, sequence):
        """A message unique to its connection and round trip (so a stale or crossed echo is caught),
        padded to message_size with ASCII, which is valid UTF-8 for text messages too."""
        label = b"%d:%d:" % (number, sequence)
        return (label + self.filler)[:max(self.message_size, len(label))]

    def take_ticket(self):
        if self.stopping:
            return False
        if self.tickets is None:
            return True
        if self.tickets <= 0:
            return False
        self.tickets -= 1
        return True

    async def connect(self):
        """Open one connection and complete the opening handshake; returns the connection or raises."""
        sock = socket.socket(self.family, socket.SOCK_STREAM)
        sock.setblocking(False)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            async with self.handshake_slots, asyncio.timeout(self.timeout):
                await self.loop.sock_connect(sock, self.address)
                # RFC 6455 §4.1: "The value of this header field MUST be a nonce consisting of a
                # randomly selected 16-byte value that has been base64-encoded ...  The nonce
                # MUST be selected randomly for each connection."
                key = base64.b64encode(os.urandom(16))
                await self.loop.sock_sendall(sock, self.target.handshake(key))
                response = b""
                while (end := response.find(b"\r\n\r\n")) < 0:
                    data = await self.loop.sock_recv(sock, 65536)
                    if not data:
                        raise HandshakeError("the server closed the connection during the handshake")
                    response += data
                    if len(response) > MAX_HEAD:
                        raise HandshakeError("response head larger than 64 KiB")
            check_handshake(response[:end], key)
        except BaseException:
            sock.close()
            raise
        self.result.handshakes += 1
        return _WebSocketConnection(self, sock, response[end + 4:])

    async def slot(self, until_connected=None):
        """One of the N clients: connect, run round trips until the connection ends, reconnect;
        until the tickets run out or the run stops. In hold mode: connect once, one round trip."""
        while not self.stopping:
            if self.tickets is not None and self.tickets <= 0:
                return
            try:
                connection = await self.connect()
            except (HandshakeError, OSError, TimeoutError) as error:
                kind = ("handshake" if isinstance(error, HandshakeError) else
                        "timeout" if isinstance(error, TimeoutError) else _error_kind(error))
                if not self.stopping:
                    self.errors[kind] += 1
                    self.samples.setdefault(kind, str(error) or type(error).__name__)
                if self.hold:
                    return
                if self.tickets is not None:
                    self.tickets -= 1
                await asyncio.sleep(0.01)
                continue
            if self.hold or self.take_ticket():
                connection.send_message()
            else:
                connection.end()
            await connection.ended
            if self.hold:
                return

    async def watch_timeouts(self):
        """Abort any connection whose echo is later than the timeout."""
        interval = min(0.25, self.timeout / 4)
        while True:
            await asyncio.sleep(interval)
            now = time.perf_counter()
            for connection in list(self.open):
                if connection.busy and now - connection.sent_at > self.timeout:
                    connection.fail("timeout", f"no echo within {self.timeout} s")


def check_handshake(head, key):
    """RFC 6455 §4.1: the client's checks of the server's opening handshake.

    "If the response lacks a |Sec-WebSocket-Accept| header field or the |Sec-WebSocket-Accept|
    contains a value other than the base64-encoded SHA-1 of the concatenation of the
    |Sec-WebSocket-Key| (as a string, not base64-decoded) with the string
    "258EAFA5-E914-47DA-95CA-C5AB0DC85B11" but ignoring any leading and trailing whitespace,
    the client MUST _Fail the WebSocket Connection_."
    """
    status_line, _, _ = head.partition(b"\r\n")
    parts = status_line.split(b" ", 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/1."):
        raise HandshakeError(f"not an HTTP response: {status_line[:60]!r}")
    if parts[1] != b"101":
        raise HandshakeError(f"the server answered {status_line.decode('latin-1')} instead of 101")
    headers = {}
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        headers[name.strip().lower()] = value.strip()
    if headers.get(b"upgrade", b"").lower() != b"websocket":
        raise HandshakeError("101 without Upgrade: websocket")
    if b"upgrade" not in {token.strip() for token in headers.get(b"connection", b"").lower().split(b",")}:
        raise HandshakeError("101 without Connection: Upgrade")
    accept = headers.get(b"sec-websocket-accept")
    if accept != ws_accept(key):
        raise HandshakeError(f"Sec-WebSocket-Accept is {accept!r}, not {ws_accept(key)!r}")


async def websocket_run_async(url, *, connections=1, duration=None, round_trips=None, message_size=64,
                              binary=False, timeout=10.0, warmup=0.0, origin=None):
    """The echo closed loop in the current event loop; see websocket_run()."""
    if (duration is None) == (round_trips is None):
        raise ValueError("give exactly one of duration and round_trips")
    raise_open_files_limit()
    target = WebSocketTarget.build(url, origin)
    if warmup:
        await websocket_run_async(url, connections=connections, duration=warmup, message_size=message_size,
                                  binary=binary, timeout=timeout, origin=origin)
    result = WebSocketResult(url, connections, message_size, binary)
    run = _WebSocketRun(target, result, message_size=message_size, binary=binary, timeout=timeout,
                        round_trips=round_trips)
    watcher = asyncio.ensure_future(run.watch_timeouts())
    cpu_before = time.process_time()
    started = time.perf_counter()
    slots = [asyncio.ensure_future(run.slot()) for _ in range(connections)]
    try:
        if duration is None:
            await asyncio.gather(*slots)
            result.duration = time.perf_counter() - started
        else:
            # What came back within the duration counts; what is still in flight does not.
            await asyncio.wait(slots, timeout=duration)
            result.duration = duration
        result.loader_cpu_s = time.process_time() - cpu_before
    finally:
        run.stopping = True
        watcher.cancel()
        result.unfinished = sum(1 for connection in run.open if connection.busy)
        for connection in list(run.open):
            connection.end()
        for slot in slots:
            slot.cancel()
        await asyncio.gather(*slots, return_exceptions=True)
    return result


def websocket_run(url, **options):
    """Run one WebSocket echo load test and return its WebSocketResult. Options:

    connections (1), duration (seconds) or round_trips (a count), message_size (64 bytes),
    binary (False: text messages), timeout (10 s per handshake and per echo), warmup
    (seconds of the same load, not recorded), origin (the Origin header; default the
    server's own http:// origin).
    """
    with asyncio.Runner(loop_factory=uvloop.new_event_loop if uvloop else None) as runner:
        return runner.run(websocket_run_async(url, **options))


@dataclasses.dataclass
class WebSocketHold:
    """How many of the requested WebSockets opened and echoed once, all open at the same time."""

    requested: int
    held: int
    failed: int
    seconds_to_open: float
    errors: collections.Counter
    error_samples: dict
    dropped: int = 0
    probe: object = None


async def hold_websockets_async(url, count, *, timeout=30.0, probe=None, hold=0.0, message_size=64,
                                origin=None):
    """Open `count` WebSockets to an echo endpoint and keep them all open.

    Each one counts as held once its handshake succeeded and one message came back verified.
    With all of them open (and idle, answering the server's pings), call probe() (for
    instance: read the server's memory), wait `hold` seconds, count the ones the server
    dropped meanwhile, and close them all with a close frame.
    """
    raise_open_files_limit()
    target = WebSocketTarget.build(url, origin)
    result = WebSocketResult(url, count, message_size, False)
    run = _WebSocketRun(target, result, message_size=message_size, binary=False, timeout=timeout, hold=True)
    started = time.perf_counter()
    slots = [asyncio.ensure_future(run.slot()) for _ in range(count)]
    watcher = asyncio.ensure_future(run.watch_timeouts())
    try:
        # Every slot either failed or has its connection open and its one round trip answered.
        deadline = time.monotonic() + timeout + count / 100
        while time.monotonic() < deadline and not all(slot.done() for slot in slots):
            answered = sum(1 for connection in run.open if not connection.busy)
            if answered + sum(1 for slot in slots if slot.done()) >= count:
                break
            await asyncio.sleep(0.05)
        held = sum(1 for connection in run.open if connection.verified)
        outcome = WebSocketHold(count, held, count - held, time.perf_counter() - started,
                                result.errors, result.error_samples)
        if probe is not None:
            outcome.probe = probe()
        if hold:
            await asyncio.sleep(hold)
        outcome.dropped = held - sum(1 for connection in run.open if connection.verified)
    finally:
        run.stopping = True
        watcher.cancel()
        for connection in list(run.open):
            connection.end()
        for slot in slots:
            slot.cancel()
        await asyncio.gather(*slots, return_exceptions=True)
    return outcome


def hold_websockets(url, count, **options):
    """hold_websockets_async in an event loop of its own."""
    with asyncio.Runner(loop_factory=uvloop.new_event_loop if uvloop else None) as runner:
        return runner.run(hold_websockets_async(url, count, **options))


# --- command line ---------------------------------------------------------------------------

def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m scripts.loadgen",
        description="Closed-loop HTTP/1.1 and WebSocket load generator (asyncio, raw sockets).",
        epilog="A ws:// URL switches to the WebSocket mode: each connection sends a message to an echo "
               "endpoint, waits for it to come back, checks it byte for byte and sends the next; the "
               "figures are round trips per second and their latency, errors by kind (refused, reset, "
               "timeout, handshake, protocol, closed, mismatch). -n counts round trips there, and "
               "--hold SECONDS holds the -c WebSockets open and idle instead. Whether the loader is the "
               "bottleneck: the summary gives its CPU share of one core (near 100%%, it is), and "
               "python -m scripts.bench_wrk --websocket compares its rate with a loader built on the "
               "websockets library against the same server.")
    parser.add_argument("url", nargs="?", help="http://HOST:PORT/PATH, or ws://HOST:PORT/PATH for the WebSocket mode")
    parser.add_argument("-c", "--connections", type=int, default=8, help="concurrent connections (8)")
    limit = parser.add_mutually_exclusive_group()
    limit.add_argument("-d", "--duration", type=float, help="seconds to run (default 5)")
    limit.add_argument("-n", "--requests", type=int,
                       help="send exactly this many requests (WebSocket: round trips)")
    limit.add_argument("--hold", type=float, metavar="SECONDS",
                       help="WebSocket: open the -c connections, one echo each, keep them open this long")
    parser.add_argument("--new-connection", action="store_true",
                        help="open a new connection for every request (Connection: close)")
    parser.add_argument("-X", "--method", default="GET")
    body = parser.add_mutually_exclusive_group()
    body.add_argument("--body", help="request body (text)")
    body.add_argument("--body-file", help="request body read from this file")
    body.add_argument("--body-size", type=int, help="request body of this many bytes")
    parser.add_argument("-H", "--header", action="append", default=[], metavar="'NAME: VALUE'")
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds per request (10)")
    parser.add_argument("--warmup", type=float, default=0.0, help="seconds of unrecorded load first")
    parser.add_argument("--server-timing", action="store_true",
                        help="also report the median of each Server-Timing phase")
    parser.add_argument("--message-size", type=int, default=64, help="WebSocket: bytes per message (64)")
    parser.add_argument("--binary", action="store_true", help="WebSocket: binary messages (default: text)")
    parser.add_argument("--origin", help="WebSocket: the Origin header (default: http://HOST:PORT of the URL)")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    parser.add_argument("--check-against-wrk", action="store_true",
                        help="compare our req/s with wrk's against each server kind serving the sample site "
                             "(runs python -m scripts.bench_wrk)")
    args = parser.parse_args(argv)

    if args.check_against_wrk:
        # The check starts servers and so lives beside the benchmark; this flag only hands over.
        os.execv(sys.executable, [sys.executable, "-m", "scripts.bench_wrk"])
    if not args.url:
        parser.error("a URL is required (or --check-against-wrk)")
    if args.url.startswith("ws://"):
        return _websocket_main(args)
    if args.hold is not None:
        parser.error("--hold is for ws:// URLs")
    if args.body is not None:
        payload = args.body.encode()
    elif args.body_file:
        with open(args.body_file, "rb") as file:
            payload = file.read()
    elif args.body_size:
        payload = b"x" * args.body_size
    else:
        payload = b""
    duration = args.duration if args.duration is not None or args.requests is not None else 5.0
    result = run(args.url, connections=args.connections, duration=duration, requests=args.requests,
                 method=args.method, body=payload, headers=args.header,
                 new_connection=args.new_connection, timeout=args.timeout, warmup=args.warmup,
                 capture_server_timing=args.server_timing)
    if args.json:
        print(json.dumps(result.summary_dict(), indent=2))
    else:
        print(result.summary())
        if args.server_timing:
            print(_server_timing_summary(result))
    return 0 if result.requests else 1


def _websocket_main(args):
    if args.hold is not None:
        hold = hold_websockets(args.url, args.connections, timeout=args.timeout, hold=args.hold,
                               message_size=args.message_size, origin=args.origin)
        errors = ", ".join(f"{kind} {n:,}" for kind, n in hold.errors.items() if n) or "none"
        print(f"WebSocket hold {args.url}\n  held {hold.held:,} of {hold.requested:,} (opened and echoed once "
              f"in {hold.seconds_to_open:.2f} s), {hold.dropped:,} dropped during {args.hold:g} s\n"
              f"  errors       {errors}")
        for kind, message in hold.error_samples.items():
            print(f"  first {kind}: {message}")
        return 0 if hold.held == hold.requested and not hold.dropped else 1
    duration = args.duration if args.duration is not None or args.requests is not None else 5.0
    result = websocket_run(args.url, connections=args.connections, duration=duration, round_trips=args.requests,
                           message_size=args.message_size, binary=args.binary, timeout=args.timeout,
                           warmup=args.warmup, origin=args.origin)
    print(json.dumps(result.summary_dict(), indent=2) if args.json else result.summary())
    return 0 if result.round_trips else 1


def _server_timing_summary(result):
    phases = collections.defaultdict(list)
    for timing in result.server_timings:
        for name, ms in timing.items():
            phases[name].append(ms)
    if not phases:
        return "  server-timing (no Server-Timing headers received)"
    return "  server-timing " + "   ".join(
        f"{name} {statistics.median(values):.2f} ms" for name, values in phases.items())


if __name__ == "__main__":
    sys.exit(main())
