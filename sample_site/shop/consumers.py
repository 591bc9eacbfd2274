"""The WebSocket endpoints of the sample site: /ws/echo and /ws/chat/<room>.

A Channels consumer is an ASGI application for one connection: the server calls it
with the `websocket` scope, and it answers `websocket.connect`, then trades
`websocket.receive` and `websocket.send` messages until one side closes. The two
consumers here show the two ways to write one: the echo on the bare ASGI messages,
the chat on Channels' generic consumer and its channel layer.
"""

import json
import re
import secrets
from urllib.parse import parse_qs

from channels.generic.websocket import AsyncWebsocketConsumer

ROOM = re.compile(r"[A-Za-z0-9_-]{1,40}")
NAME_LENGTH = 32
TEXT_LENGTH = 2000

# RFC 6455 §7.4.1: "1003 indicates that an endpoint is terminating the connection
# because it has received a type of data it cannot accept (e.g., an endpoint that
# understands only text data MAY send this if it receives a binary message)."
UNSUPPORTED_DATA = 1003


async def echo(scope, receive, send):
    """/ws/echo: every message back as it came, text as text and bytes as bytes.

    Written on the ASGI messages rather than as a generic consumer because it is
    benchmarked: Channels' consumer classes wait on the client and on the channel
    layer at once (a new task per message) and close stale database connections in
    a worker thread before each handler runs. An echo needs neither, and with the
    Redis layer each connection would also register a channel in Redis.
    """
    while True:
        message = await receive()
        kind = message["type"]
        if kind == "websocket.receive":
            # ASGI WebSocket spec, Receive: "Exactly one of bytes or text must be
            # non-None. One or both keys may be present, however."
            text = message.get("text")
            if text is not None:
                await send({"type": "websocket.send", "text": text})
            else:
                await send({"type": "websocket.send", "bytes": message["bytes"]})
        elif kind == "websocket.connect":
            await send({"type": "websocket.accept"})
        else:  # websocket.disconnect: the socket is gone, and so is this application
            return


def member_name(query_string):
    """The chat name from `?name=...`, stripped; None when missing, blank, too long or unprintable."""
    values = parse_qs(query_string.decode("latin-1")).get("name", [])
    name = values[0].strip() if values else ""
    if not name or len(name) > NAME_LENGTH or not name.isprintable():
        return None
    return name


class ChatConsumer(AsyncWebsocketConsumer):
    """/ws/chat/<room>?name=<name>: one member of a chat room.

    The room is a channel-layer group, so a message reaches every member whichever
    process holds their socket (with CHANNEL_LAYER=redis, several servers share one
    room). The layer keeps no list of who is in a group, so the members tell each
    other: a newcomer's `join` goes to the whole room, and every member already there
    answers the newcomer alone with `here`. Each client builds its list of who is
    connected from those, and from `leave`.

    To the client, as JSON text: {"type": "welcome", "id", "name", "room"},
    {"type": "join" | "here" | "leave", "id", "name"}, {"type": "message", "id",
    "name", "text"} and {"type": "error", "reason"}. From the client: {"text": "..."}.
    """

    async def connect(self):
        self.room = self.scope["url_route"]["kwargs"]["room"]
        self.name = member_name(self.scope["query_string"])
        if not ROOM.fullmatch(self.room) or self.name is None:
            # ASGI WebSocket spec, Connect: the server completes the handshake only
            # once the application answers, "returning HTTP status code 403 if the
            # connection is denied".
            await self.close()
            return
        self.id = secrets.token_hex(4)
        self.group = f"chat.{self.room}"  # group names: ASCII letters, digits, - _ . only
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()
        await self.send_json({"type": "welcome", "id": self.id, "name": self.name, "room": self.room})
        await self.channel_layer.group_send(self.group, {
            "type": "chat.join", "id": self.id, "name": self.name, "reply_to": self.channel_name})

    async def disconnect(self, code):
        if getattr(self, "group", None) is None:
            return  # refused before it joined
        await self.channel_layer.group_send(self.group, {
            "type": "chat.leave", "id": self.id, "name": self.name})
        await self.channel_layer.group_discard(self.group, self.channel_name)

    async def receive(self, text_data=None, bytes_data=None):
        if text_data is None:
            await self.close(UNSUPPORTED_DATA)
            return
        try:
            text = json.loads(text_data)["text"]
        except (ValueError, TypeError, KeyError):
            await self.send_json({"type": "error", "reason": 'send JSON like {"text": "hello"}'})
            return
        if not isinstance(text, str) or not text.strip() or len(text) > TEXT_LENGTH:
            await self.send_json({"type": "error",
                                  "reason": f"text must be 1 to {TEXT_LENGTH} characters"})
            return
        await self.channel_layer.group_send(self.group, {
            "type": "chat.message", "id": self.id, "name": self.name, "text": text})

    # Handlers of the channel-layer events: Channels calls chat_join for "chat.join".

    async def chat_join(self, event):
        await self.send_json({"type": "join", "id": event["id"], "name": event["name"]})
        if event["id"] != self.id:
            await self.channel_layer.send(event["reply_to"], {
                "type": "chat.here", "id": self.id, "name": self.name})

    async def chat_here(self, event):
        await self.send_json({"type": "here", "id": event["id"], "name": event["name"]})

    async def chat_leave(self, event):
        await self.send_json({"type": "leave", "id": event["id"], "name": event["name"]})

    async def chat_message(self, event):
        await self.send_json({"type": "message", "id": event["id"], "name": event["name"],
                              "text": event["text"]})

    async def send_json(self, content):
        await self.send(text_data=json.dumps(content))
