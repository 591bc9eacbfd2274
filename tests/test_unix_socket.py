"""--bind unix:PATH on the three toy servers (servers/cli.py), without nginx.

The socket file: its mode, a stale one replaced, a live one or another file
refused, removed at exit, shared by pre-forked workers. What the application is
told about a Unix peer (REMOTE_ADDR, SERVER_NAME/PORT; the ASGI scope's client and
server), and that --forwarded-allow-ips counts a Unix peer as 127.0.0.1.
Behind nginx on Unix sockets: tests/test_nginx.py.
"""

import json
import os
import signal
import socket
import stat
import subprocess
import sys

import pytest

from scripts.launch import REPO, ServerProcess, server_command
from tests.http_client import get, read_response, wait_for

KINDS = ["wsgi", "asgi", "cgi"]


def unix_exchange(path, raw: bytes):
    """Send raw request bytes over the Unix socket at `path`; read one response."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(30)
        sock.connect(str(path))
        sock.sendall(raw)
        return read_response(sock.makefile("rb"))


def inspect(path, *headers):
    status, _, body = unix_exchange(path, get("/inspect", *headers))
    assert status == 200, body[:300]
    return json.loads(body)


def start(kind, path, extra=(), app=None):
    return ServerProcess(server_command(kind, unix=path, app=app, extra=list(extra)), unix=path)


@pytest.fixture
def sock_path(tmp_path):
    return tmp_path / "site.sock"


@pytest.mark.parametrize("kind", KINDS)
def test_serves_on_a_unix_socket_with_mode_0660_and_removes_it_at_exit(kind, sock_path):
    with start(kind, sock_path) as server:
        assert f"Listening on unix:{sock_path} " in server.output()
        mode = os.stat(sock_path).st_mode
        assert stat.S_ISSOCK(mode) and stat.S_IMODE(mode) == 0o660
        status, _, body = unix_exchange(sock_path, get("/hello"))
        assert (status, body) == (200, b"Hello, world!\n")
    assert server.returncode == 0
    assert not sock_path.exists()


@pytest.mark.parametrize("kind", ["wsgi", "cgi"])
def test_the_wsgi_environ_of_a_unix_peer(kind, sock_path):
    with start(kind, sock_path) as server:
        meta = inspect(sock_path)["meta"]
        assert meta["REMOTE_ADDR"] == "127.0.0.1" and "REMOTE_PORT" not in meta
        # From the Host header ("localhost", as tests.http_client.get sends it).
        assert (meta["SERVER_NAME"], meta["SERVER_PORT"]) == ("localhost", "80")
        status, _, body = unix_exchange(sock_path, get("/inspect").replace(
            b"Host: localhost", b"Host: example.org:8443"))
        meta = json.loads(body)["meta"]
        assert (meta["SERVER_NAME"], meta["SERVER_PORT"]) == ("example.org", "8443")
    assert server.returncode == 0


def test_the_asgi_scope_of_a_unix_peer(sock_path):
    with start("asgi", sock_path):
        scope = inspect(sock_path)["scope"]
    assert scope["client"] is None
    assert scope["server"] == [str(sock_path), None]


@pytest.mark.parametrize("kind", ["wsgi", "cgi"])
def test_a_unix_peer_counts_as_127_0_0_1_for_forwarded_allow_ips(kind, sock_path):
    forged = ("X-Forwarded-For: 203.0.113.9", "X-Forwarded-Proto: https")
    with start(kind, sock_path):
        meta = inspect(sock_path, *forged)["meta"]
    assert (meta["REMOTE_ADDR"], meta["wsgi.url_scheme"]) == ("203.0.113.9", "https")
    with start(kind, sock_path, extra=["--forwarded-allow-ips", "10.0.0.0/8"]):
        meta = inspect(sock_path, *forged)["meta"]
    assert (meta["REMOTE_ADDR"], meta["wsgi.url_scheme"]) == ("127.0.0.1", "http")


@pytest.mark.parametrize("kind", KINDS)
def test_a_stale_socket_file_of_a_killed_server_is_replaced(kind, sock_path):
    with start(kind, sock_path) as server:
        os.killpg(server.pid, signal.SIGKILL)
        server.wait(timeout=10)
    assert stat.S_ISSOCK(os.stat(sock_path).st_mode)  # SIGKILL left it behind
    with start(kind, sock_path):
        assert unix_exchange(sock_path, get("/hello"))[0] == 200


def run_server(kind, path, timeout=60):
    return subprocess.run(server_command(kind, unix=path), cwd=REPO, capture_output=True,
                          text=True, timeout=timeout)


@pytest.mark.parametrize("kind", KINDS)
def test_a_socket_a_server_listens_on_is_refused_in_one_line(kind, sock_path):
    with start("wsgi", sock_path):
        refused = run_server(kind, sock_path)
        assert unix_exchange(sock_path, get("/hello"))[0] == 200  # the first one is untouched
    assert refused.returncode == 1
    assert refused.stderr.strip().splitlines()[-1].endswith(
        f"error: unix:{sock_path} is in use (another server is listening on it)")


def test_a_file_that_is_not_a_socket_is_refused_and_kept(sock_path):
    sock_path.write_text("precious")
    refused = run_server("wsgi", sock_path)
    assert refused.returncode == 1
    assert refused.stderr.strip().endswith(f"error: unix:{sock_path} exists and is not a socket; "
                                           "not replacing it")
    assert sock_path.read_text() == "precious"


def test_bind_unix_without_a_path_is_a_one_line_error():
    refused = subprocess.run([sys.executable, "-m", "servers.wsgi_server", "sample_site.wsgi",
                              "--bind", "unix:"], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert refused.returncode == 1
    assert refused.stderr.strip() == "wsgi_server: error: --bind 'unix:': expected unix:PATH, " \
                                     "e.g. unix:var/site.sock"


def test_prefork_workers_share_the_socket_and_a_dying_worker_leaves_it(sock_path):
    with start("wsgi", sock_path, extra=["--workers", "2"], app="tests.wsgi_apps:app") as server:
        pids = set()
        wait_for(lambda: pids.add(int(unix_exchange(sock_path, get("/pid"))[2])) or len(pids) == 2,
                 timeout=60, what="answers from both workers")
        assert server.pid not in pids
        os.kill(pids.pop(), signal.SIGKILL)
        wait_for(lambda: "starting a new one" in server.output(), what="a replacement worker")
        assert stat.S_ISSOCK(os.stat(sock_path).st_mode)
        assert unix_exchange(sock_path, get("/hello"))[0] == 200
    assert server.returncode == 0
    assert not sock_path.exists()
