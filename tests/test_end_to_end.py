"""The same end-to-end cases for every server: the three toy servers and the references.

Each server kind of scripts.launch serves sample_site with its default settings,
and the same requests must get the same answers from all of them, gunicorn,
uvicorn, daphne and granian included; where a toy server differed from them, a student comparing
the models would be comparing a bug.
"""

import hashlib
import json
import os

import pytest

from scripts.launch import KINDS, ServerProcess, free_port, interface_of, server_command
from tests.http_client import SITE_ENDPOINTS, chunked, connect, exchange, get, read_response


@pytest.fixture(scope="module", params=KINDS)
def served(request):
    port = free_port()
    with ServerProcess(server_command(request.param, port=port), port=port) as server:
        yield request.param, server


@pytest.mark.parametrize("path, status, expected", SITE_ENDPOINTS)
def test_endpoint(served, path, status, expected):
    kind, server = served
    got_status, headers, body = exchange(server, get(path))
    assert got_status == status, (kind, path, body[:300])
    assert expected in body, (kind, path, body[:300])
    if status == 400:
        assert headers["content-type"].startswith("text/plain"), kind


def test_inspect_names_the_interface(served):
    kind, server = served
    report = json.loads(exchange(server, get("/inspect?x=1", "X-Course: web"))[2])
    expected = interface_of(kind)
    assert report["interface"] == expected, kind
    seen = report["scope"] if expected == "asgi" else report["meta"]
    text = json.dumps(seen)
    assert "x=1" in text and "web" in text, (kind, text[:500])


def test_echo_hashes_a_body_sent_with_content_length_and_chunked(served):
    kind, server = served
    body = os.urandom(1024 * 1024)
    digest = hashlib.sha256(body).hexdigest()
    with_length = (f"POST /echo HTTP/1.1\r\nHost: localhost\r\nContent-Length: {len(body)}\r\n"
                   "Content-Type: application/octet-stream\r\n\r\n").encode() + body
    status, _, answer = exchange(server, with_length)
    assert status == 200 and json.loads(answer)["sha256"] == digest, (kind, answer[:300])
    in_chunks = (b"POST /echo HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n"
                 + chunked(body[i:i + 100_000] for i in range(0, len(body), 100_000)))
    status, _, answer = exchange(server, in_chunks)
    assert status == 200 and json.loads(answer)["sha256"] == digest, (kind, answer[:300])


def test_keep_alive_serves_several_requests_on_one_connection(served):
    kind, server = served
    if kind == "gunicorn":
        # gunicorn's sync worker serves one request per connection by design, and says so.
        assert exchange(server, get("/hello"))[1]["connection"] == "close"
        return
    with connect(server, timeout=30) as sock:
        stream = sock.makefile("rb")
        for _ in range(3):
            sock.sendall(get("/hello"))
            assert read_response(stream)[2] == b"Hello, world!\n", kind
