"""The CGI meta-variables of a request (RFC 3875 §4.1), shared by the CGI runner and
the WSGI server.

PEP 3333 builds the WSGI environ on the CGI variables, so the CGI runner and the
WSGI server start from the same dictionary, built here in one order, which lets a
notebook put the two side by side.

Needs from the operating system: nothing beyond the Python process it runs in.
"""

from __future__ import annotations

from urllib.parse import unquote_to_bytes

from servers import cli, http11

_HEADER_KEYS: dict[bytes, str | None] = {}
# Content-Type and Content-Length have their own variables (RFC 3875 §4.1.2, §4.1.3).
_OWN_VARIABLES = (b"content-type", b"content-length")


def _header_key(name: bytes) -> str | None:
    """b'accept-encoding' -> 'HTTP_ACCEPT_ENCODING'; None for names we must drop."""
    key = _HEADER_KEYS.get(name)
    if key is None and name not in _HEADER_KEYS:
        # A '_' in a header name would come out the same as '-' (X-Forwarded_For
        # would impersonate X-Forwarded-For), so such names are dropped, as
        # nginx and gunicorn do. RFC 3875 §4.1.18: "The server is not required
        # to create meta-variables for all the header fields that it receives."
        if b"_" in name or name in _OWN_VARIABLES:
            key = None
        else:
            key = "HTTP_" + name.decode("latin-1").upper().replace("-", "_")
        if len(_HEADER_KEYS) < 1024:  # names are chosen by clients: keep the cache bounded
            _HEADER_KEYS[name] = key
    return key


def request_variables(head: http11.Request, *, client: tuple, server: tuple,
                      content_length: int | None = None,
                      exclude_headers: tuple[bytes, ...] = ()) -> dict[str, str]:
    """The CGI variables of one request, as latin-1 "bytes-as-str" strings.

    client and server are (host, port) pairs as socket.getpeername() and
    getsockname() give them; over a Unix socket client is None and server is
    (path, None) (see servers/cli.py, "What a connection over a Unix socket looks
    like"). content_length overrides the header (a chunked body that the server
    spooled and counted).
    """
    content_type = None
    header_length = None
    http_variables: dict[str, str] = {}
    for name, value in head.headers:
        if name == b"content-type":
            content_type = value.decode("latin-1")
            continue
        if name == b"content-length":
            header_length = value.decode("latin-1")
            continue
        key = _header_key(name)
        if key is None or name in exclude_headers:
            continue
        text = value.decode("latin-1")
        # RFC 9110 §5.3: several lines of one field mean the same as one line
        # with the values joined by commas.
        http_variables[key] = f"{http_variables[key]}, {text}" if key in http_variables else text

    variables = {
        "REQUEST_METHOD":  head.method,                                    # 'GET'
        "SCRIPT_NAME":     "",                                             # the app is mounted at /
        # RFC 3875 §4.1.5: PATH_INFO is decoded ("not URL-encoded"); PEP 3333
        # hands the decoded bytes over as latin-1, one character per byte.
        "PATH_INFO":       unquote_to_bytes(head.path).decode("latin-1"),  # '/hello'
        "QUERY_STRING":    head.query.decode("latin-1"),                   # 'ms=50'
    }
    if content_type is not None:
        variables["CONTENT_TYPE"] = content_type                          # 'application/json'
    if content_length is not None:
        variables["CONTENT_LENGTH"] = str(content_length)                 # '1048576'
    elif header_length is not None:
        variables["CONTENT_LENGTH"] = header_length
    server_name, server_port = server if server[1] is not None else _host_and_port(head)
    variables.update({
        "SERVER_NAME":     server_name,                                    # '127.0.0.1'
        "SERVER_PORT":     str(server_port),                               # '8000'
        "SERVER_PROTOCOL": "HTTP/" + head.http_version,                    # 'HTTP/1.1'
        "REMOTE_ADDR":     cli.LOCAL_PEER if client is None else client[0],  # '127.0.0.1'
    })
    if client is not None:
        variables["REMOTE_PORT"] = str(client[1])                         # '51234'

    variables.update(http_variables)                                       # 'HTTP_HOST': 'localhost:8000'
    return variables


def _host_and_port(head: http11.Request) -> tuple[str, str]:
    """SERVER_NAME and SERVER_PORT from the Host header, for a server on a Unix socket."""
    host = next((value.decode("latin-1") for name, value in head.headers if name == b"host"), "")
    if ":" not in host or host.endswith("]"):  # no port: 80, as http:// says
        return host or "localhost", "80"
    name, _, port = host.rpartition(":")
    if not port.isdigit():
        port = "80"
    return name or "localhost", port
