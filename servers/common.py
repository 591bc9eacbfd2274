"""What the three servers share besides HTTP itself.

The protocol lives in `http11.py`. This module holds the rest that would
otherwise be written three times: the command line every server accepts (see
docs/design.md, "Command-line contract"), finding the application from a
"module:attr" string, opening the listening socket, and the CGI meta-variables
that both the CGI environment and the WSGI environ start with. What a server
writes to its log is servers/trace.py.
"""

from __future__ import annotations

import argparse
import importlib
import os
import socket
import sys
from typing import NoReturn
from urllib.parse import unquote_to_bytes

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


# ── The CGI meta-variables (RFC 3875 §4.1), shared by CGI and WSGI ─────────
#
# PEP 3333 builds the WSGI environ on the CGI variables, so the CGI runner and
# the WSGI server start from the same dictionary, built here in one order, which
# lets a notebook put the two side by side.

_HEADER_KEYS: dict[bytes, str | None] = {}
# Content-Type and Content-Length have their own variables (RFC 3875 §4.1.2, §4.1.3).
_OWN_VARIABLES = (b"content-type", b"content-length")


def _header_key(name: bytes) -> str | None:
    """b'accept-encoding' -> 'HTTP_ACCEPT_ENCODING'; None for names we must drop."""
    key = _HEADER_KEYS.get(name)
    if key is None and name not in _HEADER_KEYS:
        # A '_' in a header name would come out the same as '-' (X-Forwarded_For
        # would impersonate X-Forwarded-For), so such names are dropped, as
        # nginx and gunicorn do. RFC 3875 §4.1.18: "The server is not required
        # to create meta-variables for all the header fields that it receives."
        if b"_" in name or name in _OWN_VARIABLES:
            key = None
        else:
            key = "HTTP_" + name.decode("latin-1").upper().replace("-", "_")
        if len(_HEADER_KEYS) < 1024:  # names are chosen by clients: keep the cache bounded
            _HEADER_KEYS[name] = key
    return key


def request_variables(head: http11.Request, *, client: tuple, server: tuple,
                      content_length: int | None = None,
                      exclude_headers: tuple[bytes, ...] = ()) -> dict[str, str]:
    """The CGI variables of one request, as latin-1 "bytes-as-str" strings.

    client and server are (host, port) pairs as socket.getpeername() and
    getsockname() give them. content_length overrides the header (a chunked body
    that the server spooled and counted).
    """
    content_type = None
    header_length = None
    http_variables: dict[str, str] = {}
    for name, value in head.headers:
        if name == b"content-type":
            content_type = value.decode("latin-1")
            continue
        if name == b"content-length":
            header_length = value.decode("latin-1")
            continue
        key = _header_key(name)
        if key is None or name in exclude_headers:
            continue
        text = value.decode("latin-1")
        # RFC 9110 §5.3: several lines of one field mean the same as one line
        # with the values joined by commas.
        http_variables[key] = f"{http_variables[key]}, {text}" if key in http_variables else text

    variables = {
        "REQUEST_METHOD":  head.method,                                    # 'GET'
        "SCRIPT_NAME":     "",                                             # the app is mounted at /
        # RFC 3875 §4.1.5: PATH_INFO is decoded ("not URL-encoded"); PEP 3333
        # hands the decoded bytes over as latin-1, one character per byte.
        "PATH_INFO":       unquote_to_bytes(head.path).decode("latin-1"),  # '/hello'
        "QUERY_STRING":    head.query.decode("latin-1"),                   # 'ms=50'
    }
    if content_type is not None:
        variables["CONTENT_TYPE"] = content_type                          # 'application/json'
    if content_length is not None:
        variables["CONTENT_LENGTH"] = str(content_length)                 # '1048576'
    elif header_length is not None:
        variables["CONTENT_LENGTH"] = header_length
    variables.update({
        "SERVER_NAME":     server[0],                                      # '127.0.0.1'
        "SERVER_PORT":     str(server[1]),                                 # '8000'
        "SERVER_PROTOCOL": "HTTP/" + head.http_version,                    # 'HTTP/1.1'
        "REMOTE_ADDR":     client[0],                                      # '127.0.0.1'
        "REMOTE_PORT":     str(client[1]),                                 # '51234'
    })
    variables.update(http_variables)                                       # 'HTTP_HOST': 'localhost:8000'
    return variables
