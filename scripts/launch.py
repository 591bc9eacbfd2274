"""Start a server, wait until it answers, and always stop it again.

Tests, the benchmark runner and the notebooks start servers only through this
module, so that one piece of code decides how a server is started, how we know
it is ready, and how it is stopped. A server is started in its own process group
(so stopping it also stops its workers and CGI children), and every server still
running when the Python process exits is killed, which keeps a failing notebook
cell or an interrupted benchmark from leaving a server behind.

    port = free_port()
    with ServerProcess(server_command("wsgi", port=port), port=port) as server:
        requests.get(server.url + "/hello")

    # or on a Unix socket, as behind nginx (scripts/nginx.py):
    with ServerProcess(server_command("wsgi", unix=path), unix=path) as server: ...
"""

from __future__ import annotations

import atexit
import collections
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import weakref
from pathlib import Path

from scripts import system

REPO = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"

# The server kinds the toolkit knows, with the application each serves by default.
# The toy servers come first, then the references they are compared with.
DEFAULT_APPS = {
    "cgi": "sample_site/cgi-bin/django.py",
    "wsgi": "sample_site.wsgi:application",
    "asgi": "sample_site.asgi:application",
    "gunicorn": "sample_site.wsgi:application",
    "gunicorn-gthread": "sample_site.wsgi:application",
    "uvicorn": "sample_site.asgi:application",
    "uvicorn-fast": "sample_site.asgi:application",
    "gunicorn-uvicorn": "sample_site.asgi:application",
    "daphne": "sample_site.asgi:application",
    "granian-wsgi": "sample_site.wsgi:application",
    "granian-asgi": "sample_site.asgi:application",
}
KINDS = tuple(DEFAULT_APPS)


def interface_of(kind: str) -> str:
    """'asgi' for the servers that call an ASGI application, 'wsgi' for the rest (CGI's
    child runs the site's WSGI application)."""
    return "asgi" if DEFAULT_APPS[kind].endswith("asgi:application") else "wsgi"


# The last thousand ports free_port() handed out in this process (older ones are bound
# by now, or were let go). Once the probe closes, the kernel may pick the same port
# again (about one call in 12,000 here), and two servers started together (a backend
# and nginx in front of it) would then be given one port: the second fails to bind
# while the first answers in its place.
_handed_out: collections.deque[tuple[str, int]] = collections.deque(maxlen=1000)


def free_port(host: str = HOST) -> int:
    """A TCP port nobody listens on right now (the kernel picks it), and not one of the
    last thousand this process was given."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            probe.bind((host, 0))
            port = probe.getsockname()[1]
        if (host, port) not in _handed_out:
            _handed_out.append((host, port))
            return port


# The kinds that can listen on a Unix socket (server_command's `unix`).
UNIX_SOCKET_KINDS = ("wsgi", "asgi", "cgi", "gunicorn", "gunicorn-gthread", "gunicorn-uvicorn",
                     "uvicorn", "uvicorn-fast")


def server_command(kind: str, *, port: int = 0, app: str | None = None,
                   extra: list[str] | tuple[str, ...] = (), host: str = HOST,
                   unix: str | os.PathLike | None = None) -> list[str]:
    """The argv that starts server `kind` serving `app` on host:port, or on the
    Unix socket `unix` (a path; only the UNIX_SOCKET_KINDS).

    The references run the way their documentation shows, with their access logs
    off, like ours by default: gunicorn's sync worker (one request at a time per
    process), gunicorn's gthread worker with 8 threads, uvicorn with its pure-Python
    stack (h11 on asyncio), uvicorn with its fast stack (httptools on uvloop), gunicorn
    running uvicorn's worker (the ASGI deployment Django's documentation describes),
    daphne (Django Channels' server, on Twisted), and granian (Rust) in its WSGI and
    its ASGI interface, one worker each.
    """
    if kind not in DEFAULT_APPS:
        raise ValueError(f"unknown server kind {kind!r}; choose from {', '.join(KINDS)}")
    if unix is not None and kind not in UNIX_SOCKET_KINDS:
        raise ValueError(f"{kind} cannot listen on a Unix socket; "
                         f"choose from {', '.join(UNIX_SOCKET_KINDS)} or use TCP")
    app = app or DEFAULT_APPS[kind]
    bind = f"{host}:{port}" if unix is None else f"unix:{unix}"
    python = sys.executable
    if kind in ("wsgi", "asgi", "cgi"):
        argv = [python, "-m", f"servers.{kind}_server", app, "--bind", bind]
    elif kind.startswith("gunicorn"):
        worker = {"gunicorn": ["--worker-class", "sync"],
                  "gunicorn-gthread": ["--worker-class", "gthread", "--threads", "8"],
                  "gunicorn-uvicorn": ["--worker-class", "uvicorn_worker.UvicornWorker"],
                  }[kind]
        # --no-control-socket: gunicorn 27 otherwise opens one fixed Unix socket
        # per user, which two gunicorns running side by side would fight over.
        argv = [python, "-m", "gunicorn", app, "--bind", bind, "--workers", "1",
                *worker, "--no-control-socket"]
    elif kind == "daphne":
        argv = [python, "-m", "daphne", "--bind", host, "--port", str(port),
                "--verbosity", "0", app]
    elif kind.startswith("granian"):
        interface = kind.removeprefix("granian-")
        argv = [python, "-m", "granian", "--interface", interface, "--host", host,
                "--port", str(port), "--workers", "1", "--no-access-log",
                "--log-level", "warning", app]
    else:
        stack = (["--http", "h11", "--loop", "asyncio"] if kind == "uvicorn"
                 else ["--http", "httptools", "--loop", "uvloop"])
        where = ["--host", host, "--port", str(port)] if unix is None else ["--uds", str(unix)]
        argv = [python, "-m", "uvicorn", app, *where,
                *stack, "--no-access-log", "--log-level", "warning", "--lifespan", "off"]
    return argv + list(extra)


def prepare_child(cpus: set[int] | None) -> None:
    """Runs in the child between fork and exec: pinned to `cpus` where the platform can pin,
    a raised open-files limit (a server that holds 5,000 WebSockets needs 5,000 descriptors,
    and uvicorn and daphne do not raise it themselves), and, on Linux, SIGTERM when the
    process that started it dies, even by SIGKILL (a killed notebook kernel, say), when no
    atexit handler runs. What differs by platform is in scripts/system.py.

    And SIGINT back to its default action. A command that a shell without job control
    starts in the background (`make test &` in a script) inherits SIGINT ignored, and
    Python keeps an ignored SIGINT ignored: a benchmark started from it could then not
    be stopped with the SIGINT that a notebook cell or a test sends (the test of an
    interrupted benchmark waited 30 s for nothing when the suite ran that way)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    system.prepare_child(cpus)


_running: "weakref.WeakSet[ServerProcess]" = weakref.WeakSet()


def _stop_all_running() -> None:
    for server in list(_running):
        server.stop(timeout=3)


atexit.register(_stop_all_running)


class ServerStartError(RuntimeError):
    """The server exited or never answered; the message carries what it printed."""


class ServerProcess:
    """One server process: started by start() or `with`, stopped by stop() or the end of `with`."""

    def __init__(self, argv: list[str], *, port: int = 0, host: str = HOST,
                 unix: str | os.PathLike | None = None,
                 env: dict[str, str] | None = None, cwd: str | os.PathLike = REPO,
                 ready_timeout: float = 30.0, cpus: set[int] | None = None):
        self.argv = list(argv)
        self.host, self.port = host, port
        self.unix = None if unix is None else Path(unix)  # a Unix socket instead of host:port
        self.env = {**os.environ, **(env or {})}
        self.env.setdefault("PYTHONUNBUFFERED", "1")
        self.cwd = cwd
        self.ready_timeout = ready_timeout
        self.cpus = cpus
        self.process: subprocess.Popen | None = None
        self.returncode: int | None = None
        self._output: list[str] = []
        self._output_lock = threading.Lock()
        self._reader: threading.Thread | None = None

    @property
    def url(self) -> str:
        if self.unix is not None:
            return f"unix:{self.unix}"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def pid(self) -> int:
        assert self.process is not None, "server not started"
        return self.process.pid

    def start(self) -> "ServerProcess":
        cpus = self.cpus
        self.process = subprocess.Popen(
            self.argv, cwd=self.cwd, env=self.env, stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            # Its own process group: stop() signals the server with its workers
            # and CGI children, and a Ctrl-C in a terminal does not reach it twice.
            start_new_session=True,
            preexec_fn=lambda: prepare_child(cpus),
        )
        _running.add(self)
        self._reader = threading.Thread(target=self._read_output, daemon=True)
        self._reader.start()
        try:
            self._wait_until_ready()
        except BaseException:
            self.stop(timeout=3)
            raise
        return self

    def _read_output(self) -> None:
        assert self.process is not None and self.process.stdout is not None
        for raw in self.process.stdout:
            line = raw.decode("utf-8", "replace")
            with self._output_lock:
                self._output.append(line)

    def _wait_until_ready(self) -> None:
        """Ready means: the port (or the Unix socket) accepts a connection, and on a port
        the listener is the server's own. Polled every 20 ms."""
        deadline = time.monotonic() + self.ready_timeout
        taken = False  # another process was seen listening on our port
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                self._reader.join(timeout=2)
                raise ServerStartError(
                    f"{' '.join(self.argv)} exited with status {self.process.returncode}:\n{self.output()}")
            try:
                self._connect_once()
            except OSError:
                time.sleep(0.02)
                continue
            if self._listener_is_ours():
                return
            # Another process listens on the port: ours will fail to bind it and exit
            # (reported above with what it printed), or is still retrying.
            taken = True
            time.sleep(0.02)
        where = self.unix or f"{self.host}:{self.port}"
        problem = (f": another process listens on {where}, so this server could not take it" if taken
                   else f" did not accept connections on {where}")
        raise ServerStartError(
            f"{' '.join(self.argv)}{problem} within {self.ready_timeout:.0f} s:\n{self.output()}")

    def _listener_is_ours(self) -> bool:
        """Whether the socket listening on our TCP port belongs to our process group (a
        port handed to us can be taken by another program before our server binds it;
        that program must not pass for our server). A Unix socket path is ours alone."""
        return self.unix is not None or system.group_listens_on(self.process.pid, self.port)

    def _connect_once(self) -> None:
        if self.unix is None:
            socket.create_connection((self.host, self.port), timeout=0.5).close()
            return
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
            probe.settimeout(0.5)
            probe.connect(str(self.unix))

    def output(self) -> str:
        """Everything the server printed so far (stdout and stderr together)."""
        with self._output_lock:
            return "".join(self._output)

    def signal(self, signum: int) -> None:
        """Send a signal to the server process alone (not its group)."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signum)

    def wait(self, timeout: float | None = None) -> int:
        assert self.process is not None, "server not started"
        self.returncode = self.process.wait(timeout)
        if self._reader is not None:
            self._reader.join(timeout=2)
        return self.returncode

    def stop(self, timeout: float = 10.0) -> int | None:
        """SIGTERM (a graceful shutdown), then SIGKILL to the whole group after `timeout`.

        Returns the exit status of the server, or None if it had never started.
        """
        process = self.process
        if process is None:
            return None
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                pass
        # Whatever is left in the group (a worker, a CGI child, a hung server) goes now.
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        self.returncode = process.wait()
        if self._reader is not None:
            self._reader.join(timeout=2)
        _running.discard(self)
        return self.returncode

    def __enter__(self) -> "ServerProcess":
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()

    def __del__(self) -> None:
        process = getattr(self, "process", None)
        if process is not None and process.poll() is None:
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
