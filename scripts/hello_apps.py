"""The smallest applications: "Hello, world!" with no framework at all.

Serving these measures the server alone (parsing, building the environ or scope,
writing the response), with no Django in the way: `scripts.hello_apps:wsgi_app`
and `scripts.hello_apps:asgi_app`; `scripts.hello_apps:ws_echo` is the same for a WebSocket
(every message sent back).
"""

BODY = b"Hello, world!\n"
HEADERS = [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(BODY)))]


def wsgi_app(environ, start_response):
    """PEP 3333: call start_response(status, headers), return an iterable of bytes."""
    start_response("200 OK", HEADERS)
    return [BODY]


ASGI_HEADERS = [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in HEADERS]


async def asgi_app(scope, receive, send):
    """ASGI 3: one http.response.start, then the body; lifespan is not supported."""
    if scope["type"] != "http":
        raise RuntimeError(f"this app only serves HTTP, not {scope['type']!r}")
    await send({"type": "http.response.start", "status": 200, "headers": ASGI_HEADERS})
    await send({"type": "http.response.body", "body": BODY})


async def ws_echo(scope, receive, send):
    """ASGI 3 WebSocket: accept, then send every message back as it came (text as text, bytes
    as bytes) until the client leaves. The WebSocket benchmark's bare app: the server's
    framing and event loop alone, no Django or Channels in the way."""
    if scope["type"] != "websocket":
        raise RuntimeError(f"this app only serves WebSocket, not {scope['type']!r}")
    await receive()  # websocket.connect
    await send({"type": "websocket.accept"})
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            return
        if message.get("text") is not None:
            await send({"type": "websocket.send", "text": message["text"]})
        else:
            await send({"type": "websocket.send", "bytes": message.get("bytes") or b""})
