"""A small raw-socket HTTP/1.1 client for the server tests, and the site's endpoint table.

Responses are read with the small parser below rather than a client library, so
that framing (chunked, Content-Length, close-delimited) is checked byte for byte
instead of smoothed over.
"""

import socket
import time

# Every row of docs/design.md's URL table that a GET can reach, with what the body must contain.
# The same cases run against every server (tests/test_end_to_end.py) and, under
# wsgiref.validate and servers.asgi_checker, against the toy WSGI and ASGI servers.
SITE_ENDPOINTS = [
    ("/", 200, b"/hello-async"),
    ("/hello", 200, b"Hello, world!\n"),
    ("/hello-async", 200, b"Hello, world!\n"),
    ("/products", 200, b"</html>"),
    ("/api/products", 200, b'"count": 50'),
    ("/io?ms=10", 200, b"slept 10 ms"),
    ("/io-async?ms=10", 200, b"slept 10 ms"),
    ("/cpu?n=1000", 200, b"n=1000"),
    ("/stream?chunks=3&delay_ms=0", 200, b"chunk 1 of 3\nchunk 2 of 3\nchunk 3 of 3\n"),
    ("/events?count=3&interval_ms=0", 200, b"data: 1\n\ndata: 2\n\ndata: 3\n\n"),
    ("/inspect", 200, b'"interface"'),
    ("/io?ms=oops", 400, b""),
    ("/no-such-page", 404, b""),
]


def connect(srv, timeout=10.0) -> socket.socket:
    return socket.create_connection((srv.host, srv.port), timeout=timeout)


def read_response(stream, head_request=False):
    """(status, headers {lower name: value}, body) of one response from a binary file."""
    status_line = stream.readline()
    if not status_line:
        raise ConnectionError("connection closed before a response")
    status = int(status_line.split()[1])
    headers = {}
    while (line := stream.readline()) not in (b"\r\n", b""):
        name, _, value = line.decode("latin-1").partition(":")
        headers.setdefault(name.strip().lower(), value.strip())
    if head_request or status in (204, 304):
        return status, headers, b""
    if headers.get("transfer-encoding") == "chunked":
        body = bytearray()
        while (size := int(stream.readline().split(b";")[0], 16)) > 0:
            body += stream.read(size)
            assert stream.read(2) == b"\r\n"
        assert stream.readline() == b"\r\n"
        return status, headers, bytes(body)
    if "content-length" in headers:
        return status, headers, stream.read(int(headers["content-length"]))
    return status, headers, stream.read()


def exchange(srv, raw: bytes, head_request=False):
    """Send raw request bytes on a new connection; read one response."""
    with connect(srv) as sock:
        sock.sendall(raw)
        return read_response(sock.makefile("rb"), head_request)


def get(path: str, *extra_headers: str, method="GET", version="1.1") -> bytes:
    lines = [f"{method} {path} HTTP/{version}", "Host: localhost", *extra_headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def chunked(pieces) -> bytes:
    return b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in pieces) + b"0\r\n\r\n"


def wait_for(predicate, timeout=10.0, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")
