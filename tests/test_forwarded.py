"""servers/forwarded.py: X-Forwarded-For/-Proto believed only from trusted proxies.

Unit cases for the rule, then the same four cases (trusted, untrusted, absent,
forged) over real sockets against the WSGI server, the CGI runner and the ASGI
server (its WebSocket scope too). Every test connects from 127.0.0.1, the
default trusted proxy.
"""

import argparse
import json

import pytest
from websockets.sync.client import connect as ws_connect

from scripts.launch import REPO, ServerProcess, free_port, server_command
from servers import forwarded
from tests.http_client import exchange, get

PEER = ("127.0.0.1", 50000)


def headers(*pairs):
    return [(name.encode(), value.encode()) for name, value in pairs]


def test_a_trusted_peer_is_believed():
    trust = forwarded.parse("127.0.0.1")
    assert trust.client_and_scheme(PEER, headers(("x-forwarded-for", "203.0.113.7"),
                                                 ("x-forwarded-proto", "https"))) \
        == (("203.0.113.7", 0), "https")


def test_an_untrusted_peer_is_not():
    trust = forwarded.parse("10.0.0.0/8, ::1")
    assert trust.client_and_scheme(PEER, headers(("x-forwarded-for", "203.0.113.7"),
                                                 ("x-forwarded-proto", "https"))) == (PEER, "http")


def test_a_unix_socket_peer_counts_as_127_0_0_1():
    """peer None: a Unix socket's peer (servers/cli.py, LOCAL_PEER)."""
    sent = headers(("x-forwarded-for", "203.0.113.7"), ("x-forwarded-proto", "https"))
    assert forwarded.parse("127.0.0.1").client_and_scheme(None, sent) == (("203.0.113.7", 0), "https")
    assert forwarded.parse("10.0.0.0/8").client_and_scheme(None, sent) == (None, "http")


def test_without_the_headers_the_peer_is_the_client():
    assert forwarded.parse("127.0.0.1").client_and_scheme(PEER, []) == (PEER, "http")


def test_a_forged_address_left_of_the_proxys_is_ignored():
    # The client sent "X-Forwarded-For: 6.6.6.6"; the trusted proxy 10.0.0.2 appended
    # the address it saw (203.0.113.7), and nginx on 127.0.0.1 appended 10.0.0.2.
    trust = forwarded.parse("127.0.0.1,10.0.0.0/8")
    pairs = headers(("x-forwarded-for", "6.6.6.6, 203.0.113.7"), ("x-forwarded-for", "10.0.0.2"))
    assert trust.client_and_scheme(PEER, pairs)[0] == ("203.0.113.7", 0)


def test_garbage_and_odd_schemes_are_not_believed():
    trust = forwarded.parse("127.0.0.1")
    assert trust.client_and_scheme(PEER, headers(("x-forwarded-for", "not-an-address"),
                                                 ("x-forwarded-proto", "gopher"))) == (PEER, "http")


def test_star_trusts_everyone_and_bad_entries_are_refused():
    assert forwarded.parse("*").trusts("198.51.100.1")
    with pytest.raises(argparse.ArgumentTypeError, match="not an IP address"):
        forwarded.parse("127.0.0.1, localhost")


# ── over real sockets ───────────────────────────────────────────────────────

CGI_ENV_SCRIPT = str(REPO / "tests" / "cgi_scripts" / "env.py")


APPS = {"wsgi": "tests.wsgi_apps:app", "cgi": CGI_ENV_SCRIPT, "asgi": "tests.asgi_apps:app"}


@pytest.fixture(scope="module", params=["wsgi", "cgi", "asgi",
                                        "wsgi-untrusting", "cgi-untrusting", "asgi-untrusting"])
def server(request):
    kind, _, untrusting = request.param.partition("-")
    app = APPS[kind]
    extra = ["--forwarded-allow-ips", "10.0.0.0/8"] if untrusting else []
    port = free_port()
    with ServerProcess(server_command(kind, port=port, app=app, extra=extra), port=port) as srv:
        srv.kind, srv.trusting = kind, not untrusting
        yield srv


def seen(srv, *extra_headers):
    """(REMOTE_ADDR or the scope's client host, scheme) as the application saw them."""
    status, _, body = exchange(srv, get("/scope" if srv.kind == "asgi" else "/environ/x",
                                        *extra_headers))
    assert status == 200
    if srv.kind == "asgi":
        scope = json.loads(body)["scope"]
        return scope["client"][0], scope["scheme"]
    if srv.kind == "wsgi":
        environ = dict(json.loads(body))
        return environ["REMOTE_ADDR"], environ["wsgi.url_scheme"]
    environ = json.loads(body)["environ"]
    return environ["REMOTE_ADDR"], "https" if environ.get("HTTPS") == "on" else "http"


def test_forwarded_headers_over_sockets(server):
    claimed = ("X-Forwarded-For: 203.0.113.7", "X-Forwarded-Proto: https")
    if server.trusting:
        assert seen(server, *claimed) == ("203.0.113.7", "https")
    else:
        assert seen(server, *claimed) == ("127.0.0.1", "http")


def test_absent_headers_over_sockets(server):
    assert seen(server) == ("127.0.0.1", "http")


def test_forged_chain_over_sockets(server):
    # Only the rightmost address was written by the trusted proxy (here: 127.0.0.1 itself).
    expected = "198.51.100.9" if server.trusting else "127.0.0.1"
    assert seen(server, "X-Forwarded-For: 6.6.6.6, 198.51.100.9")[0] == expected


def websocket_seen(port, *extra_headers):
    """(the scope's client host, scheme) of a WebSocket, as the application saw them."""
    headers = [tuple(line.split(": ", 1)) for line in extra_headers]
    with ws_connect(f"ws://127.0.0.1:{port}/ws/scope", additional_headers=headers,
                    open_timeout=30) as ws:
        scope = json.loads(ws.recv(timeout=30))["scope"]
    return scope["client"][0], scope["scheme"]


@pytest.mark.parametrize("trusting", [True, False], ids=["trusting", "untrusting"])
def test_websocket_scope_behind_a_proxy(trusting):
    extra = [] if trusting else ["--forwarded-allow-ips", "10.0.0.0/8"]
    port = free_port()
    with ServerProcess(server_command("asgi", port=port, app=APPS["asgi"], extra=extra), port=port):
        assert websocket_seen(port) == ("127.0.0.1", "ws")
        claimed = ("X-Forwarded-For: 203.0.113.7", "X-Forwarded-Proto: https")
        expected = ("203.0.113.7", "wss") if trusting else ("127.0.0.1", "ws")
        assert websocket_seen(port, *claimed) == expected
