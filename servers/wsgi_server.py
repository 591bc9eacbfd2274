"""A PEP 3333 (WSGI) server: a thread pool behind one selector, optionally pre-forked.

    python -m servers.wsgi_server sample_site.wsgi:application --bind 127.0.0.1:8000 --threads 8

This is the synchronous model as gunicorn's gthread worker runs it. The main
thread owns a selector that watches the listening socket and every idle
connection. When a connection has bytes to read, the main thread hands it to a
pool of --threads threads; the thread reads what has arrived and parses it
(with servers/http11.py). An incomplete request (head or body) goes back to
the selector at once; a complete one gets its environ, the application is
called, the response written, and the connection given back to the selector.
An idle keep-alive connection therefore costs a file descriptor, not a thread,
and a client that sends its request head or its body one byte at a time never
holds a thread while it waits: the body is collected (servers/spool.py) before
the application runs.
With --workers N the server forks N such processes that share the listening
socket, so N processes run Python at once and the GIL limits each one alone.

The file reads in the order a request travels: the listening socket; a
worker's selector loop (accept, hand out, take back, time out); one connection
(read, parse, collect the body); one request (the environ, the application, its response, the
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
workers while running, a deadline for a whole request body (each stall of
it may last --timeout), and the logging configuration of a real server (the
access log and --trace go to stderr).

Needs from the operating system: a selector (epoll on Linux, kqueue on macOS) that threads
register into; sockets with a timeout; os.sendfile where present (Linux and macOS).
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
import weakref
from dataclasses import dataclass
from http import HTTPStatus

from servers import (cgi_variables, cli, forwarded, http11, linger, pep3333, prefork, spool, trace,
                     tuning)
from servers.timeouts import TimeoutPolicy, Waiting
from servers.wakeup import WakeupPipe

# The Server header, as every server here names itself: servers.<module>/<version>.
SERVER_SOFTWARE = "servers.wsgi_server/1.0"
RECV_SIZE = 65536

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
        frozen += tuning.fix_mmap_threshold_if_asked(args)
        listener = cli.open_listener(host, port)
    except cli.StartupError as error:
        cli.fail(str(error))
    workers = "1 worker" if args.workers == 1 else f"{args.workers} workers"
    cli.announce(listener, f"wsgi, {workers} x {args.threads} threads{frozen}")
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
        # Every connection accepted and not yet collected (only the main thread
        # adds and reads: shut_down looks here for bodies still arriving).
        self.connections: weakref.WeakSet[Connection] = weakref.WeakSet()
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

        self.wakeup = wakeup
        while not self.stop_requested:
            self.turn()
            if self.parent is not None and os.getppid() != self.parent:
                self.stop_requested = True  # the parent died: nobody would restart us
        return shut_down(self)

    def turn(self, longest: float = 1.0) -> None:
        """One turn of the selector loop: wait for readiness or the next deadline."""
        timers = self.timers
        timeout = longest
        if timers:
            timeout = min(max(timers[0][0] - time.monotonic(), 0.0), longest)
        for key, _ in self.selector.select(timeout):
            connection = key.data
            if connection is not None:
                if connection.waiting_for is CLIENT_CLOSE:
                    self.drop_input(connection)
                else:
                    self.hand_to_pool(connection)
            elif key.fileobj is self.listener:
                self.accept()
            else:
                self.wakeup.drain()  # a signal: its handler has set stop_requested
        if timers and timers[0][0] <= time.monotonic():
            self.expire_timers()

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
            # Every send of a pool thread waits at most --timeout: a client that
            # stops reading its response cannot hold a thread for longer. (Its
            # recv calls never wait: they follow the selector's "readable".)
            sock.settimeout(self.args.timeout)
            # The response goes out in one send as soon as it is ready; Nagle's
            # algorithm would hold a small second write back until an ACK arrives.
            # (A Unix socket has no Nagle to turn off.)
            if sock.family != socket.AF_UNIX:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            connection = Connection(self, sock, client)
            self.connections.add(connection)
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
            # Shutting down, only a request whose head has arrived waits for more: the
            # rest of its body (it is in flight: shut_down lets it finish).
            if not self.alive and waiting_for is not Waiting.REST_OF_BODY:
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
    """One connection (TCP, or a Unix socket) and its HTTP/1.1 state (servers/http11.py)."""

    __slots__ = ("worker", "sock", "client", "server", "parser", "deadline",
                 "waiting_for", "parked", "request", "body", "__weakref__")

    def __init__(self, worker: Worker, sock: socket.socket, client: tuple):
        self.worker = worker
        self.sock = sock
        self.client = cli.client_address(client)          # None over a Unix socket
        self.server = cli.server_address(sock.getsockname())
        self.parser = http11.ServerConnection(worker.limits, server_header=SERVER_SOFTWARE.encode())
        self.deadline = 0.0              # when the selector gives up waiting (time.monotonic)
        self.waiting_for = Waiting.FIRST_REQUEST  # while parked in the selector
        self.parked = False
        self.request: http11.Request | None = None  # its head is in; its body may be arriving
        self.body: spool.Spool | None = None        # what has arrived of that body

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
        # head or body goes back to the selector, and the application is called
        # only once the whole request is here.
        try:
            data = self.sock.recv(RECV_SIZE)
        except OSError:
            data = b""
        events = self.parser.receive(data)
        while True:
            if self.request is None:
                if not events:
                    # Part of a request head: wait for more in the selector, until
                    # the deadline of this head (a new connection's stays as it was).
                    if self.waiting_for is Waiting.NEXT_REQUEST:
                        self.deadline = self.worker.timeouts.deadline(Waiting.REST_OF_HEAD,
                                                                      time.monotonic())
                    self.worker.park(self, self.deadline, Waiting.REST_OF_HEAD)
                    return
                event, events = events[0], events[1:]
                if isinstance(event, http11.Error):
                    self.send_all(self.parser.error_response(event.status, event.reason))
                    self.linger()
                    return
                if not isinstance(event, http11.Request):
                    self.close()  # ConnectionClosed: the client is done with this connection
                    return
                self.request = event
                if event.chunked or event.content_length:
                    self.body = spool.Spool()
            if self.body is not None and not self.receive_body(events):
                return
            exchange = Exchange(self, self.request, self.body)
            self.request = self.body = None
            if not exchange.run():
                self.close()
                return
            events = self.parser.next_request()
            if not events:
                self.worker.park(self, self.worker.timeouts.deadline(
                    Waiting.NEXT_REQUEST, time.monotonic()), Waiting.NEXT_REQUEST)
                return

    def receive_body(self, events: list) -> bool:
        """Store the body bytes that came; True once the body is complete.

        False: the connection went back to the selector to wait for more of the
        body, or was answered with an error (malformed, over --max-body, cut off).
        """
        try:
            if self.body.take(events):
                return True
        except spool.BodyRefused as refused:
            self.send_all(self.parser.error_response(refused.status, refused.reason))
            self.linger()
            return False
        # The body is read before the application runs, so the server answers the
        # expectation itself, the first way PEP 3333 offers. PEP 3333 ("HTTP 1.1
        # Expect/Continue"): "Respond to requests containing an Expect: 100-continue
        # request with an immediate ..." RFC 9110 §10.1.1: "... an origin server MUST
        # send either: an immediate response with a final status code, if that status
        # can be determined by examining just the method, target URI, and header
        # fields, or an immediate 100 (Continue) response to encourage the client to
        # send the request content." The one final status known from the head is
        # 413 (a Content-Length over --max-body), and http11 gave it before this.
        interim = self.parser.send_continue()
        if interim:
            try:
                self.sock.sendall(interim)
            except OSError:
                self.close()
                return False
        # Each stall of the body may last --timeout; then 408 (servers/timeouts.py).
        self.worker.park(self, self.worker.timeouts.deadline(Waiting.REST_OF_BODY,
                                                             time.monotonic()),
                         Waiting.REST_OF_BODY)
        return False

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
            # Not send(data, MSG_DONTWAIT): a socket with a timeout waits for it anyway
            # (Python's own wait, before the call), and macOS ignores the flag on send.
            self.sock.setblocking(False)
            self.sock.send(data)
        except OSError:
            pass

    def linger(self) -> None:
        """Close after a response while the client may still be sending its request
        (servers/linger.py); the selector reads and drops its bytes meanwhile."""
        if linger.half_close(self.sock):
            self.worker.park(self, time.monotonic() + linger.LINGER_SECONDS, CLIENT_CLOSE)

    def close(self) -> None:
        self.sock.close()
        if self.body is not None:
            self.body.close()


# ── One request: the environ, the application, the response ────────────────

# Status lines that http11 already has ready-made; any other reason phrase is passed on.
STANDARD_STATUSES = frozenset(f"{status.value} {status.phrase}" for status in HTTPStatus)


class Exchange(pep3333.Response):
    """One request/response cycle: build the environ, call the app, write what it returns.

    PEP 3333 itself (start_response, write(), the iterable, close()) is
    servers/pep3333.py; this class plugs in the socket: the head and the body
    pieces go out through http11, which frames them.
    """

    __slots__ = ("connection", "request", "body", "pending", "must_close", "times", "trace")

    def __init__(self, connection: Connection, request: http11.Request, body: spool.Spool | None):
        super().__init__()
        self.connection = connection
        self.request = request
        self.body = body              # the whole request body, or None when there is none
        self.pending = b""            # the response head, sent with the first body bytes
        self.must_close = False       # the response cannot be followed by another one
        self.times = None             # with --access-log / --server-timing / --trace
        self.trace = None             # with --trace

    def run(self) -> bool:
        """Serve the request; True if the connection may carry another one."""
        connection, request = self.connection, self.request
        worker, parser = connection.worker, connection.parser
        if worker.observed:
            self.times = Times(parsed=time.perf_counter())
        body = self.body
        # PEP 3333 ("Input and Error Streams"): "The server is not required to read
        # past the client's specified Content-Length, and should simulate an
        # end-of-file condition if the application attempts to read past that
        # point." wsgi.input is the body read whole (servers/spool.py), and its
        # file ends where the body ends. A chunked body has no Content-Length:
        # CONTENT_LENGTH is the size of what was received.
        wsgi_input = EMPTY_BODY if body is None else body.file
        content_length = body.size if body is not None and request.chunked else None
        # Behind a trusted proxy, the client and scheme it names (servers/forwarded.py).
        client, scheme = worker.args.forwarded_allow_ips.client_and_scheme(
            connection.client, request.headers)
        environ = cgi_variables.request_variables(request, client=client, server=connection.server,
                                           content_length=content_length)
        environ.update(pep3333.wsgi_variables(
            input=wsgi_input,                    # a file: read(n), readline()...
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
            if body is not None:
                body.close()
        if worker.observed:
            self.observe_end()
        return not self.must_close and parser.keep_alive and worker.alive

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
            cli.remove_socket_files()
            os._exit(1)
    worker.stop_requested = True


def shut_down(worker: Worker) -> int:
    """Stop accepting, close idle connections, let running requests finish."""
    worker.selector.unregister(worker.listener)
    worker.listener.close()
    deadline = time.monotonic() + worker.args.graceful_timeout
    with worker.lock:
        # From now on a pool thread closes a connection instead of parking it,
        # unless the rest of a request's body is what it waits for.
        worker.alive = False
        for key in list(worker.selector.get_map().values()):
            connection = key.data
            if connection is not None and connection.waiting_for is not Waiting.REST_OF_BODY:
                worker.selector.unregister(connection.sock)
                connection.parked = False
                connection.close()
    # A request whose body is still arriving is in flight like one in the
    # application: keep the selector turning until every body is in (its
    # request then goes to a pool thread) or --graceful-timeout is over.
    while receiving_bodies(worker) and time.monotonic() < deadline:
        worker.turn(longest=max(min(deadline - time.monotonic(), 0.2), 0.0))
    # Connections already in the queue are served first; then each thread
    # takes a None and ends.
    for _ in worker.threads:
        worker.ready_connections.put(None)
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
        cli.remove_socket_files()
        os._exit(0)
    return 0


def receiving_bodies(worker: Worker) -> bool:
    """Has a request its head in and its body still arriving, on an open connection?"""
    return any(connection.body is not None and connection.sock.fileno() != -1
               for connection in worker.connections)


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
    tuning.add_mmap_threshold_argument(parser)
    return parser.parse_args(argv)


if __name__ == "__main__":
    main()
