"""servers/cgi_server.py over real sockets: a process per request.

Django under CGI costs a few hundred milliseconds per request (a new Python, a
fresh import of Django), so the sample site gets one request per endpoint; the
rest uses the small framework-free scripts in tests/cgi_scripts/.
"""

import concurrent.futures
import hashlib
import http.client
import json
import os
import re
import shutil
import signal
import socket
import sys
import threading
import time
from pathlib import Path

import pytest

from scripts.launch import REPO, ServerProcess, free_port, server_command
from servers.cgi_server import BadGateway, parse_cgi_head
from tests.http11_corpus import INVALID

SCRIPTS = REPO / "tests" / "cgi_scripts"
TIMING_PHASES = ["spawn", "startup", "import", "app", "child", "total"]


def cgi_dir_command(port, directory, *extra):
    return [sys.executable, "-m", "servers.cgi_server", "--cgi-dir", str(directory),
            "--prefix", "/cgi-bin", "--bind", f"127.0.0.1:{port}", *extra]


@pytest.fixture(scope="module")
def site():
    """The Django site through sample_site/cgi-bin/django.py, with Server-Timing."""
    port = free_port()
    with ServerProcess(server_command("cgi", port=port, extra=["--server-timing"]), port=port) as server:
        yield server


@pytest.fixture(scope="module")
def cgi_dir(tmp_path_factory):
    """tests/cgi_scripts served as a cgi-bin, plus files that must not be reachable.

    A copy, so that the test can add a non-executable script and symbolic links
    without touching the repository.
    """
    root = tmp_path_factory.mktemp("cgi")
    directory = root / "cgi-bin"
    shutil.copytree(SCRIPTS, directory)
    (directory / "not-executable.py").write_text((SCRIPTS / "env.py").read_text())
    os.chmod(directory / "not-executable.py", 0o644)
    outside = root / "outside.py"
    shutil.copy2(SCRIPTS / "env.py", outside)
    (directory / "escape.py").symlink_to(outside)
    (directory / "alias.py").symlink_to(directory / "env.py")
    (directory / "no-interpreter.cgi").write_text("neither a #! line nor a program\n")
    os.chmod(directory / "no-interpreter.cgi", 0o755)
    (directory / "sub").mkdir()
    shutil.copy2(SCRIPTS / "env.py", directory / "sub" / "env.py")
    port = free_port()
    # A variable only the server has must not reach a script; an LC_ one must.
    env = {"CGI_TEST_SERVER_ONLY": "secret", "LC_CGI_TEST": "passed on"}
    with ServerProcess(cgi_dir_command(port, directory), port=port, env=env) as server:
        yield server


@pytest.fixture(scope="module")
def front(tmp_path_factory):
    """fast.sh (a shell script, no Python) answering every path."""
    port = free_port()
    argv = server_command("cgi", port=port, app=str(SCRIPTS / "fast.sh"))
    with ServerProcess(argv, port=port) as server:
        yield server


def get(server, path, method="GET", body=None, headers=None, **options):
    connection = http.client.HTTPConnection(server.host, server.port, timeout=30)
    try:
        connection.request(method, path, body=body, headers=headers or {}, **options)
        response = connection.getresponse()
        return response.status, response.headers, response.read()
    finally:
        connection.close()


def raw_exchange(port, data, timeout=10):
    """Send raw bytes, read until the server closes; (status, head text, body)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(data)
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
    head, _, body = received.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), head.decode("latin-1"), body


def environment_of(server, path, **options):
    status, _, body = get(server, path, **options)
    assert status == 200, body
    return json.loads(body)


def live_members(group):
    """Processes of a process group that are still running (zombies are dead)."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        state, pgrp = fields[0], int(fields[2])
        if pgrp == group and state != "Z":
            members.append(int(entry.name))
    return members


def children_of(pid):
    """(pid, state) of every child process of pid."""
    children = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            children.append((int(entry.name), fields[0]))
    return children


def wait_for(predicate, timeout=5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if result := predicate():
            return result
        time.sleep(0.02)
    return predicate()


# ── The CGI header block, without a process (RFC 3875 §6.2-§6.3) ───────────

def test_parse_cgi_head_document_and_redirects():
    head = parse_cgi_head(b"Content-Type: text/plain\nStatus: 404 Nope\r\nX-A:  b \nConnection: close\n"
                          b"Content-Length: 3\nX-CGI-Timing: started=1.5; app=0.25\nX-CGI-Other: 1\nEmpty:")
    assert (head.status, head.reason, head.content_length) == (404, "Nope", 3)
    assert head.headers == [("Content-Type", "text/plain"), ("X-A", "b")]
    assert head.timing == {"started": 1.5, "app": 0.25}
    local = parse_cgi_head(b"Location: /elsewhere?x=1")
    assert local.local_redirect and local.location == "/elsewhere?x=1"
    # A local path with other fields is passed to the client, 302 by default.
    passed_on = parse_cgi_head(b"Location: /elsewhere\nContent-Type: text/html")
    assert not passed_on.local_redirect and passed_on.status == 302
    client = parse_cgi_head(b"Location: https://example.org/")
    assert (client.status, client.local_redirect) == (302, False)
    assert parse_cgi_head(b"Status: 204 No Content").status == 204


@pytest.mark.parametrize("block", [
    b"no colon here",
    b"Content-Type : text/plain",              # space before the colon
    b"Content-Type: text/plain\n continued",  # no continuation lines in CGI
    b"Content-Type: a\nContent-Type: b",       # a CGI field twice
    b"Status: 20 OK\nContent-Type: text/plain",
    b"Status: 102 Processing",
    b"X-Only: an extension field",             # at least one CGI field
    b"Location: relative/path",
    b"Content-Type: text/plain\nContent-Length: -1",
    b"Content-Type: text/plain\x00",
])
def test_parse_cgi_head_refuses_malformed_blocks(block):
    with pytest.raises(BadGateway):
        parse_cgi_head(block)


# ── The sample site, one request per endpoint ────────────────────────────

SITE_REQUESTS = [
    ("/", "GET", None, 200, b"<"),
    ("/hello", "GET", None, 200, b"Hello, world!\n"),
    ("/hello-async", "GET", None, 200, b"Hello, world!\n"),
    ("/products", "GET", None, 200, b"<"),
    ("/api/products", "GET", None, 200, b'{"count": 50'),
    ("/io?ms=10", "GET", None, 200, b"slept 10 ms"),
    ("/io-async?ms=10", "GET", None, 200, b"slept 10 ms"),
    ("/cpu?n=1000", "GET", None, 200, b"n=1000"),
    ("/stream?chunks=2&delay_ms=10", "GET", None, 200, b"chunk 1 of 2"),
    ("/events?count=2&interval_ms=10", "GET", None, 200, b"data: 1"),
    ("/echo", "POST", b"x" * 1000, 200, b"{"),
    ("/inspect", "GET", None, 200, b"{"),
    ("/io?ms=oops", "GET", None, 400, b"ms "),
]


def test_every_site_endpoint_through_django_py(site):
    with concurrent.futures.ThreadPoolExecutor(3) as pool:
        results = list(pool.map(lambda case: get(site, case[0], case[1], case[2]), SITE_REQUESTS))
    for (path, _, _, status, start), (got_status, headers, body) in zip(SITE_REQUESTS, results):
        assert got_status == status, (path, body, site.output()[-2000:])
        assert body.startswith(start), (path, body[:200])
        # The child's X-CGI-Timing report never reaches the client.
        assert "X-CGI-Timing" not in headers, path
    echo = json.loads(results[SITE_REQUESTS.index(("/echo", "POST", b"x" * 1000, 200, b"{"))][2])
    assert echo["body_length"] == 1000
    assert echo["sha256"] == hashlib.sha256(b"x" * 1000).hexdigest()
    inspect = json.loads(results[-2][2])
    assert "PATH_INFO" in json.dumps(inspect) and "/inspect" in json.dumps(inspect)


def test_server_timing_names_every_phase(site):
    status, headers, _ = get(site, "/hello")
    assert status == 200
    phases = dict(re.findall(r"([a-z]+);dur=([0-9.]+)", headers["Server-Timing"]))
    assert list(phases) == TIMING_PHASES
    durations = {name: float(value) for name, value in phases.items()}
    # The child's life holds its start-up, its import and its request.
    assert durations["child"] >= durations["startup"] + durations["import"] + durations["app"]
    assert durations["total"] >= durations["child"]


# ── The environment (RFC 3875 §4.1) ────────────────────────────────────────

def test_environment_has_the_request_and_nothing_of_the_server(cgi_dir):
    connection = http.client.HTTPConnection(cgi_dir.host, cgi_dir.port, timeout=30)
    connection.connect()
    client_port = connection.sock.getsockname()[1]
    connection.request("GET", "/cgi-bin/env.py/a%20b/caf%E9?x=1&y=%20", headers={
        "Proxy": "http://evil.example:8080", "Authorization": "Basic c2VjcmV0",
        "X-Under_Score": "dropped", "Accept": "text/plain", "X-Twice": "1"})
    response = connection.getresponse()
    environ = json.loads(response.read())["environ"]
    connection.close()
    expected = {
        "GATEWAY_INTERFACE": "CGI/1.1",
        "REQUEST_METHOD": "GET",
        "SCRIPT_NAME": "/cgi-bin/env.py",
        "PATH_INFO": "/a b/caf\u00e9",         # decoded; the byte 0xE9 arrives as one latin-1 character
        "QUERY_STRING": "x=1&y=%20",           # as sent
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": str(cgi_dir.port),
        "SERVER_PROTOCOL": "HTTP/1.1",
        "SERVER_SOFTWARE": "servers.cgi_server/1.0",
        "REMOTE_ADDR": "127.0.0.1",
        "REMOTE_PORT": str(client_port),
        "HTTP_HOST": f"{cgi_dir.host}:{cgi_dir.port}",
        "HTTP_ACCEPT": "text/plain",
        "HTTP_X_TWICE": "1",
        "LC_CGI_TEST": "passed on",
    }
    assert {key: environ.get(key) for key in expected} == expected
    assert "PATH" in environ
    for absent in ("HTTP_PROXY", "HTTP_AUTHORIZATION", "HTTP_X_UNDER_SCORE", "CONTENT_LENGTH",
                   "CONTENT_TYPE", "CGI_TEST_SERVER_ONLY", "X_CGI_TIMING"):
        assert absent not in environ, absent
    assert "secret" not in json.dumps(environ)
    # The request's variables come first, in the order every server in this project uses.
    keys = list(environ)
    assert keys[:4] == ["REQUEST_METHOD", "SCRIPT_NAME", "PATH_INFO", "QUERY_STRING"]
    assert keys.index("GATEWAY_INTERFACE") > keys.index("HTTP_ACCEPT")


def test_environment_of_a_request_with_a_body(cgi_dir):
    result = environment_of(cgi_dir, "/cgi-bin/env.py", method="POST", body=b"a=1&b=2",
                            headers={"Content-Type": "application/x-www-form-urlencoded"})
    environ = result["environ"]
    assert environ["CONTENT_LENGTH"] == "7"
    assert environ["CONTENT_TYPE"] == "application/x-www-form-urlencoded"
    assert "HTTP_CONTENT_LENGTH" not in environ and "HTTP_CONTENT_TYPE" not in environ
    assert result["body_length"] == 7


def test_chunked_body_gets_a_content_length(cgi_dir):
    result = environment_of(cgi_dir, "/cgi-bin/env.py", method="POST",
                            body=iter([b"hello ", b"world"]), encode_chunked=True)
    assert result["environ"]["CONTENT_LENGTH"] == "11"
    assert "HTTP_TRANSFER_ENCODING" in result["environ"]
    assert result["body_length"] == 11


def test_each_request_is_a_new_process_and_keep_alive_works(cgi_dir):
    connection = http.client.HTTPConnection(cgi_dir.host, cgi_dir.port, timeout=30)
    pids, client_ends = [], set()
    for _ in range(3):
        connection.request("GET", "/cgi-bin/env.py")
        response = connection.getresponse()
        pids.append(json.loads(response.read())["pid"])
        client_ends.add(connection.sock.getsockname())
    connection.close()
    assert len(set(pids)) == 3
    assert len(client_ends) == 1  # one connection for all three


# ── The CGI response (RFC 3875 §6) ─────────────────────────────────────────

def test_streamed_body_status_and_extra_headers(cgi_dir):
    status, headers, body = get(cgi_dir, "/cgi-bin/stream.sh")
    assert status == 201
    assert headers["X-Script"] == "stream"
    assert headers["Transfer-Encoding"] == "chunked"  # the script gave no Content-Length
    assert body == b"one\ntwo\nthree\n"


def test_head_request_has_no_body(cgi_dir):
    status, headers, body = get(cgi_dir, "/cgi-bin/env.py", method="HEAD")
    assert status == 200 and body == b""
    assert int(headers["Content-Length"]) > 0


def test_local_redirect_is_followed_once_and_client_redirect_is_302(cgi_dir):
    environ = environment_of(cgi_dir, "/cgi-bin/redirect.py/local")["environ"]
    assert environ["SCRIPT_NAME"] == "/cgi-bin/env.py"
    assert environ["PATH_INFO"] == "/after-redirect"
    assert environ["QUERY_STRING"] == "from=redirect"
    status, headers, _ = get(cgi_dir, "/cgi-bin/redirect.py/client")
    assert status == 302 and headers["Location"] == "http://example.org/elsewhere"
    status, _, _ = get(cgi_dir, "/cgi-bin/redirect.py/loop")
    assert status == 502


def test_crash_is_502_and_its_stderr_is_logged_with_its_pid(cgi_dir):
    status, _, body = get(cgi_dir, "/cgi-bin/crash.py")
    assert status == 502, body
    assert wait_for(lambda: re.search(r"\[cgi pid \d+\] crash\.py: about to fail", cgi_dir.output()))


def test_malformed_header_block_is_502(cgi_dir):
    status, _, body = get(cgi_dir, "/cgi-bin/malformed.py")
    assert status == 502, body


def test_script_failing_midway_does_not_get_a_complete_response(cgi_dir):
    with pytest.raises(http.client.IncompleteRead):
        get(cgi_dir, "/cgi-bin/dies-midway.sh")


# ── cgi-bin mode: nothing outside DIR ──────────────────────────────────────

@pytest.mark.parametrize("path, status", [
    ("/cgi-bin/env.py", 200),
    ("/cgi-bin/alias.py", 200),                       # a link that stays inside DIR
    ("/cgi-bin/escape.py", 404),                      # a link that leaves DIR
    ("/cgi-bin/not-executable.py", 403),
    ("/cgi-bin/no-interpreter.cgi", 502),             # exec() fails: the gateway's fault
    ("/cgi-bin/nothing-here.py", 404),
    ("/cgi-bin/", 404),
    ("/cgi-bin/..", 404),
    ("/cgi-bin/../outside.py", 404),
    ("/cgi-bin/%2e%2e/outside.py", 404),
    ("/cgi-bin/.%2E/outside.py", 404),
    ("/cgi-bin/%2E", 404),
    ("/cgi-bin/..%2foutside.py", 404),
    ("/cgi-bin/sub%2fenv.py", 404),                   # only files directly in DIR
    ("/cgi-bin/sub", 404),
    ("/cgi-bin/%00env.py", 404),
    ("/elsewhere/env.py", 404),
])
def test_paths_in_cgi_dir_mode(cgi_dir, path, status):
    got, _, body = raw_exchange(cgi_dir.port, f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
    assert got == status, body


# ── Request bodies: 20 MB in, with bounded memory ───────────────────────────

@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_20_mb_upload_arrives_whole(cgi_dir, chunked):
    piece = os.urandom(1 << 20)
    pieces = [piece] * 20
    expected = hashlib.sha256(b"".join(pieces)).hexdigest()
    if chunked:
        status, _, body = get(cgi_dir, "/cgi-bin/hash.py", method="POST", body=iter(pieces), encode_chunked=True)
    else:
        status, _, body = get(cgi_dir, "/cgi-bin/hash.py", method="POST", body=b"".join(pieces))
    assert status == 200
    assert body.decode().split() == [str(20 << 20), expected]


# ── Processes: every child reaped, hung ones killed with their group ────────

def test_no_zombies_after_200_requests(front):
    def client(count):
        connection = http.client.HTTPConnection(front.host, front.port, timeout=30)
        for _ in range(count):
            connection.request("GET", "/anything")
            response = connection.getresponse()
            assert (response.status, response.read()) == (200, b"fast\n")
        connection.close()

    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        list(pool.map(client, [50] * 4))
    # A child is reaped right after its response ends, so wait a moment for the last one.
    assert wait_for(lambda: children_of(front.pid) == []), children_of(front.pid)


def test_a_script_that_ignores_a_large_body_does_not_deadlock(front):
    connection = http.client.HTTPConnection(front.host, front.port, timeout=30)
    try:
        connection.request("POST", "/upload", body=b"x" * (4 << 20))
        response = connection.getresponse()
        assert (response.status, response.read()) == (200, b"fast\n")
        first = connection.sock.getsockname()
        # The runner read the whole body before the script ran, so the
        # connection is still in step and carries the next request.
        connection.request("GET", "/next")
        response = connection.getresponse()
        assert (response.status, response.read()) == (200, b"fast\n")
        assert connection.sock.getsockname() == first
    finally:
        connection.close()


def test_pipelined_requests_are_answered_in_order(front):
    request = b"GET /one HTTP/1.1\r\nHost: x\r\n\r\n"
    last = b"GET /two HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    status, head, body = raw_exchange(front.port, request + last)
    assert status == 200
    assert body.count(b"HTTP/1.1 200 OK") == 1 and body.count(b"fast\n") == 2


def test_invalid_requests_are_refused_and_the_server_keeps_serving(front):
    for name, raw, expected in INVALID:
        status, _, body = raw_exchange(front.port, raw)
        assert status == expected, (name, body)
    assert get(front, "/still-serving")[0] == 200


@pytest.fixture(scope="module")
def narrow(tmp_path_factory):
    """One child at a time, no queue, and a short --cgi-timeout."""
    port = free_port()
    with ServerProcess(cgi_dir_command(port, SCRIPTS, "--cgi-timeout", "3", "--max-children", "1",
                                       "--queue", "0", "--trace", "--server-timing", "--access-log",
                                       "--max-body", "1000"), port=port) as server:
        yield server


def start_hang(server):
    """Request hang.py; return the socket and the child's and grandchild's pids."""
    sock = socket.create_connection((server.host, server.port), timeout=10)
    sock.sendall(b"GET /cgi-bin/hang.py HTTP/1.1\r\nHost: x\r\n\r\n")
    seen = len(server.output())
    match = wait_for(lambda: re.search(r"\[cgi pid (\d+)\] hang\.py: grandchild (\d+)", server.output()[seen:]),
                     timeout=10)
    assert match, server.output()
    return sock, int(match.group(1)), int(match.group(2))


def test_hung_script_is_504_and_its_process_group_is_gone(narrow):
    sock, pid, grandchild = start_hang(narrow)
    with sock:
        # Meanwhile the only child slot is taken and the queue holds nobody: 503.
        assert get(narrow, "/cgi-bin/env.py")[0] == 503
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
    assert received.startswith(b"HTTP/1.1 504 "), received
    assert wait_for(lambda: live_members(pid) == []), live_members(pid)
    assert pid not in [child for child, _ in children_of(narrow.pid)]


def test_expect_100_continue_then_the_whole_body_before_the_child(narrow):
    seen = len(narrow.output())
    with socket.create_connection((narrow.host, narrow.port), timeout=10) as sock:
        sock.sendall(b"POST /cgi-bin/hash.py HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
                     b"Expect: 100-continue\r\nConnection: close\r\n\r\n")
        assert sock.recv(100) == b"HTTP/1.1 100 Continue\r\n\r\n"
        # No child runs until the body is in: its environment is not traced yet.
        assert "CGI environment" not in narrow.output()[seen:]
        sock.sendall(b"hello")
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
    assert received.startswith(b"HTTP/1.1 200 OK\r\n")
    assert received.endswith(hashlib.sha256(b"hello").hexdigest().encode() + b"\n")


def test_expect_100_continue_for_a_missing_script_is_404_without_continue(cgi_dir):
    status, head, _ = raw_exchange(cgi_dir.port, b"POST /cgi-bin/nothing-here.py HTTP/1.1\r\nHost: x\r\n"
                                                  b"Content-Length: 5\r\nExpect: 100-continue\r\n\r\n")
    assert status == 404, head


def test_body_over_max_body_is_413_and_no_child_starts(narrow):
    seen = len(narrow.output())
    status, _, _ = raw_exchange(narrow.port, b"POST /cgi-bin/env.py HTTP/1.1\r\nHost: x\r\n"
                                             b"Content-Length: 1001\r\n\r\n")
    assert status == 413
    assert "CGI environment" not in narrow.output()[seen:]


def test_trace_shows_environment_and_header_block_and_timing_has_no_child_report(narrow):
    seen = len(narrow.output())
    status, headers, body = get(narrow, "/cgi-bin/env.py/traced")
    assert status == 200
    # env.py is no cgi_app script: it reports nothing, so only the runner's own phases.
    assert re.findall(r"([a-z]+);dur=", headers["Server-Timing"]) == ["spawn", "child", "total"]
    assert json.loads(body)["environ"]["X_CGI_TIMING"] == "1"
    # The access-log line is written last, after the trace blocks.
    trace = wait_for(lambda: '"GET /cgi-bin/env.py/traced' in narrow.output()[seen:]
                     and narrow.output()[seen:])
    for block in ("request head", "CGI environment", "CGI header block from pid", "response", "timing"):
        assert block in trace, block
    assert re.search(r"PATH_INFO +'/traced'", trace)
    assert "Content-Type: application/json" in trace
    assert re.search(r'"GET /cgi-bin/env.py/traced HTTP/1.1" 200', trace)


def test_client_that_hangs_up_gets_its_child_killed(narrow):
    sock, pid, grandchild = start_hang(narrow)
    seen = len(narrow.output())
    sock.close()
    assert wait_for(lambda: live_members(pid) == [], timeout=15), live_members(pid)
    # Killed because the client hung up, not by the 3 s --cgi-timeout (which logs why).
    assert "after --cgi-timeout" not in narrow.output()[seen:], narrow.output()[seen:]
    # The slot is free again once the runner has reaped the child, a moment after
    # the processes are gone (until then a request still finds it taken: 503).
    assert wait_for(lambda: get(narrow, "/cgi-bin/env.py")[0] == 200, timeout=10)


# ── hello.py and a graceful shutdown ────────────────────────────────────────

def test_hello_py_and_graceful_shutdown_finishes_the_running_request():
    port = free_port()
    server = ServerProcess(cgi_dir_command(port, REPO / "sample_site" / "cgi-bin"), port=port)
    with server:
        status, headers, body = get(server, "/cgi-bin/hello.py/some/path?q=1")
        assert status == 200 and headers["Content-Type"].startswith("text/html")
        assert b"GATEWAY_INTERFACE" in body and b"/some/path" in body
        # A Django request through the cgi-bin is in flight when SIGTERM arrives.
        result = {}
        client = threading.Thread(target=lambda: result.update(
            response=get(server, "/cgi-bin/django.py/hello")))
        client.start()
        assert wait_for(lambda: children_of(server.pid), timeout=10)
        server.signal(signal.SIGTERM)
        client.join(timeout=30)
        assert server.wait(timeout=30) == 0
    assert result["response"][0] == 200 and result["response"][2] == b"Hello, world!\n"


# ── Slow uploads: a body is read whole before a child slot is taken ────────

def upload_head(payload: bytes, chunked: bool) -> tuple[bytes, bytes]:
    """The head of a POST to hash.py and the body as it goes on the wire."""
    if chunked:
        return (b"POST /cgi-bin/hash.py HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
                b"Connection: close\r\n\r\n",
                b"%x\r\n%s\r\n0\r\n\r\n" % (len(payload), payload))
    return (b"POST /cgi-bin/hash.py HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n"
            b"Connection: close\r\n\r\n" % len(payload), payload)


def hash_line(payload: bytes) -> bytes:
    """What hash.py answers for this body (as one piece of the response body)."""
    return b"%d %s\n" % (len(payload), hashlib.sha256(payload).hexdigest().encode())


def read_to_end(sock) -> bytes:
    received = b""
    while chunk := sock.recv(65536):
        received += chunk
    return received


@pytest.fixture(scope="module")
def two_slots():
    """Two children at once and no queue: a request that finds both slots taken gets 503."""
    port = free_port()
    with ServerProcess(cgi_dir_command(port, SCRIPTS, "--max-children", "2", "--queue", "0",
                                       "--timeout", "60", "--trace"), port=port) as server:
        yield server


def test_a_request_is_answered_while_uploads_dribble_and_each_upload_arrives_whole(two_slots):
    payloads = [os.urandom(40) for _ in range(6)]
    wires, socks = [], []
    seen = len(two_slots.output())
    try:
        for number, payload in enumerate(payloads):
            head, wire = upload_head(payload, chunked=number % 3 == 2)
            sock = socket.create_connection((two_slots.host, two_slots.port), timeout=30)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            socks.append(sock)
            sock.sendall(head + wire[:1])
            wires.append(wire)
        # Every upload's head has been read. Had they taken child slots with
        # their bodies still to come, two would hold both slots and the other
        # four would have been refused at once (--queue 0).
        assert wait_for(lambda: two_slots.output()[seen:].count("request head") == len(payloads),
                        timeout=30), two_slots.output()[seen:]
        status, _, body = get(two_slots, "/cgi-bin/env.py")
        assert status == 200, body
        # Then every body but its last byte, a byte at a time, the uploads in turn.
        for index in range(1, max(map(len, wires)) - 1):
            for sock, wire in zip(socks, wires):
                if index < len(wire) - 1:
                    sock.sendall(wire[index:index + 1])
            time.sleep(0.002)
        status, _, body = get(two_slots, "/cgi-bin/env.py")
        assert status == 200, body
        # The last bytes one upload at a time: the server closes a connection
        # after it has freed the child slot, so the next one always finds a
        # slot (with --queue 0, uploads that ended together would get 503s).
        for sock, wire, payload in zip(socks, wires, payloads):
            sock.sendall(wire[-1:])
            received = read_to_end(sock)
            assert received.startswith(b"HTTP/1.1 200 OK\r\n"), received
            assert hash_line(payload) in received, received
    finally:
        for sock in socks:
            sock.close()


@pytest.fixture(scope="module")
def impatient():
    """A short --timeout, with the trace and the access log."""
    port = free_port()
    with ServerProcess(cgi_dir_command(port, SCRIPTS, "--timeout", "3", "--trace", "--access-log"),
                       port=port) as server:
        yield server


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_a_stalled_body_is_408_and_no_child_starts(impatient, chunked):
    seen = len(impatient.output())
    head, wire = upload_head(b"0123456789", chunked)
    status, _, body = raw_exchange(impatient.port, head + wire[:5], timeout=30)
    assert status == 408, body
    output = wait_for(lambda: '"POST /cgi-bin/hash.py HTTP/1.1" 408' in impatient.output()[seen:]
                      and impatient.output()[seen:], timeout=10)
    assert output, impatient.output()[seen:]
    assert "CGI environment" not in output


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_a_body_cut_off_is_400_and_no_child_starts(impatient, chunked):
    seen = len(impatient.output())
    head, wire = upload_head(b"0123456789", chunked)
    with socket.create_connection((impatient.host, impatient.port), timeout=30) as sock:
        sock.sendall(head + wire[:5])
        sock.shutdown(socket.SHUT_WR)
        received = read_to_end(sock)
    assert received.startswith(b"HTTP/1.1 400 "), received
    output = wait_for(lambda: '"POST /cgi-bin/hash.py HTTP/1.1" 400' in impatient.output()[seen:]
                      and impatient.output()[seen:], timeout=10)
    assert output, impatient.output()[seen:]
    assert "CGI environment" not in output


def test_a_body_still_arriving_at_shutdown_completes():
    port = free_port()
    with ServerProcess(cgi_dir_command(port, SCRIPTS, "--trace"), port=port) as server:
        payload = b"uploaded while the server stops"
        head, wire = upload_head(payload, chunked=False)
        with socket.create_connection((server.host, server.port), timeout=30) as sock:
            seen = len(server.output())
            sock.sendall(head + wire[:3])
            assert wait_for(lambda: "request head" in server.output()[seen:], timeout=30)
            server.signal(signal.SIGTERM)

            def refused():
                try:
                    socket.create_connection((server.host, server.port), timeout=5).close()
                except (ConnectionRefusedError, ConnectionResetError):
                    # A probe whose handshake meets the listening socket as it
                    # closes is reset rather than refused (seen once in CI): both
                    # say the server has stopped listening.
                    return True
                return False
            # The listening socket is closed: the shutdown has begun.
            assert wait_for(refused, timeout=30)
            sock.sendall(wire[3:])
            received = read_to_end(sock)
        assert server.wait(timeout=30) == 0
    assert received.startswith(b"HTTP/1.1 200 OK\r\n"), received
    assert hash_line(payload) in received, received
