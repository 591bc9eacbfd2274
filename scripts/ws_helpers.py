"""What notebooks/03b_websockets needs beyond scripts.notebook_helpers: WebSocket and
server-sent-event clients on raw sockets, so that every byte on the wire can be shown.

The notebook's point is the bytes, so these clients write frames and read heads
themselves instead of hiding them in a library; and one raw socket costs the
notebook's kernel far less than one `websockets` client (its sync client runs a
thread per connection), which matters when the notebook opens 2,000 at once. Where
the bytes are not the point (the chat, the exercise's check), the notebook uses the
`websockets` library.

- `RawWebSocket`: the opening handshake, masked frames out, frames in, the close;
- `client_frame(...)`: the bytes of one client frame (masked, as RFC 6455 wants);
- `hold_websockets(...)`, `hold_event_streams(...)`: many long-lived connections at once,
  the server's memory sampled as they open;
- `EventStream`: one /events response read on a raw socket, first event and the rest;
- `process_memory(...)`: a server's resident and virtual memory and its threads (psutil);
- `exchange(...)`, `dechunk(...)`, `show_crlf(...)`: an HTTP exchange on a kept-alive socket,
  a chunked body taken apart, a head printed with its CRLFs visible.
"""

from __future__ import annotations

import base64
import os
import resource
import socket
import struct
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, NamedTuple

from scripts.launch import ServerProcess

TEXT, BINARY, CLOSE, PING, PONG = 0x1, 0x2, 0x8, 0x9, 0xA
OPCODE_NAMES = {0x0: "continuation", TEXT: "text", BINARY: "binary", CLOSE: "close", PING: "ping", PONG: "pong"}


def origin_of(srv: ServerProcess) -> str:
    """The Origin a browser on the server's own pages would send: the site's
    AllowedHostsOriginValidator refuses a WebSocket without one (403)."""
    return f"http://{srv.host}:{srv.port}"


def raise_open_file_limit() -> int:
    """Every connection is a file descriptor of the notebook's kernel too: raise its soft
    limit to the hard one (Linux's usual soft limit, 1024, stops short of 2,000 sockets)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard and soft != resource.RLIM_INFINITY:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def client_frame(opcode: int, payload: bytes, mask: bytes | None = None, fin: bool = True) -> bytes:
    """One frame as a client sends it: the header, a 4-byte masking key, the masked payload.

    RFC 6455 §5.3: "The masking key is a 32-bit value chosen at random by the client."
    """
    mask = os.urandom(4) if mask is None else mask
    length = len(payload)
    first = (0x80 if fin else 0) | opcode
    if length < 126:
        header = bytes((first, 0x80 | length))
    elif length < 65536:
        header = struct.pack("!BBH", first, 0x80 | 126, length)
    else:
        header = struct.pack("!BBQ", first, 0x80 | 127, length)
    masked = bytes(byte ^ mask[index % 4] for index, byte in enumerate(payload))
    return header + mask + masked


def read_head(sock: socket.socket) -> tuple[bytes, bytes]:
    """Read an HTTP response head: (head including its blank line, the bytes read after it)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError(f"the server closed the connection during the head: {data!r}")
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    return head + b"\r\n\r\n", rest


def exchange(sock: socket.socket, request: bytes) -> bytes:
    """Send one HTTP/1.1 request on a kept-alive connection; answer the whole response as it
    came on the wire, its body framed by Content-Length or chunked (RFC 9112 §6.3)."""
    sock.sendall(request)
    head, body = read_head(sock)
    fields = dict(line.split(b":", 1) for line in head.split(b"\r\n")[1:] if b":" in line)
    fields = {name.strip().lower(): value.strip() for name, value in fields.items()}
    if fields.get(b"transfer-encoding", b"").lower() == b"chunked":
        def done():
            if not body.endswith(b"0\r\n\r\n"):
                return False
            try:
                return dechunk(body)[-1] == b""
            except ValueError:      # a chunk's data happened to end like the last chunk
                return False
    else:
        length = int(fields.get(b"content-length", b"0"))

        def done():
            return len(body) >= length
    while not done():
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("the server closed the connection inside a response")
        body += chunk
    return head + body


def show_crlf(head: bytes) -> str:
    """An HTTP head for printing, each CRLF shown as ␍␊ at the end of its line."""
    return "\n".join(line + "␍␊" for line in head.decode("latin-1").split("\r\n")[:-1])


@dataclass
class Frame:
    """A frame read from the server: its fields and the exact bytes it came in."""
    fin: bool
    opcode: int
    payload: bytes
    wire: bytes

    @property
    def kind(self) -> str:
        return OPCODE_NAMES.get(self.opcode, hex(self.opcode))


class RawWebSocket:
    """A WebSocket client on a plain socket that keeps the bytes it wrote and read.

    `request` and `response` hold the opening handshake as sent and as received.
    A server that refuses (no 101) raises ConnectionRefusedError with its status line.
    """

    def __init__(self, srv: ServerProcess, path: str, *, origin: str | None = "auto",
                 timeout: float = 30.0, key: bytes | None = None):
        self.key = key or base64.b64encode(os.urandom(16))
        origin = origin_of(srv) if origin == "auto" else origin
        lines = [f"GET {path} HTTP/1.1", f"Host: {srv.host}:{srv.port}", "Upgrade: websocket",
                 "Connection: Upgrade", f"Sec-WebSocket-Key: {self.key.decode()}",
                 "Sec-WebSocket-Version: 13", *([f"Origin: {origin}"] if origin else [])]
        self.request = ("\r\n".join(lines) + "\r\n\r\n").encode()
        self.sock = socket.create_connection((srv.host, srv.port), timeout=timeout)
        try:
            self.sock.sendall(self.request)
            self.response, self._buffer = read_head(self.sock)
        except BaseException:
            self.sock.close()
            raise
        self.status = int(self.response.split(b" ", 2)[1])
        if self.status != 101:
            self.sock.close()
            raise ConnectionRefusedError(self.response.split(b"\r\n", 1)[0].decode("latin-1"))

    def header(self, name: str) -> str | None:
        """A header of the 101 response (any case)."""
        for line in self.response.decode("latin-1").split("\r\n")[1:]:
            key, _, value = line.partition(":")
            if key.strip().lower() == name.lower():
                return value.strip()
        return None

    def send(self, data: str | bytes, mask: bytes | None = None) -> bytes:
        """Send one message (str: text, bytes: binary); answer the frame's bytes as sent."""
        opcode, payload = (TEXT, data.encode()) if isinstance(data, str) else (BINARY, data)
        frame = client_frame(opcode, payload, mask)
        self.sock.sendall(frame)
        return frame

    def _read(self, count: int) -> bytes:
        while len(self._buffer) < count:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("the server closed the TCP connection")
            self._buffer += chunk
        data, self._buffer = self._buffer[:count], self._buffer[count:]
        return data

    def receive(self) -> Frame:
        """The next frame from the server (server frames are never masked)."""
        head = self._read(2)
        length = head[1] & 0x7F
        extended = b""
        if length == 126:
            extended = self._read(2)
            (length,) = struct.unpack("!H", extended)
        elif length == 127:
            extended = self._read(8)
            (length,) = struct.unpack("!Q", extended)
        payload = self._read(length)
        return Frame(bool(head[0] & 0x80), head[0] & 0x0F, payload, head + extended + payload)

    def close(self, code: int = 1000) -> tuple[Frame, bytes]:
        """The closing handshake: send a Close, read the server's Close, then read until the
        server closes TCP; answer (its Close frame, what came after it: b"" when nothing did)."""
        self.sock.sendall(client_frame(CLOSE, struct.pack("!H", code)))
        while (frame := self.receive()).opcode != CLOSE:
            pass
        after = self._buffer + self.sock.recv(65536)
        self.sock.close()
        return frame, after

    def abandon(self) -> None:
        """Drop the TCP connection without a closing handshake."""
        self.sock.close()


def hold(srv: ServerProcess, open_one: Callable[[], Any], count: int, *, desc: str,
         every: int = 0) -> tuple[list[Any], list[tuple[int, "Memory"]]]:
    """Open `count` connections with `open_one()`, one after the other, with a progress bar.

    Answers (the connections, samples): with `every`, the server's memory and threads are
    sampled before the first and after every `every` connections, as (open connections,
    Memory). On any failure the connections opened so far are dropped.
    """
    from scripts.notebook_helpers import progress
    raise_open_file_limit()
    held, samples = [], [(0, process_memory(srv))] if every else []
    try:
        for number in progress(range(1, count + 1), desc=desc):
            held.append(open_one())
            if every and number % every == 0:
                samples.append((number, process_memory(srv)))
    except BaseException:
        release(held)
        raise
    return held, samples


def hold_websockets(srv: ServerProcess, path: str, count: int, *, desc: str, every: int = 0):
    """`hold` for WebSockets to `path`."""
    return hold(srv, lambda: RawWebSocket(srv, path), count, desc=desc, every=every)


def echo_on_each(sockets: list[RawWebSocket], *, desc: str) -> int:
    """Send a short text on every held WebSocket, then read every answer; answer how many
    came back equal to what was sent."""
    from scripts.notebook_helpers import progress
    for number, ws in enumerate(sockets):
        ws.send(f"still there? #{number}")
    return sum(ws.receive().payload == f"still there? #{number}".encode()
               for number, ws in enumerate(progress(sockets, desc=desc)))


def release(connections) -> None:
    """Drop every held connection (WebSockets or event streams)."""
    for connection in connections:
        connection.abandon()


class EventStream:
    """One GET of a server-sent-event stream on a raw socket.

    Opening it reads the response head and the first event (so the server is certainly
    holding the stream); `read_to_end()` reads the rest and notes when it ended.
    """

    def __init__(self, srv: ServerProcess, path: str, timeout: float = 60.0):
        self.request = f"GET {path} HTTP/1.1\r\nHost: {srv.host}:{srv.port}\r\nConnection: close\r\n\r\n".encode()
        self.sock = socket.create_connection((srv.host, srv.port), timeout=timeout)
        self.opened = time.monotonic()
        try:
            self.sock.sendall(self.request)
            self.head, self.body = read_head(self.sock)
            while b"\n\n" not in self.body:
                chunk = self.sock.recv(65536)
                if not chunk:
                    raise ConnectionError(f"the stream ended before its first event: {self.head!r}")
                self.body += chunk
        except BaseException:
            self.sock.close()
            raise
        self.ended: float | None = None

    def read_to_end(self) -> bytes:
        """The whole body as it came on the wire (chunked framing included)."""
        while chunk := self.sock.recv(65536):
            self.body += chunk
        self.ended = time.monotonic()
        self.sock.close()
        return self.body

    def abandon(self) -> None:
        self.sock.close()


def hold_event_streams(srv: ServerProcess, path: str, count: int, *, desc: str, every: int = 0):
    """`hold` for event streams from `path`, each past its first event."""
    return hold(srv, lambda: EventStream(srv, path), count, desc=desc, every=every)


def read_all_in_threads(streams: list[EventStream]) -> list[threading.Thread]:
    """Read each stream to its end in a thread of its own; answer the started threads."""
    threads = [threading.Thread(target=stream.read_to_end, daemon=True) for stream in streams]
    for thread in threads:
        thread.start()
    return threads


class Memory(NamedTuple):
    rss: int        # resident memory, bytes
    vms: int        # virtual memory (address space reserved), bytes
    threads: int


def process_memory(srv: ServerProcess) -> Memory:
    """The resident and virtual memory and the threads of the server's process and its children (psutil)."""
    import psutil
    top = psutil.Process(srv.pid)
    processes = [top, *top.children(recursive=True)]
    infos = [p.memory_info() for p in processes]
    return Memory(sum(i.rss for i in infos), sum(i.vms for i in infos), sum(p.num_threads() for p in processes))


def dechunk(body: bytes) -> list[bytes]:
    """The chunks of a chunked body (RFC 9112 §7.1), without their size lines; the last is b""."""
    chunks, position = [], 0
    while True:
        line_end = body.index(b"\r\n", position)
        size = int(body[position:line_end].split(b";")[0], 16)
        chunks.append(body[line_end + 2:line_end + 2 + size])
        position = line_end + 2 + size + 2
        if size == 0:
            return chunks
