"""PEP 3333 on both WSGI servers, over real sockets, with the same cases.

servers/pep3333.py is the one implementation of the specification; the WSGI
server (responses through http11 onto a socket) and the CGI runner (a child
running servers/cgi_app.py, its CGI header block turned into a response by
servers/cgi_server.py) plug their I/O into it. Every case below runs against
both: tests/pep3333_apps.py under servers.wsgi_server, and the same
applications as the CGI script tests/pep3333_cgi.py.
"""

import hashlib
import json
import os

import pytest

from scripts.launch import REPO, ServerProcess, free_port, server_command
from tests.http_client import chunked, connect, exchange, get, read_response, wait_for

APPS_FILE = REPO / "tests" / "pep3333_apps.py"
VALIDATOR_COMPLAINTS = ("AssertionError", "WSGIWarning", "garbage collected without being closed")


@pytest.fixture(scope="module", params=["wsgi", "cgi"])
def server(request):
    port = free_port()
    app = "tests.pep3333_apps:app" if request.param == "wsgi" else str(REPO / "tests" / "pep3333_cgi.py")
    with ServerProcess(server_command(request.param, port=port, app=app,
                                      extra=["--timeout", "5"]), port=port) as srv:
        srv.kind = request.param
        yield srv
    # The validator speaks only when a server breaks PEP 3333 (the tracebacks of
    # the deliberately failing applications name RuntimeError).
    output = srv.output()
    for complaint in VALIDATOR_COMPLAINTS:
        assert complaint not in output, output
    assert srv.returncode == 0


def raw_until_close(srv, path):
    """Everything the server sends for one request on a connection it closes."""
    with connect(srv) as sock:
        sock.sendall(get(path))
        received = b""
        while data := sock.recv(65536):
            received += data
    return received


def test_write_alone_then_an_empty_list_ends_the_response(server):
    with connect(server) as sock:
        stream = sock.makefile("rb")
        sock.sendall(get("/write-only"))
        status, headers, body = read_response(stream)
        assert (status, body) == (200, b"written\nagain\n")
        # The response ended properly (final chunk): the connection serves another.
        sock.sendall(get("/hello"))
        assert read_response(stream)[2] == b"Hello, world!\n"


def test_write_then_items_loses_nothing(server):
    status, _, body = exchange(server, get("/write-then-items"))
    assert (status, body) == (200, b"written\nitem one\nitem two\n")


def test_empty_list_gets_content_length_zero(server):
    status, headers, body = exchange(server, get("/empty"))
    assert (status, body, headers.get("content-length")) == (200, b"", "0")


def test_an_empty_first_item_does_not_send_the_head(server):
    # The status could still change after the empty piece: it did.
    status, _, body = exchange(server, get("/empty-first-item"))
    assert (status, body) == (503, b"replaced\n")


def test_start_response_called_inside_the_iterable(server):
    status, _, body = exchange(server, get("/start-in-iterable"))
    assert (status, body) == (201, b"started inside\n")


def test_exc_info_before_the_head_replaces_the_status(server):
    status, _, body = exchange(server, get("/exc-info-before-head"))
    assert (status, body) == (500, b"handled\n")


def test_exc_info_after_the_head_cuts_the_response_short(server):
    received = raw_until_close(server, "/exc-info-after-head")
    assert received.startswith(b"HTTP/1.1 200 ")
    assert b"first piece\n" in received
    # Neither the rest nor an end: the client can tell the response failed.
    assert b"never sent" not in received and not received.endswith(b"0\r\n\r\n")


@pytest.mark.parametrize("fail", [False, True])
def test_close_is_always_called(server, fail):
    token = f"{server.kind}-{'fail' if fail else 'ok'}-{os.urandom(4).hex()}"
    path = f"/closing?token={token}" + ("&fail=1" if fail else "")
    if fail:
        received = raw_until_close(server, path)
        assert b"piece\n" in received and b"last piece" not in received
    else:
        assert exchange(server, get(path))[2] == b"piece\nlast piece\n"
    wait_for(lambda: f"closed {token}" in server.output(), what="close() in the log")


@pytest.mark.parametrize("path", ["/hello", "/sized"])
def test_head_has_no_body(server, path):
    with connect(server) as sock:
        stream = sock.makefile("rb")
        sock.sendall(get(path, method="HEAD"))
        status, headers, body = read_response(stream, head_request=True)
        assert (status, body) == (200, b"")
        if path == "/sized":  # the application's length describes the GET response
            assert headers["content-length"] == "14"
        # No body bytes were sent: the next response starts right after the head.
        sock.sendall(get("/hello"))
        assert read_response(stream)[2] == b"Hello, world!\n"


def test_content_length_of_the_application_is_sent_once(server):
    with connect(server) as sock:
        sock.sendall(get("/sized", "Connection: close"))
        raw = sock.makefile("rb").read()
    head, _, body = raw.partition(b"\r\n\r\n")
    assert body == b"Hello, world!\n"
    assert head.lower().count(b"\r\ncontent-length: 14\r\n") == 1, head
    assert b"transfer-encoding" not in head.lower()


@pytest.mark.parametrize("mode", ["read", "read-n", "readline", "iterate"])
@pytest.mark.parametrize("framing", ["content-length", "chunked"])
def test_three_ways_of_reading_wsgi_input(server, mode, framing):
    payload = b"".join(b"line %d %s\n" % (n, os.urandom(n % 40).hex().encode()) for n in range(2000))
    if framing == "chunked":
        raw = get(f"/echo?mode={mode}", "Transfer-Encoding: chunked", method="POST") + \
            chunked([payload[i:i + 7000] for i in range(0, len(payload), 7000)])
    else:
        raw = get(f"/echo?mode={mode}", f"Content-Length: {len(payload)}", method="POST") + payload
    status, _, body = exchange(server, raw)
    assert status == 200
    assert json.loads(body) == {"length": len(payload), "sha256": hashlib.sha256(payload).hexdigest()}


def test_file_wrapper_and_its_absence(server):
    status, headers, body = exchange(server, get("/file"))
    assert (status, body) == (200, APPS_FILE.read_bytes())
    # The WSGI server offers wsgi.file_wrapper; the CGI child leaves it out, and
    # the application falls back to reading the file itself.
    assert headers["x-file-wrapper"] == ("yes" if server.kind == "wsgi" else "no")


def test_upgrade_to_websocket_is_served_as_plain_http(server):
    request = get("/upgrade", "Connection: Upgrade", "Upgrade: websocket",
                  "Sec-WebSocket-Version: 13", "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==")
    with connect(server) as sock:
        stream = sock.makefile("rb")
        sock.sendall(request)
        status, headers, body = read_response(stream)
        # No 101: the application answered as to any request, and saw the headers.
        assert (status, body) == (200, b"websocket Upgrade\n")
        assert "upgrade" not in headers
        # The connection still speaks HTTP/1.1.
        sock.sendall(get("/hello"))
        assert read_response(stream)[2] == b"Hello, world!\n"
