"""servers/http11.py: bytes in, events out; response in, bytes out."""

from servers import http11
from servers.http11 import Data, EndOfMessage, Error, Request, ConnectionClosed


def feed(data, limits=None):
    return http11.ServerConnection(limits).receive(data)


def test_simple_get():
    events = feed(b"GET /a/b?x=1&y=2 HTTP/1.1\r\nHost: example.com\r\nAccept: */*\r\n\r\n")
    request, end = events
    assert isinstance(request, Request) and end == EndOfMessage()
    assert request.method == "GET"
    assert request.target == b"/a/b?x=1&y=2"
    assert (request.path, request.query) == (b"/a/b", b"x=1&y=2")
    assert request.headers == [(b"host", b"example.com"), (b"accept", b"*/*")]
    assert request.keep_alive and request.content_length == 0 and not request.chunked


def test_pipelined_requests_come_out_one_at_a_time():
    conn = http11.ServerConnection()
    first = conn.receive(b"GET /1 HTTP/1.1\r\nHost: h\r\n\r\n"
                         b"POST /2 HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\nhi"
                         b"GET /3 HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n")
    assert [type(e) for e in first] == [Request, EndOfMessage]
    conn.start_response(200, [], content_length=0)
    conn.end_response()
    second = conn.next_request()
    assert second[0].target == b"/2" and second[1:] == [Data(b"hi"), EndOfMessage()]
    conn.start_response(200, [])
    conn.end_response()
    third = conn.next_request()
    assert third[0].target == b"/3" and not third[0].keep_alive
    head = conn.start_response(200, [], content_length=0)
    assert b"Connection: close\r\n" in head
    conn.end_response()
    assert not conn.keep_alive


def test_chunked_body_and_response_framing():
    conn = http11.ServerConnection()
    events = conn.receive(b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
                          b"3;ext=1\r\nabc\r\n0\r\nX-Trailer: t\r\n\r\n")
    assert events[1:] == [Data(b"abc"), EndOfMessage()]
    head = conn.start_response(200, [("Content-Type", "text/plain")])
    assert head.startswith(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n")
    assert b"Transfer-Encoding: chunked\r\n" in head and b"\r\nDate: " in head
    assert conn.send_body(b"hello") == b"5\r\nhello\r\n"
    assert conn.end_response() == b"0\r\n\r\n"
    assert conn.keep_alive


def test_errors_are_final():
    conn = http11.ServerConnection()
    assert conn.receive(b"GET / HTTP/1.1\r\nHost: h\r\nContent-Length: 1, 1\r\n\r\n") == [
        Error(400, "invalid Content-Length")]
    assert conn.receive(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n") == []
    response = conn.error_response(400, "invalid Content-Length")
    assert response.startswith(b"HTTP/1.1 400 Bad Request\r\n")
    assert response.endswith(b"Connection: close\r\n\r\ninvalid Content-Length\n")
    assert not conn.keep_alive


def test_limits():
    assert feed(b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\n")[0].status == 414
    many = b"".join(b"X-%d: y\r\n" % i for i in range(101))
    assert feed(b"GET / HTTP/1.1\r\nHost: h\r\n" + many + b"\r\n")[0].status == 431
    limits = http11.Limits(max_body_size=10)
    assert feed(b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 11\r\n\r\n", limits) == [
        Error(413, "request body too large")]


def test_eof():
    assert feed(b"") == [ConnectionClosed()]
    conn = http11.ServerConnection()
    assert conn.receive(b"GET / HT") == []
    assert conn.receive(b"")[0].status == 400


def test_response_header_injection_raises_before_output():
    conn = http11.ServerConnection()
    conn.receive(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
    for bad in [("X", "a\r\nSet-Cookie: x"), ("X", "a\x00"), ("Bad Name", "v"), ("X:", "v")]:
        try:
            conn.start_response(200, [bad])
        except http11.LocalProtocolError:
            pass
        else:
            raise AssertionError(f"{bad!r} was accepted")
    assert conn.start_response(200, [("X", "ok")]).startswith(b"HTTP/1.1 200 OK\r\n")
