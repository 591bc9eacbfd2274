"""The child side of CGI: run a WSGI application for exactly one request.

A CGI server starts a new process for every request. The process finds the
request in its environment variables (RFC 3875 §4.1) and on its standard input
(the body, §4.2), answers on its standard output with a CGI header block, a
blank line and the body (§6), and exits. This module turns that into one WSGI
call (PEP 3333), as CPython's wsgiref.handlers.CGIHandler does:

    environment + stdin  ──►  environ  ──►  application(environ, start_response)
    stdout  ◄──  "Status: 200 OK" + headers + blank line + body  ◄──  the iterable

A script uses it in three lines (sample_site/cgi-bin/django.py is one):

    from servers import cgi_app
    from sample_site.wsgi import application
    cgi_app.run(application)

Left out on purpose: wsgi.file_wrapper (a CGI child has nothing faster than
writing to a pipe), HTTPS detection beyond the HTTPS variable, and NPH output
(the script never writes an HTTP status line itself; the server does, §5).
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
import traceback

# The runner sets this extension meta-variable when it wants to know where the
# child's time went (RFC 3875 §4.1: extension variables "SHOULD be prefixed with X_").
TIMING_VARIABLE = "X_CGI_TIMING"
# ...and the child answers in this extension header field, which the runner reads
# and removes (RFC 3875 §6.3.5: "field names SHOULD begin with 'X-CGI-'").
TIMING_HEADER = "X-CGI-Timing"
# A response this large is held in memory; a larger one moves to a temporary file.
SPOOL_IN_MEMORY = 1024 * 1024


def run(application, *, started: float | None = None, imported: float | None = None) -> None:
    """Serve the one request this process was started for, then return.

    started and imported are time.monotonic() readings the script took at its
    first line and after importing the application; they are reported to the
    runner when it asks (see _report_timing).
    """
    environ = read_environ()
    output = sys.stdout.buffer
    # Standard output is the response now: a stray print() in a view would land in
    # the middle of it, so text printed from here on goes to the log instead.
    sys.stdout = sys.stderr
    timed = environ.get(TIMING_VARIABLE) == "1"
    response = Response(output, buffer_body=timed)
    app_started = time.monotonic()
    try:
        result = application(environ, response.start_response)
        try:
            for data in result:
                response.write(data)
        finally:
            # PEP 3333: "If the iterable returned by the application has a close()
            # method, the server or gateway must call that method upon completion".
            if hasattr(result, "close"):
                result.close()
    except Exception:
        traceback.print_exc(file=sys.stderr)
        if response.head_written:
            # Part of the response is already out; the runner sees it cut short.
            raise SystemExit(1) from None
        response.fail()
    app_finished = time.monotonic()
    if timed:
        response.timing = _report_timing(started, imported, app_finished - app_started)
    response.finish()


def read_environ() -> dict:
    """The WSGI environ: the CGI variables plus the wsgi.* keys.

    os.environb holds the variables exactly as the server passed them, as bytes;
    PEP 3333 wants them as "bytes-as-str", one character per byte, which is what
    decoding them as latin-1 gives. (os.environ would decode them with the
    locale's encoding instead and mangle a non-UTF-8 path.)
    """
    environ = {key.decode("latin-1"): value.decode("latin-1")
               for key, value in os.environb.items()}
    environ.update({
        "wsgi.input":        sys.stdin.buffer,     # the body; read at most CONTENT_LENGTH bytes
        "wsgi.errors":       sys.stderr,           # the runner logs it, prefixed with our pid
        "wsgi.version":      (1, 0),
        "wsgi.url_scheme":   "https" if environ.get("HTTPS", "off").lower() in ("on", "1", "yes") else "http",
        "wsgi.multithread":  False,                # one request, one thread...
        "wsgi.multiprocess": True,                 # ...and many processes side by side
        "wsgi.run_once":     True,                 # this process ends after this request
    })
    return environ


class Response:
    """start_response, write and the CGI header block, for one response."""

    def __init__(self, output, *, buffer_body: bool):
        self.output = output
        self.status: str | None = None
        self.headers: list[tuple[str, str]] = []
        self.head_written = False
        self.timing: str | None = None
        # With timing on, the body is held until the application is done, so that
        # the header block can carry the finished app phase and a Content-Length.
        self.body = tempfile.SpooledTemporaryFile(SPOOL_IN_MEMORY) if buffer_body else None
        self.body_size = 0

    def start_response(self, status: str, headers: list, exc_info=None):
        """PEP 3333 start_response: remember status and headers; nothing is written yet."""
        if exc_info:
            try:
                # PEP 3333: after the headers are sent, start_response with exc_info
                # "should raise an error": re-raise the application's own exception.
                if self.head_written:
                    raise exc_info[1].with_traceback(exc_info[2])
            finally:
                exc_info = None
        elif self.status is not None:
            raise AssertionError("start_response called a second time without exc_info")
        if not (len(status) >= 4 and status[:3].isdigit() and status[3] == " "):
            raise AssertionError(f"PEP 3333: status must be like '200 OK', got {status!r}")
        self.status = status
        self.headers = list(headers)
        return self.write

    def write(self, data: bytes) -> None:
        if self.status is None:
            raise AssertionError("PEP 3333: the application wrote body data before start_response")
        if not data:
            return
        if self.body is not None:
            self.body.write(data)
            self.body_size += len(data)
            return
        # PEP 3333: the headers go out with the first non-empty piece of the body,
        # so an application can still change its mind until then.
        if not self.head_written:
            self._write_head()
        self.output.write(data)
        self.output.flush()

    def fail(self) -> None:
        """The application raised before any output: a plain 500 (it was logged)."""
        self.status = "500 Internal Server Error"
        self.headers = [("Content-Type", "text/plain; charset=utf-8")]
        if self.body is not None:
            self.body.seek(0)
            self.body.truncate()
            self.body_size = 0
        self.write(b"Internal Server Error\n")

    def finish(self) -> None:
        """Write whatever is still held: the header block of an empty body, or the buffered body."""
        if self.body is not None:
            if not any(name.lower() == "content-length" for name, _ in self.headers):
                self.headers.append(("Content-Length", str(self.body_size)))
            self._write_head()
            self.body.seek(0)
            while chunk := self.body.read(65536):
                self.output.write(chunk)
        elif not self.head_written:
            self._write_head()
        self.output.flush()

    def _write_head(self) -> None:
        """RFC 3875 §6.3: "Status:" and the header fields, one per line, then a blank line."""
        lines = [f"Status: {self.status}"]
        lines += [f"{name}: {value}" for name, value in self.headers]
        if self.timing is not None:
            lines.append(f"{TIMING_HEADER}: {self.timing}")
        self.output.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        self.head_written = True


def _report_timing(started: float | None, imported: float | None, app: float) -> str:
    """The child's phases for the runner's Server-Timing header.

    started and imported are time.monotonic() readings; on Linux that is
    CLOCK_MONOTONIC, one clock for every process on the machine, so the runner
    can subtract its own readings from them:
        started   the script's first line      (runner: startup = started - exec)
        imported  Django imported and set up   (runner: import = imported - started)
        app       seconds inside the WSGI application, call to close()
    """
    fields = []
    if started is not None:
        fields.append(f"started={started:.6f}")
    if imported is not None:
        fields.append(f"imported={imported:.6f}")
    fields.append(f"app={app:.6f}")
    return "; ".join(fields)
