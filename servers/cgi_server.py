"""A CGI/1.1 runner: every request starts a new process (RFC 3875).

    python -m servers.cgi_server sample_site/cgi-bin/django.py --bind 127.0.0.1:8000
    python -m servers.cgi_server --cgi-dir tests/cgi_scripts --prefix /cgi-bin

The first form sends every request to one script (SCRIPT_NAME "", PATH_INFO the
whole path): the "front controller" that serves the Django site. The second is
the classic cgi-bin: /cgi-bin/NAME/rest runs DIR/NAME with PATH_INFO /rest.

The way of a request through this file, top to bottom:

    accept ─► a thread for the connection ─► http11 parses the request head
      ─► which script? ─► the whole request body, read into a spool (memory,
         then a temporary file) by the connection's own thread
      ─► the environment, built from nothing (RFC 3875 §4.1)
      ─► wait for a free child slot ─► spawn the script in its own process group,
         the spooled body as its stdin
      ─► child stdout ─► CGI header block ─► response
         (child stderr ─► our log, each line prefixed with the child's pid)
      ─► reap the child ─► keep-alive: the next request on the same connection

The lesson of the body: a child slot (--max-children) is the scarce thing here,
a whole process, so a request takes one only when all of it is here. A client
that uploads a byte at a time holds its own connection's thread, never a slot
that a quick request is waiting for; the price is that a script starts only
when the upload ends, and a large body goes through a temporary file.

I/O model: one thread per connection, blocking except while a child runs. Then one
selector watches the child's stdout and stderr and the client socket, so that a
child that fills its stderr pipe while we wait on stdout cannot deadlock against
us, a client that hangs up is noticed at once (its child is killed), and
--cgi-timeout is one deadline. The threads only wait; the work is done by the
children, one process each.

Where the time goes (--server-timing) is measured in Exchange.phases below.

A WebSocket handshake (Upgrade: websocket) is answered as a plain HTTP request:
the script runs and its response goes back, without a 101. A CGI script has no
way to take over the connection after its response, so there is nothing to
upgrade to. RFC 9110 §7.8: "A server MAY ignore a received Upgrade header field
if it wishes to continue using the current protocol on that connection." Django
then answers /ws/... as it answers any unknown URL; WebSocket is the ASGI
server's lesson.

Left out on purpose: NPH scripts (RFC 3875 §5), the command line of an indexed
query (§4.4), PATH_TRANSLATED, AUTH_TYPE and REMOTE_USER (no authentication
here), REMOTE_HOST/REMOTE_IDENT lookups, HTTPS, and the request body for the
target of a local redirect (§6.3.2 allows that: "may not be available").

Needs from the operating system: POSIX processes: fork+exec into a new session, killpg,
waitpid; non-blocking pipes in a selector (epoll on Linux, kqueue on macOS); a thread per
connection.
"""

from __future__ import annotations

import argparse
import itertools
import os
import re
import selectors
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from types import SimpleNamespace
from urllib.parse import unquote_to_bytes

from servers import cgi_variables, cli, forwarded, http11, linger, spool, trace, tuning
from servers.timeouts import TimeoutPolicy, Waiting
from servers.wakeup import WakeupPipe
from servers.cgi_app import TIMING_HEADER, TIMING_VARIABLE

# SERVER_SOFTWARE (RFC 3875 §4.1.17) and the Server header, as every server here
# names itself: servers.<module>/<version>.
SERVER_SOFTWARE = "servers.cgi_server/1.0"
READ_SIZE = 65536
# A CGI header block longer than this is treated as malformed output.
MAX_CGI_HEAD = 65536
# With --server-timing the response is held until the child ends; this much in memory.
SPOOL_IN_MEMORY = 1024 * 1024

# The child's environment is built from nothing: the request's meta-variables
# plus only these of our own. Anything else in the server's environment (cloud
# credentials, tokens, a developer's shell settings) must not reach a script that
# any client can run. These few are what a script needs to start at all: where programs are (PATH), the
# character set and time zone (LANG, LC_*, TZ), our virtualenv and import path
# (VIRTUAL_ENV, PYTHONPATH) and the sample site's own settings.
ENVIRONMENT_ALLOWLIST = (b"PATH", b"LANG", b"TZ", b"PYTHONPATH", b"VIRTUAL_ENV",
                         b"DJANGO_SETTINGS_MODULE", b"DJANGO_DEBUG", b"DJANGO_SECRET_KEY",
                         b"SAMPLE_SITE_DB")
ENVIRONMENT_ALLOWED_PREFIX = b"LC_"

# Header fields a script must not send because framing the response is the
# server's job. RFC 3875 §6.3.4: "The script MUST NOT return any header fields
# that relate to client-side communication issues and could affect the server's
# ability to send the response to the client. The server MAY remove any such
# header fields returned by the client."
HOP_BY_HOP = frozenset(("connection", "keep-alive", "proxy-connection", "te", "trailer",
                        "transfer-encoding", "upgrade"))

# ── Start-up: the listening socket, the accept loop ────────────────────────

def main(argv: list[str] | None = None) -> None:
    args = parse_arguments(argv)
    try:
        router = FrontController(args.script) if args.script else CgiDirectory(args.cgi_dir, args.prefix)
        host, port = cli.parse_bind(args.bind)
        listener = cli.open_listener(host, port)
    except cli.StartupError as exc:
        cli.fail(str(exc))
    # Connection threads hold request bodies of up to SPOOL_IN_MEMORY bytes in memory;
    # see tuning.fix_mmap_threshold() for why large freed blocks should go back.
    memory = tuning.fix_mmap_threshold_if_asked(args)
    server = CGIServer(args, router, listener)
    signal.signal(signal.SIGTERM, server.request_shutdown)
    signal.signal(signal.SIGINT, server.request_shutdown)
    cli.announce(listener, f"cgi, {router.summary}, up to {args.max_children} children{memory}")
    server.serve_forever()


class CGIServer:
    """The listening socket, the connections and the children they run."""

    def __init__(self, args: argparse.Namespace, router, listener: socket.socket):
        self.args = args
        self.router = router
        self.listener = listener
        self.limits = cli.limits_from_args(args)
        self.timeouts = TimeoutPolicy.from_args(args)
        self.slots = ChildSlots(args.max_children, args.queue)
        self.request_numbers = itertools.count(1)
        self.lock = threading.Lock()
        self.connections: set[Connection] = set()
        self.children: set[Child] = set()
        self.stopping = False
        self.inherited_environment = {
            name: value for name, value in os.environb.items()
            if name in ENVIRONMENT_ALLOWLIST or name.startswith(ENVIRONMENT_ALLOWED_PREFIX)}
        # A signal wakes the accept loop's selector (servers/wakeup.py).
        self.wakeup = WakeupPipe()

    def request_shutdown(self, signum, frame) -> None:
        self.stopping = True

    def serve_forever(self) -> None:
        selector = selectors.DefaultSelector()
        selector.register(self.listener, selectors.EVENT_READ)
        selector.register(self.wakeup.reader, selectors.EVENT_READ)
        while not self.stopping:
            for key, _ in selector.select():
                if key.fileobj is self.wakeup.reader:
                    self.wakeup.drain()
                elif not self.stopping:
                    self._accept()
        selector.close()
        shut_down(self)

    def _accept(self) -> None:
        try:
            sock, client = self.listener.accept()
        except OSError:  # the client gave up while in the backlog, or fds ran out
            return
        # The head and the body often leave in two small writes; without
        # TCP_NODELAY the second waits for the client's delayed ACK (~40 ms).
        # (A Unix socket has no Nagle to turn off.)
        try:
            if sock.family != socket.AF_UNIX:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:  # the client is gone already
            sock.close()
            return
        connection = Connection(self, sock, client)
        with self.lock:
            self.connections.add(connection)
        name = "unix" if connection.client is None else "{}:{}".format(*connection.client)
        threading.Thread(target=connection.run, name=f"cgi {name}", daemon=True).start()

    def forget(self, connection: Connection) -> None:
        with self.lock:
            self.connections.discard(connection)


class ChildSlots:
    """At most `limit` children run at once; up to `queue` more requests wait.

    A request that finds every slot busy and the queue full is answered 503 at
    once (RFC 9110 §15.6.4: "the server is currently unable to handle the request
    due to a temporary overload"), which is better than an unbounded pile of
    waiting connections, each holding a thread and a socket.
    """

    def __init__(self, limit: int, queue: int):
        self.limit = limit
        self.queue = queue
        self.running = 0
        self.waiting = 0
        self.changed = threading.Condition()

    def acquire(self) -> bool:
        with self.changed:
            if self.running >= self.limit:
                if self.waiting >= self.queue:
                    return False
                self.waiting += 1
                try:
                    while self.running >= self.limit:
                        self.changed.wait()
                finally:
                    self.waiting -= 1
            self.running += 1
            return True

    def release(self) -> None:
        with self.changed:
            self.running -= 1
            self.changed.notify()


# ── Which script? ──────────────────────────────────────────────────────────

class Refused(Exception):
    """The request is answered with an error status before any child runs."""

    def __init__(self, status: int, reason: str):
        super().__init__(reason)
        self.status = status
        self.reason = reason


@dataclass
class Route:
    argv: list[str]          # ['/usr/bin/python3', '/srv/cgi-bin/hello.py']
    cwd: str                 # '/srv/cgi-bin': scripts expect to run in their own folder
    script_name: str         # RFC 3875 §4.1.13: '' for the front controller, '/cgi-bin/hello.py'
    path_info: str | None    # RFC 3875 §4.1.5: None means "the whole path", as cgi_variables computes it


def _command(script: str) -> list[str]:
    # A .py script runs under this interpreter, so it uses our virtualenv whatever its #! line says.
    return [sys.executable, script] if script.endswith(".py") else [script]


class FrontController:
    """One script answers every request: SCRIPT_NAME '' and PATH_INFO the whole path."""

    def __init__(self, script: str):
        path = os.path.abspath(script)
        if not os.path.isfile(path):
            raise cli.StartupError(f"{script}: no such file")
        if not path.endswith(".py") and not os.access(path, os.X_OK):
            raise cli.StartupError(f"{script}: not executable (chmod +x)")
        self.route_for = Route(_command(path), os.path.dirname(path), "", None)
        self.summary = os.path.basename(path)

    def route(self, path: bytes) -> Route:
        return self.route_for


class CgiDirectory:
    """The classic cgi-bin: /PREFIX/NAME/rest runs DIR/NAME with PATH_INFO '/rest'.

    Only files directly in DIR can be run. NAME is one path segment after
    percent-decoding, so '..', '%2e%2e' and '%2f' cannot climb out, and a
    symbolic link is followed only if it ends inside DIR. Anything else is 404,
    saying no more than that nothing is there; a file that is there but not
    executable is 403.
    """

    def __init__(self, directory: str, prefix: str):
        self.directory = os.path.realpath(directory)
        if not os.path.isdir(self.directory):
            raise cli.StartupError(f"--cgi-dir {directory}: not a directory")
        self.prefix = "/" + prefix.strip("/")
        self.summary = f"{directory} at {self.prefix}/"

    def route(self, path: bytes) -> Route:
        prefix = self.prefix.encode("latin-1") + b"/"
        if not path.startswith(prefix):
            raise Refused(404, "not found")
        raw_name, slash, rest = path[len(prefix):].partition(b"/")
        name = unquote_to_bytes(raw_name)
        if name in (b"", b".", b"..") or b"/" in name or b"\0" in name:
            raise Refused(404, "not found")
        directory = os.fsencode(self.directory)
        real = os.path.realpath(os.path.join(directory, name))
        if os.path.dirname(real) != directory or not os.path.isfile(real):
            raise Refused(404, "not found")
        if not os.access(real, os.X_OK):
            raise Refused(403, "the script is not executable")
        script = os.fsdecode(real)
        return Route(_command(script), self.directory,
                     self.prefix + "/" + name.decode("latin-1"),
                     unquote_to_bytes(slash + rest).decode("latin-1"))


# ── One connection: read a request, run the script, write the response ─────

class Connection:
    """One client connection, served by one thread, one request after another."""

    def __init__(self, server: CGIServer, sock: socket.socket, client: tuple):
        self.server = server
        self.args = server.args
        self.sock = sock
        self.client = cli.client_address(client)          # None over a Unix socket
        self.local = cli.server_address(sock.getsockname())
        self.parser = http11.ServerConnection(server.limits, server_header=SERVER_SOFTWARE.encode())
        self.timeouts = server.timeouts
        self.idle = False
        self.receiving_body = False

    def run(self) -> None:
        try:
            events = []
            waiting = Waiting.FIRST_REQUEST
            while True:
                request, events = self._receive_head(events, waiting)
                if request is None or not self._serve(request, events):
                    break
                with self.server.lock:
                    if self.server.stopping or not self.parser.keep_alive:
                        break
                events = self.parser.next_request()
                waiting = Waiting.NEXT_REQUEST
        except (Hangup, OSError):
            pass
        finally:
            linger.lingering_close(self.sock)
            self.server.forget(self)

    def close_if_idle(self) -> None:
        """At shutdown: a connection waiting for its next request is closed now."""
        with self.server.lock:
            if self.idle:
                try:
                    self.sock.shutdown(socket.SHUT_RDWR)
                except OSError:  # the client closed it first
                    pass

    def cut_off_body(self) -> None:
        """At shutdown, once --graceful-timeout is over: a body still arriving ends now."""
        with self.server.lock:
            if self.receiving_body:
                try:
                    self.sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    # -- reading --------------------------------------------------------------

    def _receive_head(self, events: list, waiting: Waiting) -> tuple[http11.Request | None, list]:
        """The next request head and the events that came with it; None: close.

        How long to wait is servers/timeouts.py's policy: --timeout for a new
        connection's first head, --keepalive for a next one to begin, then
        --timeout for the rest of it.
        """
        deadline = self.timeouts.deadline(waiting, time.monotonic())
        while True:
            for index, event in enumerate(events):
                if isinstance(event, http11.Request):
                    return event, events[index + 1:]
                if isinstance(event, http11.Error):
                    self._send(self.parser.error_response(event.status, event.reason))
                    return None, []
                if isinstance(event, http11.ConnectionClosed):
                    return None, []
            idle = waiting is not Waiting.REST_OF_HEAD
            with self.server.lock:
                if idle and self.server.stopping:
                    return None, []
                self.idle = idle
            try:
                data = self._receive_until(deadline)
            finally:
                with self.server.lock:
                    self.idle = False
            if data is None:
                status = self.timeouts.status_on_expiry(waiting)
                if status is not None:
                    self._send(self.parser.error_response(status, "request head not received in time"))
                return None, []
            if waiting is Waiting.NEXT_REQUEST:
                deadline = self.timeouts.deadline(Waiting.REST_OF_HEAD, time.monotonic())
            waiting = Waiting.REST_OF_HEAD
            events = self.parser.receive(data)

    def _receive_until(self, deadline: float) -> bytes | None:
        """Bytes from the client before the deadline (b'' at EOF), None on timeout."""
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return None
        self.sock.settimeout(remaining)
        try:
            return self.sock.recv(READ_SIZE)
        except TimeoutError:
            return None

    def _send(self, data: bytes) -> None:
        if data:
            self.sock.settimeout(self.args.timeout)
            try:
                self.sock.sendall(data)
            except OSError as exc:
                raise Hangup(str(exc)) from None

    # -- one request ------------------------------------------------------------

    def _serve(self, request: http11.Request, events: list) -> bool:
        """Answer one request; False when the connection must close afterwards."""
        exchange = Exchange(self, request)
        body = None
        try:
            try:
                route = self.server.router.route(request.path)
                if request.chunked or request.content_length:
                    body = self._receive_body(events)
            except Refused as refused:
                return exchange.refuse(refused.status, refused.reason)
            # The whole request is here: only now may it wait for a child slot.
            if not self.server.slots.acquire():
                return exchange.refuse(503, "too many requests are waiting for a CGI child")
            try:
                return exchange.run(route, body)
            finally:
                self.server.slots.release()
        finally:
            if body is not None:
                body.close()

    def _receive_body(self, events: list) -> spool.Spool:
        """The whole request body in a Spool (servers/spool.py), read before any
        child slot is taken; Refused if it is malformed or over --max-body (413),
        stalls for --timeout (408) or is cut off (400).

        events are the body events that came with the head.
        """
        # RFC 3875 §4.2: "As transfer-codings are not supported on the
        # request-body, the server MUST remove any such codings from the
        # message-body, and recalculate the CONTENT_LENGTH." A chunked body is
        # de-chunked as it is stored, and its size becomes CONTENT_LENGTH.
        body = spool.Spool()
        try:
            # The script that would decide whether to read the body has not
            # started, and it may not read it at all. RFC 3875 §4.2: "A
            # request-body is supplied with the request if the CONTENT_LENGTH is
            # not NULL. The server MUST make at least that many bytes available
            # for the script to read. ... However, it is not obliged to read any
            # of the data." So the runner answers the expectation itself, now,
            # as it starts to read the body. RFC 9110 §10.1.1: "... an origin
            # server MUST send either: an immediate response with a final status
            # code, if that status can be determined by examining just the
            # method, target URI, and header fields, or an immediate 100
            # (Continue) response to encourage the client to send the request
            # content." The final statuses known from the head went out before
            # this: 413 for a Content-Length over --max-body (http11), 404 and
            # 403 for the target (the router).
            self._send(self.parser.send_continue())
            with self.server.lock:
                self.receiving_body = True
            while not body.take(events):
                # Each stall of the body may last --timeout (servers/timeouts.py).
                data = self._receive_until(self.timeouts.deadline(Waiting.REST_OF_BODY, time.monotonic()))
                if data is None:
                    raise Refused(self.timeouts.status_on_expiry(Waiting.REST_OF_BODY),
                                  "request body not received in time")
                events = self.parser.receive(data)
            return body
        except spool.BodyRefused as refused:
            body.close()
            raise Refused(refused.status, refused.reason) from None
        except BaseException:
            body.close()
            raise
        finally:
            with self.server.lock:
                self.receiving_body = False


class Hangup(Exception):
    """The connection must close now: the client is gone, or a response that has
    already begun cannot be completed (a child that timed out or broke its framing)."""


class BadGateway(Exception):
    """The script's output is not a CGI response: the client gets 502."""


class GatewayTimeout(Exception):
    """The script ran past --cgi-timeout before its header block: the client gets 504."""


class Exchange:
    """One request and its response: the environment, the child, the CGI answer."""

    def __init__(self, connection: Connection, request: http11.Request):
        self.connection = connection
        self.server = connection.server
        self.args = connection.args
        self.parser = connection.parser
        self.request = request
        self.received = time.monotonic()
        self.trace = trace.Trace("cgi", next(self.server.request_numbers)) if self.args.trace else None
        if self.trace:
            self.trace.request_head(request.raw)
        # Timings are asked of the child when they will be shown.
        self.timed = self.args.server_timing or self.args.trace
        self.status = 0
        self.sent = 0

    def refuse(self, status: int, reason: str) -> bool:
        """An error response of our own; the connection closes after it."""
        self.status = status
        try:
            self.connection._send(self.parser.error_response(status, reason))
        finally:
            self._log_access()
        return False

    def run(self, route: Route, body: spool.Spool | None) -> bool:
        """Run the script (and, for a local redirect, once more); True: keep the connection."""
        request = self.request
        if body is not None:
            # The child reads the spooled body itself, from a file at position 0
            # (a body still in memory goes to a temporary file when Popen asks
            # for its descriptor), and sees its end after CONTENT_LENGTH bytes.
            stdin, length = body.file, body.size
        else:
            stdin, length = subprocess.DEVNULL, None   # no body: stdin is at EOF at once
        try:
            local_redirect = self._run_child(route, self._variables(request, route, length), stdin)
            if local_redirect is not None:
                # RFC 3875 §6.2.2: "the server MUST generate the response that it
                # would have produced in response to a request containing the URL"
                # of the Location. Once: a second local redirect is the script's loop.
                redirected = _redirected_request(request, local_redirect)
                try:
                    route = self.server.router.route(redirected.path)
                except Refused as refused:
                    return self.refuse(refused.status, refused.reason)
                variables = self._variables(redirected, route, None)
                if self._run_child(route, variables, subprocess.DEVNULL) is not None:
                    return self.refuse(502, "the script answered with a second local redirect")
        except BadGateway as exc:
            trace.log(f"cgi: 502 for {request.method} {request.target.decode('latin-1')}: {exc}")
            return self.refuse(502, str(exc))
        except GatewayTimeout:
            return self.refuse(504, "the CGI script did not answer in time")
        except Hangup:
            self._log_access()
            raise
        self._log_access()
        return self.parser.keep_alive

    # -- the environment --------------------------------------------------------

    def _variables(self, request, route: Route, content_length: int | None) -> dict[str, str]:
        """The request meta-variables (RFC 3875 §4.1), in the same order as the WSGI environ.

        exclude_headers: `Proxy:` must never become HTTP_PROXY, which many HTTP
        libraries read as their proxy setting (the "httpoxy" hole, CVE-2016-5385);
        Authorization is not passed on. RFC 3875 §4.1.18: "In particular, it SHOULD
        remove any header fields carrying authentication information, such as
        'Authorization'".
        """
        # Behind a trusted proxy, the client and scheme it names (servers/forwarded.py).
        client, scheme = self.args.forwarded_allow_ips.client_and_scheme(
            self.connection.client, request.headers)
        variables = cgi_variables.request_variables(
            request, client=client, server=self.connection.local,
            content_length=content_length, exclude_headers=(b"proxy", b"authorization"))
        if scheme == "https":
            variables["HTTPS"] = "on"                              # read by servers/cgi_app.py
        if route.path_info is not None:
            variables["SCRIPT_NAME"] = route.script_name          # '/cgi-bin/env.py'
            variables["PATH_INFO"] = route.path_info              # '/rest/of/path'
        variables["GATEWAY_INTERFACE"] = "CGI/1.1"                # RFC 3875 §4.1.4
        variables["SERVER_SOFTWARE"] = SERVER_SOFTWARE            # RFC 3875 §4.1.17
        if self.timed:
            variables[TIMING_VARIABLE] = "1"                      # see servers/cgi_app.py
        return variables

    # -- the child --------------------------------------------------------------

    def _run_child(self, route: Route, variables: dict[str, str], stdin):
        """Spawn the script, relay its answer, reap it.

        Returns the Location of a local redirect (nothing was sent yet), else None.
        """
        environment = {key.encode("latin-1"): value.encode("latin-1") for key, value in variables.items()}
        environment.update(self.server.inherited_environment)
        if self.trace:
            self.trace.mapping("CGI environment",
                               {key.decode("latin-1"): value.decode("latin-1")
                                for key, value in environment.items()})
        try:
            child = Child(self.server, route, environment, stdin)
        except OSError as exc:  # no #! line, a missing interpreter, no more processes
            raise BadGateway(f"cannot start {route.argv[-1]}: {exc.strerror}") from None
        answer = CGIAnswer(self, child)
        try:
            self._relay(child, answer)
        except GatewayTimeout:
            child.kill()
            trace.log(f"[cgi pid {child.pid}] killed with its process group after --cgi-timeout "
                f"{self.args.cgi_timeout:g} s")
            if answer.head_sent:
                raise Hangup("timed out in the middle of the response") from None
            raise
        except BaseException:
            # The client is gone, or the answer is not CGI: the child's work is wasted.
            child.kill()
            raise
        finally:
            child.reap(child.spawn_started + self.args.cgi_timeout)
        if answer.head is None:
            raise BadGateway(f"the script exited with status {child.process.returncode} "
                             f"before completing its header block")
        if answer.head.local_redirect:
            return answer.head.location
        answer.finish()
        return None

    def _relay(self, child: Child, answer: CGIAnswer) -> None:
        """Move bytes until the child's stdout ends.

        One selector, two pipes and the socket:
            child stdout   ─► CGIAnswer (header block, then the body)
            child stderr   ─► our log
            client socket  ─► EOF: the client hung up, kill the child
        """
        deadline = child.spawn_started + self.args.cgi_timeout
        sock = self.connection.sock
        selector = selectors.DefaultSelector()
        selector.register(child.process.stdout, selectors.EVENT_READ, "stdout")
        selector.register(child.process.stderr, selectors.EVENT_READ, "stderr")
        selector.register(sock, selectors.EVENT_READ, "client")
        try:
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise GatewayTimeout
                for key, _ in selector.select(remaining):
                    if key.data == "stdout":
                        data = os.read(key.fd, READ_SIZE)
                        if not data:
                            return
                        answer.receive(data)
                    elif key.data == "stderr":
                        if not child.log_stderr(os.read(key.fd, READ_SIZE)):
                            selector.unregister(key.fileobj)
                    elif not self._peek(sock):
                        raise Hangup("the client closed the connection")
                    else:
                        # The next pipelined request; it waits in the kernel
                        # until this response is complete.
                        selector.unregister(sock)
        finally:
            selector.close()

    @staticmethod
    def _peek(sock: socket.socket) -> bytes:
        """A look at what the client sent, leaving it in the kernel; b'' if it hung up."""
        try:
            return sock.recv(1, socket.MSG_PEEK)
        except OSError:
            return b""

    # -- the response -----------------------------------------------------------

    def send_head(self, head: CGIHead, headers: list, content_length: int | None) -> None:
        status = head.status
        try:
            data = self.parser.start_response(status, headers, content_length=content_length,
                                            reason=head.reason)
        except http11.LocalProtocolError as exc:
            raise BadGateway(f"invalid response header: {exc}") from None
        if self.trace:
            self.trace.response(status, headers)
        self.status = status
        self.connection._send(data)

    def send_body(self, data: bytes) -> None:
        try:
            framed = self.parser.send_body(data)
        except http11.LocalProtocolError as exc:
            raise Hangup(f"the script's body does not match its Content-Length: {exc}") from None
        self.sent += len(data)
        self.connection._send(framed)

    def end_body(self) -> None:
        try:
            self.connection._send(self.parser.end_response())
        except http11.LocalProtocolError as exc:
            raise Hangup(f"the script's body is shorter than its Content-Length: {exc}") from None

    def phases(self, child: Child, reported: dict[str, float]) -> list[tuple[str, float]]:
        """Where the time of this request went, as Server-Timing phases.

        All readings are time.monotonic(): CLOCK_MONOTONIC on Linux, one clock for
        every process on the machine, so the child's readings (sent back in the
        X-CGI-Timing header, see servers/cgi_app.py) and ours can be subtracted.
            spawn    fork + exec: our Popen call, which returns once exec has
                     succeeded (CPython waits on a close-on-exec pipe)
            startup  exec → the script's first line: the interpreter starting up
                     (child's 'started' − our reading after Popen returned)
            import   first line → Django imported and django.setup() done
                     (child's 'imported' − 'started')
            app      inside the WSGI application, from the call to close() (child's 'app')
            child    the child's whole life as we saw it: before Popen → its
                     stdout ended and it was reaped
            total    request head parsed → response head ready to send
        spawn + startup is "fork to first line"; what child has beyond
        spawn + startup + import + app is writing the response and exiting.
        """
        phases = [("spawn", child.spawned - child.spawn_started)]
        started, imported = reported.get("started"), reported.get("imported")
        if started is not None:
            phases.append(("startup", max(0.0, started - child.spawned)))
            if imported is not None:
                phases.append(("import", imported - started))
        if "app" in reported:
            phases.append(("app", reported["app"]))
        phases.append(("child", child.ended - child.spawn_started))
        phases.append(("total", time.monotonic() - self.received))
        return phases

    def _log_access(self) -> None:
        if self.args.access_log:
            request = self.request
            trace.access_line(self.connection.client, request, self.status, self.sent,
                              time.monotonic() - self.received)


def _redirected_request(request: http11.Request, location: str) -> SimpleNamespace:
    """The request a local redirect stands for: a GET of the Location, without the body."""
    path, _, query = location.encode("latin-1").partition(b"?")
    headers = [(name, value) for name, value in request.headers
               if name not in (b"content-length", b"content-type", b"transfer-encoding")]
    return SimpleNamespace(method="GET", path=path, query=query, headers=headers,
                           http_version=request.http_version)


class Child:
    """One CGI process, in its own process group, and always reaped."""

    def __init__(self, server: CGIServer, route: Route, environment: dict[bytes, bytes], stdin):
        self.server = server
        self.spawn_started = time.monotonic()
        # start_new_session: the child leads a new process group (and session), so
        # killpg() reaches whatever it starts too, and a Ctrl-C meant for the
        # server's terminal does not reach it.
        self.process = subprocess.Popen(route.argv, cwd=route.cwd, env=environment, stdin=stdin,
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                        start_new_session=True)
        self.spawned = time.monotonic()
        self.ended = self.spawned
        self.killed = False
        self.pid = self.process.pid
        self.stderr_line = b""
        with server.lock:
            server.children.add(self)

    def kill(self) -> None:
        """SIGKILL to the whole process group (its id is the child's pid).

        Only while the child is not yet reaped: until then its pid, and so the
        group id, cannot have been given to another process.
        """
        if self.process.returncode is None:
            self.killed = True
            try:
                os.killpg(self.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass

    def reap(self, deadline: float | None = None) -> None:
        """Wait for the exit (no zombie is left behind), killing it at the deadline."""
        if self.process.returncode is None:
            try:
                self.process.wait(timeout=None if deadline is None else max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                if not self.killed:
                    trace.log(f"[cgi pid {self.pid}] still running after its output ended: killed")
                self.kill()
                self.process.wait()
            self.ended = time.monotonic()
        with self.server.lock:
            self.server.children.discard(self)
        stderr = self.process.stderr
        if not stderr.closed:
            os.set_blocking(stderr.fileno(), False)
            try:
                while self.log_stderr(os.read(stderr.fileno(), READ_SIZE)):
                    pass
            except BlockingIOError:  # a grandchild still holds it open
                self.log_stderr(b"")
            stderr.close()
        self.process.stdout.close()

    def log_stderr(self, data: bytes) -> bool:
        """Log complete lines, each prefixed with the pid; False at EOF."""
        lines = (self.stderr_line + data).split(b"\n")
        self.stderr_line = lines.pop() if data else b""
        if not data and lines == [b""]:
            return False
        for line in lines:
            trace.log(f"[cgi pid {self.pid}] {line.decode('utf-8', 'replace').rstrip()}")
        return bool(data)


# ── The CGI response: a header block, a blank line, the body (RFC 3875 §6) ──

# RFC 3875 §6.3: generic-field = field-name ":" [ field-value ] NL, with field-name
# a token (RFC 9110 §5.6.2). CGI's NL is the system's newline: LF, or CRLF.
_FIELD_NAME = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_BLOCK_END = re.compile(rb"(?:^|\n)\r?\n")
_FORBIDDEN_IN_VALUE = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")
_STATUS = re.compile(r"([1-5][0-9][0-9])(?: (.*))?")
# RFC 3986 §3.1: scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ), then ":".
_ABSOLUTE_URI = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*:")


@dataclass
class CGIHead:
    status: int
    reason: str | None                 # the Status line's reason phrase, if any
    headers: list[tuple[str, str]]     # passed on to the client
    content_length: int | None         # the script's Content-Length, if it gave one
    location: str | None
    local_redirect: bool
    timing: dict[str, float]           # the child's X-CGI-Timing report


def parse_cgi_head(block: bytes) -> CGIHead:
    """The header block a script wrote, checked against RFC 3875 §6.2-§6.3."""
    fields: list[tuple[str, str]] = []
    for line in block.split(b"\n"):
        line = line.removesuffix(b"\r")
        name, colon, value = line.partition(b":")
        # "Whitespace is permitted between the ":" and the field-value (but not
        # between the field-name and the ":")"; "CGI/1.1 does not support
        # continuation lines".
        if not colon or not _FIELD_NAME.fullmatch(name):
            raise BadGateway(f"malformed CGI header line {line[:80]!r}")
        value = value.strip(b" \t")
        if _FORBIDDEN_IN_VALUE.search(value):
            raise BadGateway(f"control character in CGI header {name.decode('latin-1')}")
        # "A NULL field value is equivalent to a field not being sent."
        if value:
            fields.append((name.decode("latin-1"), value.decode("latin-1")))

    cgi_fields: dict[str, str] = {}
    headers: list[tuple[str, str]] = []
    content_length = None
    timing: dict[str, float] = {}
    for name, value in fields:
        lowered = name.lower()
        if lowered in ("status", "location", "content-type"):
            # "each CGI field MUST NOT appear more than once in the response"
            if lowered in cgi_fields:
                raise BadGateway(f"the CGI field {name} appears twice")
            cgi_fields[lowered] = value
            if lowered == "content-type":
                headers.append((name, value))
        elif lowered == TIMING_HEADER.lower():
            timing = _parse_timing(value)
        elif lowered.startswith("x-cgi-") or lowered in HOP_BY_HOP:
            # §6.3.5: unknown X-CGI- extension fields MAY be deleted; framing
            # fields (§6.3.4) are the server's business.
            continue
        elif lowered == "content-length":
            if not value.isdigit() or content_length is not None:
                raise BadGateway(f"invalid Content-Length {value!r} from the script")
            content_length = int(value)
        else:
            headers.append((name, value))
    # "At least one CGI field MUST be supplied"
    if not cgi_fields:
        raise BadGateway("the script sent none of Status, Content-Type, Location")

    location = cgi_fields.get("location")
    local_redirect = False
    if location is not None:
        if location.startswith("/") and not location.startswith("//"):
            # §6.2.2: a local-Location alone ("The script MUST NOT return any
            # other header fields") asks the server to fetch that path itself.
            local_redirect = len(cgi_fields) == 1 and not headers and content_length is None
        elif not _ABSOLUTE_URI.match(location):
            raise BadGateway(f"Location {location!r} is neither an absolute URI nor a local path")
        headers.append(("Location", location))

    if "status" in cgi_fields:
        match = _STATUS.fullmatch(cgi_fields["status"])
        if not match or int(match.group(1)) < 200:
            raise BadGateway(f"invalid Status {cgi_fields['status']!r}")
        status, reason = int(match.group(1)), match.group(2) or None
    else:
        # §6.2.3: for a client redirect "the server MUST generate a 302 'Found'";
        # §6.2.1: "status 200 'OK' is assumed if it is omitted".
        status, reason = (302 if location is not None else 200), None
    return CGIHead(status, reason, headers, content_length, location, local_redirect, timing)


def _parse_timing(value: str) -> dict[str, float]:
    """'started=8812.101; imported=8812.402; app=0.004' -> {'started': 8812.101, ...}"""
    timing = {}
    for item in value.split(";"):
        name, _, number = item.strip().partition("=")
        try:
            timing[name] = float(number)
        except ValueError:
            continue
    return timing


class CGIAnswer:
    """The child's stdout: the header block, then the body, relayed to the client.

    Without --server-timing the body is streamed as it comes. With it, the response
    head is held until the child has ended, because the Server-Timing header must
    go out before the body and can only report the child's lifetime afterwards:
    measuring turns streaming off.
    """

    def __init__(self, exchange: Exchange, child: Child):
        self.exchange = exchange
        self.child = child
        self.hold = exchange.args.server_timing
        self.head: CGIHead | None = None
        self.head_sent = False
        self.buffer = bytearray()
        self.held = tempfile.SpooledTemporaryFile(SPOOL_IN_MEMORY) if self.hold else None

    def receive(self, data: bytes) -> None:
        if self.head is not None:
            self._body(data)
            return
        self.buffer += data
        end = _BLOCK_END.search(self.buffer)
        if end is None:
            if len(self.buffer) > MAX_CGI_HEAD:
                raise BadGateway(f"no end of the CGI header block in {MAX_CGI_HEAD} bytes")
            return
        block = bytes(self.buffer[:end.start()])
        rest = bytes(self.buffer[end.end():])
        self.buffer.clear()
        view = self.exchange.trace
        if view:
            view.raw_block(f"CGI header block from pid {self.child.pid}", block)
        if not block:
            raise BadGateway("the script sent an empty header block")
        self.head = parse_cgi_head(block)
        if not self.head.local_redirect and not self.hold:
            self.exchange.send_head(self.head, self.head.headers, self.head.content_length)
            self.head_sent = True
        self._body(rest)

    def _body(self, data: bytes) -> None:
        if not data or self.head.local_redirect:
            return  # a local redirect's body, if any, is dropped (§6.2.2: there is none)
        if self.held is not None:
            self.held.write(data)
        else:
            self.exchange.send_body(data)

    def finish(self) -> None:
        """The child has ended: complete the response (the held one, with Server-Timing)."""
        exchange = self.exchange
        head = self.head
        status = self.child.process.returncode
        if self.head_sent and status != 0 and head.content_length is None:
            # Without a Content-Length only the final chunk (or the close) says the
            # body is complete; a script that failed halfway must not get one.
            raise Hangup(f"the script exited with status {status} in the middle of its response")
        phases = exchange.phases(self.child, head.timing)
        if self.held is not None:
            size = self.held.tell()
            headers = head.headers + [("Server-Timing", trace.server_timing(phases))]
            # RFC 3875 §4.3.3: a script's body for HEAD is discarded; its
            # Content-Length, if it gave one, still describes the GET response.
            length = head.content_length if exchange.request.method == "HEAD" and head.content_length else size
            exchange.send_head(head, headers, length)
            self.head_sent = True
            self.held.seek(0)
            while chunk := self.held.read(READ_SIZE):
                exchange.send_body(chunk)
            self.held.close()
        exchange.end_body()
        if exchange.trace:
            exchange.trace.timing(phases)


# ── Shutting down (no request runs this) ────────────────────────────────────


def shut_down(server: CGIServer) -> None:
    """Graceful: no new connections; idle ones close; running requests finish.

    A request whose body is still arriving is running too: its connection reads
    the rest, and its child runs when the body is in. Bodies still arriving and
    children still running after --graceful-timeout are cut off and killed, and
    the server exits 0 either way: the shutdown was asked for.
    """
    server.listener.close()
    with server.lock:
        connections = list(server.connections)
    for connection in connections:
        connection.close_if_idle()
    if _wait_for_connections(server, server.args.graceful_timeout):
        return
    with server.lock:
        connections = list(server.connections)
        children = list(server.children)
    for connection in connections:
        connection.cut_off_body()
    for child in children:
        trace.log(f"[cgi pid {child.pid}] still running at shutdown: killed")
        child.kill()
    # Their connection threads reap them (and answer 504 if they still can).
    _wait_for_connections(server, 5.0)


def _wait_for_connections(server: CGIServer, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with server.lock:
            if not server.connections:
                return True
        time.sleep(0.05)
    return False


# ── The command line ────────────────────────────────────────────────────────


def parse_arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m servers.cgi_server",
        description="A CGI/1.1 runner: every request starts a new process (RFC 3875).")
    parser.add_argument("script", nargs="?", metavar="SCRIPT",
                        help="the executable CGI script that answers every request "
                             "(one ending in .py runs under this Python)")
    parser.add_argument("--cgi-dir", metavar="DIR",
                        help="serve the executable files of DIR under --prefix instead of one SCRIPT")
    parser.add_argument("--prefix", default="/cgi-bin", metavar="PATH",
                        help="URL path where --cgi-dir is served (default %(default)s)")
    parser.add_argument("--max-children", type=cli.positive_int, default=8, metavar="N",
                        help="children running at once (default %(default)s)")
    parser.add_argument("--queue", type=int, default=32, metavar="N",
                        help="requests that may wait for a free child; one more gets 503 "
                             "(default %(default)s)")
    parser.add_argument("--cgi-timeout", type=float, default=30.0, metavar="SECONDS",
                        help="a child still running after this is killed with its whole "
                             "process group, and the client gets 504 (default %(default)s)")
    cli.add_common_arguments(parser)
    forwarded.add_argument(parser)
    tuning.add_mmap_threshold_argument(parser)
    args = parser.parse_args(argv)
    if (args.script is None) == (args.cgi_dir is None):
        parser.error("give either SCRIPT or --cgi-dir DIR")
    if args.cgi_timeout <= 0 or args.queue < 0:
        parser.error("--cgi-timeout must be more than 0 and --queue at least 0")
    return args


if __name__ == "__main__":
    main()
