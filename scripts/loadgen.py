"""An HTTP/1.1 load generator on asyncio and raw sockets.

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

As a library:

    from scripts.loadgen import run
    result = run("http://127.0.0.1:8000/hello", connections=32, duration=5)
    result.rps, result.percentile(99), result.errors
"""

import argparse
import array
import asyncio
import collections
import contextlib
import dataclasses
import errno
import json
import math
import os
import socket
import statistics
import struct
import sys
import time
import urllib.parse

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

@dataclasses.dataclass
class Result:
    """What one run measured. latencies/statuses/sizes are parallel, one entry per response."""

    url: str
    method: str
    connections: int
    new_connection: bool
    duration: float = 0.0
    latencies: array.array = dataclasses.field(default_factory=lambda: array.array("d"))
    statuses: array.array = dataclasses.field(default_factory=lambda: array.array("H"))
    sizes: array.array = dataclasses.field(default_factory=lambda: array.array("Q"))
    server_timings: list = dataclasses.field(default_factory=list)
    errors: collections.Counter = dataclasses.field(default_factory=collections.Counter)
    unfinished: int = 0
    _sorted: list = dataclasses.field(default=None, repr=False)

    @property
    def requests(self):
        return len(self.latencies)

    @property
    def rps(self):
        return self.requests / self.duration if self.duration else 0.0

    @property
    def bytes_received(self):
        return sum(self.sizes)

    @property
    def error_count(self):
        return sum(self.errors.values())

    def status_counts(self):
        return dict(sorted(collections.Counter(self.statuses).items()))

    def percentile(self, p):
        """Latency in seconds below which p percent of the responses came (nearest rank)."""
        if not self.latencies:
            return math.nan
        if self._sorted is None or len(self._sorted) != len(self.latencies):
            self._sorted = sorted(self.latencies)
        rank = max(1, math.ceil(p / 100 * len(self._sorted)))
        return self._sorted[rank - 1]

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
            "p50_ms": _ms(self.percentile(50)),
            "p90_ms": _ms(self.percentile(90)),
            "p99_ms": _ms(self.percentile(99)),
            "max_ms": _ms(max(self.latencies, default=math.nan)),
            "mean_ms": _ms(sum(self.latencies) / len(self.latencies) if self.latencies else math.nan),
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


# --- command line ---------------------------------------------------------------------------

def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m scripts.loadgen",
        description="Closed-loop HTTP/1.1 load generator (asyncio, raw sockets).")
    parser.add_argument("url", nargs="?", help="http://HOST:PORT/PATH")
    parser.add_argument("-c", "--connections", type=int, default=8, help="concurrent connections (8)")
    limit = parser.add_mutually_exclusive_group()
    limit.add_argument("-d", "--duration", type=float, help="seconds to run (default 5)")
    limit.add_argument("-n", "--requests", type=int, help="send exactly this many requests")
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
