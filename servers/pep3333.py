"""PEP 3333 in one place: start_response, write(), the returned iterable, close().

Both WSGI servers of this project call the application through this module:
servers/wsgi_server.py (the response goes to a socket, framed by http11) and
servers/cgi_app.py (the response goes to standard output as a CGI header block).
CPython's wsgiref.handlers.BaseHandler is the model: every rule of the
specification is here, and the I/O is plugged in by four small methods that a
server defines:

    send_head(status_code, reason, headers, content_length)   the response head
    send_body(data)                                           one non-empty piece
    end_body()                                                the body is complete
    send_file(wrapper) -> bool                                optional: sendfile()

The order of events for one request:

    application(environ, start_response)  ─►  start_response stores status, headers
        write(data) ─┐
    iterable items ──┴─►  first non-empty piece: send_head, then send_body
    end of the iterable  ─►  send_head (empty body) if not yet sent; end_body
    close() of the iterable, always

A rule broken by the application raises ApplicationError, whichever server runs it.

Needs from the operating system: nothing beyond the Python process it runs in.
"""

from __future__ import annotations

import re

# RFC 9110 §5.6.2: token = 1*tchar, the syntax of a field name.
_FIELD_NAME = re.compile(r"[-!#$%&'*+.^_`|~0-9A-Za-z]+")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_CONTROL_BUT_TAB = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")


class ApplicationError(Exception):
    """The application broke a rule of PEP 3333; the server answers 500 if it still can."""


def wsgi_variables(*, input, errors, multithread: bool, multiprocess: bool, run_once: bool,
                   url_scheme: str = "http") -> dict:
    """The wsgi.* keys of the environ, in one order for both servers."""
    return {
        "wsgi.version":      (1, 0),
        "wsgi.url_scheme":   url_scheme,
        "wsgi.input":        input,
        "wsgi.errors":       errors,
        "wsgi.multithread":  multithread,
        "wsgi.multiprocess": multiprocess,
        "wsgi.run_once":     run_once,
    }


class Response:
    """One call of a WSGI application and the response it produces.

    A server subclasses it and defines send_head, send_body and end_body (and
    send_file if it has a faster way to send a file); start_response and write
    are the two callables PEP 3333 hands the application.
    """

    __slots__ = ("status_code", "reason", "headers", "head_sent", "write_called", "body_size")

    def __init__(self) -> None:
        self.status_code = 0          # from start_response: 200
        self.reason = ""              # 'OK'
        self.headers: list | None = None
        self.head_sent = False
        self.write_called = False
        self.body_size = 0            # body bytes handed to send_body

    # -- the hooks a server defines -------------------------------------------

    def send_head(self, status_code: int, reason: str, headers: list,
                  content_length: int | None) -> None:
        raise NotImplementedError

    def send_body(self, data: bytes) -> None:
        raise NotImplementedError

    def end_body(self) -> None:
        raise NotImplementedError

    def send_file(self, wrapper: FileWrapper) -> bool:
        """Send a wsgi.file_wrapper's file by a faster way; False: iterate it instead."""
        return False

    # -- calling the application ------------------------------------------------

    def run_application(self, application, environ: dict) -> None:
        """Call the application and send all it produces; its errors propagate."""
        result = application(environ, self.start_response)
        try:
            self.send_result(result)
        finally:
            # PEP 3333 ("Specification Details"): "If the iterable returned by the
            # application has a close() method, the server or gateway must call that
            # method upon completion of the current request, whether the request was
            # completed normally, or terminated early due to an application error
            # during iteration or an early disconnect of the browser."
            close = getattr(result, "close", None)
            if close is not None:
                close()

    def start_response(self, status, headers, exc_info=None):
        if exc_info is not None:
            try:
                if self.head_sent:
                    # PEP 3333 ("The start_response() Callable"): "if exc_info is
                    # provided, and the HTTP headers have already been sent,
                    # start_response must raise an error, and should re-raise using
                    # the exc_info tuple."
                    raise exc_info[1].with_traceback(exc_info[2])
            finally:
                # PEP 3333 ("The start_response() Callable"): "servers, gateways, or
                # middleware implementing start_response should ensure that no
                # reference is held to the exc_info parameter beyond the duration of
                # the function's execution".
                exc_info = None
        elif self.headers is not None:
            # PEP 3333 ("The start_response() Callable"): "it is a fatal error to call
            # start_response without the exc_info argument if start_response has
            # already been called within the current invocation of the application."
            raise ApplicationError("start_response() called a second time without exc_info")
        self.status_code, self.reason = check_status(status)
        check_headers(headers)
        self.headers = headers
        return self.write

    def write(self, data: bytes) -> None:
        """The write() callable start_response returns."""
        # PEP 3333 ("The write() Callable"): "it accepts a single parameter: a
        # bytestring to be written as part of the HTTP response body, that is
        # treated exactly as though it had been yielded by the output iterable."
        self.write_called = True
        self.send_piece(data)

    def send_result(self, result) -> None:
        """Send what the application returned, then end the body."""
        if not self.write_called and type(result) in (list, tuple):
            # PEP 3333 ("Handling the Content-Length Header"): "If the application
            # does not call the write() callable, and returns an iterable whose len()
            # is 1, then the server can automatically determine Content-Length by
            # taking the length of the first bytestring yielded by the iterable."
            # A list of several pieces is known whole just the same: one send, with
            # its Content-Length.
            for data in result:
                check_piece(data)
            data = b"".join(result)
            self.start_head(len(data))
            if data:
                self.send_body(data)
                self.body_size += len(data)
            self.end_body()
            return
        if type(result) is FileWrapper and not self.head_sent and self.headers is not None \
                and self.send_file(result):
            return
        for data in result:
            self.send_piece(data)
        if not self.head_sent:
            # PEP 3333 ("The start_response() Callable"): "response headers must not
            # be sent until there is actual body data available, or until the
            # application's returned iterable is exhausted."
            self.start_head(0)
        self.end_body()

    def send_piece(self, data: bytes) -> None:
        """One piece of the body, from write() or from the iterable."""
        check_piece(data)
        if not data:
            return
        if not self.head_sent:
            # PEP 3333 ("The start_response() Callable"): "it must store them for the
            # server or gateway to transmit only after the first iteration of the
            # application return value that yields a non-empty bytestring, or upon
            # the application's first invocation of the write() callable."
            self.start_head(None)
        self.send_body(data)
        self.body_size += len(data)

    def start_head(self, content_length: int | None) -> None:
        if self.headers is None:
            raise ApplicationError("the application produced a body before calling start_response()")
        self.send_head(self.status_code, self.reason, self.headers, content_length)
        # Only now: a head the server refused to send (an invalid header) leaves the
        # server free to answer 500 instead.
        self.head_sent = True


# -- the checks, worded like the PEP ------------------------------------------

def check_status(status) -> tuple[int, str]:
    """'200 OK' -> (200, 'OK'), or ApplicationError."""
    # PEP 3333 ("The start_response() Callable"): "it is a string consisting of a
    # Status-Code and a Reason-Phrase, in that order and separated by a single
    # space, with no surrounding whitespace or other characters."
    if type(status) is not str:
        raise ApplicationError(f"the status must be a str like '200 OK', not {type(status).__name__}")
    code, space, reason = status.partition(" ")
    if len(code) != 3 or not code.isdigit() or not code.isascii() or not space \
            or reason != reason.strip() or not 100 <= int(code) <= 599:
        raise ApplicationError(f"the status must be like '200 OK', not {status!r}")
    # PEP 3333 ("The start_response() Callable"): "The string must not contain
    # control characters, and must not be terminated with a carriage return,
    # linefeed, or combination thereof."
    if _CONTROL.search(status):
        raise ApplicationError(f"control character in the status {status!r}")
    return int(code), reason


def check_headers(headers) -> None:
    # PEP 3333 ("The start_response() Callable"): "The response_headers argument is
    # a list of (header_name, header_value) tuples. It must be a Python list".
    if type(headers) is not list:
        raise ApplicationError(f"the headers must be a list, not {type(headers).__name__}")
    for header in headers:
        if type(header) is not tuple or len(header) != 2 \
                or type(header[0]) is not str or type(header[1]) is not str:
            raise ApplicationError(f"each header must be a (str, str) tuple, not {header!r}")
        name, value = header
        # PEP 3333 ("The start_response() Callable"): "Each header_name must be a
        # valid HTTP header field-name (as defined by RFC 2616, Section 4.2), without
        # a trailing colon or other punctuation."
        if not _FIELD_NAME.fullmatch(name):
            raise ApplicationError(f"invalid header name {name!r}")
        # PEP 3333 ("The start_response() Callable"): "Each header_value must not
        # include any control characters, including carriage returns or linefeeds,
        # either embedded or at the end." (A horizontal tab is allowed by HTTP.)
        if _CONTROL_BUT_TAB.search(value):
            raise ApplicationError(f"control character in the value of header {name}")


def check_piece(data) -> None:
    # A body piece is a bytestring. PEP 3333 ("A Note On String Types"): "(which are
    # implemented using the bytes type in Python 3, and str elsewhere), that are used
    # for the bodies of requests and responses".
    if type(data) is not bytes:
        raise ApplicationError(f"the body must be bytes, not {type(data).__name__}")


class FileWrapper:
    """wsgi.file_wrapper: lets an application return an open file.

    PEP 3333 ("Optional Platform-Specific File Handling"): "Apart from the handling
    of close(), the semantics of returning a file wrapper from the application
    should be the same as if the application had returned iter(filelike.read, '')."
    A server may send the file by a faster way instead (Response.send_file).
    """

    def __init__(self, filelike, block_size: int = 8192):
        self.filelike = filelike
        self.block_size = block_size
        # PEP 3333 ("Optional Platform-Specific File Handling"): "if so, the iterable
        # returned by wsgi.file_wrapper must have a close() method that invokes the
        # original file-like object's close() method."
        if hasattr(filelike, "close"):
            self.close = filelike.close

    def __iter__(self):
        read, size = self.filelike.read, self.block_size
        return iter(lambda: read(size), b"")
