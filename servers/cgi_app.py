"""The child side of CGI: run a WSGI application for exactly one request.

A CGI server starts a new process for every request. The process finds the
request in its environment variables (RFC 3875 §4.1) and on its standard input
(the body, §4.2), answers on its standard output with a CGI header block, a
blank line and the body (§6), and exits. This module turns that into one WSGI
call (PEP 3333, through servers/pep3333.py, which the WSGI server uses too), as
CPython's wsgiref.handlers.CGIHandler does:

    environment + stdin  ──►  environ  ──►  application(environ, start_response)
    stdout  ◄──  "Status: 200 OK" + headers + blank line + body  ◄──  the iterable

A script uses it in three lines (sample_site/cgi-bin/django.py is one):

    from servers import cgi_app
    from sample_site.wsgi import application
    cgi_app.run(application)

Left out on purpose: wsgi.file_wrapper (a CGI child has nothing faster than
writing to a pipe; PEP 3333 makes it optional, and an application falls back to
iterating the file itself), HTTPS detection beyond the HTTPS variable, and NPH output
(the script never writes an HTTP status line itself; the server does, §5).

Needs from the operating system: the stdin, stdout and environment of its own process, and a
time.monotonic() shared with the runner (CLOCK_MONOTONIC on Linux, mach_absolute_time on
macOS).
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
import traceback

from servers import pep3333

# The runner sets this extension meta-variable when it wants to know where the
# child's time went. RFC 3875 §4.1: "The server MAY set additional
# implementation-defined extension meta-variables, whose names SHOULD be prefixed
# with ..." the two characters X_.
TIMING_VARIABLE = "X_CGI_TIMING"
# ...and the child answers in this extension header field, which the runner reads
# and removes. RFC 3875 §6.3.5: "There may be additional implementation-defined
# CGI header fields, whose field names SHOULD begin with ..." the prefix X-CGI-.
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
    response = CGIResponse(output, hold_body=timed)
    app_started = time.monotonic()
    try:
        response.run_application(application, environ)
    except Exception:
        # PEP 3333 ("Error Handling"): "Servers should trap and log any exception
        # that aborts an application or the iteration of its return value."
        traceback.print_exc(file=sys.stderr)
        if response.written:
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
    PEP 3333 wants them as native strings holding one character per byte, which is
    what decoding them as latin-1 gives. (os.environ would decode them with the
    locale's encoding instead and mangle a non-UTF-8 path.)
    """
    environ = {key.decode("latin-1"): value.decode("latin-1")
               for key, value in os.environb.items()}
    https = environ.get("HTTPS", "off").lower() in ("on", "1", "yes")
    environ.update(pep3333.wsgi_variables(
        input=sys.stdin.buffer,   # the body; read at most CONTENT_LENGTH bytes
        errors=sys.stderr,        # the runner logs it, prefixed with our pid
        multithread=False,        # one request, one thread...
        multiprocess=True,        # ...and many processes side by side
        run_once=True,            # this process ends after this request
        url_scheme="https" if https else "http"))
    return environ


class CGIResponse(pep3333.Response):
    """PEP 3333's response (servers/pep3333.py) written as a CGI response on stdout."""

    __slots__ = ("output", "held", "head", "written", "timing")

    def __init__(self, output, *, hold_body: bool):
        super().__init__()
        self.output = output
        # With timing on, the body is held until the application is done, so that
        # the header block can carry the finished app phase and a Content-Length.
        self.held = tempfile.SpooledTemporaryFile(SPOOL_IN_MEMORY) if hold_body else None
        self.head: tuple[str, list, int | None] | None = None
        self.written = False       # bytes of the response have reached stdout
        self.timing: str | None = None

    def send_head(self, status_code: int, reason: str, headers: list,
                  content_length: int | None) -> None:
        self.head = (f"{status_code} {reason}", headers, content_length)
        if self.held is None:
            self._write_head()

    def send_body(self, data: bytes) -> None:
        if self.held is not None:
            self.held.write(data)
            return
        self.output.write(data)
        # PEP 3333 ("Buffering and Streaming"): "Send the entire block to the
        # operating system (and request that any O/S buffers be flushed) before
        # returning control to the application".
        self.output.flush()

    def end_body(self) -> None:
        if self.held is None:
            self.output.flush()

    def fail(self) -> None:
        """The application raised before any output: a plain 500 (it was logged)."""
        body = b"Internal Server Error\n"
        self.head = ("500 Internal Server Error",
                     [("Content-Type", "text/plain; charset=utf-8")], len(body))
        if self.held is not None:
            self.held.seek(0)
            self.held.truncate()
            self.held.write(body)
        else:
            self._write_head()
            self.output.write(body)
            self.output.flush()

    def finish(self) -> None:
        """Write what is held (timing on): the header block with a Content-Length, the body."""
        if self.held is None:
            return
        status, headers, _ = self.head
        self.head = (status, headers, self.held.tell())
        self._write_head()
        self.held.seek(0)
        while chunk := self.held.read(65536):
            self.output.write(chunk)
        self.output.flush()

    def _write_head(self) -> None:
        """The CGI header block (RFC 3875 §6.3): a Status field and the header fields,
        one per line, then a blank line."""
        status, headers, content_length = self.head
        lines = [f"Status: {status}"]
        lines += [f"{name}: {value}" for name, value in headers]
        if content_length is not None and not any(name.lower() == "content-length"
                                                  for name, _ in headers):
            lines.append(f"Content-Length: {content_length}")
        if self.timing is not None:
            lines.append(f"{TIMING_HEADER}: {self.timing}")
        self.output.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        self.written = True


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
