"""servers/asgi_server.py over real sockets.

Most tests share one server running tests.asgi_apps:app (every endpoint wrapped in
servers.asgi_checker, so a server-side spec violation fails the request); the
lifespan, shutdown and limit tests start their own. Responses are read with
the small parser of tests/http_client.py.
"""

import hashlib
import json
import os
import select
import signal
import socket
import threading
import time

import pytest
import requests

from scripts.launch import ServerProcess, ServerStartError, free_port, server_command
from tests.http11_corpus import INVALID
from tests.http_client import (
    SITE_ENDPOINTS, connect, exchange, get, read_response, wait_for)

MB = 1024 * 1024


def start(app="tests.asgi_apps:app", extra=()):
    port = free_port()
    return ServerProcess(server_command("asgi", port=port, app=app, extra=list(extra)), port=port)


@pytest.fixture(scope="module")
def server():
    with start(extra=["--timeout", "1", "--keepalive", "2", "--max-body", str(25 * MB)]) as srv:
        yield srv








# ── the scope ─────────────────────────────────────────────────────────────────

def test_scope_keys_order_and_types(server):
    raw = (b"GET /scope/caf%C3%A9?q=a%20b&q=2 HTTP/1.1\r\nHost: localhost\r\n"
           b"X-Dup: one\r\nX-Dup: two\r\n\r\n")
    status, _, body = exchange(server, raw)
    assert status == 200
    data = json.loads(body)
    assert data["keys"] == ["type", "asgi", "http_version", "method", "scheme", "path", "raw_path",
                            "query_string", "root_path", "headers", "client", "server", "state"]
    scope = data["scope"]
    assert scope["asgi"]["version"] == "3.0"
    assert scope["path"] == "/scope/café"
    assert scope["raw_path"] == "/scope/caf%C3%A9"
    assert scope["query_string"] == "q=a%20b&q=2"
    assert scope["headers"][1:] == [["x-dup", "one"], ["x-dup", "two"]]
    assert scope["server"] == ["127.0.0.1", server.port]
    assert scope["client"][0] == "127.0.0.1"


# ── keep-alive, pipelining, HEAD, HTTP/1.0 ──────────────────────────────────────

def test_keep_alive_and_pipelining(server):
    with connect(server) as sock:
        stream = sock.makefile("rb")
        sock.sendall(get("/hello") + get("/state") + get("/hello"))
        answers = [read_response(stream) for _ in range(3)]
        assert [status for status, _, _ in answers] == [200, 200, 200]
        assert answers[0][2] == answers[2][2] == b"Hello, world!\n"
        sock.sendall(get("/hello"))                   # the same connection, later
        assert read_response(stream)[2] == b"Hello, world!\n"
        # A pipelined request with a body, then one without.
        sock.sendall(b"POST /sha256 HTTP/1.1\r\nHost: localhost\r\nContent-Length: 3\r\n\r\nabc"
                     + get("/hello"))
        assert json.loads(read_response(stream)[2])["sha256"] == hashlib.sha256(b"abc").hexdigest()
        assert read_response(stream)[2] == b"Hello, world!\n"


def test_receive_after_the_response_gives_http_disconnect(server):
    assert exchange(server, get("/receive-after-response"))[2] == b"done\n"
    wait_for(lambda: "receive-after-response: ['http.disconnect', 'http.disconnect']" in server.output(),
             what="the app's two receive() calls")


def test_two_receive_calls_waiting_at_once_both_get_http_disconnect(server):
    assert exchange(server, get("/two-waiting"))[2] == b"done\n"
    wait_for(lambda: "two-waiting: ['http.disconnect', 'http.disconnect']" in server.output(),
             what="both receive() calls to return")


def test_head_has_no_body_and_http10_closes(server):
    with connect(server) as sock:
        sock.sendall(b"HEAD /hello HTTP/1.1\r\nHost: localhost\r\n\r\n" + get("/hello"))
        stream = sock.makefile("rb")
        status, headers, _ = read_response_head_only(stream)
        assert status == 200 and headers["content-length"] == "14"
        assert read_response(stream)[2] == b"Hello, world!\n"   # HEAD left no body behind
    # No Content-Length on HTTP/1.0: the body ends where the connection does.
    status, headers, body = exchange(server, b"GET /events?count=2&interval=0 HTTP/1.0\r\n\r\n")
    assert status == 200 and headers["connection"] == "close" and "transfer-encoding" not in headers
    assert body == b"data: 1\n\ndata: 2\n\n"


def read_response_head_only(stream):
    status = int(stream.readline().split()[1])
    headers = {}
    while (line := stream.readline()) != b"\r\n":
        name, _, value = line.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    return status, headers, b""


def test_the_apps_content_length_goes_out_once(server):
    with connect(server) as sock:
        sock.sendall(b"GET /hello HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        response = b""
        while chunk := sock.recv(65536):
            response += chunk
    head = response.split(b"\r\n\r\n")[0].lower()
    assert head.count(b"\r\ncontent-length:") == 1, head   # RFC 9110 §8.6: one value


def test_keepalive_timeout_closes_idle_connection(server):
    with connect(server) as sock:
        sock.sendall(get("/hello"))
        stream = sock.makefile("rb")
        read_response(stream)
        assert stream.read() == b""                   # closed after --keepalive 2, no bytes


def test_keepalive_shorter_than_the_head_timeout_is_kept():
    # The first request's deadline is --timeout (5 s); after the response the
    # shorter --keepalive must replace it, not wait behind it.
    with start(extra=["--timeout", "5", "--keepalive", "0.3"]) as srv, connect(srv) as sock:
        sock.sendall(get("/hello"))
        stream = sock.makefile("rb")
        read_response(stream)
        sock.settimeout(4)
        assert stream.read() == b""                   # closed, long before --timeout


def test_a_head_begun_on_an_idle_connection_gets_the_whole_head_timeout():
    # Idle after a response, the connection's deadline is --keepalive (1.5 s); the
    # first bytes of a next head move it to --timeout (6 s) from then. The margins are
    # wide so that a test process paused by a busy machine still sends its bytes in time.
    with start(extra=["--timeout", "6", "--keepalive", "1.5"]) as srv, connect(srv) as sock:
        sock.sendall(get("/hello"))
        stream = sock.makefile("rb")
        read_response(stream)
        sock.sendall(b"GET /hello HTTP/1.1\r\nHost: loc")
        sock.settimeout(3)                            # well past --keepalive
        with pytest.raises(socket.timeout):
            sock.recv(1)
        sock.settimeout(10)
        status, headers, _ = read_response(stream)
        assert status == 408 and headers["connection"] == "close"


# ── request and response bodies ──────────────────────────────────────────────────

def test_streaming_request_body_arrives_in_pieces(server):
    pieces = [os.urandom(1000) for _ in range(5)]
    with connect(server) as sock:
        sock.sendall(b"POST /sha256 HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n")
        for piece in pieces:
            sock.sendall(b"%x\r\n%s\r\n" % (len(piece), piece))
            time.sleep(0.05)
        sock.sendall(b"0\r\n\r\n")
        status, _, body = read_response(sock.makefile("rb"))
    result = json.loads(body)
    assert status == 200
    assert result["sha256"] == hashlib.sha256(b"".join(pieces)).hexdigest()
    assert result["messages"] > 1                      # receive() did not wait for the whole body


def test_streaming_response_echoes_each_chunk_before_the_next_is_sent(server):
    with connect(server) as sock:
        sock.sendall(b"POST /echo-stream HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n")
        stream = sock.makefile("rb")
        # The app sent http.response.start and waits in receive(): the head is out.
        status, headers, _ = read_response_head_only(stream)
        assert status == 200 and headers["transfer-encoding"] == "chunked"
        for number in range(3):
            piece = f"piece {number}".encode()
            sock.sendall(b"%x\r\n%s\r\n" % (len(piece), piece))
            size = int(stream.readline(), 16)
            assert stream.read(size) == piece and stream.read(2) == b"\r\n"
        sock.sendall(b"0\r\n\r\n")
        assert stream.readline() == b"0\r\n" and stream.readline() == b"\r\n"


def test_20_mb_chunked_upload_has_the_right_hash(server):
    digest = hashlib.sha256()
    block = os.urandom(MB)

    def body():
        for number in range(20):
            piece = block[number:] + block[:number]
            digest.update(piece)
            yield piece

    response = requests.post(server.url + "/sha256", data=body(), timeout=60)
    assert response.status_code == 200
    result = response.json()
    assert result["length"] == 20 * MB
    assert result["sha256"] == digest.hexdigest()


def test_expect_100_continue(server):
    with connect(server) as sock:
        sock.sendall(b"POST /sha256 HTTP/1.1\r\nHost: localhost\r\nContent-Length: 5\r\n"
                     b"Expect: 100-continue\r\n\r\n")
        stream = sock.makefile("rb")
        assert stream.readline() == b"HTTP/1.1 100 Continue\r\n" and stream.readline() == b"\r\n"
        sock.sendall(b"hello")
        status, _, body = read_response(stream)
        assert status == 200 and json.loads(body)["sha256"] == hashlib.sha256(b"hello").hexdigest()


def test_body_over_max_body_is_413(server):
    status, headers, _ = exchange(server, b"POST /sha256 HTTP/1.1\r\nHost: localhost\r\n"
                                          b"Content-Length: %d\r\n\r\n" % (26 * MB))
    assert status == 413 and headers["connection"] == "close"
    # Chunked: the application is already running when the body grows too large.
    status, headers, _ = exchange(server, b"POST /sha256 HTTP/1.1\r\nHost: localhost\r\n"
                                          b"Transfer-Encoding: chunked\r\n\r\n%x\r\n" % (26 * MB))
    assert status == 413 and headers["connection"] == "close"


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


def test_backpressure_slow_reader_keeps_memory_bounded(server):
    exchange(server, get("/big?mb=4"))                  # warm up buffers and code paths
    baseline = rss_kib(server.pid)
    peak = baseline
    with connect(server, timeout=30) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
        sock.sendall(get("/big?mb=200"))
        time.sleep(0.5)                                 # read nothing for a while
        assert "big: sent 209715200" not in server.output()   # the app is held in send()
        peak = max(peak, rss_kib(server.pid))
        received, next_sample = 0, 0
        while received < 200 * MB:
            data = sock.recv(256 * 1024)
            assert data
            received += len(data)
            if received >= next_sample:                 # a slow reader: pause every 8 MB
                peak = max(peak, rss_kib(server.pid))
                next_sample += 8 * MB
                time.sleep(0.01)
    assert peak - baseline < 20 * 1024, f"server RSS grew by {(peak - baseline) // 1024} MB"
    wait_for(lambda: "big: sent 209715200" in server.output(), what="the app to finish")


# ── disconnects, slow clients, invalid requests ──────────────────────────────────────

def test_disconnect_is_delivered_to_an_app_waiting_in_receive(server):
    with connect(server) as sock:
        sock.sendall(b"POST /wait-disconnect HTTP/1.1\r\nHost: localhost\r\nContent-Length: 3\r\n\r\nabc")
        wait_for(lambda: "wait-disconnect: waiting" in server.output(), what="the app to wait")
    wait_for(lambda: "wait-disconnect: got http.disconnect" in server.output(),
             what="http.disconnect to reach the app")


def test_slow_header_client_does_not_delay_others_and_gets_408(server):
    with connect(server) as slow:
        slow.sendall(b"GET /hello HTTP/1.1\r\nHost: loc")     # and nothing more
        for _ in range(5):                                     # served while it dawdles
            assert requests.get(server.url + "/hello", timeout=5).text == "Hello, world!\n"
        status, headers, _ = read_response(slow.makefile("rb"))
        assert status == 408 and headers["connection"] == "close"


@pytest.mark.parametrize("name, raw, expected", INVALID, ids=[case[0] for case in INVALID])
def test_invalid_request_gets_its_status_and_server_keeps_serving(server, name, raw, expected):
    with connect(server) as sock:
        sock.sendall(raw)
        status, _, _ = read_response(sock.makefile("rb"))
    assert status == expected
    assert exchange(server, get("/hello"))[2] == b"Hello, world!\n"


# ── the application breaking the rules (served unchecked by `raw`) ───────────────────

@pytest.fixture(scope="module")
def raw_server():
    with start(app="tests.asgi_apps:raw") as srv:
        yield srv


@pytest.mark.parametrize("path, logged", [
    ("/error-before-start", "ValueError: boom before the response"),
    ("/body-first", "the first message must be 'http.response.start', got 'http.response.body'"),
    ("/str-headers", "response headers are [name, value] byte strings"),
    ("/no-response", "the application returned without a response"),
])
def test_app_failure_before_the_response_is_500(raw_server, path, logged):
    status, headers, _ = exchange(raw_server, get(path))
    assert status == 500 and headers["connection"] == "close"
    wait_for(lambda: logged in raw_server.output(), what=logged)


@pytest.mark.parametrize("path, logged", [
    ("/error-after-start", "ValueError: boom in the middle of the response"),
    ("/str-body", "'body' must be a byte string, got str"),
])
def test_app_failure_after_the_response_started_closes_the_connection(raw_server, path, logged):
    with connect(raw_server) as sock:
        sock.sendall(get(path) + get("/hello"))
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    assert not data.endswith(b"0\r\n\r\n")             # never a complete chunked body
    assert b"Hello, world!" not in data                 # the pipelined request is not served
    wait_for(lambda: logged in raw_server.output(), what=logged)


def test_send_after_the_response_is_complete_raises_in_the_app(raw_server):
    assert exchange(raw_server, get("/send-after-end"))[2] == b"done\n"
    wait_for(lambda: "send-after-end: ASGI HTTP spec: 'http.response.body' sent after the response "
                     "was complete" in raw_server.output(), what="the RuntimeError")


# ── limits ───────────────────────────────────────────────────────────────────────────

def test_limit_concurrency_answers_503_beyond_n_connections():
    with start(extra=["--limit-concurrency", "2"]) as srv:
        with connect(srv) as first, connect(srv) as second:
            first.sendall(get("/hello"))
            assert read_response(first.makefile("rb"))[0] == 200
            status, headers, _ = exchange(srv, get("/hello"))
            assert status == 503 and headers["connection"] == "close"
        wait_for(lambda: exchange(srv, get("/hello"))[0] == 200, what="a free slot")


# ── lifespan ────────────────────────────────────────────────────────────────────

def test_lifespan_on_runs_startup_and_shutdown_and_shares_state():
    with start(extra=["--lifespan", "on"]) as srv:
        wait_for(lambda: "Listening on" in srv.output(), what="the announce line")
        assert "lifespan: startup" in srv.output()
        assert "(asgi, asyncio event loop, lifespan on, " in srv.output()   # plain asyncio by default
        assert requests.get(srv.url + "/state", timeout=5).text == "[('greeting', 'hello from startup')]"
    assert srv.returncode == 0
    assert "lifespan: shutdown" in srv.output()


def test_lifespan_off_never_calls_it():
    with start(extra=["--lifespan", "off"]) as srv:
        assert requests.get(srv.url + "/state", timeout=5).text == "[]"
    assert "lifespan" not in srv.output().replace("lifespan off", "")


def test_lifespan_auto_carries_on_when_the_app_raises():
    with start(app="tests.asgi_apps:checked_lifespan_raises") as srv:
        assert requests.get(srv.url + "/", timeout=5).status_code == 200
        assert "does not support it (ValueError: only http, not lifespan)" in srv.output()


@pytest.mark.parametrize("app, extra, message", [
    ("tests.asgi_apps:checked_lifespan_raises", ["--lifespan", "on"],
     "lifespan failed: ValueError: only http, not lifespan"),
    ("tests.asgi_apps:checked_lifespan_failed", [], "lifespan startup failed: database unreachable"),
])
def test_lifespan_startup_failure_exits_non_zero_with_the_message(app, extra, message):
    srv = start(app=app, extra=extra)
    with pytest.raises(ServerStartError, match="exited with status 1"):
        srv.start()
    assert message in srv.output()
    assert "Listening" not in srv.output()


# ── graceful shutdown ───────────────────────────────────────────────────────────

def stream_in_thread(srv, raw: bytes, results: dict, key: str) -> threading.Thread:
    def run():
        try:
            results[key] = exchange(srv, raw)
        except Exception as exc:     # reported by the assertions below
            results[key] = exc
    thread = threading.Thread(target=run)
    thread.start()
    return thread


def test_graceful_shutdown_finishes_requests_and_streams_in_flight():
    with start(extra=["--graceful-timeout", "10"]) as srv:
        results: dict = {}
        threads = [stream_in_thread(srv, get("/sleep?s=1"), results, "sleep"),
                   stream_in_thread(srv, get("/events?count=4&interval=0.3"), results, "events")]
        wait_for(lambda: "events: generated 1" in srv.output(), what="the stream to start")
        srv.signal(signal.SIGTERM)
        for thread in threads:
            thread.join(timeout=15)
        assert srv.wait(timeout=15) == 0
    assert results["sleep"][:1] == (200,) and results["sleep"][2] == b"slept 1.0\n"
    assert results["events"][0] == 200
    assert results["events"][2] == b"".join(b"data: %d\n\n" % n for n in range(1, 5))
    # It answered after SIGTERM, so it says the connection will not be kept alive.
    assert results["sleep"][1]["connection"] == "close"


def test_graceful_timeout_disconnects_a_stream_that_runs_too_long():
    with start(extra=["--graceful-timeout", "1"]) as srv:
        results: dict = {}
        thread = stream_in_thread(srv, get("/events?count=1000&interval=0.1"), results, "events")
        wait_for(lambda: "events: generated 2" in srv.output(), what="the stream to start")
        srv.signal(signal.SIGTERM)
        assert srv.wait(timeout=15) == 0
        thread.join(timeout=15)
    assert "events: client gone" in srv.output()
    assert "events: generated 1000" not in srv.output()


def test_graceful_timeout_does_not_wait_for_a_sync_view_in_its_thread():
    with start(app="tests.asgi_apps:django", extra=["--graceful-timeout", "1", "--trace"]) as srv:
        results: dict = {}
        thread = stream_in_thread(srv, get("/io?ms=9000"), results, "io")
        wait_for(lambda: "── asgi #1 ── scope" in srv.output(), what="the request in the app")
        srv.signal(signal.SIGTERM)
        # Long before the view's 9 s sleep ends: threads are not waited for.
        assert srv.wait(timeout=6) == 0
        thread.join(timeout=15)
    assert isinstance(results["io"], ConnectionError)


def test_events_first_event_arrives_before_the_second_is_generated(server):
    earlier = len(server.output())
    with connect(server) as sock:
        sock.sendall(get("/events?count=2&interval=30"))
        stream = sock.makefile("rb")
        read_response_head_only(stream)
        size = int(stream.readline(), 16)
        assert stream.read(size) == b"data: 1\n\n"
        wait_for(lambda: "events: generated 1" in server.output()[earlier:], what="the app's print")
        assert "events: generated 2" not in server.output()[earlier:]


# ── the teaching views ─────────────────────────────────────────────────────────

def test_trace_and_server_timing():
    with start(extra=["--trace", "--server-timing", "--access-log"]) as srv:
        response = requests.post(srv.url + "/sha256", data=b"x" * 10, timeout=5)
        assert response.status_code == 200
        timing = response.headers["server-timing"]
        assert timing.startswith("app;dur=") and ", total;dur=" in timing
        wait_for(lambda: "── asgi #1 ── timing" in srv.output(), what="the trace")
    output = srv.output()
    blocks = ["── asgi #1 ── request head", "── asgi #1 ── scope", "── asgi #1 ── receive() -> app",
              "── asgi #1 ── app -> send()", "── asgi #1 ── response", "── asgi #1 ── timing"]
    positions = [output.index(block) for block in blocks]
    assert positions == sorted(positions)
    assert "'body': <10 bytes>" in output
    assert '"POST /sha256 HTTP/1.1" 200' in output


# ── the sample site, every endpoint, through the checker ─────────────────────────

@pytest.fixture(scope="module")
def django_server():
    with start(app="tests.asgi_apps:django") as srv:
        yield srv


@pytest.mark.parametrize("path, status, expected", SITE_ENDPOINTS)
def test_sample_site_endpoint(django_server, path, status, expected):
    got_status, _, body = exchange(django_server, get(path))
    assert got_status == status
    assert expected in body


def test_sample_site_echo_and_inspect(django_server):
    payload = os.urandom(200_000)
    response = requests.post(django_server.url + "/echo", data=payload, timeout=10,
                             headers={"Content-Type": "application/octet-stream"})
    assert response.json() == {"method": "POST", "content_type": "application/octet-stream",
                               "body_length": len(payload),
                               "sha256": hashlib.sha256(payload).hexdigest()}
    inspected = requests.get(django_server.url + "/inspect?x=1", timeout=10).json()
    assert inspected["interface"] == "asgi"
    assert list(inspected["scope"])[:4] == ["type", "asgi", "http_version", "method"]
    assert inspected["scope"]["query_string"] == "b'x=1'"


def test_sample_site_events_first_event_arrives_before_the_second_is_due(django_server):
    with connect(django_server) as sock:
        # The second event is due 10 s after the first. A server that sends each event as
        # Django yields it has sent the first alone; one that held the stream back would
        # send the second (and the end) with it.
        sock.sendall(get("/events?count=2&interval_ms=10000"))
        received = b""
        while b"data: 1\n\n" not in received:
            data = sock.recv(65536)
            assert data, received
            received += data
        assert b"data: 2" not in received, received
        assert select.select([sock], [], [], 0)[0] == [], "more than the first event was sent"


@pytest.mark.parametrize("extra, frozen", [([], True), (["--no-gc-freeze"], False)])
def test_start_up_objects_are_frozen_unless_asked_not_to(extra, frozen):
    with start(extra=extra) as srv:
        assert exchange(srv, get("/hello"))[2] == b"Hello, world!\n"
        wait_for(lambda: "Listening on" in srv.output(), what="the announce line")
        assert ("start-up objects frozen" in srv.output()) is frozen


@pytest.mark.parametrize("loop, announced", [("auto", "uvloop event loop"), ("uvloop", "uvloop event loop")])
def test_loop_choice_is_announced_and_serves(loop, announced):
    pytest.importorskip("uvloop")
    with start(extra=["--loop", loop]) as srv:
        assert exchange(srv, get("/hello"))[2] == b"Hello, world!\n"
        wait_for(lambda: "Listening on" in srv.output(), what="the announce line")
        assert announced in srv.output()
