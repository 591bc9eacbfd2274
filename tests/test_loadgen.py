"""scripts.loadgen: the response parser, exact counting, and surviving resets, refusals and silence.

The servers here are tiny threaded socket servers written in the test, so that what
the server did (how many responses it sent, which connections it reset) is known exactly.
"""

import os
import socket
import subprocess
import sys
import struct
import threading
import time

import pytest

from scripts import loadgen
from scripts.launch import REPO, ServerProcess, free_port, server_command
from scripts.loadgen import ProtocolError, ResponseParser

OK = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"
RESET = object()
SILENT = object()


class TinyServer:
    """Answers each request with respond(n) (n counts from 1): bytes to send, RESET to reset
    the connection instead, or SILENT to never answer. Counts what it sent."""

    def __init__(self, respond):
        self.respond = respond
        self.listener = socket.create_server(("127.0.0.1", 0), backlog=128)
        self.port = self.listener.getsockname()[1]
        self.lock = threading.Lock()
        self.requests = 0
        self.answered = 0
        self.bodies = []
        self.stopping = threading.Event()
        self.connections = []

    def __enter__(self):
        threading.Thread(target=self._accept, daemon=True).start()
        return self

    def __exit__(self, *exc):
        self.stopping.set()
        self.listener.close()
        for connection in self.connections:
            connection.close()

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}/x"

    def _accept(self):
        while not self.stopping.is_set():
            try:
                connection, _ = self.listener.accept()
            except OSError:
                return
            self.connections.append(connection)
            threading.Thread(target=self._serve, args=(connection,), daemon=True).start()

    def _serve(self, connection):
        buffer = b""
        try:
            while True:
                while b"\r\n\r\n" not in buffer:
                    data = connection.recv(65536)
                    if not data:
                        return
                    buffer += data
                head, buffer = buffer.split(b"\r\n\r\n", 1)
                length = 0
                for line in head.lower().split(b"\r\n"):
                    if line.startswith(b"content-length:"):
                        length = int(line.split(b":")[1])
                while len(buffer) < length:
                    buffer += connection.recv(65536)
                body, buffer = buffer[:length], buffer[length:]
                with self.lock:
                    self.requests += 1
                    number = self.requests
                    self.bodies.append(len(body))
                action = self.respond(number)
                if action is RESET:
                    # SO_LINGER with a zero timeout: close() sends RST instead of FIN.
                    connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    connection.close()
                    return
                if action is SILENT:
                    self.stopping.wait()
                    return
                with self.lock:
                    self.answered += 1
                connection.sendall(action)
                if b"connection: close" in head.lower():
                    connection.close()
                    return
        except OSError:
            return


# --- the parser -----------------------------------------------------------------------------

def parse(*pieces, head_request=False):
    responses = []
    parser = ResponseParser(lambda status, size, timing: responses.append((status, size, timing)),
                            head_request=head_request, capture_server_timing=True)
    for piece in pieces:
        parser.feed(piece)
    return parser, responses


def test_content_length_responses_split_anywhere_are_framed_exactly():
    not_found = b"HTTP/1.1 404 Not Found\r\nContent-Length: 3\r\n\r\nnop"
    empty = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"
    stream = OK + not_found + empty + OK
    for cut in range(1, len(stream)):
        _, responses = parse(stream[:cut], stream[cut:])
        assert [r[:2] for r in responses] == [(200, len(OK)), (404, len(not_found)), (200, len(empty)),
                                              (200, len(OK))], cut


def test_chunked_body_with_extension_and_trailer():
    response = (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                b"5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: yes\r\n\r\n")
    for cut in range(1, len(response)):
        _, responses = parse(response[:cut], response[cut:] + OK)
        assert [r[:2] for r in responses] == [(200, len(response)), (200, len(OK))], cut


def test_close_delimited_body_ends_at_eof():
    response = b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nsome bytes"
    parser, responses = parse(response[:30], response[30:])
    assert responses == [] and not parser.keep_alive
    assert parser.feed_eof()
    assert responses[0][:2] == (200, len(response))


def test_interim_and_bodyless_responses():
    _, responses = parse(b"HTTP/1.1 100 Continue\r\n\r\n" + b"HTTP/1.1 204 No Content\r\n\r\n"
                         + b"HTTP/1.1 304 Not Modified\r\nContent-Length: 99\r\n\r\n" + OK)
    assert [r[0] for r in responses] == [204, 304, 200]
    _, responses = parse(b"HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\n", head_request=True)
    assert [r[0] for r in responses] == [200]


def test_server_timing_is_captured_and_parsed():
    _, responses = parse(b"HTTP/1.1 200 OK\r\nServer-Timing: spawn;dur=2.5, app;dur=10\r\n"
                         b"Content-Length: 0\r\n\r\n")
    assert loadgen.parse_server_timing(responses[0][2]) == {"spawn": 2.5, "app": 10.0}


@pytest.mark.parametrize("garbage", [
    b"HTTX/1.1 200 OK\r\n\r\n",
    b"HTTP/1.1 2x0 OK\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nContent-Length: 5, 6\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
])
def test_malformed_responses_raise_protocol_error(garbage):
    with pytest.raises(ProtocolError):
        parse(garbage)


def test_identical_repeated_content_length_is_one_value():
    _, responses = parse(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\ncontent-length: 5\r\n\r\nhello")
    assert responses[0][0] == 200


# --- counting against real sockets ----------------------------------------------------------

@pytest.mark.parametrize("connections, new_connection", [(1, False), (7, False), (4, True)])
def test_every_response_served_is_recorded_once(connections, new_connection):
    with TinyServer(lambda n: OK) as server:
        result = loadgen.run(server.url, connections=connections, requests=500, new_connection=new_connection)
    assert server.requests == server.answered == 500
    assert result.requests == 500
    assert result.error_count == 0
    assert result.status_counts() == {200: 500}
    assert list(result.sizes) == [len(OK)] * 500
    assert all(latency > 0 for latency in result.latencies)


def test_a_duration_run_counts_what_finished_within_it():
    with TinyServer(lambda n: OK) as server:
        result = loadgen.run(server.url, connections=3, duration=0.5)
        answered = server.answered
    assert result.duration == 0.5
    assert 0 < result.requests <= answered <= result.requests + result.unfinished
    assert result.rps == result.requests / 0.5


def test_request_body_and_method_are_sent():
    with TinyServer(lambda n: OK) as server:
        result = loadgen.run(server.url, connections=2, requests=10, method="POST", body=b"x" * 100_000)
    assert result.requests == 10
    assert server.bodies == [100_000] * 10


def test_resets_are_counted_and_the_run_goes_on():
    # Every fifth request: the connection is reset instead of answered.
    with TinyServer(lambda n: RESET if n % 5 == 0 else OK) as server:
        result = loadgen.run(server.url, connections=3, requests=200)
    assert result.requests + result.errors["reset"] == 200
    assert result.errors["reset"] == 200 - server.answered > 0
    assert result.requests == server.answered


def test_refused_connections_are_counted_not_raised():
    url = f"http://127.0.0.1:{free_port()}/"
    result = loadgen.run(url, connections=2, requests=6)
    assert result.errors["refused"] == 6 and result.requests == 0
    result = loadgen.run(url, connections=2, duration=0.2)
    assert result.errors["refused"] > 0 and result.requests == 0


def test_a_silent_server_times_out():
    with TinyServer(lambda n: SILENT) as server:
        result = loadgen.run(server.url, connections=1, requests=2, timeout=0.3)
    assert result.errors["timeout"] == 2 and result.requests == 0


def test_non_2xx_is_recorded_and_counted_as_an_error():
    error = b"HTTP/1.1 503 Busy\r\nContent-Length: 0\r\n\r\n"
    with TinyServer(lambda n: error if n % 2 else OK) as server:
        result = loadgen.run(server.url, connections=1, requests=10)
    assert result.requests == 10
    assert result.errors["non-2xx"] == 5
    assert result.status_counts() == {200: 5, 503: 5}


def test_a_server_closing_after_each_response_is_not_an_error():
    closing = b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nhi"
    with TinyServer(lambda n: closing) as server:
        result = loadgen.run(server.url, connections=2, requests=50)
    assert result.requests == 50 and result.error_count == 0


def test_percentiles_and_summary():
    result = loadgen.Result("http://x/", "GET", 1, False, duration=1.0)
    result.latencies.extend(i / 1000 for i in range(1, 101))
    result.statuses.extend([200] * 100)
    result.sizes.extend([10] * 100)
    assert result.percentile(50) == 0.05 and result.percentile(99) == 0.099 and result.percentile(100) == 0.1
    summary = result.summary_dict()
    assert summary["p90_ms"] == 90.0 and summary["rps"] == 100.0 and summary["bytes"] == 1000
    assert "p99 99.00 ms" in result.summary()


def test_hold_streams_counts_the_streams_the_server_opened():
    stream_head = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
    first_event = b"9\r\ndata: 1\n\n\r\n"
    # The first three streams open; after that the server is full and answers nothing.
    with TinyServer(lambda n: stream_head + first_event if n <= 3 else SILENT) as server:
        hold = loadgen.hold_streams(server.url, 5, timeout=0.5, probe=lambda: "probed")
    assert (hold.requested, hold.held, hold.failed, hold.probe) == (5, 3, 2, "probed")


def test_command_line_prints_a_summary(capsys):
    with TinyServer(lambda n: OK) as server:
        assert loadgen.main([server.url, "-c", "2", "-n", "20"]) == 0
    output = capsys.readouterr().out
    assert "requests     20" in output and "errors       none" in output


def test_check_against_wrk_hands_over_to_the_benchmark_side(tmp_path):
    # With no wrk on PATH the check says so and stops before starting any server.
    completed = subprocess.run([sys.executable, "-m", "scripts.loadgen", "--check-against-wrk"], cwd=REPO,
                               env={**os.environ, "PATH": str(tmp_path)}, capture_output=True, text=True,
                               timeout=120)
    assert completed.returncode == 0, completed.stderr
    assert "wrk is not installed" in completed.stdout


# --- the WebSocket mode -----------------------------------------------------------------------

@pytest.fixture(scope="module")
def uvicorn_echo():
    """uvicorn (its default WebSocket implementation) serving scripts.hello_apps:ws_echo."""
    port = free_port()
    argv = server_command("uvicorn", port=port, app="scripts.hello_apps:ws_echo")
    with ServerProcess(argv, port=port) as server:
        yield f"ws://127.0.0.1:{server.port}/ws/echo"


@pytest.mark.parametrize("binary, size", [(False, 64), (True, 64), (False, 300), (True, 70_000)])
def test_websocket_round_trips_against_uvicorn_are_counted_exactly(uvicorn_echo, binary, size):
    # 300 bytes take the 16-bit length form, 70,000 the 64-bit one, both ways.
    result = loadgen.websocket_run(uvicorn_echo, connections=5, round_trips=120, binary=binary, message_size=size)
    assert result.round_trips == 120 and result.error_count == 0, result.summary()
    assert result.handshakes == 5 and result.unfinished == 0
    assert all(latency > 0 for latency in result.latencies)
    assert result.summary_dict()["errors"] == dict.fromkeys(loadgen.WS_ERROR_KINDS, 0)


def test_websocket_duration_run_and_hold_against_uvicorn(uvicorn_echo):
    result = loadgen.websocket_run(uvicorn_echo, connections=8, duration=0.5)
    assert result.duration == 0.5 and result.round_trips > 0 and result.error_count == 0
    assert result.rtps == result.round_trips / 0.5 and "round trips" in result.summary()
    hold = loadgen.hold_websockets(uvicorn_echo, 150, probe=lambda: "probed", hold=0.2)
    assert (hold.requested, hold.held, hold.failed, hold.dropped, hold.probe) == (150, 150, 0, 0, "probed")


def test_websocket_command_line(uvicorn_echo, capsys):
    assert loadgen.main([uvicorn_echo, "-c", "2", "-n", "30", "--binary"]) == 0
    output = capsys.readouterr().out
    assert "round trips  30 " in output and "errors       none" in output
    assert loadgen.main([uvicorn_echo, "-c", "20", "--hold", "0.1"]) == 0
    assert "held 20 of 20" in capsys.readouterr().out


class TinyWebSocketServer:
    """A threaded WebSocket server on wsproto (so every frame our client sends is checked by
    another implementation). respond(n, payload) decides what the n-th message gets back
    (counting from 1): bytes or str to send (with ping=True, a ping goes first) or CLOSE (a
    close frame instead of the echo). With reject=True every handshake is refused with 403."""

    CLOSE = object()

    def __init__(self, respond, ping=False, reject=False):
        self.respond = respond
        self.ping = ping
        self.reject = reject
        self.listener = socket.create_server(("127.0.0.1", 0), backlog=128)
        self.lock = threading.Lock()
        self.messages = 0
        self.pongs = []
        self.closes = 0
        self.refused_frames = []
        self.connections = []

    @property
    def url(self):
        return f"ws://127.0.0.1:{self.listener.getsockname()[1]}/echo"

    def __enter__(self):
        threading.Thread(target=self._accept, daemon=True).start()
        return self

    def __exit__(self, *exc):
        self.listener.close()
        for connection in self.connections:
            connection.close()

    def _accept(self):
        while True:
            try:
                connection, _ = self.listener.accept()
            except OSError:
                return
            self.connections.append(connection)
            threading.Thread(target=self._serve, args=(connection,), daemon=True).start()

    def _serve(self, sock):
        from wsproto import ConnectionType, WSConnection
        from wsproto.events import (AcceptConnection, BytesMessage, CloseConnection, Message, Ping, Pong,
                                    RejectConnection, Request, TextMessage)
        ws = WSConnection(ConnectionType.SERVER)
        try:
            while data := sock.recv(65536):
                ws.receive_data(data)
                for event in ws.events():
                    if isinstance(event, Request):
                        if self.reject:
                            sock.sendall(ws.send(RejectConnection(status_code=403)))
                            sock.close()
                            return
                        sock.sendall(ws.send(AcceptConnection()))
                    elif isinstance(event, (TextMessage, BytesMessage)):
                        with self.lock:
                            self.messages += 1
                            number = self.messages
                        answer = self.respond(number, event.data)
                        if answer is self.CLOSE:
                            sock.sendall(ws.send(CloseConnection(code=1011)))
                            continue
                        if self.ping:
                            sock.sendall(ws.send(Ping(payload=b"ping %d" % number)))
                        sock.sendall(ws.send(Message(data=answer)))
                    elif isinstance(event, Pong):
                        with self.lock:
                            self.pongs.append(bytes(event.payload))
                    elif isinstance(event, CloseConnection):
                        with self.lock:
                            self.closes += 1
                        if ws.state.name != "CLOSED":
                            sock.sendall(ws.send(event.response()))
                        return
        except OSError:
            return
        except Exception as error:  # a frame wsproto refuses (an unmasked one, say): the test must see it
            self.refused_frames.append(repr(error))


def echo(number, payload):
    return payload


def test_websocket_frames_pass_wsproto_and_pings_get_pongs():
    with TinyWebSocketServer(echo, ping=True) as server:
        result = loadgen.websocket_run(server.url, connections=3, round_trips=60)
        # The last pongs may still be on their way when the run returns: wait for the three closes.
        deadline = time.monotonic() + 30
        while server.closes < 3 and time.monotonic() < deadline:
            time.sleep(0.01)
    assert result.round_trips == 60 and result.error_count == 0, result.summary()
    assert server.refused_frames == []
    assert sorted(server.pongs) == sorted(b"ping %d" % n for n in range(1, 61))


def test_a_corrupted_echo_is_caught_and_counted():
    def corrupt_every_fifth(number, payload):
        if number % 5 == 0:
            return payload[:-1] + ("?" if isinstance(payload, str) else b"?")
        return payload

    with TinyWebSocketServer(corrupt_every_fifth) as server:
        result = loadgen.websocket_run(server.url, connections=2, round_trips=100)
    assert server.messages == 100
    assert result.errors["mismatch"] == 20 and result.round_trips == 80
    assert "mismatch" in result.error_samples


def test_a_refused_handshake_and_a_server_closing_are_errors_by_kind():
    with TinyWebSocketServer(echo, reject=True) as server:
        result = loadgen.websocket_run(server.url, connections=2, round_trips=6)
    assert result.errors["handshake"] == 6 and result.round_trips == 0 and result.handshakes == 0
    assert "403" in result.error_samples["handshake"]
    hold = None
    with TinyWebSocketServer(lambda number, payload: TinyWebSocketServer.CLOSE if number % 3 == 0
                             else payload) as server:
        result = loadgen.websocket_run(server.url, connections=1, round_trips=30)
        hold = loadgen.hold_websockets(server.url.replace(str(server.listener.getsockname()[1]),
                                                          str(free_port())), 3, timeout=1)
    assert result.errors["closed"] > 0 and result.round_trips > 0
    assert "code 1011" in result.error_samples["closed"]
    assert (hold.held, hold.failed, hold.errors["refused"]) == (0, 3, 3)


def test_client_frames_and_the_frame_reader():
    frame = loadgen.client_frame(loadgen.OP_TEXT, b"hello")
    assert frame[0] == 0x81 and frame[1] == 0x80 | 5
    assert loadgen.mask(frame[6:], frame[2:6]) == b"hello"
    assert loadgen.client_frame(loadgen.OP_BINARY, b"x" * 300)[1:4] == bytes([0x80 | 126, 1, 44])
    # Server frames: unmasked; a fragmented message with a ping between its pieces.
    stream = b"\x01\x03abc" + b"\x89\x02hi" + b"\x80\x02de" + b"\x82\x7e\x01\x2c" + b"y" * 300 + b"\x88\x02\x03\xe8"
    for cut in range(1, len(stream)):
        reader = loadgen.FrameReader()
        events = reader.feed(stream[:cut]) + reader.feed(stream[cut:])
        assert events == [("ping", b"hi"), ("message", loadgen.OP_TEXT, b"abcde"),
                          ("message", loadgen.OP_BINARY, b"y" * 300), ("close", 1000)], cut
    # A 126-byte message (16-bit length form) whose frame is 130 bytes, and whose 128-byte
    # prefix must not be mistaken for a frame of 126 bytes.
    long_frame = b"\x81\x7e\x00\x7e" + b"z" * 126
    reader = loadgen.FrameReader()
    assert reader.feed(long_frame[:128]) == [] and reader.feed(long_frame[128:]) == [
        ("message", loadgen.OP_TEXT, b"z" * 126)]
    assert loadgen.FrameReader().feed(b"\x82\x03abc") == [("message", loadgen.OP_BINARY, b"abc")]
    for bad in (b"\x81\x85abcd", b"\xc1\x00", b"\x83\x00", b"\x09\x00", b"\x80\x00", b"\x89\x7e\x00\x7e"):
        with pytest.raises(ProtocolError):
            loadgen.FrameReader().feed(bad + b"\x00" * 130)


def test_handshake_checks():
    key = b"dGhlIHNhbXBsZSBub25jZQ=="
    # RFC 6455 §1.3's example: this key gives this accept value.
    assert loadgen.ws_accept(key) == b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
    good = (b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")
    loadgen.check_handshake(good, key)
    for bad in (good.replace(b"101", b"404"), good.replace(b"xOo=", b"xOO="),
                good.replace(b"Upgrade: websocket", b"Upgrade: h2c")):
        with pytest.raises(loadgen.HandshakeError):
            loadgen.check_handshake(bad, key)


@pytest.mark.slow
def test_websocket_loader_check_against_the_websockets_library():
    completed = subprocess.run([sys.executable, "-m", "scripts.bench_wrk", "--websocket", "--duration", "0.5",
                                "--connections", "4"], cwd=REPO, capture_output=True, text=True, timeout=120)
    # Which loader was faster is a measurement (exit status 0 or 1), not something to assert.
    assert completed.returncode in (0, 1), completed.stderr
    line = completed.stdout.strip().splitlines()[-1]
    assert line.startswith("websocket echo x4 on uvicorn (bare echo app): loadgen ")
    assert "websockets library " in line and " ratio " in line
