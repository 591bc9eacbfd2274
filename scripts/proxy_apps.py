"""A tiny ASGI application for showing a WebSocket through nginx.

The sample site's own WebSocket endpoints (/ws/echo, /chat, on Channels) come from
another branch; until they are there, the notebook on production and the nginx tests
put this application behind nginx instead:

    python -m uvicorn scripts.proxy_apps:websocket_echo --uds var/echo.sock

/ws/echo sends every text or binary message back; /ws/chat is one chat room: a text
message from any member goes to every member. On both, the first message is a JSON
line saying what the application was told about the connection (the client address,
the scheme, the forwarded headers), so the proxy's work shows. Every other path
answers 404. The room lives in one process: behind two backends, two rooms.
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
    if scope["type"] == "http" or scope["path"] not in ("/ws/echo", "/ws/chat"):
        await not_found(scope, receive, send)
        return
    # ASGI spec, WebSocket "Connection": "This message must be responded to with either
    # an *Accept* message or a *Close* message before the socket will pass
    # ``websocket.receive`` messages."
    assert (await receive())["type"] == "websocket.connect"
    await send({"type": "websocket.accept"})
    seen = json.dumps({
        "client": scope.get("client"),
        "scheme": scope.get("scheme"),
        "headers": {name.decode("latin-1"): value.decode("latin-1")
                    for name, value in scope["headers"] if name in FORWARDED},
    })
    if scope["path"] == "/ws/chat":
        await chat(receive, send, seen)
    else:
        await echo(receive, send, seen)


async def echo(receive, send, seen):
    await send({"type": "websocket.send", "text": seen})
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


# The send callables of the chat's members. One event loop runs them all, so a
# member's task may call another member's send.
ROOM = set()


async def chat(receive, send, seen):
    # A member joins before its first message leaves: whoever has read that message
    # is in the room and will get what is said from then on.
    ROOM.add(send)
    try:
        await send({"type": "websocket.send", "text": seen})
        while True:
            message = await receive()
            if message["type"] == "websocket.disconnect":
                return
            if message.get("text") is not None:
                for member in list(ROOM):
                    await member({"type": "websocket.send", "text": message["text"]})
    finally:
        ROOM.discard(send)


async def not_found(scope, receive, send):
    if scope["type"] == "websocket":
        await receive()
        await send({"type": "websocket.close", "code": 1008})
        return
    await send({"type": "http.response.start", "status": 404,
                "headers": [(b"content-type", b"text/plain; charset=utf-8")]})
    await send({"type": "http.response.body", "body": b"only /ws/echo and /ws/chat (WebSocket) are here\n"})
