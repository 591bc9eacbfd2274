"""servers/wsgi_server.py over real sockets.

Most tests share one server running tests.wsgi_apps:app, whose applications are
wrapped in wsgiref.validate.validator: a PEP 3333 violation by the server raises
AssertionError inside the application (a 500 and a traceback in the log) or
prints a WSGIWarning, and the module-level check at the end of each server's
life fails the test when the log shows either. Responses are read with the
small parser of tests/http_client.py.
"""

import hashlib
import itertools
import json
import os
import signal
import socket
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from servers import tuning
from scripts.launch import REPO, ServerProcess, free_port, server_command
from tests.http11_corpus import INVALID
from tests.http_client import (
    SITE_ENDPOINTS, chunked, connect, exchange, get, read_response, wait_for)

MB = 1024 * 1024
APPS_FILE = Path(__file__).with_name("wsgi_apps.py")
VALIDATOR_COMPLAINTS = ("AssertionError", "WSGIWarning", "garbage collected without being closed")


def start(app="tests.wsgi_apps:app", extra=()):
    port = free_port()
    return ServerProcess(server_command("wsgi", port=port, app=app, extra=list(extra)), port=port)


def assert_validator_silent(srv):
    output = srv.output()
    for complaint in VALIDATOR_COMPLAINTS:
        assert complaint not in output, output


@pytest.fixture(scope="module")
def server():
    with start(extra=["--threads", "4", "--timeout", "2", "--keepalive", "3",
                      "--max-body", str(25 * MB)]) as srv:
        yield srv
    assert_validator_silent(srv)
    assert srv.returncode == 0


@pytest.fixture(scope="module")
def site():
    with start(app="tests.wsgi_apps:validated_site", extra=["--max-body", str(25 * MB)]) as srv:
        yield srv
    assert_validator_silent(srv)
    assert srv.returncode == 0








def closed_by_server(sock) -> bool:
    """True when the server closed the connection (EOF or reset) after any response."""
    try:
        while data := sock.recv(65536):
            if not data:
                break
        return True
    except ConnectionResetError:
        return True
    except socket.timeout:
        return False


# ── the environ and the small applications, under the validator ──────────────

def test_environ_keys_in_order_with_cgi_variables_first(server):
    status, _, body = exchange(server, get("/environ?a=1&b=%20", "X-Custom: one",
                                           "X-Custom: two", "X_Sneaky: no"))
    assert status == 200
    environ = dict(pairs := json.loads(body))
    keys = [key for key, _ in pairs]
    assert keys[:4] == ["REQUEST_METHOD", "SCRIPT_NAME", "PATH_INFO", "QUERY_STRING"]
    assert keys.index("REMOTE_PORT") < keys.index("HTTP_HOST") < keys.index("wsgi.url_scheme")
    assert environ["QUERY_STRING"] == "a=1&b=%20"
    assert environ["SERVER_PROTOCOL"] == "HTTP/1.1"
    assert environ["HTTP_X_CUSTOM"] == "one, two"
    assert "HTTP_X_SNEAKY" not in environ
    assert environ["wsgi.version"] == "(1, 0)"
    assert environ["wsgi.multithread"] == "True" and environ["wsgi.multiprocess"] == "False"
    assert environ["wsgi.url_scheme"] == "http"


def test_path_info_is_percent_decoded_bytes_as_latin1(server):
    status, _, body = exchange(server, get("/environ/caf%C3%A9%2Fx?q=%C3%A9"))
    environ = dict(json.loads(body))
    assert status == 200
    assert environ["PATH_INFO"] == "/environ/caf\u00c3\u00a9/x"  # each byte one character
    assert environ["QUERY_STRING"] == "q=%C3%A9"  # the query string stays as sent


def test_list_response_gets_content_length(server):
    assert exchange(server, get("/hello"))[2] == b"Hello, world!\n"
    # Unwrapped: the validator hands the server an iterator, not the list itself.
    status, headers, body = exchange(server, get("/raw/hello"))
    assert (status, body) == (200, b"Hello, world!\n")
    assert headers["content-length"] == "14"
    assert "transfer-encoding" not in headers


@pytest.mark.parametrize("path", ["/sized", "/raw/sized"])
def test_content_length_of_the_application_is_sent_once(server, path):
    with connect(server) as sock:
        sock.sendall(get(path, "Connection: close"))
        raw = sock.makefile("rb").read()
    head, _, body = raw.partition(b"\r\n\r\n")
    assert body == b"Hello, world!\n"
    assert head.lower().count(b"\r\ncontent-length: ") == 1, head


def test_generator_is_chunked_on_http11_and_close_delimited_on_http10(server):
    status, headers, body = exchange(server, get("/generator"))
    assert (status, body) == (200, b"one\ntwo\nthree\n")
    assert headers["transfer-encoding"] == "chunked"
    status, headers, body = exchange(server, get("/generator", version="1.0"))
    assert (status, body) == (200, b"one\ntwo\nthree\n")
    assert "transfer-encoding" not in headers and headers["connection"] == "close"


def test_write_callable_then_iterable(server):
    status, _, body = exchange(server, get("/writer"))
    assert (status, body) == (200, b"written\nagain\nreturned\n")


@pytest.mark.parametrize("path, status, length", [("/empty", 204, None),
                                                  ("/empty-generator", 200, "0")])
def test_empty_responses(server, path, status, length):
    got_status, headers, body = exchange(server, get(path))
    assert (got_status, body) == (status, b"")
    assert headers.get("content-length") == length


def test_exc_info_before_the_body_replaces_the_status(server):
    status, _, body = exchange(server, get("/exc-info"))
    assert (status, body) == (503, b"handled: sorry\n")


@pytest.mark.parametrize("path", ["/raises", "/bad-header", "/bad-status"])
def test_failure_before_the_body_is_500_without_traceback(server, path):
    status, headers, body = exchange(server, get(path))
    assert status == 500
    assert body == b"Internal Server Error\n"
    assert "x-bad" not in headers and "set-cookie" not in headers
    wait_for(lambda: f"serving GET {path}" in server.output(), what="the traceback in the log")


@pytest.mark.parametrize("path", ["/raises-in-body", "/exc-info-too-late"])
def test_failure_after_the_head_closes_the_connection(server, path):
    with connect(server) as sock:
        sock.sendall(get(path))
        stream = sock.makefile("rb")
        assert stream.readline().startswith(b"HTTP/1.1 200")
        rest = stream.read()  # returns only when the server closes the connection
    assert b"never sent" not in rest and not rest.endswith(b"0\r\n\r\n")


@pytest.mark.parametrize("path", ["/file", "/raw/file"])
def test_file_wrapper(server, path):
    status, headers, body = exchange(server, get(path))
    assert (status, body) == (200, APPS_FILE.read_bytes())
    if path == "/raw/file":  # not wrapped by the validator: sent with os.sendfile
        assert headers["content-length"] == str(len(body))


@pytest.mark.parametrize("mode", ["read", "readline", "readlines", "iterate"])
def test_wsgi_input_read_modes(server, mode):
    payload = b"".join(b"line %d %s\n" % (n, os.urandom(n % 50).hex().encode()) for n in range(3000))
    response = requests.post(f"{server.url}/echo?mode={mode}", data=payload, timeout=10)
    assert response.json() == {"length": len(payload), "content_length": str(len(payload)),
                               "sha256": hashlib.sha256(payload).hexdigest()}


def test_chunked_body_is_spooled_and_gets_content_length(server):
    pieces = [os.urandom(1000) for _ in range(50)]
    raw = get("/echo", "Transfer-Encoding: chunked", method="POST") + chunked(pieces)
    status, _, body = exchange(server, raw)
    payload = b"".join(pieces)
    assert status == 200
    assert json.loads(body) == {"length": len(payload), "content_length": str(len(payload)),
                                "sha256": hashlib.sha256(payload).hexdigest()}


def test_body_over_max_body_is_413(server):
    status, _, _ = exchange(server, get("/echo", f"Content-Length: {26 * MB}", method="POST"))
    assert status == 413
    raw = get("/echo", "Transfer-Encoding: chunked", method="POST")
    with connect(server) as sock:
        sock.sendall(raw)
        piece = chunked([b"x" * MB])[:-5]
        try:
            for _ in range(30):
                sock.sendall(piece)
        except (BrokenPipeError, ConnectionResetError):
            pass
        assert read_response(sock.makefile("rb"))[0] == 413


def test_expect_100_continue_is_sent_as_soon_as_the_head_is_in(server):
    """The body is read before the application runs, so 100 Continue comes first."""
    payload = b"p" * 5000
    with connect(server) as sock:
        sock.sendall(get("/echo", f"Content-Length: {len(payload)}", "Expect: 100-continue",
                         method="POST"))
        stream = sock.makefile("rb")
        assert stream.readline() == b"HTTP/1.1 100 Continue\r\n"
        assert stream.readline() == b"\r\n"
        sock.sendall(payload)
        status, _, body = read_response(stream)
    assert status == 200 and json.loads(body)["length"] == len(payload)


def test_expect_100_continue_over_max_body_gets_413_instead(server):
    with connect(server) as sock:
        sock.sendall(get("/echo", f"Content-Length: {26 * MB}", "Expect: 100-continue",
                         method="POST"))
        stream = sock.makefile("rb")
        assert stream.readline().startswith(b"HTTP/1.1 413 ")
        assert closed_by_server(sock)


def test_keep_alive_and_pipelining(server):
    with connect(server) as sock:
        sock.sendall(get("/hello") + get("/generator") + get("/raw/hello", method="HEAD")
                     + get("/environ"))
        stream = sock.makefile("rb")
        assert read_response(stream)[2] == b"Hello, world!\n"
        assert read_response(stream)[2] == b"one\ntwo\nthree\n"
        status, headers, _ = read_response(stream, head_request=True)
        assert status == 200 and headers["content-length"] == "14"
        ports = {dict(json.loads(read_response(stream)[2]))["REMOTE_PORT"]}
        for _ in range(3):  # one by one, on the same connection
            sock.sendall(get("/environ"))
            ports.add(dict(json.loads(read_response(stream)[2]))["REMOTE_PORT"])
    assert ports == {str(sock.getsockname()[1])}


def test_unread_small_body_is_drained_and_the_connection_kept(server):
    with connect(server) as sock:
        sock.sendall(get("/hello", "Content-Length: 10", method="POST") + b"0123456789"
                     + get("/hello"))
        stream = sock.makefile("rb")
        assert read_response(stream)[0] == 200
        assert read_response(stream)[0] == 200


def test_idle_keep_alive_connection_closes_after_keepalive(server):
    with connect(server) as sock:
        sock.sendall(get("/hello"))
        stream = sock.makefile("rb")
        read_response(stream)
        started = time.monotonic()
        assert stream.read() == b""  # the server closes the idle connection (--keepalive 3)
        assert time.monotonic() - started > 2  # not before --keepalive


def test_client_disconnect_mid_response_calls_close(server):
    with connect(server) as sock:
        sock.sendall(get("/raw/slow-stream?gone-early"))
        assert sock.recv(100).startswith(b"HTTP/1.1 200")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    wait_for(lambda: "closed gone-early" in server.output(), what="close() after the disconnect")
    assert exchange(server, get("/hello"))[0] == 200


def test_client_that_stops_reading_is_dropped_after_timeout(server):
    with connect(server) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.sendall(get("/raw/big-stream?never-read"))
        # The server's sends block once the socket buffers are full; --timeout
        # (2 s) later the send fails, the thread is free and close() runs.
        wait_for(lambda: "closed never-read" in server.output(), timeout=15,
                 what="close() after the send timed out")
    assert exchange(server, get("/hello"))[0] == 200


def test_1000_idle_connections_do_not_hold_the_4_threads(server):
    idle = [connect(server) for _ in range(1000)]
    try:
        for sock in idle[:500]:  # half of them kept alive after one request
            sock.sendall(get("/hello"))
            read_response(sock.makefile("rb"))
        assert exchange(server, get("/hello"))[2] == b"Hello, world!\n"
    finally:
        for sock in idle:
            sock.close()


@pytest.mark.parametrize("name, raw, expected", INVALID, ids=[name for name, _, _ in INVALID])
def test_invalid_request_gets_its_status_and_server_keeps_serving(server, name, raw, expected):
    with connect(server) as sock:
        sock.sendall(raw)
        status, headers, _ = read_response(sock.makefile("rb"))
    assert status == expected
    assert headers["connection"] == "close"
    assert exchange(server, get("/hello"))[0] == 200


def test_silent_connection_is_closed_after_timeout_without_a_response(server):
    with connect(server) as sock:
        started = time.monotonic()
        assert sock.recv(100) == b""
        assert time.monotonic() - started > 1.5  # not before --timeout 2


def test_partial_head_on_kept_alive_connection_gets_408(server):
    with connect(server) as sock:
        sock.sendall(get("/hello"))
        stream = sock.makefile("rb")
        assert read_response(stream)[0] == 200
        sock.sendall(b"GET /hel")
        started = time.monotonic()
        assert read_response(stream)[0] == 408
        assert time.monotonic() - started > 1.5  # --timeout 2 from the head's first byte


def test_slow_clients_do_not_delay_others_and_time_out(server):
    """50 clients send their head one byte a second; --timeout is 2 s on this server."""
    slow = [connect(server) for _ in range(50)]
    connected = time.monotonic()
    stop = threading.Event()

    def dribble():
        for byte in b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n":
            for sock in slow:
                try:
                    sock.send(bytes([byte]))
                except OSError:
                    pass
            if stop.wait(1.0):
                return

    thread = threading.Thread(target=dribble, daemon=True)
    thread.start()
    try:
        time.sleep(0.5)
        for _ in range(3):
            # Answered while all 50 still hold their connections (their 408 comes later).
            assert exchange(server, get("/hello"))[0] == 200
            time.sleep(0.3)
        answers = []
        for sock in slow:
            sock.settimeout(15)
            answers.append(sock.makefile("rb").read())
        assert all(answer.startswith(b"HTTP/1.1 408 ") for answer in answers), answers[:3]
        assert time.monotonic() - connected > 1.9  # not before --timeout
    finally:
        stop.set()
        for sock in slow:
            sock.close()


# ── slow uploads: a body is collected in the selector, not in a thread ───────

def echo_answer(payload: bytes) -> dict:
    return {"length": len(payload), "content_length": str(len(payload)),
            "sha256": hashlib.sha256(payload).hexdigest()}


def test_normal_requests_are_answered_while_50_clients_dribble_uploads():
    """50 uploads sent a byte at a time, 4 threads: before the bodies were read in
    the selector, 4 of these held the 4 threads and /hello got no answer."""
    payload = os.urandom(40)
    # --timeout 60: each body byte of the dribble may come late on a busy machine.
    with start(extra=["--threads", "4", "--timeout", "60"]) as srv:
        slow = [connect(srv, timeout=60) for _ in range(50)]
        try:
            for sock in slow:
                sock.sendall(get("/echo", f"Content-Length: {len(payload)}", method="POST"))
            for byte in payload[:20]:
                for sock in slow:
                    sock.send(bytes([byte]))
            # All 50 are in the middle of their bodies now.
            for _ in range(3):
                assert exchange(srv, get("/hello"))[2] == b"Hello, world!\n"
            for byte in payload[20:]:
                for sock in slow:
                    sock.send(bytes([byte]))
            for sock in slow:
                status, _, body = read_response(sock.makefile("rb"))
                assert (status, json.loads(body)) == (200, echo_answer(payload))
        finally:
            for sock in slow:
                sock.close()
        assert_validator_silent(srv)


@pytest.mark.parametrize("framing", ["content-length", "chunked"])
def test_upload_in_uneven_pieces_larger_than_memory_spool_has_the_right_hash(server, framing):
    """3 MB, more than spool.SPOOL_IN_MEMORY: the body goes to a temporary file."""
    payload = os.urandom(3 * MB)
    if framing == "chunked":
        head = get("/echo", "Transfer-Encoding: chunked", method="POST")
        wire = chunked([payload[n:n + 77777] for n in range(0, len(payload), 77777)])
    else:
        head = get("/echo", f"Content-Length: {len(payload)}", method="POST")
        wire = payload
    with connect(server) as sock:
        sock.sendall(head)
        sizes = itertools.cycle([1, 1000, 65536, 3, 300000])
        position = 0
        while position < len(wire):
            size = next(sizes)
            sock.sendall(wire[position:position + size])
            position += size
        status, _, body = read_response(sock.makefile("rb"))
    assert (status, json.loads(body)) == (200, echo_answer(payload))


def test_body_that_stalls_longer_than_timeout_gets_408(server):
    """--timeout is 2 s on this server: half a body, then silence."""
    with connect(server) as sock:
        sock.sendall(get("/echo", "Content-Length: 100", method="POST") + b"x" * 50)
        stream = sock.makefile("rb")
        assert stream.readline().startswith(b"HTTP/1.1 408 ")
        assert closed_by_server(sock)


def test_body_cut_off_by_the_client_gets_400_and_the_server_keeps_serving(server):
    with connect(server) as sock:
        sock.sendall(get("/echo", "Content-Length: 100", method="POST") + b"x" * 50)
        sock.shutdown(socket.SHUT_WR)
        assert sock.makefile("rb").readline().startswith(b"HTTP/1.1 400 ")
    assert exchange(server, get("/hello"))[0] == 200


def test_trace_server_timing_and_access_log():
    with start(extra=["--trace", "--server-timing", "--access-log"]) as srv:
        status, headers, _ = exchange(srv, get("/hello?x=1"))
        assert status == 200
        assert headers["server-timing"].startswith("app;dur=")
        assert ", total;dur=" in headers["server-timing"]
        wait_for(lambda: '"GET /hello?x=1 HTTP/1.1" 200 14' in srv.output(), what="access log")
    output = srv.output()
    for block in ("── wsgi #1 ── request head", "── wsgi #1 ── WSGI environ",
                  "── wsgi #1 ── response", "── wsgi #1 ── timing"):
        assert block in output
    assert "wsgi.input" in output and "Server-Timing: app;dur=" in output
    assert "Server: servers.wsgi_server/1.0" in output  # the head as sent, with what the server added
    assert_validator_silent(srv)


# ── the sample site ─────────────────────────────────────────────────────────

@pytest.mark.parametrize("path, status, expected", SITE_ENDPOINTS)
def test_sample_site_endpoint(site, path, status, expected):
    got_status, _, body = exchange(site, get(path))
    assert got_status == status
    assert expected in body


def test_sample_site_head(site):
    with connect(site) as sock:
        sock.sendall(get("/hello", method="HEAD") + get("/hello"))
        stream = sock.makefile("rb")
        status, headers, _ = read_response(stream, head_request=True)
        # Django sets no Content-Length (the site has no CommonMiddleware), so
        # the GET is chunked and the HEAD says nothing of the length.
        assert status == 200 and headers["content-type"].startswith("text/plain")
        assert read_response(stream)[2] == b"Hello, world!\n"


def test_sample_site_echo_and_inspect(site):
    payload = os.urandom(200_000)
    response = requests.post(site.url + "/echo", data=payload, timeout=10,
                             headers={"Content-Type": "application/octet-stream"})
    assert response.json() == {"method": "POST", "content_type": "application/octet-stream",
                               "body_length": len(payload),
                               "sha256": hashlib.sha256(payload).hexdigest()}
    inspected = requests.get(site.url + "/inspect?x=1", timeout=10).json()
    assert inspected["interface"] == "wsgi"


def test_sample_site_20_mb_chunked_upload_has_the_right_hash(site):
    digest = hashlib.sha256()

    def pieces():
        for _ in range(20):
            piece = os.urandom(MB)
            digest.update(piece)
            yield piece

    response = requests.post(site.url + "/echo", data=pieces(), timeout=60,
                             headers={"Content-Type": "application/octet-stream"})
    assert response.status_code == 200
    assert response.json()["body_length"] == 20 * MB
    assert response.json()["sha256"] == digest.hexdigest()


def test_sample_site_expect_100_continue(site):
    payload = b"q" * 3000
    with connect(site) as sock:
        sock.sendall(get("/echo", f"Content-Length: {len(payload)}", "Expect: 100-continue",
                         "Content-Type: text/plain", method="POST"))
        stream = sock.makefile("rb")
        assert stream.readline() == b"HTTP/1.1 100 Continue\r\n"
        assert stream.readline() == b"\r\n"
        sock.sendall(payload)
        status, _, body = read_response(stream)
    assert status == 200
    assert json.loads(body)["sha256"] == hashlib.sha256(payload).hexdigest()


# ── shutting down, starting up, pre-fork ───────────────────────────────────

def test_graceful_shutdown_finishes_20_requests_in_flight():
    with start(extra=["--threads", "20"]) as srv:
        with ThreadPoolExecutor(20) as pool:
            futures = [pool.submit(exchange, srv, get("/sleep?s=1")) for _ in range(20)]
            # All 20 are inside the application before the signal: in flight, not queued.
            wait_for(lambda: srv.output().count("sleep: started") == 20, what="20 requests in the app")
            srv.signal(signal.SIGTERM)
            responses = [future.result(timeout=10) for future in futures]
        assert srv.wait(timeout=10) == 0
        with pytest.raises(OSError):
            connect(srv, timeout=1)
    assert [status for status, _, _ in responses] == [200] * 20
    # They were answered during the shutdown, so each says the connection closes.
    assert all(headers["connection"] == "close" for _, headers, _ in responses)
    assert_validator_silent(srv)


def test_graceful_timeout_and_second_interrupt():
    with start(extra=["--graceful-timeout", "30"]) as srv:
        sock = connect(srv)
        sock.sendall(get("/sleep?s=20"))
        wait_for(lambda: "sleep: started" in srv.output(), what="the request in the app")
        srv.signal(signal.SIGINT)
        time.sleep(0.3)
        assert srv.process.poll() is None  # still waiting for the sleeping request
        srv.signal(signal.SIGINT)
        assert srv.wait(timeout=5) != 0
        sock.close()


def test_graceful_timeout_ends_a_request_that_runs_too_long():
    with start(extra=["--graceful-timeout", "1"]) as srv:
        sock = connect(srv)
        sock.sendall(get("/sleep?s=20"))
        wait_for(lambda: "sleep: started" in srv.output(), what="the request in the app")
        started = time.monotonic()
        srv.signal(signal.SIGTERM)
        assert srv.wait(timeout=10) == 0
        assert time.monotonic() - started > 0.8  # not before --graceful-timeout
        assert "1 request(s) still running after --graceful-timeout 1 s" in srv.output()
        assert sock.recv(100) == b""
        sock.close()


def test_startup_errors_are_one_line_and_non_zero():
    port = free_port()
    with start(app="tests.wsgi_apps:hello") as srv:
        taken = subprocess.run(server_command("wsgi", port=srv.port, app="tests.wsgi_apps:hello"),
                               capture_output=True, timeout=30, cwd=REPO)
    assert taken.returncode == 1
    assert b"already in use" in taken.stderr and taken.stderr.count(b"\n") == 1
    missing = subprocess.run(server_command("wsgi", port=port, app="tests.no_such_module:app"),
                             capture_output=True, timeout=30, cwd=REPO)
    assert missing.returncode == 1 and b"no such module" in missing.stderr


def test_prefork_serves_and_survives_a_killed_worker():
    with start(extra=["--workers", "2", "--threads", "2"]) as srv:
        # The parent froze the start-up objects before forking (--gc-freeze).
        wait_for(lambda: "Listening on" in srv.output(), what="the announce line")
        assert "(wsgi, 2 workers x 2 threads, " in srv.output()
        assert "start-up objects frozen" in srv.output()
        if tuning.fix_mmap_threshold():    # glibc: the parent fixed it before forking too
            assert "large blocks mmap'd)" in srv.output()
        seen = set()
        wait_for(lambda: seen.add(exchange(srv, get("/pid"))[2]) or len(seen) == 2,
                 what="both workers answering")
        workers = {int(pid) for pid in seen}
        assert srv.pid not in workers
        victim = workers.pop()
        os.kill(victim, signal.SIGKILL)
        wait_for(lambda: "starting a new one" in srv.output(), what="the restart")
        fresh = set()
        wait_for(lambda: fresh.add(int(exchange(srv, get("/pid"))[2])) or len(fresh - workers) >= 1,
                 what="the new worker answering")
        assert victim not in fresh
        env = dict(json.loads(exchange(srv, get("/environ"))[2]))
        assert env["wsgi.multiprocess"] == "True"
    assert srv.returncode == 0
    assert_validator_silent(srv)


def test_no_gc_freeze_leaves_the_collector_alone():
    with start(extra=["--no-gc-freeze", "--no-fixed-mmap-threshold"]) as srv:
        assert exchange(srv, get("/hello"))[2] == b"Hello, world!\n"
        wait_for(lambda: "Listening on" in srv.output(), what="the announce line")
        assert "(wsgi, 1 worker x 8 threads)" in srv.output()
