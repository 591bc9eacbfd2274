"""servers/asgi_checker.py: it catches each violation it claims to, by either side,
and lets a correct conversation through untouched. In-process: a fake server
(a scope, a list of messages for receive, a list collecting send) talks to small apps."""

import asyncio

import pytest

from servers.asgi_checker import ASGIViolation, checked


def http_scope(**changes):
    scope = {
        "type": "http", "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": "1.1", "method": "GET", "scheme": "http", "path": "/", "raw_path": b"/",
        "query_string": b"", "root_path": "", "headers": [(b"host", b"localhost")],
        "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", 8000), "state": {},
    }
    scope.update(changes)
    return {key: value for key, value in scope.items() if value is not REMOVED}


REMOVED = object()
REQUEST = {"type": "http.request", "body": b"", "more_body": False}
START = {"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]}
BODY = {"type": "http.response.body", "body": b"ok"}


def converse(app, scope=None, incoming=(REQUEST,), *, send_result=None, **options):
    """Run checked(app) against a fake server; return what the app sent."""
    incoming = list(incoming)
    sent = []

    async def receive():
        return incoming.pop(0) if incoming else {"type": "http.disconnect"}

    async def send(message):
        sent.append(message)
        return send_result

    asyncio.run(checked(app, **options)(scope if scope is not None else http_scope(), receive, send))
    return sent


def app_sending(*messages, read_first=True):
    async def app(scope, receive, send):
        if read_first:
            await receive()
        for message in messages:
            await send(message)
    return app


async def good_app(scope, receive, send):
    while (await receive()).get("more_body"):
        pass
    await send(START)
    await send({"type": "http.response.body", "body": b"o", "more_body": True})
    await send({"type": "http.response.body", "body": b"k"})
    assert (await receive())["type"] == "http.disconnect"


# ── no false alarms ───────────────────────────────────────────────────────────

def test_a_correct_conversation_passes():
    incoming = [{"type": "http.request", "body": b"a", "more_body": True},
                {"type": "http.request", "body": b"b"}]
    sent = converse(good_app, incoming=incoming)
    assert [message["type"] for message in sent] == ["http.response.start"] + ["http.response.body"] * 2


def test_an_app_may_stop_early_once_the_client_is_gone():
    async def app(scope, receive, send):
        assert (await receive())["type"] == "http.disconnect"
    converse(app, incoming=[{"type": "http.disconnect"}])


def test_header_case_is_accepted_when_asked():
    upper = {**START, "headers": [(b"Content-Type", b"text/plain")]}
    converse(app_sending(upper, BODY), lowercase_response_headers=False)
    with pytest.raises(ASGIViolation, match="must be lowercased"):
        converse(app_sending(upper, BODY))


# ── the server's side: the scope ───────────────────────────────────────────────

@pytest.mark.parametrize("changes, rule", [
    ({"asgi": {"version": "2.0"}}, r"scope\['asgi'\]\['version'\] must be '3.0'"),
    ({"asgi": REMOVED}, r"scope\['asgi'\] must be dict"),
    ({"http_version": "1.2"}, r"scope\['http_version'\] must be one of"),
    ({"method": "get"}, r"scope\['method'\] must be uppercased"),
    ({"method": b"GET"}, r"scope\['method'\] must be str"),
    ({"scheme": ""}, r"must not be empty"),
    ({"path": b"/"}, r"scope\['path'\] \(percent-decoded\) must be str"),
    ({"raw_path": "/"}, r"scope\['raw_path'\] must be bytes"),
    ({"query_string": "a=1"}, r"scope\['query_string'\] \(still percent-encoded\) must be bytes"),
    ({"root_path": b""}, r"scope\['root_path'\] must be str"),
    ({"headers": [("host", "localhost")]}, r"a header name in scope\['headers'\] must be bytes"),
    ({"headers": [(b"Host", b"localhost")]}, r"must be lowercased"),
    ({"headers": {b"host": b"x"}}, r"must be an iterable of \[name, value\] pairs"),
    ({"client": ("127.0.0.1", "50000")}, r"scope\['client'\]\[1\] \(port\) must be int"),
    ({"server": "127.0.0.1:8000"}, r"scope\['server'\] must be a \[host, port\] pair"),
    ({"state": []}, r"scope\['state'\] must be dict"),
    ({"query_string": REMOVED}, r"lacks the required key\(s\) query_string"),
])
def test_a_bad_scope_is_the_servers_fault(changes, rule):
    with pytest.raises(ASGIViolation, match="the server broke the ASGI spec: .*" + rule):
        converse(good_app, http_scope(**changes))


def test_a_scope_that_is_no_dict():
    with pytest.raises(ASGIViolation, match="the scope must be dict"):
        converse(good_app, [("type", "http")])


# ── the server's side: receive() ───────────────────────────────────────────────

@pytest.mark.parametrize("incoming, rule", [
    ([{"type": "http.request", "body": "text"}], r"http.request\['body'\] must be bytes"),
    ([{"type": "http.request", "more_body": 1}], r"http.request\['more_body'\] must be bool"),
    ([{"type": "websocket.receive"}], r"may return only http.request or http.disconnect"),
    (["http.request"], r"a message must be dict"),
    ([REQUEST, REQUEST], r"http.request after the body was complete"),
    ([{"type": "http.disconnect"}, REQUEST], r"http.request after http.disconnect"),
])
def test_bad_receive_messages_are_the_servers_fault(incoming, rule):
    async def app(scope, receive, send):
        for _ in incoming:
            await receive()
        await send(START)
        await send(BODY)
    with pytest.raises(ASGIViolation, match="the server broke the ASGI spec: .*" + rule):
        converse(app, incoming=incoming)


def test_send_must_return_none():
    with pytest.raises(ASGIViolation, match=r"send\(\) must return None"):
        converse(app_sending(START, BODY), send_result=True)


# ── the application's side: send() ──────────────────────────────────────────────

@pytest.mark.parametrize("messages, rule", [
    ([BODY], r"the first message sent must be 'http.response.start', got 'http.response.body'"),
    ([START, START], r"sent 'http.response.start' twice"),
    ([START, BODY, BODY], r"sent 'http.response.body' after the response was complete"),
    ([START, {"type": "http.disconnect"}], r"only 'http.response.body' may be sent, got 'http.disconnect'"),
    ([{**START, "status": "200"}], r"\['status'\] must be int, got str"),
    ([{**START, "status": True}], r"\['status'\] must be int, got bool"),
    ([{**START, "status": 42}], r"must be an HTTP status code, got 42"),
    ([{**START, "headers": [(b"content-type", "text/plain")]}], r"the value of header .* must be bytes"),
    ([{**START, "headers": [(b"a", b"b", b"c")]}], r"must be a \[name, value\] pair"),
    ([{**START, "trailers": "no"}], r"\['trailers'\] must be bool"),
    ([START, {"type": "http.response.body", "body": "text"}], r"\['body'\] must be bytes, got str"),
    ([START, {"type": "http.response.body", "more_body": "yes"}], r"\['more_body'\] must be bool"),
    ([{"status": 200}], r"message\['type'\] must be str"),
    ([START], r"returned before the response was complete"),
    ([], r"returned without sending http.response.start"),
])
def test_bad_send_messages_are_the_applications_fault(messages, rule):
    with pytest.raises(ASGIViolation, match="the application broke the ASGI spec: .*" + rule):
        converse(app_sending(*messages))


# ── lifespan ─────────────────────────────────────────────────────────────────────

LIFESPAN = {"type": "lifespan", "asgi": {"version": "3.0", "spec_version": "2.0"}, "state": {}}
STARTUP, SHUTDOWN = {"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}


def lifespan_app(*steps):
    """steps: "receive" or a message to send, in order."""
    async def app(scope, receive, send):
        for step in steps:
            if step == "receive":
                await receive()
            else:
                await send(step)
    return app


def test_a_correct_lifespan_passes():
    converse(lifespan_app("receive", {"type": "lifespan.startup.complete"},
                          "receive", {"type": "lifespan.shutdown.complete"}),
             LIFESPAN, [STARTUP, SHUTDOWN])


@pytest.mark.parametrize("steps, incoming, rule", [
    (["receive"], [SHUTDOWN], r"the server broke the ASGI spec: lifespan receive\(\) must return "
                              r"lifespan.startup, then lifespan.shutdown"),
    (["receive", "receive"], [STARTUP, SHUTDOWN],
     r"the server broke the ASGI spec: sent lifespan.shutdown before the application answered"),
    (["receive", {"type": "lifespan.startup.complete"}, "receive", {"type": "lifespan.shutdown.complete"},
      "receive"], [STARTUP, SHUTDOWN, STARTUP], r"the server broke the ASGI spec: lifespan receive"),
    ([{"type": "lifespan.startup.complete"}], [STARTUP],
     r"the application broke the ASGI spec: sent 'lifespan.startup.complete'; the lifespan protocol "
     r"allows nothing"),
    (["receive", {"type": "lifespan.shutdown.complete"}], [STARTUP],
     r"the application broke the ASGI spec: sent 'lifespan.shutdown.complete'; the lifespan protocol "
     r"allows lifespan.startup.complete or lifespan.startup.failed"),
    (["receive", {"type": "lifespan.startup.complete"}, {"type": "lifespan.startup.complete"}], [STARTUP],
     r"the application broke the ASGI spec: sent 'lifespan.startup.complete'; .* allows nothing"),
    (["receive", {"type": "lifespan.startup.failed", "message": b"down"}], [STARTUP],
     r"the application broke the ASGI spec: lifespan.startup.failed\['message'\] must be str"),
])
def test_lifespan_violations(steps, incoming, rule):
    with pytest.raises(ASGIViolation, match=rule):
        converse(lifespan_app(*steps), LIFESPAN, incoming)


# ── WebSocket ─────────────────────────────────────────────────────────────────────

def ws_scope(**changes):
    scope = {
        "type": "websocket", "asgi": {"version": "3.0", "spec_version": "2.5"},
        "http_version": "1.1", "scheme": "ws", "path": "/ws", "raw_path": b"/ws",
        "query_string": b"", "root_path": "", "headers": [(b"host", b"localhost")],
        "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", 8000),
        "subprotocols": ["chat"], "state": {}, "extensions": {"websocket.http.response": {}},
    }
    scope.update(changes)
    return {key: value for key, value in scope.items() if value is not REMOVED}


CONNECT = {"type": "websocket.connect"}
WS_DISCONNECT = {"type": "websocket.disconnect", "code": 1000, "reason": ""}
ACCEPT = {"type": "websocket.accept"}


class Gone(OSError):
    """What a server raises on send() after the close."""


def ws_converse(app, scope=None, incoming=(CONNECT,), *, raise_after_close=True):
    """Run checked(app) on a websocket scope against a fake server."""
    incoming = list(incoming)
    sent = []

    async def receive():
        return incoming.pop(0) if incoming else WS_DISCONNECT

    async def send(message):
        if raise_after_close and any(m["type"] == "websocket.close" for m in sent):
            raise Gone("closed")
        sent.append(message)

    asyncio.run(checked(app)(scope if scope is not None else ws_scope(), receive, send))
    return sent


def ws_app(*steps):
    """steps: "receive" or a message to send, in order."""
    async def app(scope, receive, send):
        for step in steps:
            if step == "receive":
                await receive()
            else:
                await send(step)
    return app


def test_a_correct_websocket_conversation_passes():
    incoming = [CONNECT, {"type": "websocket.receive", "text": "hi"},
                {"type": "websocket.receive", "bytes": b"\x00", "text": None}, WS_DISCONNECT]
    app = ws_app("receive", {**ACCEPT, "subprotocol": "chat", "headers": [(b"x-a", b"1")]},
                 "receive", {"type": "websocket.send", "text": "hi"},
                 "receive", {"type": "websocket.send", "bytes": b"\x00"},
                 "receive", "receive")
    assert len(ws_converse(app, incoming=incoming)) == 3
    denial = ws_app("receive", {"type": "websocket.http.response.start", "status": 401, "headers": []},
                    {"type": "websocket.http.response.body", "body": b"no"})
    assert ws_converse(denial)[0]["status"] == 401


def test_send_after_close_must_raise_oserror():
    app = ws_app("receive", ACCEPT, {"type": "websocket.close", "code": 4000},
                 {"type": "websocket.send", "text": "late"})
    with pytest.raises(Gone):
        ws_converse(app)
    with pytest.raises(ASGIViolation, match="the server broke .* should raise an OSError"):
        ws_converse(app, raise_after_close=False)


@pytest.mark.parametrize("changes, rule", [
    ({"path": b"/ws"}, r"scope\['path'\] .* must be str"),
    ({"subprotocols": "chat"}, r"scope\['subprotocols'\] must be an iterable of str"),
    ({"subprotocols": [b"chat"]}, r"each of scope\['subprotocols'\] must be str"),
    ({"scheme": ""}, r"scope\['scheme'\] is optional but must not be empty"),
    ({"headers": REMOVED}, r"the websocket scope lacks the required key\(s\) headers"),
])
def test_a_bad_websocket_scope_is_the_servers_fault(changes, rule):
    with pytest.raises(ASGIViolation, match="the server broke the ASGI spec: .*" + rule):
        ws_converse(ws_app(), ws_scope(**changes))


@pytest.mark.parametrize("incoming, rule", [
    ([{"type": "websocket.receive", "text": "x"}], r"first message received must be websocket.connect"),
    ([CONNECT, CONNECT], r"websocket.connect twice"),
    ([CONNECT, {"type": "websocket.receive", "text": "x"}], r"before the application accepted"),
    ([CONNECT, WS_DISCONNECT, {"type": "websocket.receive", "text": "x"}], r"after websocket.disconnect"),
    ([CONNECT, {"type": "http.request"}], r"may return only websocket"),
    ([CONNECT, {"type": "websocket.disconnect", "code": "1000"}], r"\['code'\] must be int"),
])
def test_bad_websocket_receive_messages_are_the_servers_fault(incoming, rule):
    app = ws_app("receive", "receive", "receive")
    with pytest.raises(ASGIViolation, match="the server broke the ASGI spec: .*" + rule):
        ws_converse(app, incoming=incoming)


def test_receive_with_both_text_and_bytes_is_the_servers_fault():
    app = ws_app("receive", ACCEPT, "receive")
    with pytest.raises(ASGIViolation, match="exactly one of 'bytes' or 'text'"):
        ws_converse(app, incoming=[CONNECT, {"type": "websocket.receive", "text": "a", "bytes": b"a"}])


@pytest.mark.parametrize("steps, scope, rule", [
    ([ACCEPT], None, r"sent 'websocket.accept' before receiving websocket.connect"),
    (["receive", {"type": "websocket.send", "text": "x"}], None, r"answer to websocket.connect must be"),
    (["receive", {**ACCEPT, "subprotocol": "v9"}], None, r"'v9' is not one the client offered"),
    (["receive", {**ACCEPT, "headers": [(b"sec-websocket-protocol", b"chat")]}], None,
     r"must not include sec-websocket-protocol"),
    (["receive", {**ACCEPT, "headers": [(b"X-Up", b"1")]}], None, r"must be lowercased"),
    (["receive", ACCEPT, {"type": "websocket.send"}], None, r"exactly one of 'bytes' or 'text'"),
    (["receive", ACCEPT, {"type": "websocket.send", "bytes": "str"}], None, r"\['bytes'\] must be bytes"),
    (["receive", ACCEPT, {"type": "websocket.close", "code": "1000"}], None, r"\['code'\] must be int"),
    (["receive", ACCEPT, ACCEPT], None, r"only websocket.send or websocket.close"),
    (["receive", {"type": "websocket.http.response.start", "status": 403}],
     ws_scope(extensions={}), r"does not offer the websocket.http.response extension"),
    (["receive", {"type": "websocket.http.response.start", "status": 403}, ACCEPT], None,
     r"only websocket.http.response.body may be sent"),
])
def test_bad_websocket_send_messages_are_the_applications_fault(steps, scope, rule):
    with pytest.raises(ASGIViolation, match="the application broke the ASGI spec: .*" + rule):
        ws_converse(ws_app(*steps), scope)


def test_a_websocket_scope_may_leave_out_query_string_which_has_a_default():
    # ASGI WebSocket spec: query_string defaults to the empty string; path and headers do not.
    assert ws_converse(ws_app("receive", ACCEPT), ws_scope(query_string=REMOVED))[0] == ACCEPT
    with pytest.raises(ASGIViolation, match=r"lacks the required key\(s\) path"):
        ws_converse(ws_app("receive", ACCEPT), ws_scope(path=REMOVED))
