"""The start of every server: its command line, the application, the listening socket.

The flags every server accepts (docs/design.md, "Command-line contract"), finding
the application from a "module:attr" string as gunicorn and uvicorn do, opening
the listening socket, and saying in one line that the server listens, or why it
cannot start.
"""

from __future__ import annotations

import argparse
import importlib
import os
import socket
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
             "to accept connections from other machines)")
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


def parse_bind(text: str) -> tuple[str, int]:
    """'127.0.0.1:8000' -> ('127.0.0.1', 8000); '[::1]:8000' -> ('::1', 8000)."""
    host, sep, port_text = text.rpartition(":")
    if not sep or not host:
        raise StartupError(f"--bind {text!r}: expected HOST:PORT, e.g. 127.0.0.1:8000")
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


def open_listener(host: str, port: int, backlog: int = 2048) -> socket.socket:
    """A bound, listening TCP socket, or StartupError with the reason in words."""
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
        if exc.errno == 98:  # EADDRINUSE
            raise StartupError(f"address {where} is already in use (another server running?)") from None
        if exc.errno == 13:  # EACCES
            raise StartupError(f"no permission to listen on {where} (ports below 1024 need root)") from None
        raise StartupError(f"cannot listen on {where}: {exc.strerror}") from None
    return listener


def fail(message: str) -> NoReturn:
    """Exit with status 1 and one line saying why."""
    prog = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else "server"
    if prog == "__main__.py" or prog.endswith(".py"):
        prog = prog.removesuffix(".py")
    sys.stderr.write(f"{prog}: error: {message}\n")
    sys.stderr.flush()
    raise SystemExit(1)


def announce(host: str, port: int, summary: str) -> None:
    """The one line tests, notebooks and people wait for: the server is listening."""
    shown = f"[{host}]" if ":" in host else host
    print(f"Listening on http://{shown}:{port} ({summary})", flush=True)


def limits_from_args(args: argparse.Namespace) -> http11.Limits:
    return http11.Limits(max_body_size=args.max_body)
