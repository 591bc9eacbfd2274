"""WebSocket in servers/asgi_server.py, over real sockets.

Two kinds of client: the `websockets` library (what a real client does) and raw
frames written by hand (what a broken or hostile client does). The endpoints are
the bare ASGI apps of tests/asgi_apps.py (`/ws/...`), which report what the
application saw on the server's stdout.
"""

import asyncio
import contextlib
import resource
import signal
import socket
import struct
import time

import psutil
import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect as ws_connect

from scripts.launch import ServerProcess, free_port, server_command
from tests.http_client import read_response, wait_for
from tests.test_websocket import KEY, binary, close, frame, text

MB = 1024 * 1024


def start(app="tests.asgi_apps:app", extra=()):
    port = free_port()
    return ServerProcess(server_command("asgi", port=port, app=app, extra=list(extra)), port=port)


@pytest.fixture(scope="module")
def server():
    with start(extra=["--ws-max-size", "100000"]) as srv:
        yield srv


def url(srv, path):
    return f"ws://{srv.host}:{srv.port}{path}"


def output_line(srv, prefix, timeout=20.0):
    """The first line the server printed that starts with prefix (waits for it)."""
    found = []

    def seen():
        found[:] = [line for line in srv.output().splitlines() if line.startswith(prefix)]
        return bool(found)

    wait_for(seen, timeout, what=f"a {prefix!r} line in:\n{srv.output()[-3000:]}")
    return found[-1]


# ── raw frames ──────────────────────────────────────────────────────────────────

def handshake_request(path="/ws/echo", extra=b"", version=b"13", key=KEY):
    return (b"GET " + path.encode() + b" HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n"
            b"Connection: Upgrade\r\nSec-WebSocket-Key: " + key + b"\r\n"
            b"Sec-WebSocket-Version: " + version + b"\r\n" + extra + b"\r\n")


def raw_open(srv, path="/ws/echo", early=b""):
    """A raw socket past the 101; returns (socket, bytes read after the head)."""
    sock = socket.create_connection((srv.host, srv.port), timeout=20)
    sock.sendall(handshake_request(path) + early)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(4096)
        assert chunk, f"closed during the handshake: {data!r}"
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 101 "), head
    assert b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" in head
    return sock, rest


class FrameReader:
    """Reads the server's frames from a raw socket: (opcode, payload) or None at EOF."""

    def __init__(self, sock, already=b""):
        self.sock, self.buffer = sock, bytearray(already)

    def _need(self, n):
        while len(self.buffer) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                return False
            self.buffer += chunk
        return True

    def read(self):
        if not self._need(2):
            return None
        first, second = self.buffer[0], self.buffer[1]
        assert second & 0x80 == 0, "server frames are never masked"
        length, header = second & 0x7F, 2
        if length == 126:
            self._need(4)
            length, header = struct.unpack_from("!H", self.buffer, 2)[0], 4
        elif length == 127:
            self._need(10)
            length, header = struct.unpack_from("!Q", self.buffer, 2)[0], 10
        assert self._need(header + length)
        payload = bytes(self.buffer[header:header + length])
        del self.buffer[:header + length]
        return first & 0x0F, payload

    def close_code(self):
        """Read frames up to the Close; its code (and check the TCP close follows)."""
        while (got := self.read()) is not None:
            opcode, payload = got
            if opcode == 0x8:
                assert self.read() is None, "the server closes TCP after its Close"
                return struct.unpack("!H", payload[:2])[0] if payload else 1005
        raise AssertionError("connection closed without a Close frame")


# ── the handshake ────────────────────────────────────────────────────────────────

@pytest.mark.parametrize("request_bytes, status", [
    (handshake_request(version=b"8"), 426),
    (handshake_request(key=b"tooshort"), 400),
    (handshake_request().replace(b"Connection: Upgrade", b"Connection: keep-alive"), 400),
    (handshake_request().replace(b"GET ", b"POST "), 400),
    (handshake_request("/ws/deny"), 403),
    (handshake_request("/ws/no-accept"), 500),
    (handshake_request("/ws/crash").replace(b"HTTP/1.1", b"HTTP/1.0"), 400),
])
def test_handshake_refusals(server, request_bytes, status):
    with socket.create_connection((server.host, server.port), timeout=20) as sock:
        sock.sendall(request_bytes)
        got_status, headers, body = read_response(sock.makefile("rb"))
    assert got_status == status
    assert headers.get("connection") == "close"
    if status == 426:
        assert headers["sec-websocket-version"] == "13"
    if status in (400, 426):
        assert body.endswith(b"\n") and body.count(b"\n") == 1     # one-line reason


def test_denial_response_extension(server):
    with socket.create_connection((server.host, server.port), timeout=20) as sock:
        sock.sendall(handshake_request("/ws/deny-response"))
        status, headers, body = read_response(sock.makefile("rb"))
    assert status == 401
    assert headers["www-authenticate"] == "Bearer"
    assert body == b"log in first\n"
    with pytest.raises(InvalidStatus) as refused:
        ws_connect(url(server, "/ws/deny-response"))
    assert refused.value.response.status_code == 401


def test_scope_and_subprotocol(server):
    import json
    with ws_connect(url(server, "/ws/scope?x=1"), subprotocols=["chat", "v2"]) as client:
        assert client.subprotocol == "chat"
        assert client.response.headers["x-accepted-by"] == "ws_scope"
        data = json.loads(client.recv(timeout=20))
    assert data["keys"] == ["type", "asgi", "http_version", "scheme", "path", "raw_path",
                            "query_string", "root_path", "headers", "client", "server",
                            "subprotocols", "state", "extensions"]
    scope = data["scope"]
    assert scope["type"] == "websocket" and scope["scheme"] == "ws"
    assert scope["asgi"] == {"version": "3.0", "spec_version": "2.5"}
    assert scope["path"] == "/ws/scope" and scope["query_string"] == "x=1"
    assert scope["subprotocols"] == ["chat", "v2"]
    assert scope["extensions"] == {"websocket.http.response": {}}


# ── messages ─────────────────────────────────────────────────────────────────────

def test_text_binary_fragmented_and_ping(server):
    with ws_connect(url(server, "/ws/echo")) as client:
        client.send("héllo")
        assert client.recv(timeout=20) == "héllo"
        client.send(b"\x00\xff" * 1000)
        assert client.recv(timeout=20) == b"\x00\xff" * 1000
        client.send(["frag", "mént", "s"])               # one message in three frames
        assert client.recv(timeout=20) == "fragménts"
        client.send([b"a", b"b"])
        assert client.recv(timeout=20) == b"ab"
        assert client.ping(b"are you there").wait(20)
        client.pong(b"unsolicited")                       # ignored, nothing comes back
        client.send("after")
        assert client.recv(timeout=20) == "after"


def test_raw_frames_with_control_frames_inside_a_message(server):
    sock, rest = raw_open(server, early=text("sent with the handshake"))
    with sock:
        reader = FrameReader(sock, rest)
        assert reader.read() == (0x1, b"sent with the handshake")
        sock.sendall(text("a", fin=False) + frame(0x9, b"ping!") + frame(0x0, b"b", fin=False)
                     + frame(0xA, b"pong") + frame(0x0, b"c"))
        assert reader.read() == (0xA, b"ping!")
        assert reader.read() == (0x1, b"abc")
        sock.sendall(close(4001, b"bye"))
        assert reader.close_code() == 4001               # echoed, then TCP closed
    assert output_line(server, "ws-disconnect /ws/echo 4001") == "ws-disconnect /ws/echo 4001 'bye'"


# ── every way to close ─────────────────────────────────────────────────────────────

@pytest.mark.parametrize("payload, code", [
    (text(b"\xce\x28"), 1007),
    (text(b"ok\xff", fin=False), 1007),
    (binary(b"x" * 100_001), 1009),
    (binary(b"x" * 60_000, fin=False) + frame(0x0, b"x" * 60_000), 1009),
    (binary(b"unmasked", mask=None), 1002),
    (text("reserved bit", rsv=4), 1002),
    (frame(0x9, b"x" * 126), 1002),
    (close(1005), 1002),
])
def test_protocol_errors_close_with_their_code(server, payload, code):
    sock, rest = raw_open(server)
    with sock:
        sock.sendall(payload)
        assert FrameReader(sock, rest).close_code() == code


def test_client_close_codes_reach_the_app(server):
    with ws_connect(url(server, "/ws/echo?c=1")) as client:
        client.close(code=4321, reason="done here")
    line = output_line(server, "ws-disconnect /ws/echo 4321")
    assert line.endswith("'done here'")


def test_app_closes_with_code_and_reason(server):
    with ws_connect(url(server, "/ws/close?code=4000&reason=enough")) as client:
        client.send("go")
        with pytest.raises(ConnectionClosed) as closed:
            client.recv(timeout=20)
    assert closed.value.rcvd.code == 4000 and closed.value.rcvd.reason == "enough"
    assert output_line(server, "ws-after-close") == "ws-after-close websocket.disconnect 4000"
    assert output_line(server, "ws-send-after-close") == "ws-send-after-close raised ClientDisconnected"


def test_app_crash_closes_with_1011(server):
    with ws_connect(url(server, "/ws/crash")) as client:
        client.send("boom")
        with pytest.raises(ConnectionClosed) as closed:
            client.recv(timeout=20)
    assert closed.value.rcvd.code == 1011


def test_client_that_vanishes(server):
    sock, _ = raw_open(server, "/ws/echo?vanish=1")
    sock.close()                                           # no Close frame, TCP gone
    assert output_line(server, "ws-disconnect /ws/echo 1006")


# ── flow control ─────────────────────────────────────────────────────────────────────

def test_slow_reader_memory_stays_bounded():
    with start() as srv:
        process = psutil.Process(srv.pid)
        before = process.memory_info().rss
        with ws_connect(url(srv, "/ws/flood?mb=100"), max_size=None, max_queue=1) as client:
            client.recv(timeout=20)                       # the flood has begun
            # The client reads nothing now: the kernel buffers fill, the transport
            # passes its high-water mark, and send() must wait instead of buffering.
            time.sleep(2)
            peak = process.memory_info().rss
            received = 65536
            while (message := client.recv(timeout=60)) != "done":
                received += len(message)
                peak = max(peak, process.memory_info().rss) if received % (16 * MB) == 0 else peak
        assert received == 100 * MB
        assert "ws-flood sent everything" in output_line(srv, "ws-flood")
    # 100 MB went through; the server never held more than a few of them.
    assert peak - before < 30 * MB, f"RSS grew by {(peak - before) / MB:.0f} MB"


def test_fast_sender_slow_app_pauses_reading():
    with start(extra=["--ws-max-size", str(MB)]) as srv:
        process = psutil.Process(srv.pid)
        before = process.memory_info().rss
        # The application sleeps 5 s before its first receive(); meanwhile the
        # client writes as fast as the server reads.
        sock, _ = raw_open(srv, "/ws/slow-reader?sleep=5")
        with sock:
            message = binary(b"y" * 65536)
            limit = 200 * MB // len(message)
            sent = 0
            sock.setblocking(False)
            stalled_since = None
            pending = b""                               # the rest of a frame cut short
            # Write until no byte has gone out for a second: the server stopped
            # reading, the socket buffers are full. Without the pause this runs
            # to the 200 MB limit, however slow the machine.
            while sent < limit:
                try:
                    written = sock.send(pending or message)
                except BlockingIOError:
                    stalled_since = stalled_since or time.monotonic()
                    if time.monotonic() - stalled_since > 1.0:
                        break
                    time.sleep(0.05)
                    continue
                stalled_since = None
                if pending:
                    pending = pending[written:]
                else:
                    sent += 1
                    pending = message[written:]
            grown = process.memory_info().rss - before
            sock.setblocking(True)
            sock.settimeout(30)
            sock.sendall(pending + close(1000))         # goes once the application reads
            assert FrameReader(sock).close_code() == 1000
        assert sent < limit, "the server never stopped reading"
        assert grown < 30 * MB, f"RSS grew by {grown / MB:.0f} MB"
        # Nothing was lost: the application got every message once it read.
        assert int(output_line(srv, "ws-slow-reader").split()[2]) == sent


# ── many sockets, limits, pings, shutdown ───────────────────────────────────────────

def test_a_thousand_concurrent_websockets():
    from websockets.asyncio.client import connect as async_connect
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < 2200:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 4096), hard))

    async def run(srv):
        clients = []
        for i in range(1000):
            clients.append(await async_connect(url(srv, "/ws/echo"), open_timeout=60, ping_interval=None))
        for i, client in enumerate(clients):
            await client.send(f"#{i}")
        replies = [await client.recv() for client in clients]
        for client in clients:
            await client.close()
        return replies

    with start() as srv:
        replies = asyncio.run(run(srv))
        assert replies == [f"#{i}" for i in range(1000)]
        wait_for(lambda: srv.output().count("ws-disconnect /ws/echo 1000") == 1000, 60,
                 what="1,000 websocket.disconnect messages")


def test_limit_concurrency_counts_websockets():
    with start(extra=["--limit-concurrency", "2"]) as srv:
        with ws_connect(url(srv, "/ws/echo")), ws_connect(url(srv, "/ws/echo")):
            with pytest.raises(InvalidStatus) as refused:
                ws_connect(url(srv, "/ws/echo"))
            assert refused.value.response.status_code == 503


def test_keepalive_ping_and_timeout():
    # The timeout is generous so that a client thread slowed by a loaded machine
    # still answers in time; the silent client below waits it out once.
    with start(extra=["--ws-ping-interval", "0.2", "--ws-ping-timeout", "3"]) as srv:
        # A client that answers pings (websockets does) stays connected.
        with ws_connect(url(srv, "/ws/echo?answers=1"), ping_interval=None) as client:
            time.sleep(1.5)
            client.send("still here")
            assert client.recv(timeout=20) == "still here"
        # A raw client that never answers is dropped after the timeout.
        sock, rest = raw_open(srv, "/ws/echo?silent=1")
        with sock:
            reader = FrameReader(sock, rest)
            assert reader.read() == (0x9, b"")
            while reader.read() is not None:             # until the server drops us
                pass
        assert output_line(srv, "ws-disconnect /ws/echo 1006")


def test_graceful_shutdown_closes_websockets_with_1001():
    with start(extra=["--graceful-timeout", "10"]) as srv, contextlib.ExitStack() as stack:
        clients = [stack.enter_context(ws_connect(url(srv, f"/ws/echo?n={i}"))) for i in range(3)]
        for client in clients:
            client.send("hi")
            assert client.recv(timeout=20) == "hi"
        srv.signal(signal.SIGTERM)
        for client in clients:
            with pytest.raises(ConnectionClosed) as closed:
                client.recv(timeout=20)
            assert closed.value.rcvd.code == 1001
        assert srv.wait(timeout=20) == 0
    assert srv.output().count("ws-disconnect /ws/echo 1001 'server shutting down'") == 3


def test_no_spec_violation_on_the_shared_server(server):
    # Every endpoint runs under servers.asgi_checker: a rule the server broke in any
    # test above would have been printed with the application's traceback.
    test_text_binary_fragmented_and_ping(server)
    assert "ASGIViolation" not in server.output()


def test_shutdown_is_bounded_when_the_client_never_answers_the_close():
    with start(extra=["--graceful-timeout", "1", "--access-log"]) as srv:
        sock, rest = raw_open(srv, "/ws/echo?deaf=1")
        with sock:
            srv.signal(signal.SIGTERM)
            reader = FrameReader(sock, rest)
            assert reader.read()[0] == 0x8                  # the 1001, never answered
            assert srv.wait(timeout=30) == 0
        assert "ws-disconnect /ws/echo 1001 'server shutting down'" in srv.output()
        assert '"GET /ws/echo?deaf=1 HTTP/1.1" 101' in srv.output()


def test_trace_shows_the_handshake_and_every_message():
    with start(extra=["--trace"]) as srv:
        with ws_connect(url(srv, "/ws/echo"), max_size=None) as client:
            client.send("hello")
            assert client.recv(timeout=20) == "hello"
            client.send(b"z" * 100_000)
            assert len(client.recv(timeout=20)) == 100_000
            client.send("a long text that the trace shows only the start of, and its length")
            client.recv(timeout=20)
        output_line(srv, "ws-disconnect")
        trace = srv.output()
    for expected in ["request head\n  GET /ws/echo HTTP/1.1", "  type          'websocket'",
                     "  subprotocols  []", "receive() -> app\n  {'type': 'websocket.connect'}",
                     "app -> send()\n  {'type': 'websocket.accept'}", "response\n  101 Switching Protocols",
                     "{'type': 'websocket.receive', 'text': 'hello'}",
                     "{'type': 'websocket.send', 'bytes': <100000 bytes>}",
                     "'a long text that the trace shows only th'... <66 characters>",
                     "{'type': 'websocket.disconnect', 'code': 1000, 'reason': ''}"]:
        assert expected in trace, expected
