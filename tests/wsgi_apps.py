"""Small WSGI applications that exercise one corner of PEP 3333 each.

The tests serve them with servers.wsgi_server, most of them wrapped in
wsgiref.validate.validator, which checks both sides of the interface: any
violation by the server raises AssertionError inside the application (a 500 and
a traceback in the server's log) or is printed as a WSGIWarning.

    python -m servers.wsgi_server tests.wsgi_apps:validated_hello
"""

import hashlib
import json
import os
import sys
import threading
import time
from urllib.parse import parse_qs
from wsgiref.validate import validator

BODY = b"Hello, world!\n"
TEXT = [("Content-Type", "text/plain; charset=utf-8")]


def hello(environ, start_response):
    start_response("200 OK", TEXT)
    return [BODY]


def sized(environ, start_response):
    """The application gives its own Content-Length."""
    start_response("200 OK", TEXT + [("Content-Length", str(len(BODY)))])
    return [BODY]


def generator(environ, start_response):
    """Pieces from a generator, empty ones among them: chunked on HTTP/1.1."""
    start_response("200 OK", TEXT)
    yield b""
    yield b"one\n"
    yield b""
    yield b"two\n"
    yield b"three\n"


def writer(environ, start_response):
    """The old write() callable, then the iterable for the rest."""
    write = start_response("200 OK", TEXT)
    write(b"written\n")
    write(b"again\n")
    return [b"returned\n"]


def empty(environ, start_response):
    start_response("204 No Content", [])
    return []


def empty_generator(environ, start_response):
    start_response("200 OK", TEXT)
    return iter(())


def exc_info(environ, start_response):
    """The PEP 3333 error-handling pattern: replace the headers with exc_info."""
    start_response("200 OK", TEXT)
    try:
        raise RuntimeError("something failed before the body")
    except RuntimeError:
        start_response("503 Service Unavailable", TEXT, sys.exc_info())
    return [b"handled: sorry\n"]


def exc_info_too_late(environ, start_response):
    """exc_info after the headers went out: start_response must re-raise."""
    start_response("200 OK", TEXT)
    yield b"first piece\n"
    try:
        raise RuntimeError("failed in the middle of the body")
    except RuntimeError:
        start_response("500 Internal Server Error", TEXT, sys.exc_info())
    yield b"never sent\n"


def raises(environ, start_response):
    raise RuntimeError("the application failed before start_response")


def raises_in_body(environ, start_response):
    start_response("200 OK", TEXT)
    yield b"partial\n"
    raise RuntimeError("the application failed in the middle of the body")


def bad_header(environ, start_response):
    """A header value with CR LF would inject headers: the server must answer 500."""
    start_response("200 OK", [("X-Bad", "a\r\nSet-Cookie: evil=1")])
    return [b"should not be sent\n"]


def bad_status(environ, start_response):
    start_response("200", TEXT)
    return [b"should not be sent\n"]


def file_response(environ, start_response):
    """wsgi.file_wrapper around this very file (os.sendfile when not validated)."""
    start_response("200 OK", [("Content-Type", "text/x-python")])
    return environ["wsgi.file_wrapper"](open(__file__, "rb"), 4096)


def echo(environ, start_response):
    """Reads wsgi.input in the way ?mode= says; answers its length and SHA-256."""
    mode = parse_qs(environ["QUERY_STRING"]).get("mode", ["read"])[0]
    stream = environ["wsgi.input"]
    digest = hashlib.sha256()
    size = 0
    if mode == "readline":
        pieces = iter(lambda: stream.readline(1000), b"")
    elif mode == "readlines":
        pieces = iter(stream.readlines())
    elif mode == "iterate":
        pieces = iter(stream)
    else:
        pieces = iter(lambda: stream.read(65536), b"")
    for piece in pieces:
        digest.update(piece)
        size += len(piece)
    body = json.dumps({"length": size, "sha256": digest.hexdigest(),
                       "content_length": environ.get("CONTENT_LENGTH")}).encode()
    start_response("200 OK", [("Content-Type", "application/json")])
    return [body]


def environ_json(environ, start_response):
    """The environ's string values, in the server's order."""
    shown = {key: value for key, value in environ.items() if isinstance(value, str)}
    shown.update({key: repr(environ[key]) for key in
                  ("wsgi.version", "wsgi.multithread", "wsgi.multiprocess", "wsgi.run_once")})
    start_response("200 OK", [("Content-Type", "application/json")])
    return [json.dumps(list(shown.items())).encode()]


class Stream:
    """A stream whose close() reports itself on stderr (the tests read the log)."""

    def __init__(self, name, pieces=200, size=0, pause=0.01):
        self.name, self.pieces, self.size, self.pause = name, pieces, size, pause

    def __iter__(self):
        for number in range(self.pieces):
            yield (b"piece %d\n" % number).ljust(self.size, b".")
            time.sleep(self.pause)

    def close(self):
        print(f"closed {self.name}", file=sys.stderr, flush=True)


def slow_stream(environ, start_response):
    start_response("200 OK", TEXT)
    return Stream(environ["QUERY_STRING"])


def pid(environ, start_response):
    """Which process served the request (pre-fork tests)."""
    start_response("200 OK", TEXT)
    return [b"%d" % os.getpid()]


def big_stream(environ, start_response):
    """100 MB in 1 MB pieces, for a client that does not read."""
    start_response("200 OK", TEXT)
    return Stream(environ["QUERY_STRING"], pieces=100, size=1024 * 1024, pause=0)


def sleep(environ, start_response):
    seconds = float(parse_qs(environ["QUERY_STRING"]).get("s", ["1"])[0])
    print(f"sleep: started {seconds:g} s", file=sys.stderr, flush=True)
    time.sleep(seconds)
    start_response("200 OK", TEXT)
    return [b"slept\n"]


ROUTES = {
    "/hello": hello, "/sized": sized, "/generator": generator, "/writer": writer, "/empty": empty,
    "/empty-generator": empty_generator, "/exc-info": exc_info,
    "/exc-info-too-late": exc_info_too_late, "/raises": raises,
    "/raises-in-body": raises_in_body, "/file": file_response, "/echo": echo,
    "/environ": environ_json, "/slow-stream": slow_stream, "/big-stream": big_stream, "/sleep": sleep, "/pid": pid,
}
# These break PEP 3333 on purpose; the validator would stop them before the server does.
UNCHECKED_ROUTES = {"/bad-header": bad_header, "/bad-status": bad_status}


def router(environ, start_response):
    path = environ["PATH_INFO"]
    app = ROUTES.get("/environ" if path.startswith("/environ/") else path)
    if app is None:
        start_response("404 Not Found", TEXT)
        return [b"no such app\n"]
    return app(environ, start_response)


validated_router = validator(router)
validated_hello = validator(hello)


def app(environ, start_response):
    """All the apps above under one server: validated, except the deliberately broken."""
    if environ["PATH_INFO"].startswith("/raw/"):
        environ["PATH_INFO"] = environ["PATH_INFO"][4:]
        return router(environ, start_response)
    unchecked = UNCHECKED_ROUTES.get(environ["PATH_INFO"])
    if unchecked is not None:
        return unchecked(environ, start_response)
    return validated_router(environ, start_response)


_site = None
_site_lock = threading.Lock()


def validated_site(environ, start_response):
    """sample_site under the validator; Django is set up by the first request."""
    global _site
    with _site_lock:
        if _site is None:
            from sample_site.wsgi import application
            _site = validator(application)
    return _site(environ, start_response)
