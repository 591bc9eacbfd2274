"""The WSGI applications of tests/test_pep3333.py: one corner of PEP 3333 each.

The same router runs under servers.wsgi_server (python -m servers.wsgi_server
tests.pep3333_apps:app) and, through servers.cgi_app, under servers.cgi_server
(tests/pep3333_cgi.py), so both servers meet the same cases. Most applications
are wrapped in wsgiref.validate.validator, which checks the server's side too
and complains on stderr (the tests read the server's log). Some cannot be: the
validator insists on start_response before the iterable is first advanced, and
on read(size) with an argument, both of which PEP 3333 allows; and it hands the
server an iterator in place of a returned list, which would hide the cases
where a list takes another path through the server than an iterator does.
"""

import hashlib
import json
import sys
from pathlib import Path
from urllib.parse import parse_qs
from wsgiref.validate import validator

TEXT = [("Content-Type", "text/plain; charset=utf-8")]
THIS_FILE = Path(__file__)


def hello(environ, start_response):
    start_response("200 OK", TEXT)
    return [b"Hello, world!\n"]


def sized(environ, start_response):
    start_response("200 OK", TEXT + [("Content-Length", "14")])
    return [b"Hello, world!\n"]


def write_only(environ, start_response):
    """The whole body through write(), and an empty list returned."""
    write = start_response("200 OK", TEXT)
    write(b"written\n")
    write(b"again\n")
    return []


def write_then_items(environ, start_response):
    write = start_response("200 OK", TEXT)
    write(b"written\n")
    return [b"item one\n", b"item two\n"]


def empty(environ, start_response):
    start_response("200 OK", TEXT)
    return []


def empty_first_item(environ, start_response):
    """An empty first piece sends nothing: the status can still change after it."""
    start_response("200 OK", TEXT)
    yield b""
    try:
        raise RuntimeError("changed its mind after an empty piece")
    except RuntimeError:
        start_response("503 Service Unavailable", TEXT, sys.exc_info())
    yield b"replaced\n"


def start_in_iterable(environ, start_response):
    """A generator application: start_response runs at the first next(), not at the call."""
    start_response("201 Created", TEXT)
    yield b"started inside\n"


def exc_info_before_head(environ, start_response):
    start_response("200 OK", TEXT)
    try:
        raise RuntimeError("failed before the body")
    except RuntimeError:
        start_response("500 Internal Server Error", TEXT, sys.exc_info())
    return [b"handled\n"]


def exc_info_after_head(environ, start_response):
    start_response("200 OK", TEXT)
    yield b"first piece\n"
    try:
        raise RuntimeError("failed in the middle of the body")
    except RuntimeError:
        start_response("500 Internal Server Error", TEXT, sys.exc_info())  # raises it again
    yield b"never sent\n"


class Closing:
    """An iterable whose close() says so on stderr, which is the server's log."""

    def __init__(self, token, fail):
        self.token, self.fail = token, fail

    def __iter__(self):
        yield b"piece\n"
        if self.fail:
            raise RuntimeError("failed during iteration")
        yield b"last piece\n"

    def close(self):
        print(f"closed {self.token}", file=sys.stderr, flush=True)


def closing(environ, start_response):
    query = parse_qs(environ["QUERY_STRING"])
    start_response("200 OK", TEXT)
    return Closing(query["token"][0], fail="fail" in query)


def echo(environ, start_response):
    """wsgi.input read the way ?mode= says; answers the length and SHA-256 of what came."""
    mode = parse_qs(environ["QUERY_STRING"]).get("mode", ["read"])[0]
    stream = environ["wsgi.input"]
    if mode == "read":
        data = stream.read()
    elif mode == "read-n":
        data = b"".join(iter(lambda: stream.read(1000), b""))
    elif mode == "readline":
        data = b"".join(iter(stream.readline, b""))
    else:
        data = b"".join(stream)
    body = json.dumps({"length": len(data), "sha256": hashlib.sha256(data).hexdigest()}).encode()
    start_response("200 OK", [("Content-Type", "application/json")])
    return [body]


def file(environ, start_response):
    """PEP 3333's own example: the file wrapper if the server has one, else read() in blocks."""
    filelike = open(THIS_FILE, "rb")
    wrapper = environ.get("wsgi.file_wrapper")
    start_response("200 OK", [("Content-Type", "text/x-python"),
                              ("X-File-Wrapper", "yes" if wrapper else "no")])
    if wrapper is not None:
        return wrapper(filelike, 4096)
    return iter(lambda: filelike.read(4096), b"")


def upgrade(environ, start_response):
    """What the application sees of an Upgrade request: the headers, as plain HTTP."""
    start_response("200 OK", TEXT)
    return [f"{environ.get('HTTP_UPGRADE')} {environ.get('HTTP_CONNECTION')}\n".encode()]


VALIDATED = {
    "/hello": hello, "/sized": sized, "/empty-first-item": empty_first_item, "/exc-info-before-head": exc_info_before_head,
    "/exc-info-after-head": exc_info_after_head, "/closing": closing, "/file": file,
    "/upgrade": upgrade,
}
UNVALIDATED = {"/start-in-iterable": start_in_iterable, "/echo": echo, "/write-only": write_only,
               "/write-then-items": write_then_items, "/empty": empty}


def app(environ, start_response):
    path = environ["PATH_INFO"]
    if path in UNVALIDATED:
        return UNVALIDATED[path](environ, start_response)
    if path in VALIDATED:
        return validator(VALIDATED[path])(environ, start_response)
    start_response("404 Not Found", TEXT)
    return [b"no such app\n"]
