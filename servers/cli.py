"""The start of every server: its command line, the application, the listening socket.

The flags every server accepts (docs/design.md, "Command-line contract"), finding
the application from a "module:attr" string as gunicorn and uvicorn do, opening
the listening socket (TCP, or a Unix socket for a proxy on the same machine),
and saying in one line that the server listens, or why it cannot start.

An address is a (host, port) pair everywhere, as socket.getsockname() gives it
for TCP. A Unix socket has no host or port: it is (path, None), the form the ASGI
spec gives for it (servers/asgi_server.py), and a client connected over one has
no address at all: None (see client_address and server_address).

Needs from the operating system: a TCP or Unix listening socket (bind, listen, SO_REUSEADDR;
a Unix path under 104 bytes on macOS, 108 on Linux); Linux and macOS alike (error numbers
read by name).
"""

from __future__ import annotations

import argparse
import atexit
import errno
import importlib
import os
import socket
import stat
import sys
from typing import NoReturn

from servers import http11

# ── The command line ────────────────────────────────────────────────────────

DEFAULT_BIND = "127.0.0.1:8000"
DEFAULT_MAX_BODY = 1024 ** 3


def add_common_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags every server accepts, with help written for a student."""
    parser.add_argument(
        "--bind", default=DEFAULT_BIND, metavar="HOST:PORT",
        help="where to listen (default %(default)s; use [::1]:8000 for IPv6, 0.0.0.0:8000 "
             "to accept connections from other machines, unix:PATH for a Unix socket that "
             "a proxy such as nginx on this machine connects to)")
    parser.add_argument(
        "--keepalive", type=_positive_float, default=5.0, metavar="SECONDS",
        help="how long an idle keep-alive connection may wait for its next request "
             "before the server closes it (default %(default)s)")
    parser.add_argument(
        "--timeout", type=_positive_float, default=10.0, metavar="SECONDS",
        help="how long a client may take to send a whole request head; a slower client "
             "gets 408 and is disconnected, so it cannot hold the server (default %(default)s)")
    parser.add_argument(
        "--graceful-timeout", type=_positive_float, default=30.0, metavar="SECONDS",
        help="on SIGTERM or Ctrl-C, how long requests already running may take to finish "
             "before the server exits anyway (default %(default)s)")
    parser.add_argument(
        "--max-body", type=_positive_int, default=DEFAULT_MAX_BODY, metavar="BYTES",
        help="largest request body accepted; a larger one gets 413 (default 1 GiB)")
    parser.add_argument(
        "--access-log", action="store_true",
        help="print one line per request: client, request line, status, size, duration")
    parser.add_argument(
        "--server-timing", action="store_true",
        help="add a Server-Timing response header with the server's own phase durations, "
             "so a browser's network panel or a notebook can show where the time went")
    parser.add_argument(
        "--trace", action="store_true",
        help="teaching view on stderr: for each request the raw request head, what the "
             "application was handed, the response status and headers, and timings")


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be more than 0")
    return value


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be at least 1")
    return value


def positive_int(text: str) -> int:
    """argparse type for counts such as --threads and --workers."""
    return _positive_int(text)


class StartupError(Exception):
    """Why the server cannot start, in one line for the person who started it."""


def parse_bind(text: str) -> tuple[str, int | None]:
    """'127.0.0.1:8000' -> ('127.0.0.1', 8000); '[::1]:8000' -> ('::1', 8000);
    'unix:/run/site.sock' -> ('/run/site.sock', None)."""
    if text.startswith("unix:"):
        path = text.removeprefix("unix:")
        if not path:
            raise StartupError(f"--bind {text!r}: expected unix:PATH, e.g. unix:var/site.sock")
        return path, None
    host, sep, port_text = text.rpartition(":")
    if not sep or not host:
        raise StartupError(f"--bind {text!r}: expected HOST:PORT or unix:PATH, e.g. 127.0.0.1:8000")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise StartupError(f"--bind {text!r}: the port must be a number from 1 to 65535")
    return host, int(port_text)


def load_app(spec: str, default_attr: str = "application"):
    """Import 'package.module:attr' and return attr, as gunicorn and uvicorn do.

    'package.module' alone means its attribute `application` (gunicorn's rule for
    `gunicorn sample_site.wsgi`); attr may be dotted ('module:obj.app').
    The current directory is importable, so commands work from the repository root.
    """
    module_name, _, attr_path = spec.partition(":")
    attr_path = attr_path or default_attr
    if not module_name:
        raise StartupError(f"{spec!r}: expected MODULE:ATTR, e.g. sample_site.wsgi:application")
    if "" not in sys.path and os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        if exc.name and module_name.startswith(exc.name):
            raise StartupError(f"cannot import {module_name!r}: no such module "
                               f"(run from the repository root?)") from None
        raise StartupError(f"importing {module_name!r} failed: {exc}") from None
    except Exception as exc:
        raise StartupError(f"importing {module_name!r} failed: "
                           f"{type(exc).__name__}: {exc}") from None
    app = module
    for name in attr_path.split("."):
        try:
            app = getattr(app, name)
        except AttributeError:
            raise StartupError(f"module {module_name!r} has no attribute {attr_path!r}") from None
    if not callable(app):
        raise StartupError(f"{spec!r} is a {type(app).__name__}, not a callable application")
    return app


def open_listener(host: str, port: int | None, backlog: int = 2048) -> socket.socket:
    """A bound, listening socket, or StartupError with the reason in words.

    port None: host is the path of a Unix socket (see open_unix_listener).
    """
    if port is None:
        return open_unix_listener(host, backlog)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    listener = socket.socket(family, socket.SOCK_STREAM)
    # SO_REUSEADDR lets a restarted server bind at once although connections of
    # the previous run are still in TIME_WAIT; it does not allow two listeners.
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listener.bind((host, port))
        listener.listen(backlog)
    except OSError as exc:
        listener.close()
        where = f"[{host}]:{port}" if family == socket.AF_INET6 else f"{host}:{port}"
        if exc.errno == errno.EADDRINUSE:
            raise StartupError(f"address {where} is already in use (another server running?)") from None
        if exc.errno == errno.EACCES:
            raise StartupError(f"no permission to listen on {where} (ports below 1024 need root)") from None
        raise StartupError(f"cannot listen on {where}: {exc.strerror}") from None
    return listener


# Who may connect to a Unix socket is decided by its file's permissions: owner and
# group may read and write (connecting needs write permission), nobody else. The
# peer of such a socket is believed as a proxy (servers/forwarded.py), so a user
# outside the group must not be able to connect and claim any client address.
# nginx connects when it runs as the same user, or in the socket's group (make the
# directory setgid to that group, as /run/... directories of services are).
UNIX_SOCKET_MODE = 0o660


def open_unix_listener(path: str, backlog: int = 2048) -> socket.socket:
    """A listening Unix socket at `path`, removed again when this process exits.

    A socket file left by a server that died (nobody accepts on it) is replaced;
    one that a running server accepts on is refused, and so is any other file.
    """
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        pass
    except OSError as exc:
        raise StartupError(f"unix:{path}: {exc.strerror}") from None
    else:
        if not stat.S_ISSOCK(mode):
            raise StartupError(f"unix:{path} exists and is not a socket; not replacing it")
        if _unix_socket_accepts(path):
            raise StartupError(f"unix:{path} is in use (another server is listening on it)")
        os.unlink(path)  # stale: its server died without removing it
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        listener.bind(path)
        # Before listen(): until then a connect() is refused, so nobody connects
        # while the file still has the mode the umask gave it.
        os.chmod(path, UNIX_SOCKET_MODE)
        listener.listen(backlog)
    except OSError as exc:
        listener.close()
        # A path too long for a socket address raises an OSError with no strerror.
        raise StartupError(f"cannot listen on unix:{path}: {exc.strerror or exc}") from None
    # The file outlives the socket unless someone removes it: the process that made
    # it does, at a normal exit (the workers of --workers N, forked from it, do not).
    _socket_files.append((path, os.getpid(), os.stat(path).st_ino))
    return listener


def _unix_socket_accepts(path: str) -> bool:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        probe.settimeout(2.0)
        try:
            probe.connect(path)
        except (ConnectionRefusedError, FileNotFoundError):
            return False  # nothing listens: the file is stale
        except (TimeoutError, BlockingIOError):
            return True   # a server whose listen queue is full: alive
        except OSError as exc:
            raise StartupError(f"unix:{path}: {exc.strerror}") from None
    return True


def _remove_socket_file(path: str, creator: int, inode: int) -> None:
    """Remove the socket file, if this is the process that made it and the file is
    still the one it made (not that of a server started since)."""
    if os.getpid() != creator:
        return
    try:
        if os.stat(path).st_ino == inode:
            os.unlink(path)
    except OSError:
        pass


def remove_socket_files() -> None:
    """At exit, and before os._exit() (which skips atexit): remove this process's
    socket files. SIGKILL leaves the file behind; the next start replaces it."""
    while _socket_files:
        _remove_socket_file(*_socket_files.pop())


_socket_files: list[tuple[str, int, int]] = []  # (path, pid of its creator, inode)
atexit.register(remove_socket_files)


# What a connection over a Unix socket looks like to the application. The ASGI
# scope says it directly, and the WSGI environ and the CGI variables follow:
#
#   `server`, ASGI HTTP spec ("HTTP Connection Scope"): "... or [path, None] where
#   path is that of the unix socket. Optional; if missing defaults to None."
#   `client` has no such form, ASGI HTTP spec ("HTTP Connection Scope"): "A
#   two-item iterable of [host, port], where host is the remote host's IPv4 or IPv6
#   address, and port is the remote port as an integer. Optional; if missing
#   defaults to None." A Unix peer has neither host nor port, so `client` is None.
#
#   REMOTE_ADDR is LOCAL_PEER (servers/cgi_variables.py): the peer is a process on
#   this machine, and RFC 3875 §4.1.8: "The REMOTE_ADDR variable MUST be set to the
#   network address of the client sending the request to the server." REMOTE_PORT
#   (not an RFC 3875 variable) is left out. SERVER_NAME and SERVER_PORT come from
#   the Host header, as gunicorn does it, because PEP 3333 ("environ Variables"):
#   "When HTTP_HOST is not set, these variables can be combined to determine a
#   default. See the URL Reconstruction section below for more detail. SERVER_NAME
#   and SERVER_PORT are required strings and must never be empty."
#
# --forwarded-allow-ips (servers/forwarded.py) sees a Unix peer as LOCAL_PEER too:
# trusted with the default (127.0.0.1), like gunicorn, which trusts every Unix peer;
# uvicorn trusts none unless told '*'. The peer is a process on this machine that
# UNIX_SOCKET_MODE let in, so in practice the proxy: as trusted as one on 127.0.0.1.
LOCAL_PEER = "127.0.0.1"


def client_address(peername) -> tuple[str, int] | None:
    """(host, port) of a connected client; None for a Unix socket's peer, which has
    no address (accept() gives '' for it)."""
    return tuple(peername[:2]) if isinstance(peername, tuple) else None


def server_address(sockname) -> tuple[str, int | None]:
    """(host, port) the connection arrived at; (path, None) for a Unix socket."""
    return tuple(sockname[:2]) if isinstance(sockname, tuple) else (sockname, None)


def fail(message: str) -> NoReturn:
    """Exit with status 1 and one line saying why."""
    prog = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else "server"
    if prog == "__main__.py" or prog.endswith(".py"):
        prog = prog.removesuffix(".py")
    sys.stderr.write(f"{prog}: error: {message}\n")
    sys.stderr.flush()
    raise SystemExit(1)


def announce(listener: socket.socket, summary: str) -> None:
    """The one line tests, notebooks and people wait for: the server is listening."""
    host, port = server_address(listener.getsockname())
    if port is None:
        print(f"Listening on unix:{host} ({summary})", flush=True)
        return
    shown = f"[{host}]" if ":" in host else host
    print(f"Listening on http://{shown}:{port} ({summary})", flush=True)


def limits_from_args(args: argparse.Namespace) -> http11.Limits:
    return http11.Limits(max_body_size=args.max_body)
