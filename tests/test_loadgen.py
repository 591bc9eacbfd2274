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

import pytest

from scripts import loadgen
from scripts.launch import REPO, free_port
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
