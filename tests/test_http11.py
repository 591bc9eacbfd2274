"""servers/http11.py: bytes in, events out; a response in, bytes out.

Table-driven over tests/http11_corpus.py (every valid request also fed one byte at a
time and in random splits), compared with h11, fuzzed with hypothesis, and the
response side checked rule by rule.
"""

import ast
import email.utils
import pathlib
import random

import h11
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from servers import http11
from servers.http11 import ConnectionClosed, Data, EndOfMessage, Error, Request
from tests.http11_corpus import INVALID, VALID, summarize

VALID_IDS = [name for name, _, _ in VALID]
INVALID_IDS = [name for name, _, _ in INVALID]


def feed(data, limits=None):
    return http11.ServerConnection(limits).receive(data)


def feed_pieces(pieces, limits=None):
    conn = http11.ServerConnection(limits)
    events = []
    for piece in pieces:
        events += conn.receive(piece)
    return events


def merged(events):
    """Events with adjacent Data joined: how a body is split depends on the reads."""
    out = []
    for event in events:
        if type(event) is Data and out and type(out[-1]) is Data:
            out[-1] = Data(out[-1].data + event.data)
        elif type(event) is not Data or event.data:
            out.append(event)
    return out


def random_splits(raw, rng):
    cuts = sorted(rng.sample(range(1, len(raw)), min(len(raw) - 1, rng.randint(1, 12))))
    return [raw[a:b] for a, b in zip([0] + cuts, cuts + [len(raw)])]


# -- valid requests ------------------------------------------------------------

@pytest.mark.parametrize("name, raw, expected", VALID, ids=VALID_IDS)
def test_valid_request(name, raw, expected):
    events = feed(raw)
    assert summarize(events) == expected
    without_leading_lines = raw[len(raw) - len(raw.lstrip(b"\r\n")):]
    assert events[0].raw == without_leading_lines[:without_leading_lines.index(b"\r\n\r\n") + 4]


@pytest.mark.parametrize("name, raw, expected", VALID, ids=VALID_IDS)
def test_valid_request_in_any_split(name, raw, expected):
    whole = merged(feed(raw))
    assert merged(feed_pieces([raw[i:i + 1] for i in range(len(raw))])) == whole
    rng = random.Random(name)
    for _ in range(20):
        assert merged(feed_pieces(random_splits(raw, rng))) == whole


# h11 refuses these valid requests, so there is nothing to compare.
H11_REFUSES = {
    "leading-empty-lines": "h11 does not skip an empty line before the request line (RFC 9112 §2.2)",
    "chunk-extensions": "h11 refuses BWS around ';' in a chunk extension (RFC 9112 §7.1.1 allows it)",
}


def h11_summary(raw):
    """(method, target, headers, body) of the first request as h11 reads it, or None
    if h11 refuses it or needs more bytes."""
    conn = h11.Connection(h11.SERVER)
    conn.receive_data(raw)
    body = []
    try:
        while True:
            event = conn.next_event()
            if type(event) is h11.Request:
                head = (event.method.decode("ascii"), event.target, list(event.headers))
            elif type(event) is h11.Data:
                body.append(event.data)
            elif type(event) is h11.EndOfMessage:
                return normalized(*head, b"".join(body))
            else:
                return None
    except h11.RemoteProtocolError:
        return None


def normalized(method, target, headers, body):
    """h11 folds repeated Content-Length lines into one and lower-cases the
    Transfer-Encoding value; compare modulo those two choices."""
    seen_length = False
    fields = []
    for name, value in headers:
        if name == b"content-length":
            if seen_length:
                continue
            seen_length = True
        elif name == b"transfer-encoding":
            value = value.lower()
        fields.append((name, value))
    return method, target, fields, body


def http11_summary(raw):
    events = feed(raw)
    for end, event in enumerate(events):
        if type(event) is EndOfMessage:
            summary = summarize(events[:end + 1])
            return normalized(summary["method"], summary["target"], summary["headers"],
                              summary["body"])
        if type(event) is Error:
            return None
    return None


@pytest.mark.parametrize("name, raw, expected", VALID, ids=VALID_IDS)
def test_valid_request_agrees_with_h11(name, raw, expected):
    if name in H11_REFUSES:
        assert h11_summary(raw) is None, f"h11 now accepts {name}: drop it from H11_REFUSES"
        return
    assert h11_summary(raw) == http11_summary(raw)


# -- malformed requests ------------------------------------------------------------

def test_invalid_corpus_is_large_and_distinct():
    assert len(INVALID) >= 60
    assert len(set(INVALID_IDS)) == len(INVALID)
    assert len({raw for _, raw, _ in INVALID}) == len(INVALID)


@pytest.mark.parametrize("name, raw, status", INVALID, ids=INVALID_IDS)
def test_invalid_request(name, raw, status):
    rng = random.Random(name)
    splits = [[raw], [raw[i:i + 1] for i in range(len(raw))]]
    splits += [random_splits(raw, rng) for _ in range(5)]
    for pieces in splits:
        conn = http11.ServerConnection()
        events = []
        for piece in pieces:
            events += conn.receive(piece)
        # The verdict comes by the last byte, with no EOF, and it is final.
        assert type(events[-1]) is Error, events
        assert events[-1].status == status, events[-1]
        assert sum(type(event) is Error for event in events) == 1
        assert conn.receive(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n") == []
        assert conn.receive(b"") == []
    response = conn.error_response(events[-1].status, events[-1].reason)
    assert response.startswith(b"HTTP/1.1 %d " % status)
    assert b"\r\nConnection: close\r\n" in response
    assert not conn.keep_alive


def test_module_does_no_io():
    tree = ast.parse(pathlib.Path(http11.__file__).read_text())
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            imported.add(node.module.split(".")[0])
    assert imported, "no imports found: the check is broken"
    assert not imported & {"socket", "asyncio", "threading", "selectors", "subprocess"}


# -- limits --------------------------------------------------------------------------

def test_limits_are_configurable():
    limits = http11.Limits(max_request_line=20, max_headers=2, max_field_size=30,
                           max_head_size=100, max_body_size=5)
    assert feed(b"GET /" + b"a" * 20 + b" HTTP/1.1\r\nHost: h\r\n\r\n", limits)[0].status == 414
    assert feed(b"GET / HTTP/1.1\r\nHost: h\r\nA: 1\r\nB: 2\r\n\r\n", limits)[0].status == 431
    assert feed(b"GET / HTTP/1.1\r\nHost: h\r\nA: " + b"a" * 30 + b"\r\n\r\n", limits)[0].status == 431
    assert feed(b"GET / HTTP/1.1\r\nHost: h\r\nA: " + b"a" * 28 + b"\r\nB: "
                + b"b" * 28 + b"\r\n\r\n", limits)[0].status == 431
    assert feed(b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 6\r\n\r\n", limits) == [
        Error(413, "request body too large")]
    ok = feed(b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello", limits)
    assert ok[1:] == [Data(b"hello"), EndOfMessage()]


def test_chunked_body_over_the_limit_is_refused_mid_body():
    conn = http11.ServerConnection(http11.Limits(max_body_size=10))
    events = conn.receive(b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
                          b"6\r\nabcdef\r\n")
    assert events[1:] == [Data(b"abcdef")]
    assert conn.receive(b"5\r\n") == [Error(413, "request body too large")]


def test_unfinished_head_is_refused_as_soon_as_it_is_too_large():
    conn = http11.ServerConnection()
    line = b"X-Filler: " + b"a" * 1000 + b"\r\n"
    events = conn.receive(b"GET / HTTP/1.1\r\nHost: h\r\n")
    sent = 0
    while not events:
        events = conn.receive(line)
        sent += len(line)
        assert sent < 70_000
    assert events == [Error(431, "request head too large")]


def test_body_is_handed_on_as_it_arrives():
    conn = http11.ServerConnection()
    conn.receive(b"PUT / HTTP/1.1\r\nHost: h\r\nContent-Length: 10000000\r\n\r\n")
    piece = b"x" * 65536
    for _ in range(10):
        assert conn.receive(piece) == [Data(piece)]
    assert len(conn._buffer) == 0


def test_pipelined_flood_while_responding_is_bounded():
    conn = http11.ServerConnection()
    conn.receive(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
    assert conn.paused
    for _ in range(40):
        assert conn.receive(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n" * 100) == []
    assert len(conn._buffer) <= http11.Limits().max_head_size + 2800
    assert b"Connection: close\r\n" in conn.start_response(200, [], content_length=0)
    conn.end_response()
    assert not conn.keep_alive


# -- connection life -------------------------------------------------------------

def test_pipelined_requests_come_out_one_at_a_time():
    conn = http11.ServerConnection()
    first = conn.receive(b"GET /1 HTTP/1.1\r\nHost: h\r\n\r\n"
                         b"POST /2 HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\nhi"
                         b"GET /3 HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n")
    assert [type(e) for e in first] == [Request, EndOfMessage]
    assert conn.receive(b"GET /4 HTTP/1.1\r\n") == []
    with pytest.raises(http11.LocalProtocolError):
        conn.next_request()          # the response has not been sent yet
    conn.start_response(200, [], content_length=0)
    conn.end_response()
    second = conn.next_request()
    assert second[0].target == b"/2" and second[1:] == [Data(b"hi"), EndOfMessage()]
    conn.start_response(200, [])
    conn.end_response()
    third = conn.next_request()
    assert third[0].target == b"/3" and not third[0].keep_alive
    assert b"Connection: close\r\n" in conn.start_response(200, [], content_length=0)
    conn.end_response()
    assert not conn.keep_alive
    with pytest.raises(http11.LocalProtocolError):
        conn.next_request()


def test_eof():
    assert feed(b"") == [ConnectionClosed()]
    assert feed_pieces([b"\r\n", b""]) == [ConnectionClosed()]
    assert feed_pieces([b"GET / HT", b""])[-1].status == 400
    events = feed_pieces([b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nab", b""])
    assert events[1:] == [Data(b"ab"), Error(400, "connection closed in the middle of a request")]
    conn = http11.ServerConnection()
    conn.receive(b"GET / HTTP/1.1\r\nHost: h\r\n\r\nGET /2 HTTP/1.1\r\nHost: h\r\n\r\n")
    assert conn.receive(b"") == []
    conn.start_response(204, [])
    conn.end_response()
    assert [type(e) for e in conn.next_request()] == [Request, EndOfMessage]
    conn.start_response(204, [])
    conn.end_response()
    assert conn.next_request() == [ConnectionClosed()]


def test_unread_body_prevents_reuse():
    conn = http11.ServerConnection()
    conn.receive(b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\nabc")
    conn.start_response(200, [], content_length=0)
    conn.end_response()
    assert not conn.keep_alive
    assert conn.receive(b"defghij")[-1] == EndOfMessage()
    assert conn.keep_alive


# -- responses --------------------------------------------------------------------------

def respond(request_bytes, status, headers, body=b"", **kwargs):
    conn = http11.ServerConnection()
    conn.receive(request_bytes)
    out = conn.start_response(status, headers, **kwargs)
    out += conn.send_body(body) + conn.end_response()
    return out, conn


GET11 = b"GET / HTTP/1.1\r\nHost: h\r\n\r\n"
GET10 = b"GET / HTTP/1.0\r\n\r\n"


def head_fields(response):
    head = response.split(b"\r\n\r\n", 1)[0].split(b"\r\n")
    return head[0], [tuple(line.split(b": ", 1)) for line in head[1:]]


@pytest.mark.parametrize("request_bytes, status, kwargs, framing, body_on_wire, keep_alive", [
    (GET11, 200, {"content_length": 2}, (b"Content-Length", b"2"), b"hi", True),
    (GET11, 200, {}, (b"Transfer-Encoding", b"chunked"), b"2\r\nhi\r\n0\r\n\r\n", True),
    (GET10, 200, {}, (b"Connection", b"close"), b"hi", False),
    (b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", 200, {"content_length": 2},
     (b"Connection", b"keep-alive"), b"hi", True),
    (b"HEAD / HTTP/1.1\r\nHost: h\r\n\r\n", 200, {"content_length": 2},
     (b"Content-Length", b"2"), b"", True),
    (b"HEAD / HTTP/1.1\r\nHost: h\r\n\r\n", 200, {}, None, b"", True),
    (GET11, 204, {"content_length": 2}, None, b"", True),
    (GET11, 304, {}, None, b"", True),
])
def test_response_framing(request_bytes, status, kwargs, framing, body_on_wire, keep_alive):
    out, conn = respond(request_bytes, status, [("Content-Type", "text/plain")], b"hi", **kwargs)
    head, body = out.split(b"\r\n\r\n", 1)
    status_line, fields = head_fields(out)
    assert status_line.startswith(b"HTTP/1.1 %d " % status)
    names = [name for name, _ in fields]
    if framing is not None:
        assert framing in fields
    if status == 204:
        assert b"Content-Length" not in names
    if framing is None or framing[0] != b"Transfer-Encoding":
        assert b"Transfer-Encoding" not in names
    assert body == body_on_wire
    assert conn.keep_alive is keep_alive


def test_date_and_server_added_unless_given():
    out, _ = respond(GET11, 200, [], content_length=0)
    fields = dict(head_fields(out)[1])
    assert email.utils.parsedate_to_datetime(fields[b"Date"].decode()).tzname() == "UTC"
    assert fields[b"Server"] == b"servers.http11"
    out, _ = respond(GET11, 200, [("Date", "x"), ("Server", "mine")], content_length=0)
    fields = head_fields(out)[1]
    assert fields.count((b"Date", b"x")) == 1 and fields.count((b"Server", b"mine")) == 1
    assert [name for name, _ in fields].count(b"Date") == 1


def test_application_framing_headers_are_replaced():
    out, conn = respond(GET11, 200, [("Transfer-Encoding", "gzip"), ("Connection", "close")], b"x")
    fields = head_fields(out)[1]
    assert (b"Transfer-Encoding", b"chunked") in fields and (b"Transfer-Encoding", b"gzip") not in fields
    assert fields.count((b"Connection", b"close")) == 1
    assert not conn.keep_alive
    out, conn = respond(GET11, 200, [(b"Content-Length", b"1")], b"x")
    assert out.endswith(b"\r\n\r\nx") and b"chunked" not in out and conn.keep_alive


@pytest.mark.parametrize("header", [
    ("X-Bad", "a\r\nSet-Cookie: evil=1"), ("X-Bad", "a\nb"), ("X-Bad", "a\rb"), ("X-Bad", "a\x00b"),
    ("X-Bad", "a\x7f"), ("Bad Name", "v"), ("X:", "v"), ("", "v"), ("X-Bad", "\u20ac"),
    (b"X-Bad", b"a\r\n"), ("Content-Length", "-1"), ("Content-Length", "1, 1"),
])
def test_invalid_response_header_raises_before_any_output(header):
    conn = http11.ServerConnection()
    conn.receive(GET11)
    with pytest.raises(http11.LocalProtocolError):
        conn.start_response(200, [("X-Good", "fine"), header])
    # Nothing was produced; the server can still answer 500.
    assert conn.error_response(500, "Internal Server Error").startswith(b"HTTP/1.1 500 ")


def test_status_line_and_reason():
    assert respond(GET11, 404, [], content_length=0)[0].startswith(b"HTTP/1.1 404 Not Found\r\n")
    assert respond(GET11, 299, [], content_length=0)[0].startswith(b"HTTP/1.1 299 \r\n")
    assert respond(GET11, 200, [], content_length=0, reason="Fine")[0].startswith(
        b"HTTP/1.1 200 Fine\r\n")
    for status in (99, 600, "200", 200.0):
        conn = http11.ServerConnection()
        conn.receive(GET11)
        with pytest.raises(http11.LocalProtocolError):
            conn.start_response(status, [])
    conn = http11.ServerConnection()
    conn.receive(GET11)
    with pytest.raises(http11.LocalProtocolError):
        conn.start_response(200, [], reason="OK\r\nX: y")


def test_content_length_is_enforced():
    conn = http11.ServerConnection()
    conn.receive(GET11)
    conn.start_response(200, [], content_length=3)
    assert conn.send_body(b"ab") == b"ab"
    with pytest.raises(http11.LocalProtocolError):
        conn.send_body(b"cd")
    with pytest.raises(http11.LocalProtocolError):
        conn.end_response()
    assert not conn.keep_alive


def test_continue_and_interim_responses():
    conn = http11.ServerConnection()
    conn.receive(b"POST / HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n")
    assert conn.send_continue() == b"HTTP/1.1 100 Continue\r\n\r\n"
    assert conn.send_continue() == b""
    assert conn.receive(b"hi") == [Data(b"hi"), EndOfMessage()]
    assert conn.start_response(103, [("Link", "</s.css>; rel=preload")]) == (
        b"HTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload\r\n\r\n")
    assert conn.start_response(200, [], content_length=0).startswith(b"HTTP/1.1 200 OK\r\n")
    conn = http11.ServerConnection()
    conn.receive(b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\n")
    assert conn.send_continue() == b""


def test_misuse_raises():
    conn = http11.ServerConnection()
    with pytest.raises(http11.LocalProtocolError):
        conn.start_response(200, [])
    conn.receive(GET11)
    with pytest.raises(http11.LocalProtocolError):
        conn.send_body(b"x")
    conn.start_response(200, [], content_length=0)
    with pytest.raises(http11.LocalProtocolError):
        conn.start_response(200, [])
    with pytest.raises(http11.LocalProtocolError):
        conn.error_response(500, "late")


# -- hypothesis ---------------------------------------------------------------------

FUZZ = settings(max_examples=150, deadline=None,
                suppress_health_check=[HealthCheck.too_slow])


def check_event_sequence(events):
    """A well-formed answer: Request, Data*, EndOfMessage, or a final Error or
    ConnectionClosed, in that order."""
    for index, event in enumerate(events):
        assert type(event) in (Request, Data, EndOfMessage, Error, ConnectionClosed)
        if type(event) in (Error, ConnectionClosed):
            assert index == len(events) - 1
        if type(event) is Request:
            assert index == 0
            assert isinstance(event.method, str) and isinstance(event.target, bytes)


def run_to_the_end(pieces):
    conn = http11.ServerConnection(http11.Limits(max_body_size=4096))
    events = []
    for piece in list(pieces) + [b""]:
        events += conn.receive(piece)
        if conn.paused:
            break
    check_event_sequence(events)
    return conn, events


@FUZZ
@given(st.lists(st.binary(max_size=200), max_size=6))
def test_random_bytes_never_raise(pieces):
    run_to_the_end(pieces)


def verdicts(events):
    """Merged events with each Error reduced to its status: a reason may name a
    different one of several faults depending on where the reads were split."""
    return [event.status if type(event) is Error else event for event in merged(events)]


@st.composite
def mutated_valid_request(draw):
    _, raw, _ = draw(st.sampled_from(VALID))
    data = bytearray(raw)
    for _ in range(draw(st.integers(1, 4))):
        position = draw(st.integers(0, len(data)))
        action = draw(st.sampled_from(["insert", "delete", "replace"]))
        byte = draw(st.sampled_from([0, 9, 10, 13, 32, 44, 58, 59, 48, 65, 127, 255])
                    | st.integers(0, 255))
        if action == "insert":
            data.insert(position, byte)
        elif position < len(data):
            if action == "delete":
                del data[position]
            else:
                data[position] = byte
    return bytes(data)


@FUZZ
@given(mutated_valid_request(), st.randoms(use_true_random=False))
def test_mutated_requests_agree_with_h11(raw, rng):
    _, whole = run_to_the_end([raw])
    _, split = run_to_the_end(random_splits(raw, rng) if len(raw) > 1 else [raw])
    assert verdicts(split) == verdicts(whole)
    ours = http11_summary(raw)
    theirs = h11_summary(raw)
    if ours is not None and theirs is not None:
        assert ours == theirs


def test_an_applications_content_length_is_written_once():
    conn = http11.ServerConnection()
    conn.receive(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    head = conn.start_response(200, [("Content-Length", "5"), ("Content-Length", "5")], content_length=5)
    assert head.lower().count(b"content-length:") == 1
