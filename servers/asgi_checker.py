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

What it leaves out: WebSocket scopes pass through unchecked, and an exception the
application raises itself propagates unchanged (it is not a protocol violation).
"""

from __future__ import annotations

HTTP_VERSIONS = ("1.0", "1.1", "2")


class ASGIViolation(AssertionError):
    """A rule of the ASGI specification was broken, by the server or by the application."""


def checked(app, *, lowercase_response_headers: bool = True):
    """Wrap an ASGI 3 application so that every spec violation raises ASGIViolation.

    lowercase_response_headers=False accepts response header names in any case:
    the HTTP spec says they "must be lowercased", but Django deliberately sends
    them as the view set them ("Content-Type"), for clients that depend on case.
    """
    async def checked_app(scope, receive, send):
        check_scope(scope)
        if scope["type"] == "http":
            cycle = HTTPCycle(receive, send, lowercase_response_headers)
            await app(scope, cycle.receive, cycle.send)
            cycle.check_finished()
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
    # www.rst: client/server are a two-item iterable [host, port], or None.
    if value is None:
        return
    if not isinstance(value, (list, tuple)) or len(value) != 2:
        server_broke(f"scope[{what!r}] must be a [host, port] pair or None, got {value!r}")
    check_type(value[0], str, f"scope[{what!r}][0] (host)", server_broke)
    if not (what == "server" and value[1] is None):
        check_type(value[1], int, f"scope[{what!r}][1] (port)", server_broke)


def check_headers(headers, what: str, blame, *, lowercase: bool) -> None:
    # www.rst: "An iterable of [name, value] two-item iterables" of byte strings.
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
    # asgi.rst: "asgi: a dict with ... version, the version of the ASGI spec";
    # a single-callable (ASGI 3) application is only ever served "3.0".
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
    if "scheme" in scope:
        check_type(scope["scheme"], str, "scope['scheme']", server_broke)
        if not scope["scheme"]:
            server_broke("scope['scheme'] is optional but must not be empty")
    check_type(scope["path"], str, "scope['path'] (percent-decoded)", server_broke)
    if scope.get("raw_path") is not None:
        check_type(scope["raw_path"], bytes, "scope['raw_path']", server_broke)
    check_type(scope["query_string"], bytes, "scope['query_string'] (still percent-encoded)", server_broke)
    check_type(scope.get("root_path", ""), str, "scope['root_path']", server_broke)
    check_headers(scope["headers"], "scope['headers']", server_broke, lowercase=True)
    check_address(scope.get("client"), "client")
    check_address(scope.get("server"), "server")


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


class LifespanCycle:
    """lifespan.rst 2.0: startup, its reply, shutdown, its reply — in that order, each once."""

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
