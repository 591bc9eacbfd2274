"""asgi_server: an asyncio ASGI 3 server for HTTP/1.1, with lifespan, in one file.

    python -m servers.asgi_server sample_site.asgi:application --bind 127.0.0.1:8000

An ASGI application is a coroutine `app(scope, receive, send)`: the server describes
the request in `scope`, hands the request body over through `await receive()`, and
takes the response from `await send(message)`. One event loop serves every
connection; while one application awaits (a database, a timer, a slow client), the
loop runs the others. That is the lesson of this file, and it is how uvicorn works.

A request travels through this file from top to bottom:
  1. main() reads the command line, imports the application, opens the socket.
  2. Server.serve() runs the lifespan startup, freezes the start-up objects out of
     the garbage collector's way (--gc-freeze), then asyncio accepts connections
     and gives each its own HttpConnection (an asyncio.Protocol).
  3. HttpConnection.data_received() feeds the bytes to http11.ServerConnection and
     gets events back. A Request event builds the scope and starts one
     RequestCycle, run by one asyncio task.
  4. RequestCycle.receive() and RequestCycle.send() are the two ASGI callables:
     the body goes in as http.request messages, the response comes out of
     http.response.start and http.response.body messages. Both directions have
     flow control, so neither a fast client nor a slow one makes memory grow.
  5. When the response is complete, the connection serves the next request
     (pipelined or kept alive) or closes.
  6. SIGTERM or Ctrl-C: stop accepting, let running cycles finish within
     --graceful-timeout, then the lifespan shutdown, and exit 0.

WebSocket (section 5): a GET with Upgrade: websocket goes to a WebSocketCycle, which
hands the application websocket.connect, writes the 101 when it accepts, and turns
frames into websocket.receive messages and back, through servers/websocket.py
(RFC 6455, sans-I/O, as http11.py is for HTTP). The server answers pings, sends its
own (--ws-ping-interval), closes a message over --ws-max-size with 1009, and on
SIGTERM closes every WebSocket with 1001 (going away).

What it leaves out, on purpose: WebSocket extensions (permessage-deflate), HTTP/2,
TLS, Unix sockets, several worker processes, auto-reload, proxy headers
(X-Forwarded-For), and response trailers.

Needs from the operating system: an asyncio event loop (epoll or kqueue, or uvloop),
loop.add_signal_handler (POSIX signals) and a raised RLIMIT_NOFILE.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import os
import resource
import signal
import sys
import threading
import time
import traceback
from http import HTTPStatus
from urllib.parse import unquote_to_bytes

from servers import cli, forwarded, http11, trace, tuning, websocket
from servers.timeouts import TimeoutPolicy, Waiting

# The Server header, as every server here names itself: servers.<module>/<version>.
SERVER_SOFTWARE = "servers.asgi_server/1.0"
# ASGI HTTP spec ("Spec Versions"): "``2.4``: Calling ``send()`` on a closed
# connection should raise an error", which send() does (ClientDisconnected).
HTTP_SPEC_VERSION = "2.4"
# ASGI lifespan spec ("Version History"): "2.0 (2019-03-04): Added startup.failed and
# shutdown.failed, clarified exception handling during startup phase."
LIFESPAN_SPEC_VERSION = "2.0"
# ASGI WebSocket spec ("Spec Versions"): "``2.5``: Added the ``reason`` key to the
# WebSocket disconnect event." The websocket scope says 2.5, since
# websocket.disconnect has it.
WEBSOCKET_SPEC_VERSION = "2.5"

# Flow control, one bound in each direction:
READ_PAUSE_BYTES = 64 * 1024    # stop reading the socket while this much body waits for the app
WRITE_HIGH_WATER = 64 * 1024    # send() waits while the transport holds more than this unsent
LINGER_SECONDS = 2.0            # after a WebSocket's TCP FIN, how long to drain the client's bytes
WS_CLOSE_TIMEOUT = 5.0          # after our Close frame, how long the client's may take
ABORT_GRACE_SECONDS = 0.5       # past the graceful bound: to react to http.disconnect, then to cancellation


class ClientDisconnected(OSError):
    """ASGI HTTP spec ("Disconnected Client"): "If ``send()`` is called on a closed
    connection the server should raise a server-specific subclass of ``OSError``"."""


# ── 1. The command line ──────────────────────────────────────────────────────

def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m servers.asgi_server",
        description="Serve an ASGI 3 application over HTTP/1.1 with one asyncio event loop: "
                    "every connection is an asyncio.Protocol, every request one task running "
                    "app(scope, receive, send).",
        epilog="Example: python -m servers.asgi_server sample_site.asgi:application --trace "
               "--server-timing. The Server-Timing header leaves with http.response.start, so its "
               "app;dur is the time until the application sent that message (for a stream, not "
               "the whole stream) and total;dur adds the time since the request head was parsed. "
               "SIGTERM or Ctrl-C stops gracefully: requests and streams already running get "
               "--graceful-timeout to finish; a second signal stops at once.")
    parser.add_argument("app", metavar="MODULE:ATTR",
                        help="the ASGI application, e.g. sample_site.asgi:application")
    cli.add_common_arguments(parser)
    parser.add_argument(
        "--lifespan", choices=("auto", "on", "off"), default="auto",
        help="the ASGI lifespan protocol (startup/shutdown events). auto: use it if the "
             "application supports it, carry on without it if the application raises on the "
             "lifespan scope (Django does). on: the application must support it; a failed "
             "startup exits with the application's message. off: never call it "
             "(default %(default)s)")
    parser.add_argument(
        "--limit-concurrency", type=cli.positive_int, default=None, metavar="N",
        help="serve at most N connections at once, open WebSockets included; a request on a "
             "connection beyond N gets 503 Service Unavailable with Connection: close "
             "(default: no limit)")
    parser.add_argument(
        "--loop", choices=("auto", "asyncio", "uvloop"), default="asyncio",
        help="the event loop: asyncio (the standard library, the default), uvloop (a faster "
             "drop-in loop written on libuv, if installed), or auto (uvloop when it can be "
             "imported, else asyncio, like uvicorn's auto). The server code is the same.")
    parser.add_argument(
        "--ws-max-size", type=cli.positive_int, default=16 * 1024 * 1024, metavar="BYTES",
        help="largest WebSocket message accepted; a larger one closes the WebSocket with "
             "1009 (message too big) (default 16 MiB, like uvicorn)")
    parser.add_argument(
        "--ws-ping-interval", type=_non_negative_float, default=20.0, metavar="SECONDS",
        help="send a ping on an open WebSocket after this long without a pong; 0 never "
             "pings (default %(default)s)")
    parser.add_argument(
        "--ws-ping-timeout", type=_non_negative_float, default=20.0, metavar="SECONDS",
        help="a WebSocket whose pong does not come within this long is dropped; 0 pings "
             "without ever dropping (default %(default)s)")
    forwarded.add_argument(parser)
    tuning.add_gc_freeze_argument(parser)
    tuning.add_mmap_threshold_argument(parser)
    return parser


def _non_negative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a number of seconds >= 0, got {text!r}")
    return value


def raise_open_file_limit() -> None:
    """Every connection is a file descriptor; Linux's soft limit (1024) would stop
    the server near 1,000 WebSockets. Raise it to the hard limit, which the
    process may do for itself."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        except (ValueError, OSError):
            # macOS reports an unlimited hard limit but refuses a soft one above
            # kern.maxfilesperproc (10240 by default): ask for that instead.
            if sys.platform == "darwin":
                with contextlib.suppress(ValueError, OSError):
                    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 10240), hard))


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    try:
        host, port = cli.parse_bind(args.bind)
        app = cli.load_app(args.app)
        loop_factory, loop_name = choose_loop(args.loop)
    except cli.StartupError as exc:
        cli.fail(str(exc))
    raise_open_file_limit()
    server = Server(app, args, (host, port), loop_name)  # port None: a Unix socket
    with asyncio.Runner(loop_factory=loop_factory) as runner:
        failure = runner.run(server.serve())
    if failure:
        cli.fail(failure)
    if server.cut_short and threading.active_count() > 1:
        # A sync view still running in a worker thread (Django runs those through
        # sync_to_async) cannot be stopped: Python has no way to cancel a thread, and
        # would wait for it at exit. --graceful-timeout is the bound, so leave now.
        sys.stdout.flush()
        sys.stderr.flush()
        cli.remove_socket_files()
        os._exit(0)


def choose_loop(name: str):
    """--loop: (a loop factory for asyncio.Runner, the name to announce)."""
    if name == "asyncio":
        return None, "asyncio"
    try:
        import uvloop
    except ImportError:
        if name == "uvloop":
            raise cli.StartupError("--loop uvloop: uvloop is not installed") from None
        return None, "asyncio"
    return uvloop.new_event_loop, "uvloop"


# ── 2. The server: lifespan, accepting connections, shutting down ────────────

class Server:
    def __init__(self, app, args: argparse.Namespace, address: tuple[str, int | None], loop_name: str):
        self.app = app
        self.args = args
        self.address = address
        self.loop_name = loop_name
        self.limits = cli.limits_from_args(args)
        self.timeouts = TimeoutPolicy.from_args(args)
        # ASGI lifespan spec ("Lifespan State"): "The server will ensure that a
        # *shallow copy* of the namespace is passed into each subsequent
        # request/response call into the application."
        self.state: dict = {}
        self.connections: set[HttpConnection] = set()
        self.shutting_down = False
        self.all_closed = asyncio.Event()
        self.trace_count = 0
        self.cut_short = False           # the graceful bound passed with connections open
        # Measuring costs a clock read or two per request; only when asked.
        self.observed = trace.observed(args)

    async def serve(self) -> str | None:
        """Run until SIGTERM/SIGINT; return None, or why the server could not start."""
        loop = asyncio.get_running_loop()
        lifespan = Lifespan(self.app, self.args.lifespan, self.state)
        failure = await lifespan.startup()
        if failure is not None:
            return failure
        # What exists now (the application, and what its startup built) lives as
        # long as the server; see tuning.freeze_startup_objects().
        frozen = tuning.freeze_if_asked(self.args)
        frozen += tuning.fix_mmap_threshold_if_asked(self.args)
        # ASGI lifespan spec ("Startup"): "Sent to the application when the server is
        # ready to startup and receive connections, but before it has started to do
        # so." The port opens only now.
        try:
            listener = cli.open_listener(*self.address)
        except cli.StartupError as exc:
            await lifespan.shutdown(self.args.graceful_timeout)
            return str(exc)

        stop, stop_now = asyncio.Event(), asyncio.Event()

        def on_signal() -> None:
            (stop_now if stop.is_set() else stop).set()

        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, on_signal)

        listening = await loop.create_server(lambda: HttpConnection(self), sock=listener)
        limit = self.args.limit_concurrency
        cli.announce(listener, f"asgi, {self.loop_name} event loop, lifespan {lifespan.status}"
                                    + (f", at most {limit} connections" if limit else "") + frozen)
        await stop.wait()

        listening.close()                    # stop accepting; running connections go on
        await self.drain(stop_now)
        await lifespan.shutdown(self.args.graceful_timeout)
        return None

    async def drain(self, stop_now: asyncio.Event) -> None:
        """Graceful shutdown: idle connections close now, busy ones after their
        response; whatever still runs at --graceful-timeout is disconnected."""
        self.shutting_down = True
        for connection in list(self.connections):
            connection.close_when_idle()
        if self.connections:
            waiters = [asyncio.ensure_future(self.all_closed.wait()),
                       asyncio.ensure_future(stop_now.wait())]
            await asyncio.wait(waiters, timeout=self.args.graceful_timeout,
                               return_when=asyncio.FIRST_COMPLETED)
            for waiter in waiters:
                waiter.cancel()
        self.cut_short = bool(self.connections)
        tasks = [connection.cycle.task for connection in self.connections if connection.cycle]
        for connection in list(self.connections):
            connection.abort()
        if tasks:
            # An application awaiting receive() now gets http.disconnect, and its
            # next send() raises ClientDisconnected; one that ignores both is cancelled.
            _, pending = await asyncio.wait(tasks, timeout=ABORT_GRACE_SECONDS)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending, timeout=ABORT_GRACE_SECONDS)

    def connection_closed(self, connection: "HttpConnection") -> None:
        self.connections.discard(connection)
        if self.shutting_down and not self.connections:
            self.all_closed.set()


class Lifespan:
    """Lifespan spec 2.0: one long-lived call of the application with a "lifespan"
    scope; the server sends lifespan.startup before accepting connections and
    lifespan.shutdown after the last one closed, and waits for each reply."""

    def __init__(self, app, mode: str, state: dict):
        self.app = app
        self.mode = mode
        self.state = state
        self.events: asyncio.Queue = asyncio.Queue()
        self.replied = asyncio.Event()
        self.task: asyncio.Task | None = None
        self.started = False
        self.failure: str | None = None
        self.status = "off" if mode == "off" else "on"

    async def startup(self) -> str | None:
        """None when the server may accept connections, else the reason it may not."""
        if self.mode == "off":
            return None
        self.task = asyncio.create_task(self.run())
        await self.events.put({"type": "lifespan.startup"})
        # ASGI lifespan spec ("Startup Complete"): "A server must wait for this
        # message before it starts processing connections." run() also sets
        # `replied` if the app returns.
        await self.replied.wait()
        return self.failure

    async def run(self) -> None:
        scope = {
            "type": "lifespan",
            "asgi": {"version": "3.0", "spec_version": LIFESPAN_SPEC_VERSION},
            "state": self.state,
        }
        try:
            await self.app(scope, self.receive, self.send)
        except Exception as exc:
            reason = f"{type(exc).__name__}: {exc}"
            if self.started or self.mode == "on":
                traceback.print_exc()
                self.failure = self.failure or f"lifespan failed: {reason}"
            else:
                # ASGI lifespan spec ("Scope"): "If an exception is raised when
                # calling the application callable with a ``lifespan.startup``
                # message or a ``scope`` with type ``lifespan``, the server must
                # continue but not send any lifespan events."
                self.status = "unsupported by the app"
                trace.log(f"lifespan: the application does not support it ({reason}); "
                          f"carrying on without it (--lifespan on would stop here)")
        finally:
            self.replied.set()

    async def receive(self) -> dict:
        return await self.events.get()

    async def send(self, message: dict) -> None:
        kind = message.get("type")
        if kind == "lifespan.startup.complete":
            self.started = True
        elif kind == "lifespan.startup.failed":
            # ASGI lifespan spec ("Startup Failed"): "If a server sees this it should
            # log/print the message provided and then exit."
            self.failure = f"lifespan startup failed: {message.get('message') or '(no message)'}"
        elif kind == "lifespan.shutdown.failed":
            trace.log(f"lifespan shutdown failed: {message.get('message') or '(no message)'}")
        elif kind != "lifespan.shutdown.complete":
            raise RuntimeError(f"ASGI lifespan spec: unexpected message {kind!r} sent by the application")
        self.replied.set()

    async def shutdown(self, timeout: float) -> None:
        if self.task is None or self.task.done() or not self.started:
            return
        self.replied.clear()
        await self.events.put({"type": "lifespan.shutdown"})
        # ASGI lifespan spec ("Shutdown Complete"): "A server must wait for this
        # message before terminating"; within the graceful bound, though, so a hung
        # shutdown cannot hang the server.
        try:
            await asyncio.wait_for(self.replied.wait(), timeout)
        except asyncio.TimeoutError:
            trace.log("lifespan: no reply to lifespan.shutdown within --graceful-timeout")
        self.task.cancel()


# ── 3. One connection: bytes in, events out ──────────────────────────────────

class HttpConnection(asyncio.Protocol):
    """One TCP connection, from accept to close. asyncio calls the methods below
    (connection_made, data_received, ...) as things happen on the socket."""

    def __init__(self, server: Server):
        self.server = server
        self.app = server.app
        self.args = server.args
        self.loop = asyncio.get_running_loop()
        self.parser = http11.ServerConnection(server.limits, server_header=SERVER_SOFTWARE.encode())
        self.transport: asyncio.Transport | None = None
        self.cycle: RequestCycle | None = None
        self.timer: asyncio.TimerHandle | None = None
        self.deadline = 0.0            # loop time at which on_deadline runs
        self.on_deadline = None        # head_timed_out, idle_timed_out, or None
        self.idle = False              # waiting between requests (the keep-alive deadline runs)
        self.head_started = False      # some bytes of the next head have arrived
        self.reading_paused = False
        self.writable = asyncio.Event()
        self.writable.set()
        self.over_limit = False
        self.websocket: WebSocketCycle | None = None   # once the request asked for one

    def connection_made(self, transport: asyncio.Transport) -> None:
        self.transport = transport
        # pause_writing() is called when more than WRITE_HIGH_WATER bytes wait to
        # be sent, resume_writing() when the buffer has drained to a quarter of it.
        transport.set_write_buffer_limits(high=WRITE_HIGH_WATER)
        self.client = cli.client_address(transport.get_extra_info("peername"))
        self.sockname = cli.server_address(transport.get_extra_info("sockname"))
        self.server.connections.add(self)
        limit = self.args.limit_concurrency
        self.over_limit = limit is not None and len(self.server.connections) > limit
        # The first request head must arrive within --timeout.
        self.set_deadline(Waiting.FIRST_REQUEST, self.head_timed_out)

    def data_received(self, data: bytes) -> None:
        if self.websocket is not None:
            self.websocket.data_received(data)
            return
        if self.cycle is None:
            self.head_started = True
        events = self.parser.receive(data)
        if events:
            self.handle_events(events)
        elif self.parser.paused:
            # The client pipelined the next request while this response is being
            # produced; leave it in the kernel until we are ready (TCP back-pressure).
            self.pause_reading()
        elif self.idle:
            # A keep-alive connection woke up: the head now has --timeout to arrive.
            self.idle = False
            self.set_deadline(Waiting.REST_OF_HEAD, self.head_timed_out)

    def handle_events(self, events: list) -> None:
        for event in events:
            if self.websocket is not None:
                return                   # the connection left HTTP: see WebSocketCycle
            # A cycle that ended early (an error, a refusal) ignores the rest of its body.
            if isinstance(event, http11.Data):
                if self.cycle is not None:
                    self.cycle.body_arrived(event.data)
            elif isinstance(event, http11.Request):
                self.start_cycle(event)
            elif isinstance(event, http11.EndOfMessage):
                if self.cycle is not None:
                    self.cycle.body_complete()
            elif isinstance(event, http11.ConnectionClosed):
                self.transport.close()
            else:
                self.protocol_error(event)

    def start_cycle(self, request: http11.Request) -> None:
        self.on_deadline = None
        self.idle = self.head_started = False
        if self.over_limit:
            self.refuse(503, f"server busy: more than {self.args.limit_concurrency} connections")
            return
        path = request.path
        # ASGI HTTP spec ("HTTP Connection Scope"): "``path`` (*Unicode string*) --
        # HTTP request target excluding any query string, with percent-encoded
        # sequences and UTF-8 byte sequences decoded into characters." raw_path is
        # as received.
        if b"%" in path:
            path_text = unquote_to_bytes(path).decode("utf-8", "replace")
        else:
            path_text = path.decode("ascii")
        if websocket.is_upgrade(request):
            self.start_websocket(request, path_text)
            return
        client, scheme = self.args.forwarded_allow_ips.client_and_scheme(self.client, request.headers)
        # ASGI HTTP spec, the connection scope; keys in the order of the WSGI environ.
        scope = {
            "type":         "http",
            "asgi":         {"version": "3.0", "spec_version": HTTP_SPEC_VERSION},
            "http_version": request.http_version,    # '1.1'
            "method":       request.method,          # 'GET'
            "scheme":       scheme,
            "path":         path_text,               # '/caf\u00e9'
            "raw_path":     path,                    # b'/caf%C3%A9'
            "query_string": request.query,           # b'ms=50'
            "root_path":    "",                      # mounted at /, like SCRIPT_NAME ''
            "headers":      request.headers,         # [(b'host', b'127.0.0.1:8000'), ...]
            "client":       client,                  # ('127.0.0.1', 51234)
            "server":       self.sockname,           # ('127.0.0.1', 8000)
            "state":        self.server.state.copy(),
        }
        cycle = RequestCycle(self, request, scope)
        self.cycle = cycle
        cycle.task = self.loop.create_task(cycle.run(self.app))

    def start_websocket(self, request: http11.Request, path_text: str) -> None:
        """The request asks for a WebSocket: judge the handshake (RFC 6455 §4.2.1),
        then hand the connection to a WebSocketCycle, which asks the application."""
        handshake = websocket.check_handshake(request)
        if isinstance(handshake, websocket.Rejection):
            body = handshake.reason.encode() + b"\n"
            headers = [*handshake.headers, (b"content-type", b"text/plain; charset=utf-8"),
                       (b"connection", b"close")]
            self.transport.write(self.parser.start_response(handshake.status, headers,
                                                            content_length=len(body))
                                 + self.parser.send_body(body) + self.parser.end_response())
            self.transport.close()
            if self.args.trace:
                self.server.trace_count += 1
                shown = trace.Trace("asgi", self.server.trace_count)
                shown.request_head(request.raw)
                shown.response(handshake.status, headers)
                shown.raw_block("response body", body)
            return
        # Bytes after the head (a client may send its first frame without waiting
        # for the 101) belong to the WebSocket now, not to HTTP.
        early = self.parser.switch_protocols()
        client, scheme = self.args.forwarded_allow_ips.client_and_scheme(
            self.client, request.headers, "ws")
        # ASGI WebSocket spec ("Websocket Connection Scope"); the keys in the order
        # of the HTTP scope, without method, with subprotocols.
        scope = {
            "type":         "websocket",
            "asgi":         {"version": "3.0", "spec_version": WEBSOCKET_SPEC_VERSION},
            "http_version": request.http_version,    # '1.1'
            "scheme":       scheme,
            "path":         path_text,               # '/ws/echo'
            "raw_path":     request.path,            # b'/ws/echo'
            "query_string": request.query,           # b''
            "root_path":    "",
            "headers":      request.headers,         # [(b'host', b'127.0.0.1:8000'), (b'upgrade', ...
            "client":       client,                  # ('127.0.0.1', 51234)
            "server":       self.sockname,           # ('127.0.0.1', 8000)
            "subprotocols": handshake.subprotocols,  # ['chat']
            "state":        self.server.state.copy(),
            # ASGI extensions ("Websocket Denial Response"): "ASGI Servers that
            # implement this extension will provide ``websocket.http.response`` in
            # the extensions part of the scope"
            "extensions":   {"websocket.http.response": {}},
        }
        cycle = WebSocketCycle(self, request, scope, handshake, early)
        self.cycle = self.websocket = cycle
        # Nothing more is read until the application accepts: frames before the
        # 101 would have nowhere to go.
        self.pause_reading()
        cycle.task = self.loop.create_task(cycle.run(self.app))

    def protocol_error(self, error: http11.Error) -> None:
        """The request was malformed or too large: answer its 4xx/5xx and close."""
        cycle = self.cycle
        if cycle is None or not cycle.response_started:
            self.transport.write(self.parser.error_response(error.status, error.reason))
        if cycle is not None:
            cycle.client_gone()                  # the application's next send() raises
        self.transport.close()

    def refuse(self, status: int, reason: str) -> None:
        self.transport.write(self.parser.error_response(status, reason))
        self.transport.close()

    # -- flow control --------------------------------------------------------

    def pause_reading(self) -> None:
        if not self.reading_paused:
            self.reading_paused = True
            self.transport.pause_reading()

    def resume_reading(self) -> None:
        if self.reading_paused:
            self.reading_paused = False
            self.transport.resume_reading()

    def pause_writing(self) -> None:        # called by the transport
        self.writable.clear()

    def resume_writing(self) -> None:       # called by the transport
        self.writable.set()

    # -- the end of a response, of the connection ------------------------------

    def response_done(self) -> None:
        """The cycle sent its last body message: serve the next request or close."""
        self.cycle = None
        if not self.parser.keep_alive or self.server.shutting_down:
            self.transport.close()
            return
        events = self.parser.next_request()
        self.resume_reading()
        if events:
            self.head_started = True
            self.handle_events(events)
        if self.cycle is None and not self.transport.is_closing():
            self.idle = True
            self.set_deadline(Waiting.NEXT_REQUEST, self.idle_timed_out)

    # -- timeouts: a deadline per connection, at most one timer -----------------
    # asyncio keeps its timers in a heap; a timer created and cancelled for every
    # request of a keep-alive connection costs a heap entry each time. Instead the
    # connection keeps one deadline: moving it later is an assignment, and the
    # timer, if it fires before the deadline it now has, sets itself again.

    def set_deadline(self, waiting: Waiting, action) -> None:
        # How long to wait is servers/timeouts.py's policy, shared with the other servers.
        self.deadline = self.server.timeouts.deadline(waiting, self.loop.time())
        self.on_deadline = action
        timer = self.timer
        if timer is None or self.deadline < timer.when():
            if timer is not None:
                timer.cancel()
            self.timer = self.loop.call_at(self.deadline, self.deadline_reached)

    def deadline_reached(self) -> None:
        self.timer = None
        action = self.on_deadline
        if action is None:                   # a request started since: nothing is due
            return
        if self.loop.time() < self.deadline:  # the deadline moved later since
            self.timer = self.loop.call_at(self.deadline, self.deadline_reached)
            return
        self.on_deadline = None
        action()

    def idle_timed_out(self) -> None:
        # No next request within --keepalive: close quietly, the client expects that.
        if self.head_started:
            self.head_timed_out()
        else:
            self.transport.close()

    def head_timed_out(self) -> None:
        # RFC 9110 §15.5.9: "The 408 (Request Timeout) status code indicates that the
        # server did not receive a complete request message within the time that it
        # was prepared to wait."
        if self.head_started:
            self.refuse(408, "request head not received within the timeout")
        else:
            self.transport.close()

    def close_when_idle(self) -> None:
        """Shutdown began: an idle connection closes now, a busy one after its
        response, a WebSocket with its closing handshake."""
        if self.websocket is not None:
            self.websocket.server_shutdown()
        elif self.cycle is None:
            self.transport.close()

    def abort(self) -> None:
        """The graceful bound passed: drop the connection, tell the application."""
        if self.cycle is not None:
            self.cycle.client_gone()
        self.transport.abort()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.timer is not None:
            self.timer.cancel()
        if self.cycle is not None:
            self.cycle.client_gone()
        self.writable.set()                # wake a send() waiting to write: it will raise
        self.server.connection_closed(self)


# ── 4. One request/response cycle: the ASGI receive and send ────────────────

def check_header_pairs(headers, what: str) -> None:
    """Each header an application sends is a [name, value] pair of byte strings, in an
    HTTP response and in a WebSocket's accept alike; `what` names them in the error."""
    for pair in headers:
        try:
            name, value = pair
        except (TypeError, ValueError):
            name = value = None
        if type(name) is not bytes or type(value) is not bytes:
            raise TypeError(f"{what} are [name, value] byte strings, got {pair!r:.80}")


class Traced:
    """--trace for a cycle, HTTP or WebSocket: its head, its scope, and each message
    between the application and `receive`/`send`, in the layout every server uses."""

    __slots__ = ()

    def start_trace(self) -> None:
        server = self.connection.server
        server.trace_count += 1
        self.trace = trace.Trace("asgi", server.trace_count)
        self.trace.request_head(self.request.raw)
        self.trace.mapping("scope", self.scope)

    async def traced_receive(self) -> dict:
        message = await self.receive()
        self.trace.message("receive() -> app", message)
        return message

    async def traced_send(self, message: dict) -> None:
        self.trace.message("app -> send()", message)
        await self.send(message)


class RequestCycle(Traced):
    """One request and its response. `receive` and `send` are the ASGI callables."""

    def __init__(self, connection: HttpConnection, request: http11.Request, scope: dict):
        self.connection = connection
        self.transport = connection.transport
        self.parser = connection.parser
        self.request = request
        self.scope = scope
        self.task: asyncio.Task | None = None
        # The request body, as http11 hands it over, until the app takes it.
        self.chunks: list[bytes] = []
        self.buffered = 0
        self.more_body = True            # http11 has not yet given EndOfMessage
        self.body_taken = False          # the app got the last http.request message
        self.disconnected = False
        # The futures receive() calls wait on (usually none, or one): woken by new
        # body bytes, the end of the body, the end of the response, a disconnect.
        self.waiters: list[asyncio.Future] = []
        # The response.
        self.response_started = False
        self.response_complete = False
        # ASGI HTTP spec ("Response Start"): "Protocol servers *need not* flush the
        # data generated by this event to the send buffer until the first *Response
        # Body* event is processed." The head waits, to leave in one write with the
        # first body when the application sends that at once (most do), else on the
        # loop's next turn.
        self.head = b""
        self.status = 0
        self.sent = 0
        self.trace = None
        self.phases = ()                 # (name, seconds) pairs once measured
        if connection.server.observed:
            self.received_at = time.perf_counter()

    # -- from http11 ----------------------------------------------------------

    def body_arrived(self, data: bytes) -> None:
        self.chunks.append(data)
        self.buffered += len(data)
        if self.buffered > READ_PAUSE_BYTES:
            # The application reads slower than the client sends: stop reading the
            # socket until receive() takes what is here; TCP then slows the client.
            self.connection.pause_reading()
        self.wake_receive()

    def body_complete(self) -> None:
        self.more_body = False
        self.wake_receive()

    def client_gone(self) -> None:
        self.disconnected = True
        self.wake_receive()

    def wake_receive(self) -> None:
        for waiter in self.waiters:
            if not waiter.done():
                waiter.set_result(None)

    async def wait_for_news(self) -> None:
        waiter = self.connection.loop.create_future()
        self.waiters.append(waiter)
        try:
            await waiter
        finally:
            self.waiters.remove(waiter)

    # -- running the application -----------------------------------------------

    async def run(self, app) -> None:
        receive, send = self.receive, self.send
        if self.connection.server.args.trace:
            receive, send = self.traced_receive, self.traced_send
            self.start_trace()
        if self.connection.server.observed:
            self.app_started_at = time.perf_counter()
        try:
            await app(self.scope, receive, send)
        except ClientDisconnected:
            # ASGI HTTP spec ("Disconnected Client"): "Servers must be prepared to
            # catch this exception if they raised it and should not log it as an
            # error in their server logs."
            pass
        except Exception:
            self.log(f"the application raised an exception:\n{traceback.format_exc()}")
            self.end_with_error()
        else:
            if not self.response_complete and not self.disconnected:
                self.log("the application returned before its response was complete"
                         if self.response_started else "the application returned without a response")
                self.end_with_error()

    def end_with_error(self) -> None:
        # Before the response started the client can still be told (500); after,
        # only closing the connection says the response is incomplete.
        if self.disconnected or self.response_complete:
            return
        self.response_complete = True
        self.connection.cycle = None
        if not self.response_started:
            self.transport.write(self.parser.error_response(500, "Internal Server Error"))
            self.status = 500
        self.transport.close()
        server = self.connection.server
        if server.observed:
            self.log_finished(server)

    def log(self, text: str) -> None:
        request = self.request
        trace.log(f"asgi_server: {request.method} {request.target.decode('latin-1')}: {text}")

    # -- receive(): the request body, then http.disconnect ------------------------

    async def receive(self) -> dict:
        if not self.body_taken:
            if self.request.expect_continue and not self.response_started:
                # RFC 9110 §10.1.1: the client waits for 100 Continue before it sends
                # the body; asking for the body is the application's yes.
                self.transport.write(self.parser.send_continue())
            if not self.chunks and self.more_body and not self.disconnected:
                await self.wait_for_news()
            if self.disconnected:
                return {"type": "http.disconnect"}
            chunks = self.chunks
            body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
            chunks.clear()
            self.buffered = 0
            self.connection.resume_reading()
            self.body_taken = not self.more_body
            # ASGI HTTP spec ("Request"): "If ``True``, the consuming application
            # should wait until it gets a chunk with this set to ``False``."
            return {"type": "http.request", "body": body, "more_body": self.more_body}
        # ASGI HTTP spec ("Disconnect"): "Sent to the application if receive is
        # called after a response has been sent or after the HTTP connection has
        # been closed." Until then, this call waits.
        if not self.disconnected and not self.response_complete:
            await self.wait_for_news()
        return {"type": "http.disconnect"}

    # -- send(): http.response.start, then http.response.body ... -------------

    async def send(self, message: dict) -> None:
        try:
            kind = message["type"]
        except (TypeError, KeyError):
            raise TypeError(f"ASGI: send() takes a message dict with a 'type' key, "
                            f"got {message!r:.80}") from None
        if self.response_complete:
            raise RuntimeError(f"ASGI HTTP spec: {kind!r} sent after the response was complete "
                               f"(an http.response.body with more_body False ends it)")
        if self.disconnected:
            raise ClientDisconnected(f"the client disconnected; {kind!r} cannot be sent")
        if not self.response_started:
            if kind != "http.response.start":
                raise RuntimeError(f"ASGI HTTP spec: the first message must be "
                                   f"'http.response.start', got {kind!r}")
            self.start_response(message)
            return
        if kind != "http.response.body":
            raise RuntimeError(f"ASGI HTTP spec: after 'http.response.start' only "
                               f"'http.response.body' may be sent, got {kind!r}")
        body = message.get("body", b"")
        more_body = message.get("more_body", False)
        if not isinstance(body, (bytes, bytearray)):
            raise TypeError(f"ASGI HTTP spec: http.response.body 'body' must be a byte "
                            f"string, got {type(body).__name__}")
        if type(more_body) is not bool:
            raise TypeError(f"ASGI HTTP spec: 'more_body' must be a bool, got {type(more_body).__name__}")
        data = self.parser.send_body(body)
        if self.head:
            # One write for the head and the first body: one system call, one packet.
            data = self.head + data
            self.head = b""
        if more_body:
            self.transport.write(data)
            self.sent += len(body)
            # ASGI HTTP spec ("Response Body"): "Protocol servers must flush any data
            # passed to them into the send buffer before returning from a send call";
            # while the client reads slower than we write, wait here instead of
            # buffering more.
            if not self.connection.writable.is_set():
                await self.connection.writable.wait()
                if self.disconnected:
                    raise ClientDisconnected("the client disconnected while the response was sent")
            return
        self.transport.write(data + self.parser.end_response())
        self.sent += len(body)
        self.finish()

    def start_response(self, message: dict) -> None:
        status = message.get("status")
        headers = message.get("headers", ())
        if type(status) is not int:
            raise TypeError(f"ASGI HTTP spec: http.response.start 'status' must be an int, "
                            f"got {status!r:.40}")
        if not 200 <= status <= 599:
            # Interim (1xx) responses are not part of the ASGI HTTP messages.
            raise ValueError(f"ASGI HTTP spec: http.response.start needs a final status "
                             f"(200-599), got {status}")
        check_header_pairs(headers, "ASGI HTTP spec: response headers")
        server = self.connection.server
        if server.observed:
            now = time.perf_counter()
            self.phases = [("app", now - self.app_started_at), ("total", now - self.received_at)]
            if server.args.server_timing:
                # The header leaves with http.response.start, so "app" is the time
                # until the application sent that message, not until its last byte.
                headers = [*headers, (b"server-timing", trace.server_timing(self.phases).encode())]
        if server.shutting_down:
            headers = [*headers, (b"connection", b"close")]
        # http11 checks names and values and picks the framing: Content-Length if
        # given, else chunked (HTTP/1.1) or close-delimited (HTTP/1.0); HEAD gets no body.
        self.head = self.parser.start_response(status, headers)
        self.status = status
        self.response_started = True
        # An event stream may wait long for its first event; its client should
        # see the status and headers now, not then.
        self.connection.loop.call_soon(self.flush_head)
        if self.trace is not None:
            self.trace.response(status, headers)

    def flush_head(self) -> None:
        if self.head and not self.disconnected:
            self.transport.write(self.head)
            self.head = b""

    def finish(self) -> None:
        self.response_complete = True
        self.wake_receive()                # a receive() waiting for http.disconnect returns
        server = self.connection.server
        if server.observed:
            self.log_finished(server)
        self.connection.response_done()

    # -- the teaching views: access log, --trace ------------------------------

    def log_finished(self, server: Server) -> None:
        seconds = time.perf_counter() - self.received_at
        request = self.request
        if server.args.access_log:
            trace.access_line(self.connection.client, request, self.status, self.sent, seconds)
        if self.trace is not None:
            self.trace.timing([*self.phases, ("complete", seconds)])



# ── 5. One WebSocket: the ASGI websocket messages over RFC 6455 frames ─────────

# Its states, in the order a WebSocket lives them.
CONNECTING = "connecting"   # websocket.connect handed over; waiting for accept or close
DENYING = "denying"         # the application sends an HTTP response instead (extension)
OPEN = "open"               # accepted: messages both ways
CLOSING = "closing"         # our Close frame is sent; waiting for the client's
CLOSED = "closed"           # the application has (or will get) websocket.disconnect


class WebSocketCycle(Traced):
    """One WebSocket, from the handshake to the disconnect. `receive` and `send`
    are the ASGI callables; the frames are servers.websocket's business.

    An idle WebSocket costs this object, its websocket.Connection, and the task of
    the application waiting in receive(): no task or timer of the server's own
    besides the keep-alive ping timer, so __slots__ keep the objects small.
    """

    __slots__ = ("connection", "transport", "request", "scope", "handshake", "early",
                 "protocol", "state", "connect_sent", "inbox", "inbox_bytes", "waiter",
                 "disconnect", "task", "trace", "ping_timer", "awaiting_pong", "close_timer",
                 "received_at")

    def __init__(self, connection: HttpConnection, request: http11.Request, scope: dict,
                 handshake: websocket.Handshake, early: bytes):
        self.connection = connection
        self.transport = connection.transport
        self.request = request
        self.scope = scope
        self.handshake = handshake
        self.early = early                      # frame bytes that came with the head
        self.protocol: websocket.Connection | None = None
        self.state = CONNECTING
        self.connect_sent = False
        # Received messages the application has not taken yet, and their size.
        self.inbox: collections.deque = collections.deque()
        self.inbox_bytes = 0
        self.waiter: asyncio.Future | None = None
        self.disconnect: dict | None = None    # the websocket.disconnect message, once known
        self.task: asyncio.Task | None = None
        self.trace = None
        self.ping_timer: asyncio.TimerHandle | None = None
        self.awaiting_pong = False
        self.close_timer: asyncio.TimerHandle | None = None
        self.received_at = time.perf_counter() if connection.server.observed else 0.0

    # -- running the application -----------------------------------------------

    async def run(self, app) -> None:
        receive, send = self.receive, self.send
        if self.connection.server.args.trace:
            receive, send = self.traced_receive, self.traced_send
            self.start_trace()
        try:
            await app(self.scope, receive, send)
        except ClientDisconnected:
            # ASGI WebSocket spec ("Disconnected Client - send exception"): "Servers
            # must be prepared to catch this exception if they raised it and should
            # not log it as an error in their server logs."
            pass
        except Exception:
            self.log(f"the application raised an exception:\n{traceback.format_exc()}")
            self.end(1011, "internal error")
        else:
            if self.state is CONNECTING:
                self.log("the application returned without accepting or closing the WebSocket")
            self.end(1000, "")

    def end(self, code: int, reason: str) -> None:
        """The application is gone. ASGI WebSocket spec ("Websocket Connection
        Scope"): "if the application dies the socket should be closed"."""
        if self.state is CONNECTING:
            self.http_error(500)
        elif self.state is DENYING:
            self.transport.close()          # a response cut short
            self.closed(1006, "")
        elif self.state is OPEN:
            self.start_closing(code, reason)

    def log_access(self, status: int) -> None:
        """--access-log: one line when the handshake is answered (101, or the refusal),
        with the time the application took to answer websocket.connect."""
        if self.connection.args.access_log:
            trace.access_line(self.connection.client, self.request, status, 0,
                              time.perf_counter() - self.received_at)

    def log(self, text: str) -> None:
        trace.log(f"asgi_server: WebSocket {self.request.target.decode('latin-1')}: {text}")

    # -- receive(): websocket.connect, websocket.receive ..., websocket.disconnect --

    async def receive(self) -> dict:
        if not self.connect_sent:
            # ASGI WebSocket spec ("Connect - receive event"): "The protocol server
            # must send this message during the handshake phase of the WebSocket and
            # not complete the handshake until it gets a reply"
            self.connect_sent = True
            return {"type": "websocket.connect"}
        while True:
            inbox = self.inbox
            if inbox:
                message = inbox.popleft()
                self.inbox_bytes -= len(message["text"] if "text" in message else message["bytes"])
                if self.inbox_bytes <= READ_PAUSE_BYTES and self.state is not CLOSED:
                    self.connection.resume_reading()
                return message
            if self.disconnect is not None:
                return self.disconnect
            self.waiter = self.connection.loop.create_future()
            try:
                await self.waiter
            finally:
                self.waiter = None

    def wake(self) -> None:
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def closed(self, code: int, reason: str) -> None:
        """The WebSocket is over for the application: its receive() gets this
        websocket.disconnect (after the messages already received)."""
        self.state = CLOSED
        self.cancel_timers()
        if self.disconnect is None:
            # ASGI WebSocket spec ("Disconnect - receive event"): "``code`` (*int*) --
            # The WebSocket close code, as per the WebSocket spec." ... "``reason``
            # (*Unicode string*) -- A reason given for the disconnect"
            self.disconnect = {"type": "websocket.disconnect", "code": code, "reason": reason}
        self.wake()

    # -- send(): websocket.accept or websocket.close, then websocket.send ... ----

    async def send(self, message: dict) -> None:
        try:
            kind = message["type"]
        except (TypeError, KeyError):
            raise TypeError(f"ASGI: send() takes a message dict with a 'type' key, "
                            f"got {message!r:.80}") from None
        state = self.state
        if state is OPEN and kind == "websocket.send":
            await self.send_message(message)
        elif state is CONNECTING:
            if kind == "websocket.accept":
                self.accept(message)
            elif kind == "websocket.close":
                # ASGI WebSocket spec ("Close - send event"): "If this is sent before
                # the socket is accepted, the server must close the connection with a
                # HTTP 403 error code (Forbidden), and not complete the WebSocket
                # handshake"
                self.http_error(403)
            elif kind == "websocket.http.response.start":
                self.deny(message)
            else:
                raise RuntimeError(f"ASGI WebSocket spec: the reply to websocket.connect is "
                                   f"'websocket.accept', 'websocket.close' or "
                                   f"'websocket.http.response.start', got {kind!r}")
        elif state is DENYING and kind == "websocket.http.response.body":
            self.deny_body(message)
        elif state is OPEN and kind == "websocket.close":
            code = message.get("code", 1000)
            reason = message.get("reason") or ""
            if type(code) is not int or not websocket.valid_close_code(code):
                raise ValueError(f"RFC 6455 §7.4: close code {code!r} may not be sent")
            if not isinstance(reason, str):
                raise TypeError(f"ASGI WebSocket spec: the close 'reason' is a str, got {reason!r:.40}")
            self.start_closing(code, reason)
        elif state is CLOSING or state is CLOSED:
            raise ClientDisconnected(f"the WebSocket is closed; {kind!r} cannot be sent")
        else:
            raise RuntimeError(f"ASGI WebSocket spec: {kind!r} cannot be sent "
                               f"while the WebSocket is {state}")

    async def send_message(self, message: dict) -> None:
        data = message.get("bytes")
        text = message.get("text")
        # ASGI WebSocket spec ("Send - send event"): "Exactly one of ``bytes`` or
        # ``text`` must be non-``None``."
        if (data is None) == (text is None):
            raise ValueError("ASGI WebSocket spec: websocket.send needs exactly one of "
                             "'bytes' or 'text'")
        if data is not None:
            if not isinstance(data, (bytes, bytearray)):
                raise TypeError(f"ASGI WebSocket spec: 'bytes' must be a byte string, "
                                f"got {type(data).__name__}")
            self.transport.write(self.protocol.send(bytes(data)))
        else:
            if not isinstance(text, str):
                raise TypeError(f"ASGI WebSocket spec: 'text' must be a str, got {type(text).__name__}")
            self.transport.write(self.protocol.send(text))
        # ASGI HTTP spec ("Response Body"): "Protocol servers must flush any data
        # passed to them into the send buffer before returning from a send call";
        # while the client reads slower than the application sends, wait here
        # instead of buffering more.
        writable = self.connection.writable
        if not writable.is_set():
            await writable.wait()
            if self.state is CLOSED:
                raise ClientDisconnected("the client disconnected while a message was sent")

    def accept(self, message: dict) -> None:
        subprotocol = message.get("subprotocol")
        headers = list(message.get("headers") or ())
        if subprotocol is not None and subprotocol not in self.handshake.subprotocols:
            # RFC 6455 §4.2.2: "The value chosen MUST be derived from the client's
            # handshake, specifically by selecting one of the values from the
            # |Sec-WebSocket-Protocol| field"
            raise ValueError(f"RFC 6455 §4.2.2: subprotocol {subprotocol!r} was not offered "
                             f"by the client ({self.handshake.subprotocols})")
        check_header_pairs(headers, "ASGI WebSocket spec: accept headers")
        # ASGI WebSocket spec ("Accept - send event"): "Must not include a header
        # named ``sec-websocket-protocol``; use the ``subprotocol`` key instead."
        if any(name.lower() == b"sec-websocket-protocol" for name, _ in headers):
            raise ValueError("ASGI WebSocket spec: use 'subprotocol', not a "
                             "sec-websocket-protocol header")
        response = websocket.accept_response(self.handshake.key, subprotocol, headers)
        self.transport.write(response)
        self.log_access(101)
        if self.trace is not None:
            lines = response.decode("latin-1").split("\r\n")[1:-2]
            self.trace.response(101, [line.split(": ", 1) for line in lines])
        args = self.connection.args
        self.protocol = websocket.Connection(max_message_size=args.ws_max_size)
        self.state = OPEN
        self.connection.parser = None            # HTTP is over on this connection
        self.schedule_ping()
        self.connection.resume_reading()
        early, self.early = self.early, b""
        if early:
            self.data_received(early)

    def http_error(self, status: int) -> None:
        """Refuse the handshake with a plain HTTP error (403 denied, 500 crashed)."""
        self.state = CLOSED
        parser = self.connection.parser
        self.transport.write(parser.error_response(status, HTTPStatus(status).phrase))
        self.log_access(status)
        self.transport.close()
        self.closed(1006, "")

    def deny(self, message: dict) -> None:
        # ASGI extensions ("Websocket Denial Response"): "The messages themselves
        # should be ``websocket.http.response.start`` and
        # ``websocket.http.response.body`` with a structure that matches the
        # ``http.response.start`` and ``http.response.body`` messages defined in the
        # HTTP part of the core ASGI specification."
        status = message.get("status")
        if type(status) is not int or not 200 <= status <= 599:
            raise ValueError(f"websocket.http.response.start needs an int status 200-599, got {status!r:.40}")
        headers = [*(message.get("headers") or ()), (b"connection", b"close")]
        self.transport.write(self.connection.parser.start_response(status, headers))
        self.state = DENYING
        self.log_access(status)
        if self.trace is not None:
            self.trace.response(status, headers)

    def deny_body(self, message: dict) -> None:
        body = message.get("body", b"")
        if not isinstance(body, (bytes, bytearray)):
            raise TypeError(f"websocket.http.response.body 'body' must be a byte string, "
                            f"got {type(body).__name__}")
        parser = self.connection.parser
        data = parser.send_body(bytes(body))
        if message.get("more_body", False):
            self.transport.write(data)
            return
        # ASGI extensions ("Websocket Denial Response"): "These messages cannot be
        # followed by any other websocket messages as the server should send a HTTP
        # response and then close the connection."
        self.transport.write(data + parser.end_response())
        self.transport.close()
        self.closed(1006, "")

    # -- frames in ---------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        protocol = self.protocol
        if protocol is None:                # before accept: keep them for then
            self.early += data
            return
        events = protocol.receive(data)
        reply = protocol.data_to_send()
        if reply:
            self.transport.write(reply)
        for event in events:
            if isinstance(event, websocket.Message):
                payload = event.data
                if isinstance(payload, str):
                    self.inbox.append({"type": "websocket.receive", "text": payload})
                else:
                    self.inbox.append({"type": "websocket.receive", "bytes": payload})
                self.inbox_bytes += len(payload)
            elif isinstance(event, websocket.Pong):
                if self.awaiting_pong:            # the answer: the timeout is off
                    self.awaiting_pong = False
                    self.ping_timer.cancel()
                    self.schedule_ping()
            elif isinstance(event, websocket.CloseReceived):
                self.closed(event.code, event.reason)
            elif isinstance(event, websocket.Failed):
                self.log(f"closing with {event.code}: {event.reason}")
                self.closed(event.code, event.reason)
        if protocol.closed:
            self.close_tcp()
        elif self.inbox_bytes > READ_PAUSE_BYTES:
            # The application reads slower than the client sends: stop reading the
            # socket until receive() has taken what waits; TCP then slows the client.
            self.connection.pause_reading()
        if self.inbox or self.disconnect is not None:
            self.wake()

    def client_gone(self) -> None:
        """The TCP connection is closed (by the client, by us, or aborted)."""
        if self.protocol is not None:
            self.protocol.connection_lost()
        # RFC 6455 §7.1.5: "If _The WebSocket Connection is Closed_ and no Close
        # control frame was received by the endpoint (such as could occur if the
        # underlying transport connection is lost), _The WebSocket Connection Close
        # Code_ is considered to be 1006."
        self.closed(1006, "")

    # -- closing ---------------------------------------------------------------

    def start_closing(self, code: int, reason: str) -> None:
        """Send our Close frame; the application's receive() returns
        websocket.disconnect with this code, and TCP closes when the client's
        Close arrives (or after CLOSE_TIMEOUT)."""
        if self.state is not OPEN:
            return
        self.transport.write(self.protocol.close(code, reason))
        self.state = CLOSING
        self.cancel_timers()
        self.close_timer = self.connection.loop.call_later(WS_CLOSE_TIMEOUT, self.transport.close)
        self.disconnect = {"type": "websocket.disconnect", "code": code, "reason": reason}
        self.wake()

    def close_tcp(self) -> None:
        # RFC 6455 §7.1.1: "when a server is instructed to _Close the WebSocket
        # Connection_ it SHOULD initiate a TCP Close immediately", and "An endpoint
        # SHOULD use a method that cleanly closes the TCP connection ... discarding
        # any trailing bytes that may have been received."  Closing a socket with
        # unread bytes makes the kernel send a reset, which can destroy our Close
        # frame before the client reads it; so: FIN now, read and drop until the
        # client's FIN, and close for good after LINGER_SECONDS at most.
        transport = self.transport
        if transport.is_closing():
            return
        if not transport.can_write_eof():
            transport.close()
            return
        transport.write_eof()
        self.connection.resume_reading()
        if self.close_timer is not None:
            self.close_timer.cancel()
        self.close_timer = self.connection.loop.call_later(LINGER_SECONDS, transport.close)

    def server_shutdown(self) -> None:
        # RFC 6455 §7.4.1: "1001 indicates that an endpoint is "going away", such as
        # a server going down or a browser having navigated away from a page."
        self.start_closing(1001, "server shutting down")

    # -- keep-alive pings: one timer per WebSocket, no task ----------------------

    def schedule_ping(self) -> None:
        interval = self.connection.args.ws_ping_interval
        if interval:
            self.ping_timer = self.connection.loop.call_later(interval, self.send_ping)

    def send_ping(self) -> None:
        if self.state is not OPEN:
            return
        self.transport.write(self.protocol.ping(b""))
        timeout = self.connection.args.ws_ping_timeout
        if timeout:
            self.awaiting_pong = True
            self.ping_timer = self.connection.loop.call_later(timeout, self.ping_timed_out)
        else:
            self.schedule_ping()

    def ping_timed_out(self) -> None:
        # No pong within --ws-ping-timeout: the client (or the path to it) is gone.
        self.log("no pong within --ws-ping-timeout; closing")
        self.ping_timer = None
        self.transport.abort()

    def cancel_timers(self) -> None:
        if self.ping_timer is not None:
            self.ping_timer.cancel()
            self.ping_timer = None
        self.awaiting_pong = False
        if self.close_timer is not None and self.state is CLOSED:
            self.close_timer.cancel()
            self.close_timer = None


if __name__ == "__main__":
    main()
