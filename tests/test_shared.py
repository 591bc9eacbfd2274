"""The modules the servers share: cli (command line, app loading, listening),
cgi_variables, trace and tuning."""

import argparse
import os
import pathlib
import socket
import subprocess
import sys
from types import SimpleNamespace

import pytest

from servers import cgi_variables, cli, trace, tuning

REPO = pathlib.Path(__file__).resolve().parent.parent


def head(path=b"/", query=b"", headers=(), method="GET", version="1.1"):
    # request_variables reads only these attributes of an http11.Request.
    return SimpleNamespace(method=method, path=path, query=query,
                           http_version=version, headers=list(headers))


@pytest.mark.parametrize("text, expected", [
    ("127.0.0.1:8000", ("127.0.0.1", 8000)),
    ("0.0.0.0:80", ("0.0.0.0", 80)),
    ("[::1]:8080", ("::1", 8080)),
    ("localhost:65535", ("localhost", 65535)),
    ("unix:/run/site.sock", ("/run/site.sock", None)),
    ("unix:var/a:b.sock", ("var/a:b.sock", None)),
])
def test_parse_bind(text, expected):
    assert cli.parse_bind(text) == expected


@pytest.mark.parametrize("text", ["8000", ":8000", "host:", "host:http", "host:0", "host:70000",
                                  "unix:"])
def test_parse_bind_refuses(text):
    with pytest.raises(cli.StartupError, match="--bind"):
        cli.parse_bind(text)


def test_load_app_resolves_module_attr_and_default():
    from scripts import hello_apps
    assert cli.load_app("scripts.hello_apps:wsgi_app") is hello_apps.wsgi_app
    assert cli.load_app("servers.cli:StartupError.__init__") is cli.StartupError.__init__


@pytest.mark.parametrize("spec, message", [
    ("no_such_module_xyz:app", "no such module"),
    ("scripts.hello_apps:nothing", "has no attribute 'nothing'"),
    ("scripts.hello_apps:BODY", "not a callable"),
    ("scripts.hello_apps", "has no attribute 'application'"),
    (":app", "expected MODULE:ATTR"),
])
def test_load_app_errors_are_one_line(spec, message):
    with pytest.raises(cli.StartupError, match=message) as info:
        cli.load_app(spec)
    assert "\n" not in str(info.value)


def test_open_listener_reports_a_taken_port():
    first = cli.open_listener("127.0.0.1", 0)
    try:
        port = first.getsockname()[1]
        with pytest.raises(cli.StartupError, match=f"127.0.0.1:{port} is already in use"):
            cli.open_listener("127.0.0.1", port)
    finally:
        first.close()


def test_open_listener_listens():
    listener = cli.open_listener("127.0.0.1", 0)
    try:
        with socket.create_connection(listener.getsockname(), timeout=2):
            conn, _ = listener.accept()
            conn.close()
    finally:
        listener.close()


def test_common_arguments_defaults_and_refusals():
    parser = argparse.ArgumentParser()
    cli.add_common_arguments(parser)
    args = parser.parse_args([])
    assert (args.bind, args.keepalive, args.timeout, args.graceful_timeout) == ("127.0.0.1:8000", 5.0, 10.0, 30.0)
    assert not (args.access_log or args.server_timing or args.trace)
    for bad in (["--timeout", "0"], ["--timeout", "soon"], ["--max-body", "-1"]):
        with pytest.raises(SystemExit):
            parser.parse_args(bad)


def test_request_variables_order_values_and_header_rules():
    variables = cgi_variables.request_variables(
        head(path=b"/caf%C3%A9/a%2Fb", query=b"x=1&y=%20", method="POST", headers=[
            (b"host", b"localhost:8000"),
            (b"content-type", b"application/json"),
            (b"content-length", b"12"),
            (b"accept", b"text/html"),
            (b"accept", b"text/plain"),
            (b"x_forwarded_for", b"6.6.6.6"),
            (b"x-forwarded-for", b"10.0.0.1"),
            (b"proxy", b"http://evil"),
        ]),
        client=("127.0.0.1", 50000), server=("127.0.0.1", 8000),
        exclude_headers=(b"proxy",))
    assert list(variables)[:11] == [
        "REQUEST_METHOD", "SCRIPT_NAME", "PATH_INFO", "QUERY_STRING", "CONTENT_TYPE",
        "CONTENT_LENGTH", "SERVER_NAME", "SERVER_PORT", "SERVER_PROTOCOL", "REMOTE_ADDR", "REMOTE_PORT"]
    # Decoded bytes as latin-1 characters, an encoded slash decoded too (RFC 3875 §4.1.5).
    assert variables["PATH_INFO"] == "/caf\xc3\xa9/a/b"
    assert variables["QUERY_STRING"] == "x=1&y=%20"
    assert variables["CONTENT_LENGTH"] == "12" and "HTTP_CONTENT_LENGTH" not in variables
    assert variables["HTTP_ACCEPT"] == "text/html, text/plain"
    assert variables["HTTP_X_FORWARDED_FOR"] == "10.0.0.1"
    assert "HTTP_PROXY" not in variables
    assert variables["SERVER_PROTOCOL"] == "HTTP/1.1" and variables["REMOTE_PORT"] == "50000"


@pytest.mark.parametrize("host_header, expected", [
    ((b"host", b"example.org:8443"), ("example.org", "8443")),
    ((b"host", b"example.org"), ("example.org", "80")),
    ((b"host", b"[::1]:8000"), ("[::1]", "8000")),
    ((b"host", b"[::1]"), ("[::1]", "80")),
    (None, ("localhost", "80")),
])
def test_request_variables_of_a_unix_socket_peer(host_header, expected):
    """No address on either side: REMOTE_ADDR 127.0.0.1, SERVER_* from the Host header."""
    variables = cgi_variables.request_variables(
        head(headers=[host_header] if host_header else []), client=None,
        server=("/run/site.sock", None))
    assert (variables["SERVER_NAME"], variables["SERVER_PORT"]) == expected
    assert variables["REMOTE_ADDR"] == "127.0.0.1" and "REMOTE_PORT" not in variables


def test_request_variables_content_length_override_and_absence():
    plain = cgi_variables.request_variables(head(), client=("::1", 1), server=("::1", 2))
    assert "CONTENT_LENGTH" not in plain and "CONTENT_TYPE" not in plain
    spooled = cgi_variables.request_variables(head(headers=[(b"transfer-encoding", b"chunked")]),
                                       client=("::1", 1), server=("::1", 2), content_length=5)
    assert spooled["CONTENT_LENGTH"] == "5"


def test_server_timing_format():
    assert trace.server_timing([("app", 0.001234), ("total", 0.002)]) == "app;dur=1.234, total;dur=2.000"


def test_trace_blocks(capsys):
    view = trace.Trace("asgi", 7)
    view.request_head(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    view.message("send", {"type": "http.response.body", "body": b"x" * 42, "more_body": False})
    view.mapping("environ", {"A": "1", "LONGER_KEY": b"v", "wsgi.input": object()})
    view.response(404, [(b"content-type", b"text/plain")])
    err = capsys.readouterr().err
    assert "── asgi #7 ── request head\n  GET / HTTP/1.1\n  Host: x\n" in err
    assert "'body': <42 bytes>" in err and "'more_body': False" in err
    assert "  A           '1'\n  LONGER_KEY  b'v'\n  wsgi.input  <object>\n" in err
    assert "  404 Not Found\n  content-type: text/plain\n" in err


def test_fail_exits_with_one_line(capsys):
    with pytest.raises(SystemExit) as info:
        cli.fail("address 127.0.0.1:8000 is already in use")
    assert info.value.code == 1
    assert capsys.readouterr().err.endswith("error: address 127.0.0.1:8000 is already in use\n")


def test_freeze_startup_objects_moves_the_live_objects_out_of_the_collectors_reach():
    import gc
    kept_alive = [{"n": n} for n in range(1000)]       # container objects gc tracks
    try:
        frozen = tuning.freeze_startup_objects()
        assert frozen == gc.get_freeze_count() >= len(kept_alive)
        # A full collection no longer visits them: they are in no generation.
        tracked = {id(obj) for generation in range(3) for obj in gc.get_objects(generation)}
        assert not any(id(obj) in tracked for obj in kept_alive)
    finally:
        gc.unfreeze()


def test_gc_freeze_flag_defaults_on_and_can_be_turned_off():
    parser = argparse.ArgumentParser()
    tuning.add_gc_freeze_argument(parser)
    assert parser.parse_args([]).gc_freeze is True
    assert parser.parse_args(["--no-gc-freeze"]).gc_freeze is False


MMAP_PROBE = """
import ctypes, sys
from servers import tuning

class MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks",
        "uordblks", "fordblks", "keepcost")]

libc = ctypes.CDLL(None)
libc.mallinfo2.restype = MallInfo2
if sys.argv[1] == "fixed":
    assert tuning.fix_mmap_threshold()
big = bytearray(4 * 1024 * 1024)     # mmap'd: over any threshold yet
del big                              # glibc's default now raises its threshold to 4 MiB
before = libc.mallinfo2().hblks
body = bytearray(300 * 1024)         # a request body's size
print(libc.mallinfo2().hblks - before)
"""


def test_a_fixed_mmap_threshold_maps_a_large_block_after_a_larger_one_was_freed():
    if "CS_GNU_LIBC_VERSION" not in os.confstr_names or not os.confstr("CS_GNU_LIBC_VERSION"):
        pytest.skip("mallopt() and mallinfo2() are the GNU C library's; this system has another")
    mapped = {mode: subprocess.run([sys.executable, "-c", MMAP_PROBE, mode], cwd=REPO,
                                   capture_output=True, text=True, check=True).stdout.strip()
              for mode in ("dynamic", "fixed")}
    # glibc's default serves the 300 KiB from its heap, where freed memory stays;
    # fixed at 128 KiB it gets its own mapping, which free() returns.
    assert mapped == {"dynamic": "0", "fixed": "1"}


def test_mmap_threshold_flag_defaults_on_and_can_be_turned_off():
    parser = argparse.ArgumentParser()
    tuning.add_mmap_threshold_argument(parser)
    assert parser.parse_args([]).fixed_mmap_threshold is True
    assert parser.parse_args(["--no-fixed-mmap-threshold"]).fixed_mmap_threshold is False
    assert tuning.fix_mmap_threshold_if_asked(
        parser.parse_args(["--no-fixed-mmap-threshold"])) == ""
