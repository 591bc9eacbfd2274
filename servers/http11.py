"""A sans-I/O HTTP/1.1 server connection: bytes in, events out; a response in, bytes out.

This module never touches a socket. A server reads bytes from the network and hands
them to ``ServerConnection.receive``, which returns events; it hands the response to
``start_response`` / ``send_body`` / ``end_response``, which return the bytes to write.
All three servers of this project (CGI, WSGI, ASGI) share it, so the protocol rules
live in one place and the servers differ only in how they do I/O.

    conn = ServerConnection(Limits())
    for event in conn.receive(sock.recv(65536)):    # Request, Data, EndOfMessage,
        ...                                          # ConnectionClosed or Error
    sock.sendall(conn.start_response(200, [("Content-Type", "text/plain")],
                                     content_length=3))
    sock.sendall(conn.send_body(b"hi\\n") + conn.end_response())
    if conn.keep_alive:
        events = conn.next_request()                  # pipelined bytes, maybe []

The file reads in the order a request travels: limits and events, the grammar of a
request head, the head parser, body framing (Content-Length and chunked), then the
response side (status line, header checks, framing, Date).

What it leaves out, on purpose: CONNECT and protocol upgrades (Upgrade, h2c,
WebSocket) beyond handing the connection over: after the request, a server that
speaks the new protocol itself (servers/websocket.py) takes the bytes that follow
with ``switch_protocols()``. Also left out: transfer codings other than chunked
(gzip bodies get 501), responses other than one per request (no server push). A
request line, header field or chunk line is never accepted with a bare LF or bare
CR; obs-fold is refused.

Needs from the operating system: nothing: bytes in, events out, no I/O.
"""

import re
import time
from dataclasses import dataclass, field
from http import HTTPStatus

__all__ = [
    "Limits", "ServerConnection", "LocalProtocolError",
    "Request", "Data", "EndOfMessage", "ConnectionClosed", "Error",
]


# ---------------------------------------------------------------------------
# Limits and events
# ---------------------------------------------------------------------------

@dataclass
class Limits:
    """How much a client may send. Each limit maps to one status code.

    RFC 9112 §3: "A server that receives a request-target longer than any URI it
    wishes to parse MUST respond with a 414 (URI Too Long) status code".
    RFC 6585 §5: 431 "the server is unwilling to process the request because its
    header fields are too large".
    RFC 9110 §15.5.14: "The 413 (Content Too Large) status code indicates that the
    server is refusing to process a request because the request content is larger
    than the server is willing or able to process."
    """
    max_request_line: int = 8190       # longer -> 414
    max_headers: int = 100             # more field lines -> 431
    max_field_size: int = 8190         # a longer field line -> 431
    max_head_size: int = 65536         # request line + fields + CRLFs -> 431
    max_body_size: int | None = None   # larger body -> 413; None: no limit


class LocalProtocolError(ValueError):
    """Raised when the server side misuses the connection or hands it invalid
    response data (a header value with CR/LF, too many body bytes, ...)."""


@dataclass(slots=True)
class Request:
    """The request head. ``headers`` is a list of (name, value) bytes pairs, names
    lower-cased, values stripped of surrounding whitespace, order and duplicates kept."""
    method: str             # "GET"
    target: bytes           # b"/search?q=a%20b"
    path: bytes             # b"/search"
    query: bytes            # b"q=a%20b"
    http_version: str       # "1.1"
    headers: list           # [(b"host", b"example.com"), ...]
    keep_alive: bool        # the client's wish
    expect_continue: bool   # Expect: 100-continue on HTTP/1.1
    content_length: int | None  # None when chunked
    chunked: bool           # Transfer-Encoding: chunked
    raw: bytes = field(repr=False)  # the head as received, for --trace


@dataclass(slots=True)
class Data:
    """A piece of the request body, de-chunked, handed on as soon as it arrives."""
    data: bytes


@dataclass(slots=True)
class EndOfMessage:
    """The request body is complete (trailer fields, if any, were checked and dropped)."""


@dataclass(slots=True)
class ConnectionClosed:
    """The client closed the connection cleanly, between requests."""


@dataclass(slots=True)
class Error:
    """The request is malformed or over a limit. Final: answer ``status`` (with
    ``parser.error_response(status, reason)``) and close the connection."""
    status: int
    reason: str


class _Refused(Exception):
    """Internal: carries a status and reason from deep in the parser to ``receive``."""

    def __init__(self, status, reason):
        super().__init__(reason)
        self.status = status
        self.reason = reason


# ---------------------------------------------------------------------------
# The grammar of a request head (RFC 9112 §2-§5, RFC 9110 §5)
# ---------------------------------------------------------------------------

# RFC 9110 §5.6.2:  token = 1*tchar
#   tchar = "!" / "#" / "$" / "%" / "&" / "'" / "*" / "+" / "-" / "." /
#           "^" / "_" / "`" / "|" / "~" / DIGIT / ALPHA
_TCHAR = rb"[-!#$%&'*+.^_`|~0-9A-Za-z]"
_TOKEN = re.compile(_TCHAR + rb"+")

# RFC 9112 §3:  request-line = method SP request-target SP HTTP-version
#               method       = token
# RFC 9112 §2.3: HTTP-version = HTTP-name "/" DIGIT "." DIGIT
# The target is checked against its four forms below; here it is any run of
# visible characters (VCHAR, %x21-7E), which already excludes SP, controls and
# bytes above 0x7F.
_REQUEST_LINE = re.compile(
    rb"(" + _TCHAR + rb"+) ([\x21-\x7e]+) HTTP/([0-9])\.([0-9])")

# RFC 9112 §3.2:  request-target = origin-form / absolute-form
#                                  / authority-form / asterisk-form
#   origin-form   = absolute-path [ "?" query ]
#   absolute-form = absolute-URI   (RFC 3986 §4.3: scheme ":" hier-part [ "?" query ])
# RFC 3986 §3.3-3.4: a path and a query are made of pchar (unreserved, sub-delims,
# ":", "@", pct-encoded) plus "/" and "?": no "#", no quotes, no "<>\^`{|}".
_URI_CHARS = rb"[-A-Za-z0-9._~!$&'()*+,;=:@/?%]"
_ORIGIN_FORM = re.compile(rb"/" + _URI_CHARS + rb"*")
# RFC 9110 §7.2:  Host = uri-host [ ":" port ]
#   uri-host = IP-literal / IPv4address / reg-name   (RFC 3986 §3.2.2)
#   reg-name = *( unreserved / pct-encoded / sub-delims );  port = *DIGIT
# The same shape is the authority of an http(s) URI, where RFC 9110 §4.2.4 says
# "A sender MUST NOT generate the userinfo subcomponent (and its "@" delimiter)".
_HOST_PORT = rb"(?:\[[0-9A-Fa-f:.]+\]|[-A-Za-z0-9._~!$&'()*+,;=%]*)(?::[0-9]*)?"
_HOST = re.compile(_HOST_PORT)
# RFC 9110 §4.2.1:  http-URI = "http" "://" authority path-abempty [ "?" query ]
_ABSOLUTE_FORM = re.compile(
    rb"(?i:https?)://" + _HOST_PORT
    + rb"(/" + _URI_CHARS + rb"*|\?" + _URI_CHARS + rb"*|)")
# What can never appear in a request line: controls and bytes above 0x7E, and a CR
# that the byte after it shows to be bare (a CR may begin the CRLF that ends the line).
_NOT_IN_REQUEST_LINE = re.compile(rb"[^\x20-\x7e\r]|\r[^\n]")
# RFC 3986 §2.1:  pct-encoded = "%" HEXDIG HEXDIG
_BAD_PERCENT = re.compile(rb"%(?![0-9A-Fa-f]{2})")

# RFC 9110 §5.5:  field-value = *field-content, built of VCHAR, obs-text
# (%x80-FF), SP and HTAB.  "Field values containing CR, LF, or NUL characters are
# invalid and dangerous ... a recipient of CR, LF, or NUL within a field value MUST
# either reject the message or replace each of those characters with SP".  We
# reject, and also reject the other controls (%x00-08, %x0A-1F, %x7F).  CR and
# LF are checked separately: in a head they are legal only as a CRLF pair.
_CONTROL_IN_HEAD = re.compile(rb"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_CONTROL_IN_VALUE = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")

# A head that is still incomplete but already holds a line ended by a bare LF:
# a lenient parser elsewhere would see the end of the head here, so we refuse now.
_LENIENT_HEAD_END = re.compile(rb"\n\r?\n")

# RFC 9112 §7.1:  chunk-size = 1*HEXDIG
#   chunk-ext      = *( BWS ";" BWS chunk-ext-name [ BWS "=" BWS chunk-ext-val ] )
#   chunk-ext-name = token;  chunk-ext-val = token / quoted-string
# Sixteen hex digits is 16 EiB: more digits are refused, not summed into a bignum.
_QUOTED_STRING = rb'"(?:[\t !#-\[\]-~\x80-\xff]|\\[\t -~\x80-\xff])*"'
_CHUNK_LINE = re.compile(
    rb"([0-9A-Fa-f]{1,16})"
    rb"(?:[ \t]*;[ \t]*" + _TCHAR + rb"+(?:[ \t]*=[ \t]*(?:" + _TCHAR + rb"+|"
    + _QUOTED_STRING + rb"))?)*")
_MAX_CHUNK_LINE = 4096

_HEADER_END = b"\r\n\r\n"


# ---------------------------------------------------------------------------
# The connection: request side
# ---------------------------------------------------------------------------

# The states of the request being read.
_HEAD = "head"            # waiting for a complete request head
_BODY = "body"            # reading a Content-Length body
_CHUNK_SIZE = "chunk-size"
_CHUNK_DATA = "chunk-data"
_CHUNK_END = "chunk-end"  # the CRLF after a chunk's data
_TRAILERS = "trailers"
_DONE = "done"            # EndOfMessage given; later bytes wait for next_request()
_CLOSED = "closed"        # ConnectionClosed or Error given: nothing more

# The states of the response to the current request.
_NOT_STARTED = "not started"    # start_response() (or error_response()) comes next
_SENDING_BODY = "sending body"  # send_body() as often as needed, then end_response()
_COMPLETE = "complete"          # the response is whole; next_request() may follow


class ServerConnection:
    """One per TCP connection: parses requests one after another and frames the
    response to each. Not thread-safe; one task or thread drives it."""

    def __init__(self, limits=None, *, server_header=b"servers.http11"):
        self.limits = limits or Limits()
        self._server_header = _as_bytes(server_header)
        self._buffer = bytearray()
        self._scanned = 0          # how far the head terminator search has looked
        self._eof = False
        self._state = _HEAD
        self._request = None
        self._remaining = 0        # body bytes left in this body or chunk
        self._body_size = 0
        self._trailer_size = 0
        self._trailer_count = 0
        self._reset_response()

    def _reset_response(self):
        self._response = _NOT_STARTED
        self._sent_continue = False
        self._body_framing = None  # "none", "length", "chunked" or "close"
        self._to_send = 0
        self._close_after = False  # the response said Connection: close

    # -- feeding bytes -------------------------------------------------------

    def receive(self, data):
        """Feed the bytes just read (b"" means the peer closed); return the events
        of the current request that these bytes complete."""
        state = self._state
        if state is _CLOSED:
            return []
        if data:
            self._buffer += data
        else:
            self._eof = True
        if state is _DONE:
            self._bound_pipelined_bytes()
            return []
        return self._parse()

    def next_request(self):
        """Start the next request on a kept-alive connection; return the events of
        any bytes the client already pipelined (maybe [])."""
        if self._state is not _DONE or self._response is not _COMPLETE:
            raise LocalProtocolError("next_request() before this request and its response ended")
        if not self.keep_alive:
            raise LocalProtocolError("next_request() on a connection that is not kept alive")
        self._state = _HEAD
        self._request = None
        self._scanned = 0
        self._reset_response()
        return self._parse()

    @property
    def paused(self):
        """True from EndOfMessage until next_request(): received bytes are only
        buffered. A server may stop reading meanwhile (TCP back-pressure)."""
        return self._state is _DONE

    def switch_protocols(self):
        """The connection leaves HTTP (a WebSocket after its 101): return the bytes
        received after the request, and parse nothing more."""
        if self._state is not _DONE:
            raise LocalProtocolError("switch_protocols() before the request ended")
        self._state = _CLOSED
        leftover = bytes(self._buffer)
        self._buffer.clear()
        return leftover

    def _bound_pipelined_bytes(self):
        # While the response is being produced, a client may pipeline more.  One
        # head's worth is kept; beyond that the bytes are dropped and the
        # connection is marked to close after this response, so memory stays bounded.
        if len(self._buffer) > self.limits.max_head_size:
            self._buffer.clear()
            self._close_after = True

    def _parse(self):
        """Run the request state machine over the buffer for as long as it moves."""
        events = []
        try:
            while True:
                state = self._state
                if state is _HEAD:
                    progress = self._read_head(events)
                elif state is _BODY:
                    progress = self._read_body(events)
                elif state is _CHUNK_SIZE:
                    progress = self._read_chunk_size()
                elif state is _CHUNK_DATA:
                    progress = self._read_chunk_data(events)
                elif state is _CHUNK_END:
                    progress = self._read_chunk_end()
                elif state is _TRAILERS:
                    progress = self._read_trailers(events)
                else:
                    return events
                if not progress:
                    if self._eof:
                        events.append(self._at_eof())
                    return events
        except _Refused as refused:
            self._state = _CLOSED
            self._buffer.clear()
            events.append(Error(refused.status, refused.reason))
            return events

    def _at_eof(self):
        self._state = _CLOSED
        if self._request is None and not self._buffer:
            return ConnectionClosed()
        self._buffer.clear()
        return Error(400, "connection closed in the middle of a request")

    # -- the request head ----------------------------------------------------

    def _read_head(self, events):
        buffer = self._buffer
        if not buffer:              # the usual state after a response: nothing yet
            return False
        # RFC 9112 §2.2: "a server that is expecting to receive and parse a
        # request-line SHOULD ignore at least one empty line (CRLF) received prior
        # to the request-line."
        while buffer[:2] == b"\r\n":
            del buffer[:2]
        end = buffer.find(_HEADER_END, self._scanned)
        if end < 0:
            self._check_incomplete_head()
            return False
        head = bytes(buffer[:end])
        del buffer[:end + 4]
        self._scanned = 0
        self._parse_head(head, events)
        return True

    def _check_incomplete_head(self):
        """Refuse early what no later byte could make valid, so that a client
        sending garbage (a TLS handshake, say) gets its answer without a timeout."""
        buffer = self._buffer
        limits = self.limits
        scanned = self._scanned
        first_line_end = buffer.find(b"\r\n")
        if first_line_end < 0:
            # A CR at the end may begin the CRLF: it is not yet part of the line.
            self._judge_request_line_start(buffer, max(0, scanned - 1), len(buffer),
                                           len(buffer) - buffer.endswith(b"\r"))
        elif scanned <= first_line_end:
            # The request line just became complete: judge it now.
            if first_line_end > limits.max_request_line:
                self._judge_request_line_start(buffer, max(0, scanned - 1),
                                               first_line_end + 2, first_line_end)
            self._parse_request_line(bytes(buffer[:first_line_end]))
        if _LENIENT_HEAD_END.search(buffer, max(0, scanned - 2)):
            raise _Refused(400, "bare LF in the request head")
        if len(buffer) > limits.max_head_size:
            raise _Refused(431, "request head too large")
        self._scanned = max(0, len(buffer) - 3)

    def _judge_request_line_start(self, data, start, stop, line_length):
        """Refuse a request line (in data[:stop], its CRLF included once it has come)
        by its first max_request_line bytes and the byte after them: a byte that
        cannot be in a request line is 400, else a longer line is 414.  Judged on
        the same bytes whether the line came in one read or many (the fuzzer of
        scripts/fuzz.py found a long line with a bad byte getting 414 in one read
        and 400 in two)."""
        limit = self.limits.max_request_line
        if _NOT_IN_REQUEST_LINE.search(data, start, min(stop, limit + 1)):
            raise _Refused(400, "malformed request line")
        if line_length > limit:
            raise _Refused(414, "request line too long")

    def _parse_head(self, head, events):
        limits = self.limits
        lines = head.split(b"\r\n")
        # The request line is judged first, here as in _check_incomplete_head,
        # so the verdict does not depend on how the bytes were split into reads.
        request_line = lines[0]
        if len(request_line) > limits.max_request_line:
            self._judge_request_line_start(request_line + b"\r\n", 0, len(request_line) + 2,
                                           len(request_line))
        method, target, path, query, version = self._parse_request_line(request_line)
        # Then a bare LF that could end the head, then the size: the order in which
        # _check_incomplete_head judges a head still arriving, where a bare LF shows
        # before the head is whole (the fuzzer found 400 in several reads against 431
        # in one, for a bare LF followed by too many fields). A bare LF at the very end
        # meets the CR of the CRLF after it there: b"\n" + b"\r\n".
        if _LENIENT_HEAD_END.search(head) or head.endswith(b"\n"):
            raise _Refused(400, "bare LF in the request head")
        if len(head) > limits.max_head_size:
            raise _Refused(431, "request head too large")
        if len(lines) - 1 > limits.max_headers:
            raise _Refused(431, "too many header fields")
        if len(lines) > 1 and max(map(len, lines[1:])) > limits.max_field_size:
            raise _Refused(431, "header field too large")
        # RFC 9112 §2.2: "A recipient of such a bare CR MUST consider that element
        # to be invalid or replace each bare CR with SP".  And: "a recipient MAY
        # recognize a single LF as a line terminator"; we do not, so that no
        # other parser can see a line end we do not see.  After splitting on
        # CRLF, any CR or LF left over is bare.
        if _CONTROL_IN_HEAD.search(head):
            raise _Refused(400, "control character in the request head")
        crlf_count = len(lines) - 1
        if head.count(b"\r") != crlf_count or head.count(b"\n") != crlf_count:
            raise _Refused(400, "bare CR or LF in the request head")
        headers = self._parse_fields(lines)
        events.append(self._head_to_request(method, target, path, query, version,
                                            headers, head))
        if self._state is _DONE:
            events.append(EndOfMessage())

    def _parse_request_line(self, line):
        match = _REQUEST_LINE.fullmatch(line)
        if match is None:
            raise _Refused(400, "malformed request line")
        method, target, major, minor = match.groups()
        # RFC 9110 §6.2: "A recipient that receives a message with a major version
        # number that it implements and a minor version number higher than what it
        # implements SHOULD process the message as if it were in the highest minor
        # version within that major version".
        # RFC 9110 §15.6.6: "The 505 (HTTP Version Not Supported) status code
        # indicates that the server does not support, or refuses to support, the
        # major version of HTTP that was used in the request message."
        if major != b"1":
            raise _Refused(505, "HTTP version not supported")
        version = "1.0" if minor == b"0" else "1.1"
        method = method.decode("ascii")

        if target.startswith(b"/"):  # origin-form, the usual case
            if not _ORIGIN_FORM.fullmatch(target):
                raise _Refused(400, "invalid character in the request target")
            path, _, query = target.partition(b"?")
        elif target == b"*":
            # RFC 9112 §3.2.4: "The asterisk-form of request-target is only used
            # for a server-wide OPTIONS request".
            if method != "OPTIONS":
                raise _Refused(400, "request target * is only for OPTIONS")
            path, query = b"*", b""
        elif method == "CONNECT":
            # RFC 9112 §3.2.3: "The authority-form of request-target is only used
            # for CONNECT requests"; this server is no tunnel.
            raise _Refused(501, "CONNECT is not supported")
        else:
            # RFC 9112 §3.2.2: "A server MUST accept the absolute-form in requests"; the
            # path and query are taken from it.
            match = _ABSOLUTE_FORM.fullmatch(target)
            if match is None:
                raise _Refused(400, "invalid request target")
            path, _, query = match.group(1).partition(b"?")
            path = path or b"/"
        if b"%" in target and _BAD_PERCENT.search(target):
            raise _Refused(400, "invalid percent-encoding in the request target")
        return method, target, path, query, version

    def _parse_fields(self, lines):
        """Turn "name: value" lines into (lower-case name, value) pairs."""
        headers = []
        for line in lines[1:]:
            name, colon, value = line.partition(b":")
            # RFC 9112 §5.1: "No whitespace is allowed between the field name and
            # colon. ... A server MUST reject, with a response status code of 400
            # (Bad Request), any received request message that contains whitespace
            # between a header field name and colon."
            # RFC 9112 §5.2: "A server that receives an obs-fold in a request
            # message that is not within a ... container MUST either reject the
            # message by sending a 400 (Bad Request) ... or replace each received
            # obs-fold with one or more SP octets".  We reject.
            if not colon or not _TOKEN.fullmatch(name):
                raise _Refused(400, _field_line_problem(line))
            # RFC 9112 §5.1: field-line = field-name ":" OWS field-value OWS
            headers.append((name.lower(), value.strip(b" \t")))
        return headers

    def _head_to_request(self, method, target, path, query, version, headers, head):
        """Apply the rules that depend on header fields: Host, framing, keep-alive."""
        host_count = 0
        content_lengths = []
        codings = None
        connection = b""
        expect = b""
        for name, value in headers:
            if name not in _FIELDS_READ_BY_THE_PARSER:
                continue
            if name == b"host":
                host_count += 1
                host = value
            elif name == b"content-length":
                content_lengths.append(value)
            elif name == b"transfer-encoding":
                codings = value if codings is None else codings + b"," + value
            elif name == b"connection":
                connection = connection + b"," + value if connection else value
            elif name == b"expect":
                expect = value

        # RFC 9112 §3.2: "A server MUST respond with a 400 (Bad Request) status code
        # to any HTTP/1.1 request message that lacks a Host header field and to any
        # request message that contains more than one Host header field line or a
        # Host header field with an invalid field value."
        if host_count > 1:
            raise _Refused(400, "more than one Host header field")
        if host_count == 1:
            if not _HOST.fullmatch(host):
                raise _Refused(400, "invalid Host header field")
        elif version == "1.1":
            raise _Refused(400, "missing Host header field")

        chunked = False
        content_length = 0
        if codings is not None:
            # RFC 9112 §6.1: "A server or client that receives an HTTP/1.0 message
            # containing a Transfer-Encoding header field MUST treat the message as
            # if the framing is faulty".
            if version == "1.0":
                raise _Refused(400, "Transfer-Encoding in an HTTP/1.0 request")
            # RFC 9112 §6.3: "If a message is received with both a
            # Transfer-Encoding and a Content-Length header field, the
            # Transfer-Encoding overrides the Content-Length. Such a message might
            # indicate an attempt to perform request smuggling ... and ought to be
            # handled as an error."
            # RFC 9112 §6.1: "A server MAY reject a request that contains both
            # Content-Length and Transfer-Encoding or process such a request in
            # accordance with the Transfer-Encoding alone."  We reject it.
            if content_lengths:
                raise _Refused(400, "both Content-Length and Transfer-Encoding")
            _check_transfer_codings(codings)
            chunked = True
            content_length = None
        elif content_lengths:
            content_length = _parse_content_length(content_lengths)
            limit = self.limits.max_body_size
            if limit is not None and content_length > limit:
                raise _Refused(413, "request body too large")
        # RFC 9112 §6.3: "If this is a request message and none of the above are
        # true, then the message body length is zero".

        # RFC 9112 §9.3: "If the "close" connection option is present ..., the
        # connection will not persist after the current response; else, If the
        # received protocol is HTTP/1.1 (or later), the connection will persist
        # ...; else, If the received protocol is HTTP/1.0, the "keep-alive"
        # connection option is present, ... the connection will persist".
        options = _lowered_list(connection) if connection else ()
        if version == "1.1":
            keep_alive = b"close" not in options
        else:
            keep_alive = b"keep-alive" in options and b"close" not in options
        # RFC 9110 §10.1.1: "A server that receives a 100-continue expectation in
        # an HTTP/1.0 request MUST ignore that expectation."
        expect_continue = version == "1.1" and expect.lower() == b"100-continue"

        request = Request(method, target, path, query, version, headers, keep_alive,
                          expect_continue, content_length, chunked, head + _HEADER_END)
        self._request = request
        self._body_size = 0
        if chunked:
            self._state = _CHUNK_SIZE
        elif content_length:
            self._state = _BODY
            self._remaining = content_length
        else:
            self._state = _DONE
        return request

    # -- the body: Content-Length (RFC 9112 §6.2) -----------------------------

    def _take_body_bytes(self):
        """What has arrived of the current body part, at most self._remaining bytes.

        Body bytes are handed on as they come, never collected: memory per
        connection stays bounded however large the body is.
        """
        buffer = self._buffer
        remaining = self._remaining
        if len(buffer) <= remaining:
            data = bytes(buffer)
            buffer.clear()
        else:
            data = bytes(buffer[:remaining])
            del buffer[:remaining]
        self._remaining = remaining - len(data)
        return data

    def _read_body(self, events):
        if not self._buffer:
            return False
        events.append(Data(self._take_body_bytes()))
        if self._remaining == 0:
            self._state = _DONE
            events.append(EndOfMessage())
        return True

    # -- the body: chunked (RFC 9112 §7.1) ------------------------------------
    #   chunked-body = *chunk last-chunk trailer-section CRLF
    #   chunk        = chunk-size [ chunk-ext ] CRLF chunk-data CRLF
    #   last-chunk   = 1*("0") [ chunk-ext ] CRLF

    def _read_line(self, limit, what):
        """Take one CRLF-terminated line from the buffer, or None if incomplete."""
        buffer = self._buffer
        end = buffer.find(b"\r\n", 0, limit + 2)
        if end < 0:
            if b"\n" in buffer[:limit + 2]:
                raise _Refused(400, f"bare LF in {what}")
            if len(buffer) > limit:
                raise _Refused(400 if what == "a chunk line" else 431, f"{what} too long")
            return None
        line = bytes(buffer[:end])
        del buffer[:end + 2]
        return line

    def _read_chunk_size(self):
        line = self._read_line(_MAX_CHUNK_LINE, "a chunk line")
        if line is None:
            return False
        match = _CHUNK_LINE.fullmatch(line)
        if match is None:
            raise _Refused(400, "invalid chunk size line")
        # Chunk extensions are checked above and otherwise ignored: RFC 9112 §7.1.1
        # "A recipient MUST ignore unrecognized chunk extensions."
        size = int(match.group(1), 16)
        if size == 0:
            self._state = _TRAILERS
            self._trailer_size = 0
            self._trailer_count = 0
            return True
        self._body_size += size
        limit = self.limits.max_body_size
        if limit is not None and self._body_size > limit:
            raise _Refused(413, "request body too large")
        self._remaining = size
        self._state = _CHUNK_DATA
        return True

    def _read_chunk_data(self, events):
        if not self._buffer:
            return False
        data = self._take_body_bytes()
        if self._remaining == 0:
            self._state = _CHUNK_END
        events.append(Data(data))
        return True

    def _read_chunk_end(self):
        buffer = self._buffer
        if len(buffer) < 2:
            if buffer and buffer[:1] != b"\r":
                raise _Refused(400, "chunk data not followed by CRLF")
            return False
        if buffer[:2] != b"\r\n":
            raise _Refused(400, "chunk data not followed by CRLF")
        del buffer[:2]
        self._state = _CHUNK_SIZE
        return True

    def _read_trailers(self, events):
        # RFC 9112 §7.1.2: trailer-section = *( field-line CRLF ).  Trailer
        # fields are checked like header fields and then dropped: "A recipient
        # that removes the chunked coding from a message MAY selectively retain or
        # discard the received trailer fields."
        limits = self.limits
        while True:
            line = self._read_line(limits.max_field_size, "a trailer field")
            if line is None:
                return False
            if not line:
                self._state = _DONE
                events.append(EndOfMessage())
                return True
            self._trailer_count += 1
            self._trailer_size += len(line) + 2
            if (self._trailer_count > limits.max_headers
                    or self._trailer_size > limits.max_head_size):
                raise _Refused(431, "trailer section too large")
            if _CONTROL_IN_VALUE.search(line):
                raise _Refused(400, "control character in a trailer field")
            name, colon, _ = line.partition(b":")
            if not colon or not _TOKEN.fullmatch(name):
                raise _Refused(400, _field_line_problem(line))
            # RFC 9110 §6.5.1: "A sender MUST NOT generate a trailer field unless
            # the sender knows the corresponding header field name's definition
            # permits the field to be sent in trailers"; framing and routing
            # fields never are.
            if name.lower() in _FORBIDDEN_TRAILERS:
                raise _Refused(400, f"{name.decode('ascii')} is not allowed in trailers")


    # -- the response ---------------------------------------------------------

    def send_continue(self):
        """The interim "100 Continue" response, once, when the client asked for it.

        RFC 9110 §10.1.1: "A server MAY omit sending a 100 (Continue) response if
        it has already received some or all of the content for the corresponding
        request, or if the framing indicates that there is no content."
        RFC 9110 §10.1.1: "Upon receiving an HTTP/1.1 (or later) request that has a
        method, target URI, and complete header section that contains a
        100-continue expectation and an indication that request content will
        follow, an origin server MUST send either: an immediate response with a
        final status code, if that status can be determined by examining just the
        method, target URI, and header fields, or an immediate 100 (Continue)
        response to encourage the client to send the request content."
        Here the application decides which: a server calls this when the
        application first reads the body (or, spooling a chunked body, before
        calling it), and an application that answers without reading sends its
        final status instead, so a client is not asked for a body nobody reads.
        """
        request = self._request
        if (request is None or not request.expect_continue or self._sent_continue
                or self._response is not _NOT_STARTED):
            return b""
        self._sent_continue = True
        return b"HTTP/1.1 100 Continue\r\n\r\n"

    def start_response(self, status, headers, *, content_length=None, reason=None):
        """Serialize the status line and header section of the response.

        ``headers`` is a list of (name, value), str (latin-1) or bytes.  Every
        name and value is checked before anything is produced, so an invalid
        header raises LocalProtocolError and nothing of it reaches the wire.
        A 1xx status gives an interim response; the final one follows.
        """
        request = self._request
        if request is None:
            raise LocalProtocolError("start_response() before a request was received")
        if self._response is not _NOT_STARTED:
            raise LocalProtocolError("start_response() called twice")
        if type(status) is not int or not 100 <= status <= 599:
            raise LocalProtocolError(f"invalid status code {status!r}")
        status_line = _status_line(status, reason)
        if status < 200:
            if status == 101:
                raise LocalProtocolError("101 Switching Protocols is not supported")
            return status_line + b"".join(
                name + b": " + value + b"\r\n" for name, value in _checked(headers)) + b"\r\n"

        lines = [status_line]
        has_date = has_server = False
        length_header = None
        close_requested = self._close_after
        for name, value in _checked(headers):
            lowered = name.lower()
            if lowered == b"content-length":
                if not value.isdigit() or not value.isascii() or length_header not in (None, value):
                    raise LocalProtocolError(f"invalid Content-Length {value!r}")
                # Written once, below, after the framing is decided.
                length_header = value
                continue
            elif lowered == b"transfer-encoding":
                # Framing is this module's job: the body is framed below.
                continue
            elif lowered == b"connection":
                # Connection is hop-by-hop (RFC 9110 §7.6.1); it is written below.
                close_requested = close_requested or b"close" in _lowered_list(value)
                continue
            elif lowered == b"date":
                has_date = True
            elif lowered == b"server":
                has_server = True
            lines.append(name + b": " + value + b"\r\n")
        if length_header is None and content_length is not None:
            if type(content_length) is not int or content_length < 0:
                raise LocalProtocolError(f"invalid content_length {content_length!r}")
            length_header = b"%d" % content_length

        # RFC 9112 §6.3: "Any response to a HEAD request and any response with a
        # 1xx (Informational), 204 (No Content), or 304 (Not Modified) status code
        # is always terminated by the first empty line after the header fields".
        if request.method == "HEAD" or status in (204, 304):
            framing = "none"
            if status == 204:
                # RFC 9110 §8.6: "A server MUST NOT send a Content-Length header
                # field in any response with a status code of 1xx ... or 204".
                length_header = None
        elif length_header is not None:
            framing = "length"
        elif request.http_version == "1.1":
            framing = "chunked"
        else:
            # RFC 9112 §6.3: "Otherwise, this is a response message without a
            # declared message body length, so the message body length is
            # determined by the number of octets received prior to the server
            # closing the connection."
            framing = "close"
        if length_header is not None:
            lines.append(b"Content-Length: " + length_header + b"\r\n")
        if framing == "chunked":
            lines.append(b"Transfer-Encoding: chunked\r\n")

        # RFC 9110 §6.6.1: "An origin server with a clock ... MUST generate a Date
        # header field" in 2xx, 3xx and 4xx responses (and MAY in others).
        if not has_date:
            lines.append(_date_header())
        if not has_server:
            lines.append(b"Server: " + self._server_header + b"\r\n")

        self._close_after = close_requested or framing == "close" or not request.keep_alive
        if self._close_after:
            # RFC 9112 §9.6: "A server that sends a "close" connection option MUST
            # initiate closure of the connection ... after it sends the response".
            lines.append(b"Connection: close\r\n")
        elif request.http_version == "1.0":
            lines.append(b"Connection: keep-alive\r\n")
        lines.append(b"\r\n")

        self._response = _SENDING_BODY
        self._body_framing = framing
        self._to_send = int(length_header) if framing == "length" else 0
        return b"".join(lines)

    def send_body(self, data):
        """Frame one piece of the response body."""
        if self._response is not _SENDING_BODY:
            raise LocalProtocolError("send_body() outside of a response")
        if not data:
            return b""
        framing = self._body_framing
        if framing == "chunked":
            # RFC 9112 §7.1: chunk = chunk-size [ chunk-ext ] CRLF chunk-data CRLF
            return b"%x\r\n%s\r\n" % (len(data), data)
        if framing == "length":
            if len(data) > self._to_send:
                raise LocalProtocolError("response body longer than its Content-Length")
            self._to_send -= len(data)
            return bytes(data)
        if framing == "close":
            return bytes(data)
        # HEAD, 204 and 304: the body, if the application produced one, is dropped.
        return b""

    def end_response(self):
        """Finish the response; returns the last-chunk for a chunked body."""
        if self._response is not _SENDING_BODY:
            raise LocalProtocolError("end_response() outside of a response")
        self._response = _COMPLETE
        if self._body_framing == "length" and self._to_send:
            # The connection must close: the client would wait for the missing bytes.
            self._close_after = True
            raise LocalProtocolError("response body shorter than its Content-Length")
        if self._body_framing == "chunked":
            # RFC 9112 §7.1: last-chunk = 1*("0") [ chunk-ext ] CRLF, then the
            # (empty) trailer section and CRLF.
            return b"0\r\n\r\n"
        return b""

    @property
    def keep_alive(self):
        """May this connection serve another request once the response is complete?"""
        request = self._request
        return (request is not None and request.keep_alive and not self._close_after
                and self._state is _DONE)

    def error_response(self, status, reason):
        """A complete text/plain error response with Connection: close.  For an
        Error event, or when the application fails before its response started."""
        if self._response is not _NOT_STARTED:
            raise LocalProtocolError("error_response() after the response started")
        if type(status) is not int or not 400 <= status <= 599:
            raise LocalProtocolError(f"error_response() needs a 4xx or 5xx status, not {status!r}")
        body = reason.encode("utf-8", "replace") + b"\n"
        if b"\r" in body or b"\n" in body[:-1]:
            raise LocalProtocolError("the reason must be one line")
        self._response = _COMPLETE
        self._close_after = True
        self._state = _CLOSED
        head_only = self._request is not None and self._request.method == "HEAD"
        return b"".join([
            _status_line(status, None),
            b"Content-Type: text/plain; charset=utf-8\r\n",
            b"Content-Length: %d\r\n" % len(body),
            _date_header(),
            b"Server: " + self._server_header + b"\r\n",
            b"Connection: close\r\n\r\n",
            b"" if head_only else body,
        ])


_FIELDS_READ_BY_THE_PARSER = frozenset(
    [b"host", b"content-length", b"transfer-encoding", b"connection", b"expect"])
_FORBIDDEN_TRAILERS = frozenset([b"content-length", b"transfer-encoding", b"host"])


def _field_line_problem(line):
    """Name what is wrong with a field line that failed the fast check."""
    if line[:1] in (b" ", b"\t"):
        return "obs-fold (line folding) is not allowed"
    name, colon, _ = line.partition(b":")
    if not colon:
        return "header field line without a colon"
    if not name:
        return "empty header field name"
    if name.rstrip(b" \t") != name:
        return "whitespace before the colon of a header field"
    return "invalid character in a header field name"


def _lowered_list(value):
    """RFC 9110 §5.6.1 comma-separated list, elements stripped and lower-cased."""
    return [element.strip(b" \t").lower() for element in value.split(b",")]


def _check_transfer_codings(codings):
    # RFC 9112 §6.1: "If any transfer coding other than chunked is applied to a
    # request's content, the sender MUST apply chunked as the final transfer
    # coding"; §6.3: "If a Transfer-Encoding header field is present in a request
    # and the chunked transfer coding is not the final encoding, the message body
    # length cannot be determined reliably; the server MUST respond with the 400
    # (Bad Request) status code".  §6.1: "A server that receives a request message
    # with a transfer coding it does not understand SHOULD respond with 501 (Not
    # Implemented)."  Chunked is the only coding implemented here.
    names = _lowered_list(codings)
    for name in names:
        if not _TOKEN.fullmatch(name):
            raise _Refused(400, "malformed Transfer-Encoding")
    if names[-1] != b"chunked" or names.count(b"chunked") > 1:
        raise _Refused(400, "chunked must be the final transfer coding, once")
    if len(names) > 1:
        raise _Refused(501, "transfer coding not implemented")


def _parse_content_length(values):
    # The syntax is RFC 9110 §8.6's Content-Length = 1*DIGIT.
    # RFC 9112 §6.3: "If a message is received without Transfer-Encoding and with
    # an invalid Content-Length header field, then the message framing is invalid
    # and the recipient MUST treat it as an unrecoverable error, unless the field
    # value can be successfully parsed as a comma-separated list ..., all values in
    # the list are valid, and all values in the list are the same ... If the
    # unrecoverable error is in a request message, the server MUST respond with a
    # 400 (Bad Request) status code and then close the connection."
    # We use less of that leeway: a list in one line ("5, 5") is refused, as are
    # differing lines; identical repeated lines (which some proxies produce) count
    # as one value.
    value = values[0]
    if not value.isdigit() or not value.isascii() or any(other != value for other in values):
        raise _Refused(400, "invalid Content-Length")
    # RFC 9110 §8.6: "a recipient MUST anticipate potentially large decimal
    # numerals and prevent parsing errors due to integer conversion overflows".
    if len(value) > 18:
        raise _Refused(413, "request body too large")
    return int(value)


# ---------------------------------------------------------------------------
# Response helpers: status line, header checks, Date
# ---------------------------------------------------------------------------

# RFC 9112 §4:  status-line = HTTP-version SP status-code SP [ reason-phrase ]
_STATUS_LINES = {
    status.value: b"HTTP/1.1 %d %s\r\n" % (status.value, status.phrase.encode("ascii"))
    for status in HTTPStatus
}


def _status_line(status, reason):
    if reason is None:
        line = _STATUS_LINES.get(status)
        if line is not None:
            return line
        reason = b""
    reason = _as_bytes(reason)
    # RFC 9112 §4: reason-phrase = 1*( HTAB / SP / VCHAR / obs-text )
    if _CONTROL_IN_VALUE.search(reason):
        raise LocalProtocolError(f"invalid reason phrase {reason!r}")
    return b"HTTP/1.1 %d %s\r\n" % (status, reason)


def _as_bytes(text):
    if isinstance(text, str):
        try:
            return text.encode("latin-1")
        except UnicodeEncodeError:
            raise LocalProtocolError(f"{text!r} is not latin-1") from None
    if isinstance(text, (bytes, bytearray, memoryview)):
        return bytes(text)
    raise LocalProtocolError(f"expected str or bytes, got {type(text).__name__}")


def _checked(headers):
    """The response headers as bytes pairs, every one checked before any is used.

    A field name is a token (RFC 9110 §5.1).
    RFC 9110 §5.5: "Field values containing
    CR, LF, or NUL characters are invalid and dangerous, due to the varying ways
    that implementations might parse and interpret those characters".  A value
    holding CR LF would let the application inject header fields or a whole
    response, so it raises here and the server answers 500 instead.
    """
    checked = []
    for name, value in headers:
        if type(name) is not bytes:
            name = _as_bytes(name)
        if type(value) is not bytes:
            value = _as_bytes(value)
        if not _TOKEN.fullmatch(name):
            raise LocalProtocolError(f"invalid header name {name!r}")
        if _CONTROL_IN_VALUE.search(value):
            raise LocalProtocolError(f"invalid value for header {name!r}: {value!r}")
        checked.append((name, value))
    return checked


# RFC 9110 §5.6.7:  IMF-fixdate = day-name "," SP date1 SP time-of-day SP GMT
#   e.g. "Sun, 06 Nov 1994 08:49:37 GMT".  One formatting per second is enough.
_DAY_NAMES = (b"Mon", b"Tue", b"Wed", b"Thu", b"Fri", b"Sat", b"Sun")
_MONTH_NAMES = (b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun",
                b"Jul", b"Aug", b"Sep", b"Oct", b"Nov", b"Dec")
_date_cache = (0, b"")


def _date_header():
    global _date_cache
    now = int(time.time())
    second, line = _date_cache
    if second != now:
        t = time.gmtime(now)
        line = b"Date: %s, %02d %s %04d %02d:%02d:%02d GMT\r\n" % (
            _DAY_NAMES[t.tm_wday], t.tm_mday, _MONTH_NAMES[t.tm_mon - 1], t.tm_year,
            t.tm_hour, t.tm_min, t.tm_sec)
        _date_cache = (now, line)
    return line
