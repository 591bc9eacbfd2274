"""nginx in front of the site (scripts/nginx.py): the launcher, every endpoint through it,
the proxy headers, static files, WebSocket, and what it does for slow clients.

Debian's nginx is required: without it these tests skip locally and fail in CI
(tests/external.py). Servers and nginx are started on free ports through
scripts.launch and stopped by the `with` blocks, also when a test fails.
"""

import hashlib
import json
import os
import socket
import subprocess
import sys

import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect as websocket_client

from scripts import nginx as nginx_module
from scripts.bench_slow import SlowClients
from scripts.launch import REPO, ServerProcess, ServerStartError, free_port, interface_of, server_command
from scripts.nginx import Nginx, NginxMissing, behind_nginx, render_config
from tests.external import require_program
from tests.http_client import SITE_ENDPOINTS, chunked, connect, exchange, get, read_response, wait_for

STYLESHEET = REPO / "sample_site" / "shop" / "static" / "shop" / "site.css"

# Every backend behind nginx on a Unix socket, as they are deployed (TCP backends are
# in test_nginx_is_started_on_a_free_port_and_always_stopped and the uvicorn tests).
DEPLOYMENTS = [("wsgi", True), ("asgi", True), ("cgi", True),
               ("gunicorn", True), ("gunicorn-uvicorn", True), ("uvicorn", True)]


@pytest.fixture(autouse=True)
def nginx_installed():
    require_program("nginx")


def accepts_connections(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def app_view(report):
    """(client address as the app sees it, the forwarded headers it was handed)."""
    if report["interface"] == "wsgi":
        meta = report["meta"]
        return meta.get("REMOTE_ADDR"), {key: value for key, value in meta.items()
                                         if key.startswith("HTTP_X_FORWARDED")}
    scope = report["scope"]
    headers = {}
    for name, value in scope["headers"]:
        name = name[2:-1]  # json_safe shows bytes as b'...'
        if name.startswith("x-forwarded"):
            headers["HTTP_" + name.upper().replace("-", "_")] = value[2:-1]
    return (scope["client"] or [None])[0], headers


# --- the launcher ------------------------------------------------------------------------------------

def test_the_configuration_keeps_every_file_under_the_prefix(tmp_path):
    text = render_config(listen="127.0.0.1:9999", upstreams=["127.0.0.1:8001", f"unix:{tmp_path}/b.sock"],
                         prefix=tmp_path, static_root=tmp_path / "static")
    assert "listen 127.0.0.1:9999;" in text
    assert "server 127.0.0.1:8001;" in text and f"server unix:{tmp_path}/b.sock;" in text
    for directive in ("pid", "error_log", "client_body_temp_path", "proxy_temp_path", "fastcgi_temp_path",
                      "uwsgi_temp_path", "scgi_temp_path"):
        line = next(line for line in text.splitlines() if line.strip().startswith(directive + " "))
        assert str(tmp_path) in line, line
    directives = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))
    # `daemon off;` comes from the command line; in the file too, nginx would refuse a duplicate.
    assert "/var/log" not in directives and "daemon" not in directives
    assert f"alias {tmp_path / 'static'}/;" in text
    if os.geteuid() == 0:
        assert "user root;" in text
    assert "@" not in directives


def test_nginx_is_started_on_a_free_port_and_always_stopped():
    with pytest.raises(RuntimeError, match="the test failed here"):
        with behind_nginx("wsgi") as site:
            port = site.port
            assert site.nginx.config_path.read_text().count(f"listen 127.0.0.1:{port};") == 1
            assert site.nginx.config_path.is_relative_to(REPO / "var" / "nginx")
            status, headers, body = exchange(site, get("/hello"))
            assert (status, body, headers["server"].split("/")[0]) == (200, b"Hello, world!\n", "nginx")
            nginx_process, backend = site.nginx.process, site.backends[0].process
            raise RuntimeError("the test failed here")
    assert nginx_process.poll() is not None and backend.poll() is not None
    assert not accepts_connections(port)
    # The folder of a throwaway port is gone with it.
    assert not site.nginx.prefix.exists()


def test_a_configuration_nginx_rejects_is_reported_in_its_own_words(tmp_path):
    rejected = Nginx(["no-such-host.invalid:80"], prefix=tmp_path)
    with pytest.raises(ServerStartError, match="host not found in upstream"):
        rejected.start()
    assert rejected.process is None


def test_a_missing_nginx_is_one_line_with_the_install_command(monkeypatch, capsys):
    monkeypatch.setattr(nginx_module, "nginx_program", lambda: None)
    with pytest.raises(NginxMissing, match=r"^nginx is not installed: sudo apt-get update && "
                                           r"sudo apt-get install -y nginx$"):
        with behind_nginx("wsgi"):
            pass
    assert nginx_module.main(["--backend", "wsgi", "--port", str(free_port())]) == 1
    printed = capsys.readouterr().err.strip().splitlines()
    assert printed == ["nginx is not installed: sudo apt-get update && sudo apt-get install -y nginx"]


def test_the_demo_command_explains_itself_and_refuses_bad_input():
    run = lambda *args: subprocess.run([sys.executable, "-m", "scripts.nginx", *args], cwd=REPO,
                                       capture_output=True, text=True, timeout=60)
    assert "--backends" in run("--help").stdout
    refused = run("--backend", "daphne", "--unix")
    assert refused.returncode == 2 and "cannot listen on a Unix socket" in refused.stderr
    assert "--backends must be at least 1" in run("--backends", "0").stderr


def test_two_backends_take_turns():
    with behind_nginx("gunicorn", backends=2, unix=True) as site:
        for _ in range(4):
            assert exchange(site, get("/hello"))[0] == 200
        # nginx logs a request after its response has left: wait for the fourth line.
        wait_for(lambda: len(site.nginx.access_lines()) == 4, what="four access log lines")
        answered = [line.split("upstream=")[1].split()[0] for line in site.nginx.access_lines()]
        sockets = {f"unix:{backend.unix}" for backend in site.backends}
    assert len(answered) == 4 and set(answered) == sockets
    # Round robin: never the same backend twice in a row.
    assert all(first != second for first, second in zip(answered, answered[1:]))


# --- the site through nginx ---------------------------------------------------------------------------

@pytest.fixture(scope="module", params=DEPLOYMENTS, ids=[f"{k}-{'unix' if u else 'tcp'}" for k, u in DEPLOYMENTS])
def deployed(request):
    require_program("nginx")
    kind, unix = request.param
    with behind_nginx(kind, unix=unix) as site:
        yield kind, site


@pytest.mark.parametrize("path, status, expected", SITE_ENDPOINTS)
def test_endpoint_through_nginx(deployed, path, status, expected):
    kind, site = deployed
    got_status, headers, body = exchange(site, get(path))
    assert got_status == status, (kind, path, body[:300])
    assert expected in body, (kind, path, body[:300])
    assert headers["server"].startswith("nginx"), kind


def test_upload_through_nginx_arrives_whole(deployed):
    kind, site = deployed
    body = os.urandom(1024 * 1024)
    digest = hashlib.sha256(body).hexdigest()
    with_length = (f"POST /echo HTTP/1.1\r\nHost: localhost\r\nContent-Length: {len(body)}\r\n"
                   "Content-Type: application/octet-stream\r\n\r\n").encode() + body
    status, _, answer = exchange(site, with_length)
    assert status == 200 and json.loads(answer)["sha256"] == digest, (kind, answer[:300])
    # nginx reads a chunked upload whole and sends it on with a Content-Length.
    in_chunks = (b"POST /echo HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n"
                 + chunked(body[i:i + 100_000] for i in range(0, len(body), 100_000)))
    status, _, answer = exchange(site, in_chunks)
    assert status == 200 and json.loads(answer)["sha256"] == digest, (kind, answer[:300])


def test_the_app_gets_nginx_headers_and_never_a_forged_one(deployed):
    kind, site = deployed
    forged = get("/inspect", "X-Forwarded-For: 203.0.113.9", "X-Forwarded-Proto: https")
    report = json.loads(exchange(site, forged)[2])
    assert report["interface"] == interface_of(kind)
    _, forwarded = app_view(report)
    # nginx replaced both: the client's address, and the scheme nginx itself was reached by.
    assert forwarded == {"HTTP_X_FORWARDED_FOR": "127.0.0.1", "HTTP_X_FORWARDED_PROTO": "http"}, kind
    if report["interface"] == "wsgi":
        host = report["meta"]["HTTP_HOST"]
    else:
        host = next(value for name, value in report["scope"]["headers"] if name == "b'host'")[2:-1]
    assert host == "localhost", "the Host the client asked for, not the upstream's name, reaches the app"


def test_the_page_links_the_stylesheet_that_nginx_serves_itself(deployed):
    kind, site = deployed
    page = exchange(site, get("/"))[2]
    assert b'href="/static/shop/site.css"' in page
    status, headers, body = exchange(site, get("/static/shop/site.css"))
    assert (status, headers["content-type"], body) == (200, "text/css", STYLESHEET.read_bytes())
    assert "expires" in headers
    # The backend has no static files: the 200 came from nginx alone.
    wait_for(lambda: "GET /static/shop/site.css" in site.nginx.access_lines()[-1], what="the log line")
    assert "upstream=-" in site.nginx.access_lines()[-1]


def test_events_pass_through_unbuffered(deployed):
    kind, site = deployed
    # The second event comes 10 s after the first: the first must arrive on its own.
    with connect(site, timeout=30) as sock:
        sock.sendall(get("/events?count=2&interval_ms=10000"))
        received = b""
        while b"data: 1\n\n" not in received:
            chunk = sock.recv(4096)
            assert chunk, (kind, received)
            received += chunk
    assert b"data: 2" not in received


def test_keep_alive_to_nginx(deployed):
    kind, site = deployed
    with connect(site, timeout=30) as sock:
        stream = sock.makefile("rb")
        for _ in range(3):
            sock.sendall(get("/hello"))
            assert read_response(stream)[2] == b"Hello, world!\n", kind


# --- trust, WebSocket, slow clients ---------------------------------------------------------------------

def test_uvicorn_believes_forwarded_headers_only_from_a_trusted_peer():
    forged = get("/inspect", "X-Forwarded-For: 203.0.113.9", "X-Forwarded-Proto: https")
    port = free_port()
    # uvicorn trusts 127.0.0.1 by default: a local client can claim any address.
    with ServerProcess(server_command("uvicorn", port=port), port=port) as server:
        scope = json.loads(exchange(server, forged)[2])["scope"]
        assert (scope["client"][0], scope["scheme"]) == ("203.0.113.9", "https")
    port = free_port()
    with ServerProcess(server_command("uvicorn", port=port, extra=["--forwarded-allow-ips", "192.0.2.1"]),
                       port=port) as server:
        scope = json.loads(exchange(server, forged)[2])["scope"]
        assert (scope["client"][0], scope["scheme"]) == ("127.0.0.1", "http")
    # Behind nginx (over TCP, so the peer is 127.0.0.1 and trusted) the forged values never arrive.
    with behind_nginx("uvicorn") as site:
        scope = json.loads(exchange(site, forged)[2])["scope"]
        assert (scope["client"][0], scope["scheme"]) == ("127.0.0.1", "http")


def test_uvicorn_on_a_unix_socket_knows_the_client_only_when_told_to_trust_the_socket():
    forged = get("/inspect", "X-Forwarded-For: 203.0.113.9")
    with behind_nginx("uvicorn", unix=True) as site:
        assert json.loads(exchange(site, forged)[2])["scope"]["client"] is None
    with behind_nginx("uvicorn", unix=True, extra=["--forwarded-allow-ips", "*"]) as site:
        # Trusting everything on the socket means trusting nginx, which wrote $remote_addr.
        assert json.loads(exchange(site, forged)[2])["scope"]["client"][0] == "127.0.0.1"


def test_the_toy_asgi_server_on_a_unix_socket_trusts_nginx_unless_told_otherwise():
    """A Unix peer counts as 127.0.0.1 for --forwarded-allow-ips (servers/cli.py)."""
    forged = get("/inspect", "X-Forwarded-For: 203.0.113.9", "X-Forwarded-Proto: https")
    with behind_nginx("asgi", unix=True) as site:
        scope = json.loads(exchange(site, forged)[2])["scope"]
        # nginx replaced the forged values with $remote_addr and $scheme.
        assert (scope["client"], scope["scheme"]) == (["127.0.0.1", 0], "http")
        assert scope["server"][1] is None and scope["server"][0].endswith(".sock")
    with behind_nginx("asgi", unix=True, extra=["--forwarded-allow-ips", "10.0.0.0/8"]) as site:
        scope = json.loads(exchange(site, forged)[2])["scope"]
        assert (scope["client"], scope["scheme"]) == (None, "http")


def ws_connect(site, path, origin=True, **options):
    """A client of the site's WebSocket endpoints through nginx, with the Origin a browser sends."""
    return websocket_client(f"ws://{site.host}:{site.port}{path}", proxy=None, open_timeout=30,
                            origin=f"http://{site.host}:{site.port}" if origin else None, **options)


def next_event(websocket, kind):
    while (event := json.loads(websocket.recv(timeout=30)))["type"] != kind:
        pass
    return event


# The toy ASGI server, traced (its scope shows what nginx passed on), and uvicorn, each on a
# Unix socket, as they are deployed.
@pytest.mark.parametrize("kind", ["asgi", "uvicorn"])
def test_the_sites_websocket_echo_and_chat_through_nginx(kind):
    extra = ["--trace"] if kind == "asgi" else []
    with behind_nginx(kind, unix=True, extra=extra) as site:
        with ws_connect(site, "/ws/echo", additional_headers={"X-Forwarded-For": "203.0.113.9"}) as websocket:
            for message in ("hello", "x" * 100_000, b"\x00\xffbinary"):
                websocket.send(message)
                assert websocket.recv(timeout=30) == message, kind
        if kind == "asgi":
            wait_for(lambda: "websocket.disconnect" in site.backends[0].output(), what="the trace")
            scope = site.backends[0].output()
            # The /ws/ location passes the hop-by-hop Upgrade on and replaces the forged address.
            assert "(b'upgrade', b'websocket')" in scope and "(b'x-forwarded-for', b'127.0.0.1')" in scope
            assert "203.0.113.9" not in scope
        with ws_connect(site, "/ws/chat/lobby?name=alice") as alice, \
                ws_connect(site, "/ws/chat/lobby?name=bob") as bob:
            bob_id = next_event(bob, "welcome")["id"]
            next_event(bob, "here")  # alice is in the room: she answered bob's join
            bob.send(json.dumps({"text": "hello, alice"}))
            # Sent through nginx to the room, and from the room through nginx to both.
            for member in (alice, bob):
                assert next_event(member, "message") == {
                    "type": "message", "id": bob_id, "name": "bob", "text": "hello, alice"}, kind
        wait_for(lambda: sum(" 101 " in line for line in site.nginx.access_lines()) == 3, what="the log lines")


def test_a_websocket_handshake_without_origin_is_refused_through_nginx():
    with behind_nginx("asgi") as site:
        with pytest.raises(InvalidStatus) as refused:
            ws_connect(site, "/ws/echo", origin=False)
        assert refused.value.response.status_code == 403


def test_a_normal_request_is_answered_while_slow_clients_hold_gunicorn_sync_behind_nginx():
    with behind_nginx("gunicorn") as site:
        with SlowClients(site.host, site.port, 12, mode="mix", interval=0.5, settle=0.5) as clients:
            assert clients.connected == 12
            # Each slow client still holds its connection to nginx: none was answered or closed.
            assert clients.reconnects == 0
            for _ in range(3):
                status, _, body = exchange(site, get("/hello"))
                assert (status, body) == (200, b"Hello, world!\n")
