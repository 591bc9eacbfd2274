"""A PEP 3333 (WSGI) server: a thread pool behind one selector, optionally pre-forked.

    python -m servers.wsgi_server sample_site.wsgi:application --bind 127.0.0.1:8000 --threads 8

This is the synchronous model as gunicorn's gthread worker runs it. The main
thread owns a selector that watches the listening socket and every idle
connection. When a connection has bytes to read, the main thread hands it to a
pool of --threads threads; the thread reads and parses the request (with
servers/http11.py), builds the environ, calls the application, writes the
response, and gives the connection back to the selector. An idle keep-alive
connection therefore costs a file descriptor, not a thread, and a client that
sends its request head one byte at a time never holds a thread while it waits.
With --workers N the server forks N such processes that share the listening
socket, so N processes run Python at once and the GIL limits each one alone.

The file reads in the order a request travels: the listening socket; a
worker's selector loop (accept, hand out, take back, time out); one connection
(read, parse); one request (the environ, the application, its response, the
teaching views); what the environ hands the application as wsgi.input and
wsgi.file_wrapper. Last come what no request runs: shutting down and the
command line. The pre-fork parent is servers/prefork.py, PEP 3333 itself
servers/pep3333.py, and the performance devices servers/tuning.py.

A WebSocket handshake (Upgrade: websocket) is served as a plain HTTP request:
the application is called and its response sent, without a 101. PEP 3333 gives
an application no way to take over the connection, so there is nothing to
upgrade to. RFC 9110 §7.8: "A server MAY ignore a received Upgrade header field
if it wishes to continue using the current protocol on that connection." Django
then answers /ws/... as it answers any unknown URL; WebSocket is the ASGI
server's lesson.

What it leaves out, on purpose: TLS (wsgi.url_scheme is always "http"), HTTP/2,
the other protocol upgrades, reloading code, changing the number of
workers while running, a deadline for a whole request body (each read of it
waits at most --timeout), and the logging configuration of a real server (the
access log and --trace go to stderr).
"""

from __future__ import annotations

import argparse
import functools
import heapq
import itertools
import os
import queue
import selectors
import signal
import socket
import stat
import sys
import threading
import time
import traceback
from dataclasses import dataclass
from http import HTTPStatus

from servers import (cgi_variables, cli, forwarded, http11, linger, pep3333, prefork, spool, trace,
                     tuning)
from servers.timeouts import TimeoutPolicy, Waiting
from servers.wakeup import WakeupPipe

# The Server header, as every server here names itself: servers.<module>/<version>.
SERVER_SOFTWARE = "servers.wsgi_server/1.0"
RECV_SIZE = 65536
# After the response, a request body the application did not read is read and
# dropped up to this size so the connection can serve another request; a larger
# remainder is not worth the wait, and the connection is closed instead.
MAX_DRAIN = 64 * 1024

# What a parked connection waits for (Connection.waiting_for) is one of
# timeouts.Waiting (until when: servers/timeouts.py), or this: our side is closed,
# and input is read and dropped until EOF (servers/linger.py).
CLIENT_CLOSE = "client close"

# ── Start: the application, the listening socket, the workers ───────────────


def main(argv=None) -> None:
    args = parse_arguments(argv)
    try:
        host, port = cli.parse_bind(args.bind)
        # The application is imported before any fork (gunicorn's --preload): an
        # import error stops the server at once, and the workers share the
        # imported modules' memory until they write to it.
        app = cli.load_app(args.app)
        # Before any fork: the workers then never write to the frozen objects'
        # garbage-collector headers, so those pages stay shared between them
        # (see tuning.freeze_startup_objects()).
        frozen = tuning.freeze_if_asked(args)
        listener = cli.open_listener(host, port)
    except cli.StartupError as error:
        cli.fail(str(error))
    workers = "1 worker" if args.workers == 1 else f"{args.workers} workers"
    cli.announce(host, listener.getsockname()[1], f"wsgi, {workers} x {args.threads} threads{frozen}")
    if args.workers == 1:
        sys.exit(Worker(app, listener, args).run())
    # --workers N: a parent process that serves nothing keeps N forked workers alive.
    sys.exit(prefork.Arbiter(
        args.workers, listener,
        lambda parent: Worker(app, listener, args, parent=parent).run()).run())


# ── A worker: one selector, a pool of threads ───────────────────────────────


class Worker:
    """One process serving connections: the main thread runs the selector loop.

    A connection is always in exactly one of two places: parked in the selector
    (idle, or waiting for the rest of a request head) or in the hands of one
    pool thread. The main thread takes it out of the selector when it becomes
    readable and submits it to the pool; the pool thread parks it again when
    the response is written and the connection may be kept alive.
    """

    def __init__(self, app, listener: socket.socket, args: argparse.Namespace,
                 parent: int | None = None):
        self.app = app
        self.listener = listener
        self.args = args
        self.parent = parent
        self.limits = cli.limits_from_args(args)
        self.timeouts = TimeoutPolicy.from_args(args)
        self.multithread = args.threads > 1
        self.multiprocess = args.workers > 1
        self.observed = trace.observed(args)
        self.request_numbers = itertools.count(1)

        # On Linux the selector is epoll: a pool thread may register a
        # connection while the main thread waits in select(), and the kernel
        # reports its readiness to that waiting call.
        self.selector = selectors.DefaultSelector()
        # The pool: --threads threads that take readable connections from a
        # queue. (concurrent.futures.ThreadPoolExecutor would do the same, with
        # a Future per request that nobody waits for.)
        self.ready_connections: queue.SimpleQueue[Connection | None] = queue.SimpleQueue()
        self.threads = [threading.Thread(target=self.pool_thread, name=f"wsgi-{number}", daemon=True)
                        for number in range(1, args.threads + 1)]
        # The lock guards what the pool threads and the main thread share: the
        # timers and the parking of connections.
        self.lock = threading.Lock()
        self.timers: list[tuple[float, int, Connection]] = []  # a heap of deadlines
        self.timer_numbers = itertools.count()
        self.alive = True
        self.stop_requested = False
        self.interrupts = 0

    # -- the loop ----------------------------------------------------------

    def run(self) -> int:
        wakeup = WakeupPipe()
        on_signal = functools.partial(on_stop_signal, self)
        signal.signal(signal.SIGTERM, on_signal)
        if self.parent is None:
            signal.signal(signal.SIGINT, on_signal)
        for thread in self.threads:
            thread.start()
        self.listener.setblocking(False)
        self.selector.register(self.listener, selectors.EVENT_READ)
        self.selector.register(wakeup.reader, selectors.EVENT_READ)

        ready, timers = self.selector.select, self.timers
        while not self.stop_requested:
            timeout = 1.0
            if timers:
                timeout = min(max(timers[0][0] - time.monotonic(), 0.0), 1.0)
            for key, _ in ready(timeout):
                connection = key.data
                if connection is not None:
                    if connection.waiting_for is CLIENT_CLOSE:
                        self.drop_input(connection)
                    else:
                        self.hand_to_pool(connection)
                elif key.fileobj is self.listener:
                    self.accept()
                else:
                    wakeup.drain()  # a signal: its handler has set stop_requested
            if timers and timers[0][0] <= time.monotonic():
                self.expire_timers()
            if self.parent is not None and os.getppid() != self.parent:
                self.stop_requested = True  # the parent died: nobody would restart us
        return shut_down(self)

    def accept(self) -> None:
        try:
            sock, client = self.listener.accept()
        except (BlockingIOError, InterruptedError):
            return  # another worker process took this connection
        except OSError as error:
            # EMFILE (out of file descriptors) and the like: the connection
            # waits in the listen queue. Pause briefly rather than spin on a
            # listening socket that stays readable.
            trace.log(f"wsgi_server: accept failed: {error}")
            time.sleep(0.1)
            return
        try:
            # Every recv and send of a pool thread waits at most --timeout: a client
            # that stops reading its response or sending its body cannot hold a
            # thread for longer.
            sock.settimeout(self.args.timeout)
            # The response goes out in one send as soon as it is ready; Nagle's
            # algorithm would hold a small second write back until an ACK arrives.
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            connection = Connection(self, sock, client)
        except OSError:
            sock.close()  # the client is gone already
            return
        self.park(connection, self.timeouts.deadline(Waiting.FIRST_REQUEST, time.monotonic()),
                  Waiting.FIRST_REQUEST)

    def hand_to_pool(self, connection: Connection) -> None:
        """The connection has bytes to read: the next free pool thread takes it."""
        self.selector.unregister(connection.sock)
        connection.parked = False
        self.ready_connections.put(connection)

    def pool_thread(self) -> None:
        """The loop of each pool thread, until shutdown() puts a None in the queue."""
        while (connection := self.ready_connections.get()) is not None:
            connection.serve()

    def park(self, connection: Connection, deadline: float, waiting_for: str) -> None:
        """Give a connection back to the selector until it is readable or `deadline`.

        Called by pool threads and by the main thread.
        """
        with self.lock:
            if not self.alive:
                connection.close()
                return
            connection.deadline = deadline
            connection.waiting_for = waiting_for
            connection.parked = True
            heapq.heappush(self.timers, (deadline, next(self.timer_numbers), connection))
            self.selector.register(connection.sock, selectors.EVENT_READ, connection)

    def expire_timers(self) -> None:
        """Close the parked connections whose deadline has passed.

        A timer is only a reminder to look at the connection: since it was set,
        the connection may have gone to a pool thread, or been parked again with
        a later deadline (and a timer of its own).
        """
        now = time.monotonic()
        timers = self.timers
        expired = []
        with self.lock:
            while timers and timers[0][0] <= now:
                _, _, connection = heapq.heappop(timers)
                if not connection.parked or connection.deadline > now:
                    continue
                self.selector.unregister(connection.sock)
                connection.parked = False
                expired.append(connection)
        for connection in expired:
            status = self.timeouts.status_on_expiry(connection.waiting_for)
            if status is not None:
                connection.send_now(connection.parser.error_response(status, "Request Timeout"))
                connection.linger()
            else:
                connection.close()

    def drop_input(self, connection: Connection) -> None:
        """A lingering connection is readable: drop the bytes; close at EOF."""
        try:
            if connection.sock.recv(RECV_SIZE, socket.MSG_DONTWAIT):
                return
        except BlockingIOError:
            return
        except OSError:
            pass
        self.selector.unregister(connection.sock)
        connection.parked = False
        connection.close()


# ── One connection: read, parse, serve one request after another ────────────


class Connection:
    """One TCP connection and its HTTP/1.1 state (servers/http11.py)."""

    __slots__ = ("worker", "sock", "client", "server", "parser", "deadline",
                 "waiting_for", "parked")

    def __init__(self, worker: Worker, sock: socket.socket, client: tuple):
        self.worker = worker
        self.sock = sock
        self.client = client[:2]
        self.server = sock.getsockname()[:2]
        self.parser = http11.ServerConnection(worker.limits, server_header=SERVER_SOFTWARE.encode())
        self.deadline = 0.0              # when the selector gives up waiting (time.monotonic)
        self.waiting_for = Waiting.FIRST_REQUEST  # while parked in the selector
        self.parked = False

    def serve(self) -> None:
        """Run in a pool thread when the connection is readable."""
        try:
            self.serve_requests()
        except Exception:
            trace.log(traceback.format_exc().rstrip())
            self.close()

    def serve_requests(self) -> None:
        # The selector said the socket is readable, so this recv returns at once.
        # A thread never waits here for a slow client's next byte: an incomplete
        # head goes back to the selector.
        try:
            data = self.sock.recv(RECV_SIZE)
        except OSError:
            data = b""
        events = self.parser.receive(data)
        while True:
            if not events:
                # Part of a request head: wait for more in the selector, until
                # the deadline of this head (a new connection's stays as it was).
                if self.waiting_for is Waiting.NEXT_REQUEST:
                    self.deadline = self.worker.timeouts.deadline(Waiting.REST_OF_HEAD,
                                                                  time.monotonic())
                self.worker.park(self, self.deadline, Waiting.REST_OF_HEAD)
                return
            event = events[0]
            if isinstance(event, http11.Request):
                exchange = Exchange(self, event, events)
                if not exchange.run():
                    if exchange.input_left:
                        self.linger()
                    else:
                        self.close()
                    return
                events = self.parser.next_request()
                if not events:
                    self.worker.park(self, self.worker.timeouts.deadline(
                        Waiting.NEXT_REQUEST, time.monotonic()), Waiting.NEXT_REQUEST)
                    return
            elif isinstance(event, http11.Error):
                self.send_all(self.parser.error_response(event.status, event.reason))
                self.linger()
                return
            else:  # ConnectionClosed: the client is done with this connection
                self.close()
                return

    def receive(self) -> bytes:
        """The client's next bytes; b"" at EOF, after --timeout (the socket's timeout) or a reset."""
        try:
            return self.sock.recv(RECV_SIZE)
        except OSError:
            return b""

    def send_all(self, data: bytes) -> None:
        """Send a last response before closing (a pool thread; errors do not matter now)."""
        try:
            self.sock.sendall(data)
        except OSError:
            pass

    def send_now(self, data: bytes) -> None:
        """Send a last response without ever blocking (the main thread)."""
        try:
            self.sock.send(data, socket.MSG_DONTWAIT)
        except OSError:
            pass

    def linger(self) -> None:
        """Close after a response while the client may still be sending its request
        (servers/linger.py); the selector reads and drops its bytes meanwhile."""
        if linger.half_close(self.sock):
            self.worker.park(self, time.monotonic() + linger.LINGER_SECONDS, CLIENT_CLOSE)

    def close(self) -> None:
        self.sock.close()


# ── One request: the environ, the application, the response ────────────────

# Status lines that http11 already has ready-made; any other reason phrase is passed on.
STANDARD_STATUSES = frozenset(f"{status.value} {status.phrase}" for status in HTTPStatus)


class Exchange(pep3333.Response):
    """One request/response cycle: build the environ, call the app, write what it returns.

    PEP 3333 itself (start_response, write(), the iterable, close()) is
    servers/pep3333.py; this class plugs in the socket: the head and the body
    pieces go out through http11, which frames them.
    """

    __slots__ = ("connection", "request", "events", "pending", "must_close", "input_left",
                 "times", "trace")

    def __init__(self, connection: Connection, request: http11.Request, events: list):
        super().__init__()
        self.connection = connection
        self.request = request
        self.events = events          # the request's events so far: body pieces may follow it
        self.pending = b""            # the response head, sent with the first body bytes
        self.must_close = False       # the response cannot be followed by another one
        self.input_left = False       # the client may still be sending this request's body
        self.times = None             # with --access-log / --server-timing / --trace
        self.trace = None             # with --trace

    def run(self) -> bool:
        """Serve the request; True if the connection may carry another one."""
        connection, request = self.connection, self.request
        worker, parser = connection.worker, connection.parser
        if worker.observed:
            self.times = Times(parsed=time.perf_counter())
        body, content_length = self.request_body()
        if body is None:
            self.input_left = True
            return False
        # Behind a trusted proxy, the client and scheme it names (servers/forwarded.py).
        client, scheme = worker.args.forwarded_allow_ips.client_and_scheme(
            connection.client, request.headers)
        environ = cgi_variables.request_variables(request, client=client, server=connection.server,
                                           content_length=content_length)
        environ.update(pep3333.wsgi_variables(
            input=body,                          # <RequestBody>: read(n), readline()...
            errors=sys.stderr,
            multithread=worker.multithread,      # True with --threads > 1
            multiprocess=worker.multiprocess,    # True with --workers > 1
            run_once=False,
            url_scheme=scheme))
        # Not in PEP 3333, but set by gunicorn and others: wsgi.input ends where the
        # body ends, so an application may read it to the end.
        environ["wsgi.input_terminated"] = True
        environ["wsgi.file_wrapper"] = pep3333.FileWrapper
        if worker.observed:
            self.observe_request(environ)

        try:
            self.run_application(worker.app, environ)
        except ClientDisconnected:
            self.must_close = True
        except Exception:
            self.fail()
        finally:
            if request.chunked:
                body.close()  # the spooled temporary file
        if worker.observed:
            self.observe_end()
        if isinstance(body, RequestBody) and not body.complete:
            if self.must_close or not body.drain(request):
                self.input_left = not body.failed
                return False
        return not self.must_close and parser.keep_alive and worker.alive

    # -- the request body --------------------------------------------------

    def request_body(self):
        """(wsgi.input, CONTENT_LENGTH or None); (None, None) after an error response."""
        request = self.request
        if request.chunked:
            return self.spool_chunked_body()
        if not request.content_length:
            return EMPTY_BODY, None
        # Body bytes that came in the same recv as the head are handed on now;
        # RequestBody reads the rest from the socket when the application asks.
        buffer = bytearray()
        complete = False
        for event in self.events[1:]:
            if isinstance(event, http11.Data):
                buffer += event.data
            else:
                complete = True
        return RequestBody(self.connection, buffer, complete, request), None

    def spool_chunked_body(self):
        """The chunked body, whole, in a temporary file, and its length (see servers/spool.py)."""
        connection = self.connection
        try:
            return spool.read_chunked_body(connection.parser, self.events[1:],
                                           connection.sock.sendall, connection.receive)
        except spool.BodyRefused as refused:
            connection.send_all(connection.parser.error_response(refused.status, refused.reason))
            return None, None
        except OSError:  # the interim 100 Continue could not be sent
            return None, None

    # -- the response: the hooks of pep3333.Response -------------------------

    def send_head(self, status_code: int, reason: str, headers: list,
                  content_length: int | None) -> None:
        """The status line and header section, held until the first body bytes go out."""
        if not self.connection.worker.alive:
            # Shutting down: this connection closes after the response; say so.
            headers = headers + [("Connection", "close")]
        if self.times is not None:
            headers = self.observe_head(headers)
        standard = f"{status_code} {reason}" in STANDARD_STATUSES
        self.pending = self.connection.parser.start_response(
            status_code, headers, content_length=content_length,
            reason=None if standard else reason)
        if self.trace is not None:
            self.trace_response(self.pending)

    def send_body(self, data: bytes) -> None:
        self.send(self.pending + self.connection.parser.send_body(data))
        self.pending = b""

    def end_body(self) -> None:
        self.send(self.pending + self.connection.parser.end_response())
        self.pending = b""

    def send_file(self, wrapper: pep3333.FileWrapper) -> bool:
        """Send a regular file with os.sendfile; False to send it by iteration instead.

        http11 counts the body bytes it frames, and bytes the kernel copies on
        its own are not among them; so the response is framed by Content-Length
        and the connection closes after it.
        """
        size = sendfile_size(wrapper)
        if size is None or self.request.method == "HEAD" or self.status_code in (204, 304):
            return False
        for name, value in self.headers:  # the application's own length wins
            if name.lower() == "content-length" and value.isdigit():
                size = min(size, int(value))
        self.start_head(size)
        self.send(self.pending)
        self.pending = b""
        try:
            # os.sendfile() where the platform has it; each wait for the client to
            # take more is bounded by --timeout (the socket's timeout).
            self.body_size += self.connection.sock.sendfile(
                wrapper.filelike, offset=wrapper.filelike.tell(), count=size)
        except OSError as error:
            raise ClientDisconnected(str(error)) from error
        self.must_close = True
        return True

    def send(self, data: bytes) -> None:
        try:
            self.connection.sock.sendall(data)
        except OSError as error:
            raise ClientDisconnected(str(error)) from error

    def fail(self) -> None:
        """The application (or its response) failed: log it; 500 if nothing was sent yet."""
        request = self.request
        trace.log(f"wsgi_server: error while serving {request.method} "
                  f"{request.target.decode('latin-1')}:\n{traceback.format_exc().rstrip()}")
        if not self.head_sent:
            # No traceback for the client: it may hold secrets; it went to stderr.
            response = self.connection.parser.error_response(500, "Internal Server Error")
            self.connection.send_all(response)
            self.status_code, self.body_size = 500, 0
            if self.trace is not None:
                self.trace_response(response.partition(b"\r\n\r\n")[0] + b"\r\n\r\n")
        # After the head was sent the status can no longer change: closing the
        # connection is the only way left to tell the client the response failed.
        self.must_close = True

    # -- the teaching views: --access-log, --server-timing, --trace ---------

    def observe_request(self, environ: dict) -> None:
        worker = self.connection.worker
        if worker.args.trace:
            self.trace = trace.Trace("wsgi", next(worker.request_numbers))
            self.trace.request_head(self.request.raw)
            self.trace.mapping("WSGI environ", environ)
        self.times.app_called = time.perf_counter()

    def observe_head(self, headers: list) -> list:
        times = self.times
        times.head_sent = now = time.perf_counter()
        if self.connection.worker.args.server_timing:
            # app: from calling the application to its first body bytes;
            # total: from the parsed request head (building the environ included).
            phases = [("app", now - times.app_called), ("total", now - times.parsed)]
            headers = headers + [("Server-Timing", trace.server_timing(phases))]
        return headers

    def trace_response(self, head: bytes) -> None:
        """The header section as it went on the wire, with what http11 added
        (Date, Server, the framing: Content-Length or Transfer-Encoding)."""
        lines = head.decode("latin-1").split("\r\n")[1:-2]
        self.trace.response(self.status_code, [line.split(": ", 1) for line in lines])

    def observe_end(self) -> None:
        now = time.perf_counter()
        times = self.times
        head_sent = times.head_sent or now
        if self.trace is not None:
            self.trace.timing([("environ", times.app_called - times.parsed),
                               ("app", head_sent - times.app_called),
                               ("send", now - head_sent), ("total", now - times.parsed)])
        if self.connection.worker.args.access_log:
            trace.access_line(self.connection.client, self.request, self.status_code,
                              self.body_size, now - times.parsed)


class ClientDisconnected(OSError):
    """The client closed the connection (or stopped reading) during the response."""


@dataclass(slots=True)
class Times:
    """time.perf_counter() readings of one request, for the teaching views."""
    parsed: float            # the request head was parsed
    app_called: float = 0.0  # the application was called
    head_sent: float = 0.0   # the response head was ready (0.0: not yet)


# ── What the environ hands the application: wsgi.input and wsgi.file_wrapper ─


class RequestBody:
    """wsgi.input for a body with a Content-Length, read from the socket on demand.

    PEP 3333 ("Input and Error Streams"): "The server is not required to read past
    the client's specified Content-Length, and should simulate an end-of-file
    condition if the application attempts to read past that point." http11 ends
    the body at Content-Length, and read() returns b"" from there on.
    """

    __slots__ = ("connection", "buffer", "complete", "failed", "waits_for_continue", "received")

    def __init__(self, connection: Connection, buffer: bytearray, complete: bool,
                 request: http11.Request):
        self.connection = connection
        self.buffer = buffer          # body bytes received and not yet read
        self.complete = complete      # the whole body has been received
        self.failed = False           # the client broke off or sent a malformed body
        self.waits_for_continue = request.expect_continue
        self.received = len(buffer)

    def receive_more(self) -> None:
        """Block until at least one more body byte, or the body's end, arrives."""
        connection = self.connection
        if self.failed:
            raise ClientDisconnected("the request body was cut off")
        if self.waits_for_continue:
            # The second of the three ways PEP 3333 ("HTTP 1.1 Expect/Continue")
            # offers: "... response if/when the application first attempts to read
            # from the input stream. The read request must then remain blocked until
            # the client responds."
            self.waits_for_continue = False
            interim = connection.parser.send_continue()
            if interim:
                try:
                    connection.sock.sendall(interim)
                except OSError as error:
                    self.failed = True
                    raise ClientDisconnected(str(error)) from error
        while True:
            try:
                data = connection.sock.recv(RECV_SIZE)
            except OSError:
                data = b""  # timed out (--timeout) or reset: the body will not be complete
            before = len(self.buffer)
            for event in connection.parser.receive(data):
                if isinstance(event, http11.Data):
                    self.buffer += event.data
                elif isinstance(event, http11.EndOfMessage):
                    self.complete = True
                else:
                    self.failed = True
                    raise ClientDisconnected(f"request body: {event.reason}")
            self.received += len(self.buffer) - before
            if self.complete or len(self.buffer) > before:
                return

    def read(self, size: int | None = -1) -> bytes:
        buffer = self.buffer
        if size is None or size < 0:
            while not self.complete:
                self.receive_more()
            size = len(buffer)
        else:
            while len(buffer) < size and not self.complete:
                self.receive_more()
        data = bytes(buffer[:size])
        del buffer[:size]
        return data

    def readline(self, size: int | None = -1) -> bytes:
        buffer = self.buffer
        limited = size is not None and size >= 0
        while True:
            end = buffer.find(b"\n") + 1
            if end or self.complete or (limited and len(buffer) >= size):
                break
            self.receive_more()
        if not end:
            end = len(buffer)
        return self.read(min(end, size) if limited else end)

    def readlines(self, hint: int | None = -1) -> list[bytes]:
        lines, total = [], 0
        while line := self.readline():
            lines.append(line)
            total += len(line)
            if hint is not None and 0 < hint <= total:
                break
        return lines

    def __iter__(self):
        return iter(self.readline, b"")

    def drain(self, request: http11.Request) -> bool:
        """Read and drop a small unread rest of the body, so the connection can be reused.

        RFC 9110 §10.1.1: a client that asked for 100-continue and never got it
        may not send the body at all, so then the connection just closes.
        """
        if self.failed or self.waits_for_continue:
            return False
        if request.content_length - self.received > MAX_DRAIN:
            return False
        try:
            while not self.complete:
                self.receive_more()
                self.buffer.clear()
        except ClientDisconnected:
            return False
        return True


class EmptyBody:
    """wsgi.input of a request without a body: always at its end."""

    __slots__ = ()

    def read(self, size: int | None = -1) -> bytes:
        return b""

    def readline(self, size: int | None = -1) -> bytes:
        return b""

    def readlines(self, hint: int | None = -1) -> list[bytes]:
        return []

    def __iter__(self):
        return iter(())


EMPTY_BODY = EmptyBody()


def sendfile_size(wrapper: pep3333.FileWrapper) -> int | None:
    """Bytes from the file's position to its end; None if it is not a regular file.

    PEP 3333 ("Optional Platform-Specific File Handling"): "a wsgi.file_wrapper has
    to introspect the supplied object for things such as a fileno() (Unix-like OSes)
    ... in order to determine if the file-like object is suitable for use with the
    platform-specific API it supports."
    """
    try:
        position = wrapper.filelike.tell()
        status = os.fstat(wrapper.filelike.fileno())
    except (AttributeError, OSError, ValueError):
        return None
    if not stat.S_ISREG(status.st_mode):
        return None
    return max(status.st_size - position, 0)


# ── Shutting down (no request runs this) ────────────────────────────────────


def on_stop_signal(worker: Worker, signum, frame) -> None:
    """SIGTERM, or SIGINT in a worker of its own: the selector loop ends and shuts down."""
    if signum == signal.SIGINT:
        worker.interrupts += 1
        if worker.interrupts >= 2:
            trace.log("wsgi_server: second interrupt, exiting now")
            os._exit(1)
    worker.stop_requested = True


def shut_down(worker: Worker) -> int:
    """Stop accepting, close idle connections, let running requests finish."""
    worker.selector.unregister(worker.listener)
    worker.listener.close()
    with worker.lock:
        # From now on a pool thread closes a connection instead of parking it.
        worker.alive = False
        for key in list(worker.selector.get_map().values()):
            if key.data is not None:
                key.data.parked = False
                key.data.close()
    # Connections already in the queue are served first; then each thread
    # takes a None and ends.
    for _ in worker.threads:
        worker.ready_connections.put(None)
    deadline = time.monotonic() + worker.args.graceful_timeout
    for thread in worker.threads:
        thread.join(max(deadline - time.monotonic(), 0))
    busy = sum(thread.is_alive() for thread in worker.threads)
    if busy:
        trace.log(f"wsgi_server: {busy} request(s) still running after "
                  f"--graceful-timeout {worker.args.graceful_timeout:g} s; exiting anyway")
        sys.stdout.flush()
        # A thread in the middle of the application cannot be stopped from
        # outside; leave without the interpreter's clean-up, which would run
        # at the same time as that thread.
        os._exit(0)
    return 0


# ── The command line ────────────────────────────────────────────────────────


def parse_arguments(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m servers.wsgi_server",
        description="Serve a WSGI application (PEP 3333) with a pool of threads, "
                    "optionally in several pre-forked processes.",
        epilog="SIGTERM or Ctrl-C stops the server gracefully: it stops accepting, closes "
               "idle connections and lets running requests finish (up to "
               "--graceful-timeout). A second Ctrl-C exits at once.")
    parser.add_argument(
        "app", metavar="MODULE:ATTR",
        help="the application, e.g. sample_site.wsgi:application (MODULE alone means "
             "MODULE:application, as in gunicorn)")
    cli.add_common_arguments(parser)
    parser.add_argument(
        "--threads", type=cli.positive_int, default=8, metavar="N",
        help="threads per process that run the application; N requests run at once in "
             "each process, while idle connections wait in the selector without a "
             "thread (default %(default)s)")
    parser.add_argument(
        "--workers", type=cli.positive_int, default=1, metavar="N",
        help="processes that serve requests; with N > 1 the server forks N copies "
             "sharing one listening socket and restarts one that dies, so that N "
             "cores can run Python at the same time (default %(default)s)")
    forwarded.add_argument(parser)
    tuning.add_gc_freeze_argument(parser)
    return parser.parse_args(argv)


if __name__ == "__main__":
    main()
