"""scripts.launch: servers start, report failures with their output, and never outlive their owner."""

import os
import resource
import signal
import socket
import subprocess
import sys
import textwrap
import time

import psutil
import pytest

from scripts import system
from scripts.launch import REPO, ServerProcess, ServerStartError, free_port, server_command

# A stand-in server: listens, and has a child process, like a pre-fork server or a CGI runner.
FAKE_SERVER = textwrap.dedent("""
    import socket, subprocess, sys, time
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    print("child", child.pid, flush=True)
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen()
    print("Listening", flush=True)
    time.sleep(60)
""")


def alive(pid):
    """Running (a zombie, exited but not yet reaped, is not)."""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def child_pid(server):
    deadline = time.monotonic() + 5
    while "child" not in server.output() and time.monotonic() < deadline:
        time.sleep(0.02)
    return int(server.output().split("child ")[1].split()[0])


def test_stop_takes_the_whole_process_group():
    port = free_port()
    with ServerProcess([sys.executable, "-c", FAKE_SERVER, str(port)], port=port) as server:
        pid, child = server.pid, child_pid(server)
        assert alive(pid) and alive(child)
    assert not alive(pid)
    deadline = time.monotonic() + 5
    while alive(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not alive(child)


def test_exception_inside_with_block_still_stops_server():
    port = free_port()
    with pytest.raises(ZeroDivisionError):
        with ServerProcess([sys.executable, "-c", FAKE_SERVER, str(port)], port=port) as server:
            pid = server.pid
            1 / 0
    assert not alive(pid)


def test_a_server_that_exits_raises_with_its_output():
    port = free_port()
    with pytest.raises(ServerStartError, match="no such thing"):
        ServerProcess([sys.executable, "-c", "import sys; sys.exit('no such thing')"], port=port).start()


def test_free_port_does_not_hand_out_a_port_twice():
    # Among a thousand ports drawn from the kernel's ephemeral range, some would repeat.
    ports = [free_port() for _ in range(1000)]
    assert len(set(ports)) == len(ports)


def test_a_port_another_program_listens_on_is_not_taken_for_the_server():
    port = free_port()
    with socket.create_server(("127.0.0.1", port)):
        # The server cannot bind the port and says so: that is the error, not a "ready".
        with pytest.raises(ServerStartError, match="Address already in use"):
            ServerProcess([sys.executable, "-c", FAKE_SERVER, str(port)], port=port).start()
        # A server that never binds it is not mistaken for the program that did.
        idle = ServerProcess([sys.executable, "-c", "import time; time.sleep(60)"], port=port,
                             ready_timeout=1)
        with pytest.raises(ServerStartError, match="another process listens on"):
            idle.start()
        assert idle.process.poll() is not None
    # With the port let go, the same server is simply not listening.
    with pytest.raises(ServerStartError, match="did not accept connections"):
        ServerProcess([sys.executable, "-c", "import time; time.sleep(60)"], port=port, ready_timeout=1).start()


def test_servers_die_with_the_process_that_started_them():
    # The owner is SIGKILLed: no atexit runs, the kernel's parent-death signal does the work.
    port = free_port()
    owner = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import sys, time
        from scripts.launch import ServerProcess
        server = ServerProcess([sys.executable, "-c", {FAKE_SERVER!r}, "{port}"], port={port}).start()
        print(server.pid, flush=True)
        time.sleep(60)
    """)], cwd=REPO, stdout=subprocess.PIPE, text=True)
    try:
        pid = int(owner.stdout.readline())
        assert alive(pid)
    finally:
        owner.kill()
        owner.wait()
    deadline = time.monotonic() + 5
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not alive(pid)


def test_server_command_kinds():
    assert server_command("wsgi", port=1)[1:5] == ["-m", "servers.wsgi_server", "sample_site.wsgi:application", "--bind"]
    assert "--no-control-socket" in server_command("gunicorn-gthread", port=1)
    assert server_command("uvicorn-fast", port=9, app="a:b", extra=["--x"])[-1] == "--x"
    with pytest.raises(ValueError, match="unknown server kind"):
        server_command("nginx", port=1)


def test_servers_start_with_the_open_files_limit_raised_to_the_hard_limit():
    # A server holding thousands of WebSockets needs a descriptor for each.
    port = free_port()
    report = textwrap.dedent("""
        import resource, socket, sys, time
        print("nofile", *resource.getrlimit(resource.RLIMIT_NOFILE), flush=True)
        s = socket.create_server(("127.0.0.1", int(sys.argv[1]))); time.sleep(60)
    """)
    with ServerProcess([sys.executable, "-c", report, str(port)], port=port) as server:
        # Printed before it listened, but our reader thread may not have collected it yet.
        deadline = time.monotonic() + 5
        while "nofile" not in server.output() and time.monotonic() < deadline:
            time.sleep(0.02)
        soft, hard = (int(value) for value in server.output().split("nofile ")[1].split()[:2])
    assert soft == hard or hard == resource.RLIM_INFINITY


def test_split_cpus_keeps_the_loader_apart():
    server_cpus, loader_cpus = system.split_cpus()
    if system.unpinned_reason():
        assert (server_cpus, loader_cpus) == (None, None)
    else:
        assert len(loader_cpus) == 1 and not server_cpus & loader_cpus
        assert server_cpus | loader_cpus == os.sched_getaffinity(0)
