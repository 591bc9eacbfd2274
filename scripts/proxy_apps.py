"""A tiny ASGI application for showing a WebSocket through nginx.

The sample site's own WebSocket endpoints (/ws/echo, /chat, on Channels) come from
another branch; until they are there, the notebook on production and the nginx tests
put this application behind nginx instead:

    python -m uvicorn scripts.proxy_apps:websocket_echo --uds var/echo.sock

/ws/echo sends every text or binary message back; its first message is a JSON
line saying what the application was told about the connection (the client
address, the scheme, the forwarded headers), so the proxy's work shows. Every
other path answers 404.
"""

import json

FORWARDED = (b"x-forwarded-for", b"x-forwarded-proto", b"host", b"upgrade", b"connection")


async def websocket_echo(scope, receive, send):
    if scope["type"] == "lifespan":
        # Nothing to set up or tear down: acknowledge the start-up, then the shutdown.
        await receive()
        await send({"type": "lifespan.startup.complete"})
        await receive()
        await send({"type": "lifespan.shutdown.complete"})
        return
    if scope["type"] == "http" or scope["path"] != "/ws/echo":
        await not_found(scope, receive, send)
        return
    # ASGI spec, WebSocket "Connection": "This message must be responded to with either
    # an *Accept* message or a *Close* message before the socket will pass
    # ``websocket.receive`` messages."
    assert (await receive())["type"] == "websocket.connect"
    await send({"type": "websocket.accept"})
    seen = {
        "client": scope.get("client"),
        "scheme": scope.get("scheme"),
        "headers": {name.decode("latin-1"): value.decode("latin-1")
                    for name, value in scope["headers"] if name in FORWARDED},
    }
    await send({"type": "websocket.send", "text": json.dumps(seen)})
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            return
        # ASGI spec, WebSocket "Receive": "Exactly one of ``bytes`` or ``text`` must be
        # non-``None``." The echo sends back the one that was set, in the same mode.
        if message.get("text") is not None:
            await send({"type": "websocket.send", "text": message["text"]})
        else:
            await send({"type": "websocket.send", "bytes": message["bytes"]})


async def not_found(scope, receive, send):
    if scope["type"] == "websocket":
        await receive()
        await send({"type": "websocket.close", "code": 1008})
        return
    await send({"type": "http.response.start", "status": 404,
                "headers": [(b"content-type", b"text/plain; charset=utf-8")]})
    await send({"type": "http.response.body", "body": b"only /ws/echo (WebSocket) is here\n"})
