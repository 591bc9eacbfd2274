"""A sans-I/O WebSocket (RFC 6455) server connection: bytes in, events out; messages in, bytes out.

This module never touches a socket, exactly like ``http11``, which it follows. The
opening handshake is an HTTP/1.1 GET that ``http11`` has already parsed;
``check_handshake`` judges that request and ``accept_response`` writes the 101.
From then on the connection speaks frames: the server hands the bytes it reads to
``Connection.receive``, which returns events, and asks ``send``/``ping``/``close``
for the bytes of what it wants to say. Replies the protocol itself owes the peer
(the pong to a ping, the close that answers a close, the close that fails the
connection) wait in ``data_to_send()``.

    handshake = check_handshake(request)           # Handshake or Rejection
    sock.sendall(accept_response(handshake.key, subprotocol=None))
    ws = Connection(max_message_size=16 * 2**20)
    for event in ws.receive(sock.recv(65536)):     # Message, Ping, Pong,
        ...                                         # CloseReceived, Failed, ConnectionLost
    sock.sendall(ws.data_to_send())
    sock.sendall(ws.send("hello"))                  # str: a text message; bytes: binary
    if ws.closed:                                   # both closes exchanged, or failed:
        sock.close()                                # the server closes TCP first (§7.1.1)

The file reads in the order a connection travels: the opening handshake, the
events, the frame parser (header, lengths, mask, control frames, fragments, UTF-8),
the closing handshake, then the sending side.

What it leaves out, on purpose: extensions (permessage-deflate included: a client
that offers it gets no Sec-WebSocket-Extensions back, so no RSV bit may be set),
the client side (frames from a server are never parsed here), and handing a
message on before it is complete (ASGI wants whole messages).

Needs from the operating system: nothing: bytes in, events out, no I/O.
"""

import base64
import binascii
import codecs
import hashlib
import struct

__all__ = [
    "check_handshake", "accept_response", "Handshake", "Rejection",
    "Connection", "LocalProtocolError",
    "Message", "Ping", "Pong", "CloseReceived", "Failed", "ConnectionLost",
]


class LocalProtocolError(ValueError):
    """The server side misused the connection: a message after the close, an
    invalid close code, a control payload over 125 bytes."""


# ---------------------------------------------------------------------------
# The opening handshake (RFC 6455 §4.2)
# ---------------------------------------------------------------------------

# RFC 6455 §4.2.2: "concatenating /key/, defined above in step 4 in Section 4.2.2,
# with the string "258EAFA5- E914-47DA-95CA-C5AB0DC85B11", taking the SHA-1 hash of
# this concatenated value to obtain a 20-byte value and base64- encoding (see
# Section 4 of [RFC4648]) this 20-byte hash."
_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

# RFC 9110 §5.6.2:  token = 1*tchar (the subprotocol names are tokens)
_TCHARS = frozenset(b"!#$%&'*+-.^_`|~0123456789"
                    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")


class Handshake:
    """A valid opening handshake: what the application needs to accept it."""
    __slots__ = ("key", "subprotocols")

    def __init__(self, key, subprotocols):
        self.key = key                      # b"dGhlIHNhbXBsZSBub25jZQ=="
        self.subprotocols = subprotocols    # ["chat", "superchat"], the client's order

    def __repr__(self):
        return f"Handshake(key={self.key!r}, subprotocols={self.subprotocols!r})"


class Rejection:
    """An invalid handshake: answer ``status`` with ``headers`` and a one-line
    ``reason`` as the body, then close."""
    __slots__ = ("status", "reason", "headers")

    def __init__(self, status, reason, headers=()):
        self.status = status
        self.reason = reason
        self.headers = list(headers)

    def __repr__(self):
        return f"Rejection({self.status!r}, {self.reason!r}, {self.headers!r})"

    def __eq__(self, other):
        return (type(other) is Rejection and self.status == other.status
                and self.reason == other.reason and self.headers == other.headers)


def is_upgrade(request):
    """Does this request ask for a WebSocket (whether or not it asks correctly)?"""
    for name, value in request.headers:
        if name == b"upgrade" and b"websocket" in _lowered_list(value):
            return True
    return False


def check_handshake(request):
    """Judge an http11.Request that asks for a WebSocket: Handshake or Rejection.

    RFC 6455 §4.2.1: "If the server, while reading the handshake, finds that the
    client did not send a handshake that matches the description below ... the
    server MUST stop processing the client's handshake and return an HTTP response
    with an appropriate error code (such as 400 Bad Request)."
    """
    fields = {}
    for name, value in request.headers:
        fields.setdefault(name, []).append(value)

    # RFC 6455 §4.2.1: "1.   An HTTP/1.1 or higher GET request"
    if request.method != "GET":
        return Rejection(400, "a WebSocket handshake must be a GET request")
    if request.http_version != "1.1":
        return Rejection(400, "a WebSocket handshake needs HTTP/1.1")
    if request.content_length or request.chunked:
        return Rejection(400, "a WebSocket handshake has no body")
    # "2.   A |Host| header field containing the server's authority."  http11
    # already refuses an HTTP/1.1 request without exactly one Host.
    # "3.   An |Upgrade| header field containing the value "websocket", treated as
    # an ASCII case-insensitive value."
    if not any(b"websocket" in _lowered_list(value) for value in fields.get(b"upgrade", ())):
        return Rejection(400, "Upgrade: websocket is missing")
    # "4.   A |Connection| header field that includes the token "Upgrade", treated
    # as an ASCII case-insensitive value."
    if not any(b"upgrade" in _lowered_list(value) for value in fields.get(b"connection", ())):
        return Rejection(400, "Connection: Upgrade is missing")
    # "6.   A |Sec-WebSocket-Version| header field, with a value of 13."
    # RFC 6455 §4.2.2: "If this version does not match a version understood by the
    # server, the server MUST abort the WebSocket handshake described in this section
    # and instead send an appropriate HTTP error code (such as 426 Upgrade Required)
    # and a |Sec-WebSocket-Version| header field indicating the version(s) the server
    # is capable of understanding."  RFC 6455 §4.4: "If the server doesn't support the
    # requested version, it MUST respond with a |Sec-WebSocket-Version| header field
    # (or multiple |Sec-WebSocket-Version| header fields) containing all versions it
    # is willing to use."
    if fields.get(b"sec-websocket-version") != [b"13"]:
        return Rejection(426, "only WebSocket version 13 is supported",
                         [(b"Sec-WebSocket-Version", b"13")])
    # "5.   A |Sec-WebSocket-Key| header field with a base64-encoded (see Section 4
    # of [RFC4648]) value that, when decoded, is 16 bytes in length."
    keys = fields.get(b"sec-websocket-key", ())
    if len(keys) != 1:
        return Rejection(400, "exactly one Sec-WebSocket-Key is needed")
    key = keys[0]
    try:
        decoded = base64.b64decode(key, validate=True)
    except binascii.Error:
        decoded = b""
    if len(decoded) != 16:
        return Rejection(400, "Sec-WebSocket-Key is not the base64 of 16 bytes")
    # "8.   Optionally, a |Sec-WebSocket-Protocol| header field, with a list of
    # values indicating which protocols the client would like to speak, ordered by
    # preference."  The lines of a repeated field make one list (RFC 9110 §5.3).
    subprotocols = []
    for value in fields.get(b"sec-websocket-protocol", ()):
        for element in value.split(b","):
            element = element.strip(b" \t")
            if not element or not _TCHARS.issuperset(element):
                return Rejection(400, "Sec-WebSocket-Protocol is not a list of tokens")
            subprotocols.append(element.decode("ascii"))
    return Handshake(key, subprotocols)


def accept_key(key):
    """The Sec-WebSocket-Accept value for a Sec-WebSocket-Key (both bytes)."""
    return base64.b64encode(hashlib.sha1(key + _GUID).digest())


def accept_response(key, subprotocol=None, headers=()):
    """The bytes of the 101 response that completes the opening handshake.

    ``subprotocol`` must be one the client offered (the caller checks against
    ``Handshake.subprotocols``); ``headers`` are extra (name, value) bytes pairs.
    """
    # RFC 6455 §4.2.2: "1.  A Status-Line with a 101 response code as per RFC 2616
    # [RFC2616]." ... "2.  An |Upgrade| header field with value "websocket"" ...
    # "3.  A |Connection| header field with value "Upgrade"." ... "4.  A
    # |Sec-WebSocket-Accept| header field."
    lines = [b"HTTP/1.1 101 Switching Protocols\r\n",
             b"Upgrade: websocket\r\n",
             b"Connection: Upgrade\r\n",
             b"Sec-WebSocket-Accept: " + accept_key(key) + b"\r\n"]
    if subprotocol is not None:
        # RFC 6455 §4.2.2: "The empty string is not the same as the null value for
        # these purposes and is not a legal value for this field."
        protocol = subprotocol
        if isinstance(protocol, str):
            protocol = protocol.encode("ascii", "replace")   # non-ASCII: "?", refused below
        if not protocol or not _TCHARS.issuperset(protocol):
            raise LocalProtocolError(f"invalid subprotocol {subprotocol!r}")
        lines.append(b"Sec-WebSocket-Protocol: " + protocol + b"\r\n")
    for name, value in headers:
        if not name or not _TCHARS.issuperset(name) or any(byte in b"\r\n\0" for byte in value):
            raise LocalProtocolError(f"invalid header {name!r}: {value!r}")
        lines.append(name + b": " + value + b"\r\n")
    lines.append(b"\r\n")
    return b"".join(lines)


def _lowered_list(value):
    """RFC 9110 §5.6.1 comma-separated list, elements stripped and lower-cased."""
    return [element.strip(b" \t").lower() for element in value.split(b",")]


# ---------------------------------------------------------------------------
# Events
# ---------------------------------------------------------------------------

class Message:
    """A complete data message: ``data`` is str for text, bytes for binary."""
    __slots__ = ("data",)

    def __init__(self, data):
        self.data = data

    def __repr__(self):
        return f"Message({self.data!r})"

    def __eq__(self, other):
        return type(other) is Message and type(self.data) is type(other.data) and self.data == other.data


class Ping:
    """A ping arrived; its pong is already waiting in data_to_send()."""
    __slots__ = ("payload",)

    def __init__(self, payload):
        self.payload = payload

    def __repr__(self):
        return f"Ping({self.payload!r})"

    def __eq__(self, other):
        return type(other) is Ping and self.payload == other.payload


class Pong:
    """A pong arrived (the answer to our ping, or unsolicited: nothing is owed)."""
    __slots__ = ("payload",)

    def __init__(self, payload):
        self.payload = payload

    def __repr__(self):
        return f"Pong({self.payload!r})"

    def __eq__(self, other):
        return type(other) is Pong and self.payload == other.payload


class CloseReceived:
    """The peer sent a Close frame (``code`` 1005 when it held no code). If we had
    not sent one, the answering Close is in data_to_send(). Final: close TCP."""
    __slots__ = ("code", "reason")

    def __init__(self, code, reason):
        self.code = code
        self.reason = reason

    def __repr__(self):
        return f"CloseReceived({self.code!r}, {self.reason!r})"

    def __eq__(self, other):
        return type(other) is CloseReceived and (self.code, self.reason) == (other.code, other.reason)


class Failed:
    """The peer broke the protocol: the Close frame with ``code`` is in
    data_to_send() (unless a Close was sent already). Final: close TCP."""
    __slots__ = ("code", "reason")

    def __init__(self, code, reason):
        self.code = code
        self.reason = reason

    def __repr__(self):
        return f"Failed({self.code!r}, {self.reason!r})"

    def __eq__(self, other):
        return type(other) is Failed and (self.code, self.reason) == (other.code, other.reason)


class ConnectionLost:
    """The TCP connection ended without a closing handshake.

    RFC 6455 §7.1.5: "If _The WebSocket Connection is Closed_ and no Close control
    frame was received by the endpoint (such as could occur if the underlying
    transport connection is lost), _The WebSocket Connection Close Code_ is
    considered to be 1006."
    """
    __slots__ = ()
    code = 1006

    def __repr__(self):
        return "ConnectionLost()"

    def __eq__(self, other):
        return type(other) is ConnectionLost


class _Fail(Exception):
    """Internal: a status code and reason from deep in the parser to ``receive``."""

    def __init__(self, code, reason):
        super().__init__(reason)
        self.code = code
        self.reason = reason


# ---------------------------------------------------------------------------
# Frames (RFC 6455 §5.2)
# ---------------------------------------------------------------------------

# RFC 6455 §5.2: "*  %x0 denotes a continuation frame ... *  %x1 denotes a text
# frame ... *  %x2 denotes a binary frame ... *  %x3-7 are reserved for further
# non-control frames ... *  %x8 denotes a connection close ... *  %x9 denotes a
# ping ... *  %xA denotes a pong ... *  %xB-F are reserved for further control
# frames"
CONTINUATION, TEXT, BINARY, CLOSE, PING, PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA
_KNOWN_OPCODES = frozenset([CONTINUATION, TEXT, BINARY, CLOSE, PING, PONG])

# RFC 6455 §7.4.1 and §7.4.2: the codes a Close frame may carry. 1000-1003 and
# 1007-1011 are defined there; 1012-1014 were registered with IANA since (service
# restart, try again later, bad gateway); "Status codes in the range 3000-3999 are
# reserved for use by libraries, frameworks, and applications" and "Status codes
# in the range 4000-4999 are reserved for private use".  Everything else is
# refused: "Status codes in the range 0-999 are not used", 1004 is "Reserved",
# and of 1005, 1006 and 1015: "1005 is a reserved value and MUST NOT be set as a
# status code in a Close control frame by an endpoint."
def valid_close_code(code):
    return 1000 <= code <= 1003 or 1007 <= code <= 1014 or 3000 <= code <= 4999


_OPEN = "open"
_CLOSING = "closing"      # we sent a Close; waiting for the peer's
_CLOSED = "closed"        # both Closes exchanged, failed, or the TCP connection lost

_unpack_16 = struct.Struct("!H").unpack_from
_unpack_64 = struct.Struct("!Q").unpack_from


def _unmask(payload, mask):
    """RFC 6455 §5.3: "Octet i of the transformed data ("transformed-octet-i") is
    the XOR of octet i of the original data ("original-octet-i") with octet at
    index i modulo 4 of the masking key ("masking-key-octet-j")"."""
    length = len(payload)
    if not length:
        return b""
    # One big-integer XOR does the whole payload at C speed.
    key = mask * (length // 4 + 1)
    return (int.from_bytes(payload, "little")
            ^ int.from_bytes(key[:length], "little")).to_bytes(length, "little")


class Connection:
    """One WebSocket, from the 101 on. Not thread-safe; one task drives it."""

    __slots__ = ("max_message_size", "_buffer", "_state", "_output",
                 "_message_opcode", "_fragments", "_message_size", "_decoder")

    def __init__(self, max_message_size=16 * 2**20):
        self.max_message_size = max_message_size
        self._buffer = bytearray()      # the start of a frame the last read cut
        self._state = _OPEN
        self._output = bytearray()      # what the protocol owes the peer: pongs, Closes
        self._message_opcode = None     # TEXT or BINARY while a fragmented message runs
        self._fragments = []
        self._message_size = 0
        self._decoder = None

    @property
    def closed(self):
        """True once the server should close the TCP connection (after writing
        data_to_send()): both Closes exchanged, or the connection failed."""
        return self._state is _CLOSED

    @property
    def open(self):
        """True while messages may still be sent (no Close sent or received)."""
        return self._state is _OPEN

    def data_to_send(self):
        """The bytes the protocol itself produced (pongs, Close frames); empties them."""
        output = self._output
        if not output:
            return b""
        self._output = bytearray()
        return bytes(output)

    # -- feeding bytes -------------------------------------------------------

    def receive(self, data):
        """Feed the bytes just read (b"" means the peer closed TCP); return events."""
        if self._state is _CLOSED:
            # RFC 6455 §7.1.7: "An endpoint MUST NOT continue to attempt to process
            # data (including a responding Close frame) from the remote endpoint
            # after being instructed to _Fail the WebSocket Connection_."
            return []
        if not data:
            self._state = _CLOSED
            self._buffer = bytearray()
            return [ConnectionLost()]
        # The usual read holds whole frames: parse them straight from ``data``.
        # Only a frame cut by the read boundary is kept, in a bytearray that
        # grows in place while the rest of it arrives.
        buffer = self._buffer
        if buffer:
            buffer += data
        else:
            buffer = data
        events = []
        position = 0
        try:
            while self._state is not _CLOSED:
                consumed = self._parse_frame(buffer, position, events)
                if not consumed:
                    break
                position = consumed
        except _Fail as failure:
            events.append(self._fail(failure.code, failure.reason))
            self._buffer = bytearray()
            return events
        if self._state is _CLOSED:
            self._buffer = bytearray()
        elif buffer is self._buffer:
            del buffer[:position]
        else:
            self._buffer = bytearray(buffer[position:])
        return events

    def _parse_frame(self, buffer, start, events):
        """Parse one frame at ``start``; return the position after it, or 0 when
        the buffer does not hold all of it yet."""
        available = len(buffer) - start
        if available < 2:
            return 0
        first, second = buffer[start], buffer[start + 1]
        fin = first & 0x80
        opcode = first & 0x0F
        # RFC 6455 §5.2: "MUST be 0 unless an extension is negotiated that defines
        # meanings for non-zero values.  If a nonzero value is received and none of
        # the negotiated extensions defines the meaning of such a nonzero value, the
        # receiving endpoint MUST _Fail the WebSocket Connection_."
        if first & 0x70:
            raise _Fail(1002, "reserved bits set without a negotiated extension")
        # RFC 6455 §5.2: "If an unknown opcode is received, the receiving endpoint
        # MUST _Fail the WebSocket Connection_."
        if opcode not in _KNOWN_OPCODES:
            raise _Fail(1002, f"unknown opcode {opcode:#x}")
        # RFC 6455 §5.1: "The server MUST close the connection upon receiving a
        # frame that is not masked.  In this case, a server MAY send a Close frame
        # with a status code of 1002 (protocol error)"
        if not second & 0x80:
            raise _Fail(1002, "client frames must be masked")
        length = second & 0x7F
        header = 6
        if opcode >= CLOSE:
            # RFC 6455 §5.5: "All control frames MUST have a payload length of 125
            # bytes or less and MUST NOT be fragmented."
            if length > 125:
                raise _Fail(1002, "control frame longer than 125 bytes")
            if not fin:
                raise _Fail(1002, "fragmented control frame")
        elif length == 126:
            if available < 4:
                return 0
            header = 8
            (length,) = _unpack_16(buffer, start + 2)
            # RFC 6455 §5.2: "in all cases, the minimal number of bytes MUST be used
            # to encode the length, for example, the length of a 124-byte-long
            # string can't be encoded as the sequence 126, 0, 124."  A MUST broken
            # is a protocol error: refused, as a longer form is nobody's need.
            if length < 126:
                raise _Fail(1002, "payload length not in its minimal encoding")
        elif length == 127:
            if available < 10:
                return 0
            header = 14
            (length,) = _unpack_64(buffer, start + 2)
            # RFC 6455 §5.2: "If 127, the following 8 bytes interpreted as a 64-bit
            # unsigned integer (the most significant bit MUST be 0) are the payload
            # length."
            if length >> 63:
                raise _Fail(1002, "64-bit payload length with its top bit set")
            if length < 65536:
                raise _Fail(1002, "payload length not in its minimal encoding")
        if opcode < CLOSE:
            self._check_sequence(opcode)
            # Refuse before buffering: a client cannot make us hold more than the
            # limit by announcing a huge frame and dribbling it.
            if self._message_size + length > self.max_message_size:
                raise _Fail(1009, f"message larger than {self.max_message_size} bytes")
        end = start + header + length
        if len(buffer) < end:
            return 0
        mask = buffer[start + header - 4:start + header]
        payload = _unmask(buffer[start + header:end], mask)
        if opcode >= CLOSE:
            self._control_frame(opcode, payload, events)
        else:
            self._data_frame(opcode, fin, payload, events)
        return end

    def _check_sequence(self, opcode):
        # RFC 6455 §5.4: "A fragmented message consists of a single frame with the
        # FIN bit clear and an opcode other than 0, followed by zero or more frames
        # with the FIN bit clear and the opcode set to 0, and terminated by a single
        # frame with the FIN bit set and an opcode of 0."  And: "The fragments of
        # one message MUST NOT be interleaved between the fragments of another
        # message unless an extension has been negotiated that can interpret the
        # interleaving."
        if opcode == CONTINUATION:
            if self._message_opcode is None:
                raise _Fail(1002, "continuation frame without a message to continue")
        elif self._message_opcode is not None:
            raise _Fail(1002, "new message before the fragmented one ended")

    def _data_frame(self, opcode, fin, payload, events):
        if opcode != CONTINUATION:
            self._message_opcode = opcode
            if opcode == TEXT:
                self._decoder = codecs.getincrementaldecoder("utf-8")()
            if fin:
                # The usual case, one frame per message: no list, no join.
                self._message_opcode = None
                if self._state is _CLOSING:
                    return
                if opcode == TEXT:
                    events.append(Message(self._decode(payload, True)))
                else:
                    events.append(Message(payload))
                return
        self._message_size += len(payload)
        if self._message_opcode == TEXT:
            # RFC 6455 §8.1: "When an endpoint is to interpret a byte stream as UTF-8
            # but finds that the byte stream is not, in fact, a valid UTF-8 stream,
            # that endpoint MUST _Fail the WebSocket Connection_."  Each fragment
            # is decoded as it arrives, so a bad byte fails at once, not at the end.
            self._fragments.append(self._decode(payload, bool(fin)))
        else:
            self._fragments.append(payload)
        if not fin:
            return
        fragments = self._fragments
        data = ("" if self._message_opcode == TEXT else b"").join(fragments)
        self._fragments = []
        self._message_opcode = None
        self._message_size = 0
        # RFC 6455 §5.5.1: "The application MUST NOT send any more data frames
        # after sending a Close frame."  Nor is anything handed to it: it asked to
        # close, so a message arriving meanwhile is checked and dropped.
        if self._state is not _CLOSING:
            events.append(Message(data))

    def _decode(self, payload, final):
        try:
            return self._decoder.decode(payload, final)
        except UnicodeDecodeError:
            raise _Fail(1007, "invalid UTF-8 in a text message") from None

    def _control_frame(self, opcode, payload, events):
        if opcode == PING:
            # RFC 6455 §5.5.2: "Upon receipt of a Ping frame, an endpoint MUST send a
            # Pong frame in response, unless it already received a Close frame."
            # RFC 6455 §5.5.3: "A Pong frame sent in response to a Ping frame must
            # have identical "Application data" as found in the message body of the
            # Ping frame being replied to."
            # After our own Close a pong is still allowed: it is not a data frame.
            self._output += _frame(PONG, payload)
            events.append(Ping(payload))
        elif opcode == PONG:
            # RFC 6455 §5.5.3: "A Pong frame MAY be sent unsolicited. ... A response
            # to an unsolicited Pong frame is not expected."
            events.append(Pong(payload))
        else:
            events.append(self._close_received(payload))

    # -- the closing handshake (RFC 6455 §5.5.1, §7) ---------------------------

    def _close_received(self, payload):
        # RFC 6455 §5.5.1: "If there is a body, the first two bytes of the body MUST
        # be a 2-byte unsigned integer (in network byte order) representing a status
        # code with value /code/ defined in Section 7.4.  Following the 2-byte
        # integer, the body MAY contain UTF-8-encoded data with value /reason/"
        if not payload:
            # RFC 6455 §7.1.5: "If this Close control frame contains no status code,
            # _The WebSocket Connection Close Code_ is considered to be 1005."
            code, reason = 1005, ""
        elif len(payload) == 1:
            raise _Fail(1002, "close frame with a one-byte body")
        else:
            (code,) = _unpack_16(payload)
            if not valid_close_code(code):
                raise _Fail(1002, f"invalid close code {code}")
            try:
                reason = payload[2:].decode("utf-8")
            except UnicodeDecodeError:
                raise _Fail(1007, "invalid UTF-8 in the close reason") from None
        if self._state is _OPEN:
            # RFC 6455 §5.5.1: "If an endpoint receives a Close frame and did not
            # previously send a Close frame, the endpoint MUST send a Close frame in
            # response.  (When sending a Close frame in response, the endpoint
            # typically echos the status code it received.)"
            self._output += _frame(CLOSE, payload[:2])
        # RFC 6455 §5.5.1: "After both sending and receiving a Close message, an
        # endpoint considers the WebSocket connection closed and MUST close the
        # underlying TCP connection.  The server MUST close the underlying TCP
        # connection immediately"
        self._state = _CLOSED
        self._fragments = []
        return CloseReceived(code, reason)

    def _fail(self, code, reason):
        # RFC 6455 §7.1.7: "If _The WebSocket Connection is Established_ prior to
        # the point where the endpoint is required to _Fail the WebSocket
        # Connection_, the endpoint SHOULD send a Close frame with an appropriate
        # status code (Section 7.4) before proceeding to _Close the WebSocket
        # Connection_."
        if self._state is _OPEN:
            self._output += _close_frame(code, reason)
        self._state = _CLOSED
        self._fragments = []
        return Failed(code, reason)

    def connection_lost(self):
        """The TCP connection is gone (by either side): no more bytes either way."""
        self._state = _CLOSED
        self._buffer = bytearray()
        self._fragments = []

    # -- the sending side -------------------------------------------------------

    def send(self, data):
        """The frame of one message: str is sent as text, bytes as binary.

        RFC 6455 §5.1: "A server MUST NOT mask any frames that it sends to the
        client."
        """
        if self._state is not _OPEN:
            raise LocalProtocolError("send() after the closing handshake started")
        if isinstance(data, str):
            return _frame(TEXT, data.encode("utf-8"))
        return _frame(BINARY, data)

    def ping(self, payload=b""):
        if self._state is not _OPEN:
            raise LocalProtocolError("ping() after the closing handshake started")
        if len(payload) > 125:
            raise LocalProtocolError("a ping payload is at most 125 bytes")
        return _frame(PING, payload)

    def close(self, code=1000, reason=""):
        """Start the closing handshake; the peer's Close will come as CloseReceived.
        Closing again, or after the peer's Close, gives b""."""
        if self._state is not _OPEN:
            return b""
        if not valid_close_code(code):
            raise LocalProtocolError(f"close code {code} may not be sent (RFC 6455 §7.4)")
        frame = _close_frame(code, reason)
        self._state = _CLOSING
        return frame


def _close_frame(code, reason):
    encoded = reason.encode("utf-8")
    if len(encoded) > 123:
        # RFC 6455 §5.5: "All control frames MUST have a payload length of 125 bytes
        # or less".  A reason is for debugging: cut it, on a character boundary.
        encoded = encoded[:123].decode("utf-8", "ignore").encode("utf-8")
    return _frame(CLOSE, struct.pack("!H", code) + encoded)


def _frame(opcode, payload):
    """A final, unmasked frame: RFC 6455 §5.2's header, then the payload."""
    length = len(payload)
    first = 0x80 | opcode
    if length < 126:
        header = bytes((first, length))
    elif length < 65536:
        header = struct.pack("!BBH", first, 126, length)
    else:
        header = struct.pack("!BBQ", first, 127, length)
    return header + payload
