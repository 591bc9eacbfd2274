"""Everything a server writes to its log (stderr), through one path.

Three kinds of output, all written whole under one lock, so that lines of
different threads never interleave with each other or with a --trace block:

    log(message)         a diagnostic line: a failed request, a killed child
    access_line(...)     --access-log: one line per request
    Trace                --trace: the teaching view of one request, in blocks

and server_timing(), the value of the Server-Timing header (--server-timing).

Needs from the operating system: nothing beyond the Python process it runs in.
"""

from __future__ import annotations

import sys
import threading
from http import HTTPStatus

_stderr_lock = threading.Lock()


def _write_stderr(text: str) -> None:
    with _stderr_lock:
        sys.stderr.write(text)
        sys.stderr.flush()


def observed(args) -> bool:
    """Is a teaching view on (--access-log, --server-timing, --trace)? Each costs time
    on every request, so a server checks this one flag before doing any of their work."""
    return args.access_log or args.server_timing or args.trace


def log(message: str) -> None:
    """One line to the server log (stderr), never interleaved with a trace block."""
    _write_stderr(message + "\n")


def access_line(client: tuple, request, status: int, size: int, seconds: float) -> None:
    """One access-log line: 127.0.0.1:51234 "GET /hello HTTP/1.1" 200 14 1.2ms

    request is the http11.Request; size counts the body bytes sent.
    """
    target = request.target.decode("latin-1")
    who = "unix" if client is None else f"{client[0]}:{client[1]}"  # None: a Unix socket's peer
    _write_stderr(f'{who} "{request.method} {target} HTTP/{request.http_version}" '
                  f"{status} {size} {seconds * 1000:.1f}ms\n")


def server_timing(phases) -> str:
    """[("app", 0.001234), ("total", 0.002)] -> 'app;dur=1.234, total;dur=2.000'

    The Server-Timing header (W3C Server Timing): metric names with a duration
    in milliseconds, which browsers show in their network panel.
    """
    return ", ".join(f"{name};dur={seconds * 1000:.3f}" for name, seconds in phases)


class Trace:
    """The --trace view of one request: blocks written whole to stderr.

        ── wsgi #3 ── request head
          GET /hello HTTP/1.1
          Host: 127.0.0.1:8000

    Every server calls the same methods in the order a request travels, so the
    three traces can be read side by side.
    """

    def __init__(self, kind: str, number: int):
        self.prefix = f"── {kind} #{number} ── "

    def _block(self, title: str, lines) -> None:
        _write_stderr(self.prefix + title + "\n" + "".join(f"  {line}\n" for line in lines))

    def request_head(self, raw: bytes) -> None:
        text = raw.decode("latin-1").rstrip("\r\n")
        self._block("request head", text.split("\r\n"))

    def mapping(self, title: str, mapping: dict) -> None:
        width = max((len(str(key)) for key in mapping), default=0)
        self._block(title, [f"{str(key):<{width}}  {_shown(value)}" for key, value in mapping.items()])

    def message(self, direction: str, message: dict) -> None:
        """An ASGI message (or a CGI step); bodies appear as <N bytes>, a long
        WebSocket text as its start and its length."""
        fields = ", ".join(f"{key!r}: {_shown(value, body=key in ('body', 'data', 'bytes', 'text'))}"
                           for key, value in message.items())
        self._block(direction, ["{" + fields + "}"])

    def raw_block(self, title: str, raw: bytes) -> None:
        """Bytes shown as text, line by line (a CGI script's header block)."""
        self._block(title, raw.decode("latin-1").rstrip("\r\n").replace("\r\n", "\n").split("\n"))

    def response(self, status: int, headers) -> None:
        lines = [f"{status} {_reason(status)}"]
        for name, value in headers:
            name = name.decode("latin-1") if isinstance(name, bytes) else name
            value = value.decode("latin-1") if isinstance(value, bytes) else value
            lines.append(f"{name}: {value}")
        self._block("response", lines)

    def timing(self, phases) -> None:
        self._block("timing", ["   ".join(f"{name} {seconds * 1000:.2f} ms" for name, seconds in phases)])


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return ""


def _shown(value, body: bool = False) -> str:
    """A value as the trace shows it: bodies by size, files by type, the rest by repr."""
    if body and isinstance(value, (bytes, bytearray, memoryview)):
        return f"<{len(value)} bytes>"
    if body and isinstance(value, str) and len(value) > 40:
        return f"{value[:40]!r}... <{len(value)} characters>"
    if isinstance(value, (str, bytes, int, float, bool, type(None), list, tuple, dict)):
        return repr(value)
    return f"<{type(value).__name__}>"
