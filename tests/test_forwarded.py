"""servers/forwarded.py: X-Forwarded-For/-Proto believed only from trusted proxies.

Unit cases for the rule, then the same four cases (trusted, untrusted, absent,
forged) over real sockets against the WSGI server and the CGI runner. Every
test connects from 127.0.0.1, the default trusted proxy.
"""

import argparse
import json

import pytest

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


@pytest.fixture(scope="module", params=["wsgi", "cgi", "wsgi-untrusting", "cgi-untrusting"])
def server(request):
    kind, _, untrusting = request.param.partition("-")
    app = "tests.wsgi_apps:app" if kind == "wsgi" else CGI_ENV_SCRIPT
    extra = ["--forwarded-allow-ips", "10.0.0.0/8"] if untrusting else []
    port = free_port()
    with ServerProcess(server_command(kind, port=port, app=app, extra=extra), port=port) as srv:
        srv.kind, srv.trusting = kind, not untrusting
        yield srv


def seen(srv, *extra_headers):
    """(REMOTE_ADDR, scheme) as the application saw them."""
    status, _, body = exchange(srv, get("/environ/x", *extra_headers))
    assert status == 200
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
