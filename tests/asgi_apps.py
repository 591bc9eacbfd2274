"""Small ASGI applications the ASGI server tests serve (`tests.asgi_apps:NAME`).

`app` is a router of tiny endpoints, each showing one part of the ASGI HTTP spec,
wrapped in servers.asgi_checker so that the server's side is checked on every
request; `raw` is the same router unchecked, for the tests that make the
application break the spec on purpose and watch the server's answer.
`django` is the sample site wrapped in the checker. The lifespan_* apps each play
one lifespan behaviour. Apps report what they saw by printing to stdout (the test
reads the server's output).
"""

import asyncio
import hashlib
import json
from urllib.parse import parse_qs

from servers.asgi_checker import checked

TEXT = [(b"content-type", b"text/plain; charset=utf-8")]


def query(scope) -> dict:
    return {key: values[0] for key, values in parse_qs(scope["query_string"].decode()).items()}


async def respond(send, status: int, body: bytes, headers=TEXT) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [*headers, (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


async def read_body(receive):
    """The request body and the number of http.request messages it came in."""
    body, messages = [], 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ConnectionError("client disconnected")
        body.append(message.get("body", b""))
        messages += 1
        if not message.get("more_body", False):
            return b"".join(body), messages


# ── the endpoints ─────────────────────────────────────────────────────────────

async def hello(scope, receive, send):
    await respond(send, 200, b"Hello, world!\n")


async def scope_json(scope, receive, send):
    """The scope as JSON, bytes shown as latin-1 text, with its key order."""
    def shown(value):
        if isinstance(value, bytes):
            return value.decode("latin-1")
        if isinstance(value, (list, tuple)):
            return [shown(item) for item in value]
        if isinstance(value, dict):
            return {key: shown(item) for key, item in value.items()}
        return value
    body = json.dumps({"keys": list(scope), "scope": shown(scope)}).encode()
    await respond(send, 200, body, [(b"content-type", b"application/json")])


async def sha256(scope, receive, send):
    """Hash the body as it arrives (never all in memory): JSON length, sha256, messages."""
    digest, length, messages = hashlib.sha256(), 0, 0
    while True:
        message = await receive()
        digest.update(message.get("body", b""))
        length += len(message.get("body", b""))
        messages += 1
        if not message.get("more_body", False):
            break
    body = json.dumps({"length": length, "sha256": digest.hexdigest(), "messages": messages})
    await respond(send, 200, body.encode(), [(b"content-type", b"application/json")])


async def echo_stream(scope, receive, send):
    """Each request chunk goes straight back as a response chunk (no Content-Length:
    chunked framing)."""
    await send({"type": "http.response.start", "status": 200, "headers": TEXT})
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return
        await send({"type": "http.response.body", "body": message.get("body", b""), "more_body": True})
        if not message.get("more_body", False):
            break
    await send({"type": "http.response.body"})


async def big(scope, receive, send):
    """?mb=N megabytes of zeros in 64 KiB messages: for backpressure."""
    total = int(query(scope).get("mb", "1")) * 1024 * 1024
    piece = bytes(64 * 1024)
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-length", str(total).encode())]})
    for _ in range(total // len(piece)):
        await send({"type": "http.response.body", "body": piece, "more_body": True})
    await send({"type": "http.response.body"})
    print(f"big: sent {total} bytes", flush=True)


async def wait_disconnect(scope, receive, send):
    """Read the body, then wait in receive() until the client goes away."""
    await read_body(receive)
    print("wait-disconnect: waiting", flush=True)
    message = await receive()
    print(f"wait-disconnect: got {message['type']}", flush=True)


async def receive_after_response(scope, receive, send):
    """Every receive() after the response is complete gives http.disconnect."""
    await read_body(receive)
    await respond(send, 200, b"done\n")
    kinds = [(await receive())["type"] for _ in range(2)]
    print(f"receive-after-response: {kinds}", flush=True)


async def two_waiting(scope, receive, send):
    """Two receive() calls waiting at once (a disconnect watcher beside another)
    are both answered when the response completes."""
    await read_body(receive)
    waiting = [asyncio.ensure_future(receive()) for _ in range(2)]
    await asyncio.sleep(0.05)                      # both are waiting in the server now
    await respond(send, 200, b"done\n")
    kinds = [message["type"] for message in await asyncio.wait_for(asyncio.gather(*waiting), 5)]
    print(f"two-waiting: {kinds}", flush=True)


async def sleep(scope, receive, send):
    seconds = float(query(scope).get("s", "0.5"))
    await asyncio.sleep(seconds)
    await respond(send, 200, f"slept {seconds}\n".encode())


async def events(scope, receive, send):
    """?count=N&interval=S server-sent events; prints each as it is generated."""
    params = query(scope)
    count, interval = int(params.get("count", "3")), float(params.get("interval", "0.2"))
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/event-stream")]})
    try:
        for number in range(1, count + 1):
            if number > 1:
                await asyncio.sleep(interval)
            print(f"events: generated {number}", flush=True)
            await send({"type": "http.response.body", "body": f"data: {number}\n\n".encode(),
                        "more_body": True})
        await send({"type": "http.response.body"})
    except OSError:
        print("events: client gone", flush=True)
        raise


async def state(scope, receive, send):
    await respond(send, 200, repr(sorted(scope.get("state", {}).items())).encode())


# Endpoints that break the spec on purpose (served through `raw`).

async def error_before_start(scope, receive, send):
    raise ValueError("boom before the response")


async def error_after_start(scope, receive, send):
    await send({"type": "http.response.start", "status": 200, "headers": TEXT})
    await send({"type": "http.response.body", "body": b"partial", "more_body": True})
    raise ValueError("boom in the middle of the response")


async def body_first(scope, receive, send):
    await send({"type": "http.response.body", "body": b"no start"})


async def str_body(scope, receive, send):
    await send({"type": "http.response.start", "status": 200, "headers": TEXT})
    await send({"type": "http.response.body", "body": "text, not bytes"})


async def str_headers(scope, receive, send):
    await send({"type": "http.response.start", "status": 200, "headers": [("content-type", "text/plain")]})
    await send({"type": "http.response.body", "body": b"x"})


async def send_after_end(scope, receive, send):
    await respond(send, 200, b"done\n")
    try:
        await send({"type": "http.response.body", "body": b"more"})
    except RuntimeError as exc:
        print(f"send-after-end: {exc}", flush=True)


async def no_response(scope, receive, send):
    return None


ROUTES = {
    "/hello": hello, "/scope": scope_json, "/sha256": sha256, "/echo-stream": echo_stream,
    "/big": big, "/wait-disconnect": wait_disconnect, "/sleep": sleep, "/events": events,
    "/state": state, "/receive-after-response": receive_after_response, "/two-waiting": two_waiting,
    "/error-before-start": error_before_start,
    "/error-after-start": error_after_start, "/body-first": body_first, "/str-body": str_body,
    "/str-headers": str_headers, "/send-after-end": send_after_end, "/no-response": no_response,
}


# ── WebSocket endpoints (scope type "websocket") ───────────────────────────────

async def ws_echo(scope, receive, send):
    """Every message back, text as text and bytes as bytes; the disconnect on stdout."""
    assert (await receive())["type"] == "websocket.connect"
    await send({"type": "websocket.accept"})
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            print(f"ws-disconnect {scope['path']} {message['code']} {message.get('reason', '')!r}",
                  flush=True)
            return
        if message.get("text") is not None:
            await send({"type": "websocket.send", "text": message["text"]})
        else:
            await send({"type": "websocket.send", "bytes": message["bytes"]})


async def ws_scope(scope, receive, send):
    """Accept with the first offered subprotocol and a header; send the scope as JSON."""
    await receive()
    offered = scope["subprotocols"]
    await send({"type": "websocket.accept", "subprotocol": offered[0] if offered else None,
                "headers": [(b"x-accepted-by", b"ws_scope")]})
    shown = {key: (value.decode("latin-1") if isinstance(value, bytes) else value)
             for key, value in scope.items() if key not in ("headers", "state")}
    shown["headers"] = [[n.decode("latin-1"), v.decode("latin-1")] for n, v in scope["headers"]]
    await send({"type": "websocket.send", "text": json.dumps({"keys": list(scope), "scope": shown})})
    await receive()


async def ws_deny(scope, receive, send):
    await receive()
    await send({"type": "websocket.close"})


async def ws_deny_response(scope, receive, send):
    """The websocket.http.response extension: a 401 with a body, in two pieces."""
    await receive()
    assert "websocket.http.response" in scope["extensions"]
    await send({"type": "websocket.http.response.start", "status": 401,
                "headers": [(b"content-type", b"text/plain"), (b"www-authenticate", b"Bearer")]})
    await send({"type": "websocket.http.response.body", "body": b"log in ", "more_body": True})
    await send({"type": "websocket.http.response.body", "body": b"first\n"})


async def ws_close(scope, receive, send):
    """Accept, then close with ?code=&reason= once the first message arrives; report
    what send() does after the close."""
    params = query(scope)
    await receive()
    await send({"type": "websocket.accept"})
    await receive()
    await send({"type": "websocket.close", "code": int(params.get("code", 1000)),
                "reason": params.get("reason", "")})
    message = await receive()
    print(f"ws-after-close {message['type']} {message['code']}", flush=True)
    try:
        await send({"type": "websocket.send", "text": "too late"})
    except OSError as exc:
        print(f"ws-send-after-close raised {type(exc).__name__}", flush=True)


async def ws_crash(scope, receive, send):
    await receive()
    await send({"type": "websocket.accept"})
    await receive()
    raise RuntimeError("the application broke")


async def ws_no_accept(scope, receive, send):
    await receive()


async def ws_flood(scope, receive, send):
    """Accept, then send ?mb= MiB in 64 KiB binary messages, as fast as send() lets it."""
    megabytes = int(query(scope).get("mb", "1"))
    await receive()
    await send({"type": "websocket.accept"})
    chunk = b"x" * 65536
    try:
        for _ in range(megabytes * 16):
            await send({"type": "websocket.send", "bytes": chunk})
        await send({"type": "websocket.send", "text": "done"})
        print("ws-flood sent everything", flush=True)
    except OSError:
        print("ws-flood client gone", flush=True)
    await receive()


async def ws_slow_reader(scope, receive, send):
    """Accept and never call receive() again until told: the client may send a lot."""
    await receive()
    await send({"type": "websocket.accept"})
    await asyncio.sleep(float(query(scope).get("sleep", "1")))
    count = 0
    while (await receive())["type"] == "websocket.receive":
        count += 1
    print(f"ws-slow-reader got {count} messages", flush=True)


WS_ROUTES = {
    "/ws/echo": ws_echo, "/ws/scope": ws_scope, "/ws/deny": ws_deny,
    "/ws/deny-response": ws_deny_response, "/ws/close": ws_close, "/ws/crash": ws_crash,
    "/ws/no-accept": ws_no_accept, "/ws/flood": ws_flood, "/ws/slow-reader": ws_slow_reader,
}


async def raw(scope, receive, send):
    if scope["type"] == "lifespan":
        await lifespan_ok(scope, receive, send)
        return
    if scope["type"] == "websocket":
        await WS_ROUTES.get(scope["path"], ws_deny)(scope, receive, send)
        return
    endpoint = ROUTES.get(scope["path"])
    if endpoint is None and scope["path"].startswith("/scope/"):
        endpoint = scope_json
    if endpoint is None:
        await respond(send, 404, b"not found\n")
    else:
        await endpoint(scope, receive, send)


app = checked(raw)


# ── lifespan behaviours ────────────────────────────────────────────────────────

async def lifespan_ok(scope, receive, send):
    """Startup puts a value in the state; shutdown says so on stdout."""
    assert (await receive())["type"] == "lifespan.startup"
    scope["state"]["greeting"] = "hello from startup"
    print("lifespan: startup", flush=True)
    await send({"type": "lifespan.startup.complete"})
    assert (await receive())["type"] == "lifespan.shutdown"
    print("lifespan: shutdown", flush=True)
    await send({"type": "lifespan.shutdown.complete"})


async def lifespan_failed(scope, receive, send):
    if scope["type"] == "lifespan":
        await receive()
        await send({"type": "lifespan.startup.failed", "message": "database unreachable"})
        return
    await hello(scope, receive, send)


async def lifespan_raises(scope, receive, send):
    """Like Django: any scope but http raises."""
    if scope["type"] != "http":
        raise ValueError(f"only http, not {scope['type']}")
    await state(scope, receive, send)


checked_lifespan_failed = checked(lifespan_failed)
checked_lifespan_raises = checked(lifespan_raises)


def __getattr__(name):
    # `tests.asgi_apps:django` imports Django only when asked for.
    if name == "django":
        from sample_site.asgi import application
        # Django sends response header names as the view set them ("Content-Type").
        return checked(application, lowercase_response_headers=False)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
