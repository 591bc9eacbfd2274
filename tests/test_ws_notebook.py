"""notebooks/03b_websockets: its raw-socket helpers (scripts/ws_helpers.py) and its exercise
checks against answers that are nearly right.

tests/test_notebooks.py runs the whole notebook untouched (every check fails with its
hint) and as the teacher edition (every check passes). Here each code exercise's check
cell runs once more, after an answer that is wrong in one way a student might get it
wrong: the check must fail on it too, or it would pass answers that do not work.
"""

import re
import socket
import struct
import textwrap

import nbformat
import pytest

from scripts import check_notebooks, teacher_edition, ws_helpers
from scripts.launch import ServerProcess, free_port, server_command
from servers import websocket

NOTEBOOK = check_notebooks.NOTEBOOKS / "03b_websockets.ipynb"


@pytest.mark.parametrize("length", [0, 5, 125, 126, 65535, 65536])
@pytest.mark.parametrize("opcode", [ws_helpers.TEXT, ws_helpers.BINARY])
def test_client_frames_parse_as_the_server_parses_them(opcode, length):
    payload = b"a" * length
    frame = ws_helpers.client_frame(opcode, payload)
    assert frame[1] & 0x80, "a client frame is masked"
    [event] = websocket.Connection().receive(frame)
    assert event == websocket.Message(payload.decode() if opcode == ws_helpers.TEXT else payload)


def test_a_fixed_mask_gives_the_rfcs_example_frame():
    # RFC 6455 §5.7: "A single-frame masked text message
    #    *  0x81 0x85 0x37 0xfa 0x21 0x3d 0x7f 0x9f 0x4d 0x51 0x58
    #       (contains "Hello")"
    frame = ws_helpers.client_frame(ws_helpers.TEXT, b"Hello", mask=bytes([0x37, 0xFA, 0x21, 0x3D]))
    assert frame == bytes([0x81, 0x85, 0x37, 0xFA, 0x21, 0x3D, 0x7F, 0x9F, 0x4D, 0x51, 0x58])


def test_dechunk_and_show_crlf():
    assert ws_helpers.dechunk(b"9\r\ndata: 1\n\n\r\n3;x=y\r\nabc\r\n0\r\n\r\n") == [b"data: 1\n\n", b"abc", b""]
    assert ws_helpers.show_crlf(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n") == \
        "HTTP/1.1 101 Switching Protocols␍␊\nUpgrade: websocket␍␊\n␍␊"


@pytest.fixture(scope="module")
def asgi_site():
    port = free_port()
    with ServerProcess(server_command("asgi", port=port, extra=["--ws-ping-interval", "0"]), port=port) as server:
        yield server


def test_raw_websocket_handshake_echo_and_close(asgi_site):
    client = ws_helpers.RawWebSocket(asgi_site, "/ws/echo")
    assert client.status == 101
    assert client.header("Sec-WebSocket-Accept") == websocket.accept_key(client.key).decode()
    client.send("hello")
    reply = client.receive()
    assert (reply.fin, reply.kind, reply.payload, reply.wire) == (True, "text", b"hello", b"\x81\x05hello")
    client.send(b"\x00" * 300)
    assert client.receive().wire == b"\x82\x7e\x01\x2c" + b"\x00" * 300
    close, after = client.close()
    assert (close.kind, struct.unpack("!H", close.payload)[0], after) == ("close", 1000, b"")


def test_raw_websocket_without_origin_is_refused_with_the_status_line(asgi_site):
    with pytest.raises(ConnectionRefusedError, match="403"):
        ws_helpers.RawWebSocket(asgi_site, "/ws/echo", origin=None)


def test_holding_and_echoing_many(asgi_site):
    held, samples = ws_helpers.hold_websockets(asgi_site, "/ws/echo", 50, desc="test", every=20)
    try:
        assert ws_helpers.echo_on_each(held, desc="test") == 50
        assert [count for count, _ in samples] == [0, 20, 40]
        assert all(memory.threads >= 1 and 0 < memory.rss <= memory.vms for _, memory in samples)
    finally:
        ws_helpers.release(held)


def test_event_stream_and_exchange(asgi_site):
    stream = ws_helpers.EventStream(asgi_site, "/events?count=3&interval_ms=10")
    assert b"text/event-stream" in stream.head
    body = stream.read_to_end()
    assert [chunk for chunk in ws_helpers.dechunk(body) if chunk] == [b"data: 1\n\n", b"data: 2\n\n", b"data: 3\n\n"]
    assert stream.ended is not None
    request = (f"POST /echo HTTP/1.1\r\nHost: {asgi_site.host}:{asgi_site.port}\r\n"
               "Content-Length: 3\r\n\r\nabc").encode()
    with socket.create_connection((asgi_site.host, asgi_site.port), timeout=30) as sock:
        for _ in range(2):  # twice on one connection: the first response was read exactly to its end
            response = ws_helpers.exchange(sock, request)
            assert response.startswith(b"HTTP/1.1 200 ") and b'"body_length": 3' in response


# --- the exercise checks refuse near misses ------------------------------------------------

def cells_by_source(notebook):
    return {cell.source: cell for cell in notebook.cells}


def run_cells(sources):
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_code_cell(source) for source in sources]
    with check_notebooks.notebook_client(notebook, timeout=120, allow_errors=False) as client:
        client.execute()
    return "".join(output.get("text", "") for cell in notebook.cells for output in cell.outputs
                   if output.output_type == "stream")


def exercise_cells():
    """(setup cell, APPS cell, {check name: check cell}, {check name: solution code}) of the notebook.

    A solution is the first cell tagged `solution` after the exercise's code cell, that is,
    the one just before its check."""
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    code = [cell.source for cell in notebook.cells if cell.cell_type == "code"]
    setup = next(source for source in code if "nb = setup()" in source)
    apps = next(source for source in code if source.startswith("APPS = "))
    checks, solutions, last_solution = {}, {}, None
    for cell in notebook.cells:
        if teacher_edition.is_solution(cell):
            last_solution = teacher_edition.solution_code(cell)
        elif cell.cell_type == "code" and "nb.check_code(" in cell.source:
            name = re.search(r"nb\.check_code\((\w+)", cell.source)[1]
            checks[name], solutions[name] = cell.source, last_solution
    return setup, apps, checks, solutions


NEAR_MISSES = {
    "try_shout": [
        # echoes without upper-casing
        '''
        async def app(scope, receive, send):
            while True:
                message = await receive()
                if message["type"] == "websocket.connect":
                    await send({"type": "websocket.accept"})
                elif message["type"] == "websocket.receive":
                    await send({"type": "websocket.send", "text": message.get("text") or ""})
                else:
                    return
        ''',
        # upper-cases text but fails on a binary message instead of closing with 1003
        '''
        async def app(scope, receive, send):
            while True:
                message = await receive()
                if message["type"] == "websocket.connect":
                    await send({"type": "websocket.accept"})
                elif message["type"] == "websocket.receive":
                    await send({"type": "websocket.send", "text": message["text"].upper()})
                else:
                    return
        ''',
    ],
    "try_decoder": [
        # the 7-bit length only
        '''
        def decode_client_frame(data):
            mask, payload = data[2:6], data[6:6 + (data[1] & 0x7F)]
            return bool(data[0] & 0x80), data[0] & 0x0F, bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        ''',
        # forgets to unmask
        '''
        def decode_client_frame(data):
            length, position = data[1] & 0x7F, 2
            if length == 126:
                (length,), position = struct.unpack("!H", data[2:4]), 4
            elif length == 127:
                (length,), position = struct.unpack("!Q", data[2:10]), 10
            return bool(data[0] & 0x80), data[0] & 0x0F, data[position + 4:position + 4 + length]
        ''',
    ],
}
# What the cells between the setup and the exercises define, that the answers and checks use.
PRELUDE = "import struct, time\nfrom scripts import ws_helpers as wsh\nfrom servers import websocket"


def verdict_after(answer, check):
    setup, apps, checks, solutions = exercise_cells()
    output = run_cells([setup, PRELUDE, apps, answer, checks[check]])
    verdicts = [line for line in output.splitlines() if line.startswith(("✅", "❌"))]
    assert len(verdicts) == 1, output[-800:]
    return verdicts[0]


@pytest.mark.slow
@pytest.mark.parametrize("check", sorted(NEAR_MISSES))
def test_the_same_cells_pass_with_the_solution(check):
    """The control for the test below: in this reduced notebook the solution passes, so a
    failure there is the answer's, not a missing import's."""
    solution = exercise_cells()[3][check]
    assert solution, f"no solution cell before the {check} check"
    assert verdict_after(solution, check).startswith("✅ Right")


@pytest.mark.slow
@pytest.mark.parametrize("check,answer", [(check, answer) for check, answers in NEAR_MISSES.items()
                                          for answer in answers],
                         ids=lambda value: value if value in NEAR_MISSES else "")
def test_an_exercise_check_fails_on_a_nearly_right_answer(check, answer):
    answer = textwrap.dedent(answer)
    if check == "try_shout":
        answer = f"(APPS / 'shout_asgi.py').write_text({answer!r})"
    verdict = verdict_after(answer, check)
    assert verdict.startswith("❌ Not yet") and "Hint:" in verdict
    assert "NameError" not in verdict, verdict
