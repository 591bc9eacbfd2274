"""An ASGI 3 middleware that checks both sides of the conversation against the spec.

The ASGI counterpart of `wsgiref.validate`: wrap an application in it and serve
the wrapper. Every scope, every message the server hands the application and every
message the application sends is checked against the ASGI specification (asgi.rst,
www.rst for HTTP, lifespan.rst for lifespan), and the first rule broken raises
`ASGIViolation` with the rule in the spec's words and who broke it:

    from servers.asgi_checker import checked
    application = checked(application)

What it checks:
  * the scope: its type, the asgi dict, and for "http" every key's type
    (str vs bytes, int ports, lower-case header names, an upper-case method);
  * receive(), the server's messages: only http.request or http.disconnect, body
    bytes and more_body bool, nothing but http.disconnect after the last body
    chunk or after a disconnect; for lifespan, startup first and shutdown second;
  * send(), the application's messages: http.response.start first and once, with an
    int status and a list of [bytes, bytes] headers; then http.response.body with
    bytes and a bool more_body; nothing after the response is complete; for
    lifespan, a reply only to an event received, and only once;
  * the end: an application that returns without completing its response while
    the client is still there.

  * WebSocket (www.rst "WebSocket", and the websocket.http.response extension):
    the scope's keys and types; receive() gives websocket.connect first and once,
    websocket.receive only after the accept and with exactly one of bytes/text,
    nothing but websocket.disconnect after one; send() answers the connect with
    websocket.accept, websocket.close or (only if the scope offers the extension)
    websocket.http.response.start, accepts with a subprotocol the client offered
    and no sec-websocket-protocol header, sends exactly one of bytes/text, and
    nothing after its own websocket.close or a complete denial response but a
    send() that the server makes raise OSError (spec 2.4).

What it leaves out: an exception the application raises itself propagates
unchanged (it is not a protocol violation), and so does the server's OSError when
the application sends to a WebSocket that is gone (the spec allows that race).

Needs from the operating system: nothing beyond the Python process it runs in.
"""

from __future__ import annotations

HTTP_VERSIONS = ("1.0", "1.1", "2")


class ASGIViolation(AssertionError):
    """A rule of the ASGI specification was broken, by the server or by the application."""


def checked(app, *, lowercase_response_headers: bool = True):
    """Wrap an ASGI 3 application so that every spec violation raises ASGIViolation.

    lowercase_response_headers=False accepts response header names in any case.
    ASGI HTTP spec ("Response Start"): "Header names must be lowercased." Django
    deliberately sends them as the view set them ("Content-Type"), for clients that
    depend on case.
    """
    async def checked_app(scope, receive, send):
        check_scope(scope)
        if scope["type"] == "http":
            cycle = HTTPCycle(receive, send, lowercase_response_headers)
            await app(scope, cycle.receive, cycle.send)
            cycle.check_finished()
        elif scope["type"] == "websocket":
            cycle = WebSocketCycle(scope, receive, send)
            await app(scope, cycle.receive, cycle.send)
        elif scope["type"] == "lifespan":
            lifespan = LifespanCycle(receive, send)
            await app(scope, lifespan.receive, lifespan.send)
        else:
            await app(scope, receive, send)

    return checked_app


def server_broke(rule: str) -> None:
    raise ASGIViolation(f"the server broke the ASGI spec: {rule}")


def app_broke(rule: str) -> None:
    raise ASGIViolation(f"the application broke the ASGI spec: {rule}")


def check_type(value, expected, what: str, blame) -> None:
    # bool is an int subclass; the spec's "int" never means True/False.
    if not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
        names = " or ".join(t.__name__ for t in (expected if isinstance(expected, tuple) else (expected,)))
        blame(f"{what} must be {names}, got {type(value).__name__} {value!r:.60}")


def check_address(value, what: str) -> None:
    # ASGI HTTP spec ("HTTP Connection Scope"): client and server are each a two-item
    # iterable [host, port], or None; the server's port is None on a unix socket.
    if value is None:
        return
    if not isinstance(value, (list, tuple)) or len(value) != 2:
        server_broke(f"scope[{what!r}] must be a [host, port] pair or None, got {value!r}")
    check_type(value[0], str, f"scope[{what!r}][0] (host)", server_broke)
    if not (what == "server" and value[1] is None):
        check_type(value[1], int, f"scope[{what!r}][1] (port)", server_broke)


def check_headers(headers, what: str, blame, *, lowercase: bool) -> None:
    # ASGI HTTP spec ("HTTP Connection Scope"): "``headers`` (*Iterable[[byte string,
    # byte string]]*) -- An iterable of ``[name, value]`` two-item iterables"; the
    # response's headers have the same type.
    if isinstance(headers, (bytes, str, dict)):
        blame(f"{what} must be an iterable of [name, value] pairs, got {type(headers).__name__}")
    for pair in headers:
        if not isinstance(pair, (list, tuple)) or len(pair) != 2:
            blame(f"each of {what} must be a [name, value] pair, got {pair!r:.60}")
        name, value = pair
        check_type(name, bytes, f"a header name in {what}", blame)
        check_type(value, bytes, f"the value of header {name!r} in {what}", blame)
        if lowercase and name != name.lower():
            blame(f"header names in {what} must be lowercased, got {name!r}")


def check_scope(scope) -> None:
    check_type(scope, dict, "the scope", server_broke)
    check_type(scope.get("type"), str, "scope['type']", server_broke)
    # ASGI spec ("Applications"): "The key ... will also be present as a dictionary
    # containing a ... key that corresponds to the ASGI version the server
    # implements. If missing, the version should default to ..." (2.0); a
    # single-callable (ASGI 3) application is only ever served 3.0.
    asgi = scope.get("asgi")
    check_type(asgi, dict, "scope['asgi']", server_broke)
    if asgi.get("version", "2.0") != "3.0":
        server_broke(f"scope['asgi']['version'] must be '3.0' for an ASGI 3 application, got {asgi.get('version')!r}")
    if "spec_version" in asgi:
        check_type(asgi["spec_version"], str, "scope['asgi']['spec_version']", server_broke)
    if "state" in scope:
        check_type(scope["state"], dict, "scope['state']", server_broke)
    if scope["type"] == "http":
        check_http_scope(scope)
    elif scope["type"] == "websocket":
        check_websocket_scope(scope)


def check_http_scope(scope) -> None:
    required = ("http_version", "method", "path", "query_string", "headers")
    missing = [key for key in required if key not in scope]
    if missing:
        server_broke(f"the http scope lacks the required key(s) {', '.join(missing)}")
    if scope["http_version"] not in HTTP_VERSIONS:
        server_broke(f"scope['http_version'] must be one of {HTTP_VERSIONS}, got {scope['http_version']!r}")
    check_type(scope["method"], str, "scope['method']", server_broke)
    if scope["method"] != scope["method"].upper():
        server_broke(f"scope['method'] must be uppercased, got {scope['method']!r}")
    check_request_keys(scope)


def check_request_keys(scope) -> None:
    """The keys an http and a websocket scope share, each with its type (the scope's own
    check has made sure the required ones are there)."""
    if "scheme" in scope:
        check_type(scope["scheme"], str, "scope['scheme']", server_broke)
        if not scope["scheme"]:
            server_broke("scope['scheme'] is optional but must not be empty")
    check_type(scope["path"], str, "scope['path'] (percent-decoded)", server_broke)
    if scope.get("raw_path") is not None:
        check_type(scope["raw_path"], bytes, "scope['raw_path']", server_broke)
    check_type(scope.get("query_string", b""), bytes, "scope['query_string'] (still percent-encoded)",
               server_broke)
    check_type(scope.get("root_path", ""), str, "scope['root_path']", server_broke)
    check_headers(scope["headers"], "scope['headers']", server_broke, lowercase=True)
    check_address(scope.get("client"), "client")
    check_address(scope.get("server"), "server")


def check_websocket_scope(scope) -> None:
    # ASGI WebSocket spec ("Websocket Connection Scope"): path and headers have no
    # default; query_string has one (the empty string), so a server may leave it out;
    # the rest is optional too, each with its type.
    missing = [key for key in ("path", "headers") if key not in scope]
    if missing:
        server_broke(f"the websocket scope lacks the required key(s) {', '.join(missing)}")
    if scope.get("http_version", "1.1") not in HTTP_VERSIONS:
        server_broke(f"scope['http_version'] must be one of {HTTP_VERSIONS}, got {scope['http_version']!r}")
    check_request_keys(scope)
    subprotocols = scope.get("subprotocols", [])
    if isinstance(subprotocols, (str, bytes)):
        server_broke(f"scope['subprotocols'] must be an iterable of str, got {subprotocols!r:.40}")
    for protocol in subprotocols:
        check_type(protocol, str, "each of scope['subprotocols']", server_broke)
    check_type(scope.get("extensions", {}), dict, "scope['extensions']", server_broke)


def check_message(message, blame) -> str:
    check_type(message, dict, "a message", blame)
    check_type(message.get("type"), str, "message['type']", blame)
    return message["type"]


class HTTPCycle:
    """One request/response cycle seen from the middle: wraps receive and send."""

    def __init__(self, receive, send, lowercase_response_headers: bool):
        self.inner_receive = receive
        self.inner_send = send
        self.lowercase_response_headers = lowercase_response_headers
        self.request_complete = False      # the server sent more_body=False
        self.disconnected = False          # the server sent http.disconnect
        self.response_started = False
        self.response_complete = False

    async def receive(self):
        message = await self.inner_receive()
        kind = check_message(message, server_broke)
        if kind == "http.disconnect":
            self.disconnected = True
        elif kind == "http.request":
            if self.disconnected:
                server_broke("receive() returned http.request after http.disconnect")
            if self.request_complete:
                server_broke("receive() returned http.request after the body was complete "
                             "(more_body was False); only http.disconnect may follow")
            check_type(message.get("body", b""), bytes, "http.request['body']", server_broke)
            check_type(message.get("more_body", False), bool, "http.request['more_body']", server_broke)
            self.request_complete = not message.get("more_body", False)
        else:
            server_broke(f"receive() in an http scope may return only http.request or "
                         f"http.disconnect, got {kind!r}")
        return message

    async def send(self, message):
        kind = check_message(message, app_broke)
        if self.response_complete:
            app_broke(f"sent {kind!r} after the response was complete (http.response.body with more_body False)")
        if not self.response_started:
            if kind != "http.response.start":
                app_broke(f"the first message sent must be 'http.response.start', got {kind!r}")
            check_type(message.get("status"), int, "http.response.start['status']", app_broke)
            if not 100 <= message["status"] <= 599:
                app_broke(f"http.response.start['status'] must be an HTTP status code, got {message['status']}")
            check_headers(message.get("headers", []), "http.response.start['headers']", app_broke,
                          lowercase=self.lowercase_response_headers)
            check_type(message.get("trailers", False), bool, "http.response.start['trailers']", app_broke)
            self.response_started = True
        elif kind == "http.response.start":
            app_broke("sent 'http.response.start' twice; a response has one start")
        elif kind != "http.response.body":
            app_broke(f"after http.response.start only 'http.response.body' may be sent, got {kind!r}")
        else:
            check_type(message.get("body", b""), bytes, "http.response.body['body']", app_broke)
            check_type(message.get("more_body", False), bool, "http.response.body['more_body']", app_broke)
            self.response_complete = not message.get("more_body", False)
        result = await self.inner_send(message)
        if result is not None:
            server_broke(f"send() must return None, returned {result!r:.60}")

    def check_finished(self) -> None:
        # An application may stop early once the client is gone, never otherwise.
        if self.disconnected or self.response_complete:
            return
        if not self.response_started:
            app_broke("returned without sending http.response.start")
        app_broke("returned before the response was complete (no http.response.body with more_body False)")


def check_data(message, kind: str, blame) -> None:
    # ASGI WebSocket spec ("Receive"): "Exactly one of ``bytes`` or ``text`` must be
    # non-``None``. One or both keys may be present, however." The Send event says
    # the same.
    data, text = message.get("bytes"), message.get("text")
    if (data is None) == (text is None):
        blame(f"{kind} needs exactly one of 'bytes' or 'text' that is not None")
    if data is not None:
        check_type(data, bytes, f"{kind}['bytes']", blame)
    else:
        check_type(text, str, f"{kind}['text']", blame)


class WebSocketCycle:
    """One WebSocket seen from the middle: connect, accept (or a denial), messages,
    disconnect."""

    def __init__(self, scope, receive, send):
        self.inner_receive = receive
        self.inner_send = send
        self.subprotocols = list(scope.get("subprotocols", []))
        self.denial_allowed = "websocket.http.response" in scope.get("extensions", {})
        version = scope["asgi"].get("spec_version", "2.0")
        self.spec_version = tuple(int(part) for part in version.split(".")[:2] if part.isdigit())
        self.connected = False       # websocket.connect was received
        self.state = "connecting"    # accepted, denying, closed (by the app) or over
        self.disconnected = False

    async def receive(self):
        message = await self.inner_receive()
        kind = check_message(message, server_broke)
        if kind == "websocket.connect":
            if self.connected:
                server_broke("receive() returned websocket.connect twice")
            self.connected = True
        elif not self.connected:
            server_broke(f"the first message received must be websocket.connect, got {kind!r}")
        elif kind == "websocket.disconnect":
            self.disconnected = True
            check_type(message.get("code", 1005), int, "websocket.disconnect['code']", server_broke)
            if message.get("reason") is not None:
                check_type(message["reason"], str, "websocket.disconnect['reason']", server_broke)
        elif kind == "websocket.receive":
            if self.disconnected:
                server_broke("receive() returned websocket.receive after websocket.disconnect")
            if self.state != "accepted":
                # ASGI WebSocket spec ("Connect"): "This message must be responded to
                # with either an *Accept* message or a *Close* message before the
                # socket will pass ``websocket.receive`` messages."
                server_broke("receive() returned websocket.receive before the application accepted")
            check_data(message, "websocket.receive", server_broke)
        else:
            server_broke(f"receive() in a websocket scope may return only websocket.connect, "
                         f"websocket.receive or websocket.disconnect, got {kind!r}")
        return message

    async def send(self, message):
        kind = check_message(message, app_broke)
        state = self.state
        if state == "connecting":
            if not self.connected:
                app_broke(f"sent {kind!r} before receiving websocket.connect")
            if kind == "websocket.accept":
                self.check_accept(message)
                self.state = "accepted"
            elif kind == "websocket.close":
                self.check_close(message)
                self.state = "closed"
            elif kind == "websocket.http.response.start":
                if not self.denial_allowed:
                    app_broke("sent websocket.http.response.start, but the server does not offer "
                              "the websocket.http.response extension in scope['extensions']")
                check_type(message.get("status"), int, f"{kind}['status']", app_broke)
                check_headers(message.get("headers", []), f"{kind}['headers']", app_broke, lowercase=True)
                self.state = "denying"
            else:
                app_broke(f"the answer to websocket.connect must be websocket.accept or "
                          f"websocket.close, got {kind!r}")
        elif state == "accepted":
            if kind == "websocket.send":
                check_data(message, kind, app_broke)
            elif kind == "websocket.close":
                self.check_close(message)
                self.state = "closed"
            else:
                app_broke(f"after websocket.accept only websocket.send or websocket.close may be "
                          f"sent, got {kind!r}")
        elif state == "denying":
            if kind != "websocket.http.response.body":
                # ASGI extensions ("Websocket Denial Response"): "These messages
                # cannot be followed by any other websocket messages"
                app_broke(f"after websocket.http.response.start only websocket.http.response.body "
                          f"may be sent, got {kind!r}")
            check_type(message.get("body", b""), bytes, f"{kind}['body']", app_broke)
            check_type(message.get("more_body", False), bool, f"{kind}['more_body']", app_broke)
            if not message.get("more_body", False):
                self.state = "over"
        else:
            # ASGI WebSocket spec ("Disconnected Client"): "If ``send()`` is called on
            # a closed connection the server should raise a server-specific subclass
            # of ``OSError``. ... (it was introduced in spec version 2.4)."
            await self.inner_send(message)
            if self.spec_version >= (2, 4):
                server_broke(f"send({kind!r}) on a closed WebSocket returned; from spec "
                             f"version 2.4 it should raise an OSError subclass")
            return
        result = await self.inner_send(message)
        if result is not None:
            server_broke(f"send() must return None, returned {result!r:.60}")

    def check_accept(self, message) -> None:
        subprotocol = message.get("subprotocol")
        if subprotocol is not None:
            check_type(subprotocol, str, "websocket.accept['subprotocol']", app_broke)
            if subprotocol not in self.subprotocols:
                app_broke(f"websocket.accept['subprotocol'] {subprotocol!r} is not one the client "
                          f"offered ({self.subprotocols})")
        headers = message.get("headers", [])
        check_headers(headers, "websocket.accept['headers']", app_broke, lowercase=True)
        # ASGI WebSocket spec ("Accept"): "Must not include a header named
        # ``sec-websocket-protocol``; use the ``subprotocol`` key instead."
        if any(name == b"sec-websocket-protocol" for name, _ in headers):
            app_broke("websocket.accept['headers'] must not include sec-websocket-protocol; "
                      "use the 'subprotocol' key")

    def check_close(self, message) -> None:
        check_type(message.get("code", 1000), int, "websocket.close['code']", app_broke)
        if message.get("reason") is not None:
            check_type(message["reason"], str, "websocket.close['reason']", app_broke)


class LifespanCycle:
    """ASGI lifespan spec 2.0: startup, its reply, shutdown, its reply — in that order,
    each once."""

    REPLIES = {
        "lifespan.startup": ("lifespan.startup.complete", "lifespan.startup.failed"),
        "lifespan.shutdown": ("lifespan.shutdown.complete", "lifespan.shutdown.failed"),
    }

    def __init__(self, receive, send):
        self.inner_receive = receive
        self.inner_send = send
        self.received: list[str] = []      # events the server sent, in order
        self.replied: list[str] = []       # events the application has answered

    async def receive(self):
        message = await self.inner_receive()
        kind = check_message(message, server_broke)
        expected = ("lifespan.startup", "lifespan.shutdown")[min(len(self.received), 1)]
        if len(self.received) >= 2 or kind != expected:
            server_broke(f"lifespan receive() must return lifespan.startup, then lifespan.shutdown; "
                         f"got {kind!r} after {self.received or 'nothing'}")
        if kind == "lifespan.shutdown" and "lifespan.startup" not in self.replied:
            server_broke("sent lifespan.shutdown before the application answered lifespan.startup")
        self.received.append(kind)
        return message

    async def send(self, message):
        kind = check_message(message, app_broke)
        pending = [event for event in self.received if event not in self.replied]
        if not pending or kind not in self.REPLIES[pending[0]]:
            allowed = " or ".join(self.REPLIES[pending[0]]) if pending else "nothing (no event awaits a reply)"
            app_broke(f"sent {kind!r}; the lifespan protocol allows {allowed} here")
        if kind.endswith(".failed"):
            check_type(message.get("message", ""), str, f"{kind}['message']", app_broke)
        self.replied.append(pending[0])
        result = await self.inner_send(message)
        if result is not None:
            server_broke(f"send() must return None, returned {result!r:.60}")
