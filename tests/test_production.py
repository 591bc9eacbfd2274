"""The slow-client benchmark (scripts/bench_slow.py) that notebook 05 (production) runs.

The nginx launcher and the site behind nginx are tested in tests/test_nginx.py; notebook 05
itself, as the student gets it and as the teacher edition, in tests/test_notebooks.py.
"""

import json
import socket
import subprocess
import sys

import pytest

from scripts import bench_slow
from scripts.bench_slow import SlowClients
from scripts.launch import REPO, ServerProcess, free_port, server_command
from tests.external import require_program
from tests.http_client import connect, exchange, get


def row(server, position, slow, p99, failed=0, requests=100):
    return {"server": server, "position": position, "slow_clients": slow, "mode": "mix", "reconnects": 0,
            "requests": requests, "failed": failed, "unfinished": 1, "errors": {},
            "p50_ms": p99 and p99 / 2, "p99_ms": p99}


def test_table_and_goals_say_which_server_failed():
    rows = [row("gunicorn", "alone", 0, 2.0), row("gunicorn", "alone", 50, None, failed=1, requests=0),
            row("gunicorn", "nginx", 0, 3.0), row("gunicorn", "nginx", 50, 4.5),
            row("wsgi", "alone", 0, 1.0), row("wsgi", "alone", 50, 150.0),
            row("wsgi", "nginx", 0, 2.0), row("wsgi", "nginx", 50, 20.0, failed=2)]
    table = bench_slow.table_lines(rows)
    assert table[1].split() == ["server", "alone,", "0", "slow", "alone,", "50", "slow",
                                "nginx,", "0", "slow", "nginx,", "50", "slow"]
    assert "no answer" in table[2] and "4.5 ms" in table[2]
    assert "20.0 ms, 2 failed" in table[3]
    goals = bench_slow.goal_lines(rows, 50)
    # gunicorn alone is not held to the goal; the toy servers are, alone too.
    assert goals == ["gunicorn nginx: met (4.5 ms)", "wsgi alone: MISSED (150.0 ms)",
                     "wsgi nginx: MISSED (20.0 ms, 2 failed)"]


def test_bad_options_are_refused_in_one_line():
    run = lambda *args: subprocess.run([sys.executable, "-m", "scripts.bench_slow", *args], cwd=REPO,
                                       capture_output=True, text=True, timeout=60)
    assert "--slow" in run("--help").stdout
    for args, message in [(["--slow", "a,b"], "--slow takes whole numbers"),
                          (["--servers", "apache"], "unknown server(s) apache"),
                          (["--positions", "behind"], "--positions takes alone, nginx")]:
        refused = run(*args)
        assert refused.returncode == 2 and message in refused.stderr, refused.stderr


def test_without_nginx_the_benchmark_says_so_in_one_line(monkeypatch, capsys, tmp_path):
    monkeypatch.setattr(bench_slow, "nginx_program", lambda: None)
    assert bench_slow.main(["--servers", "asgi", "--out", str(tmp_path)]) == 1
    assert capsys.readouterr().err.strip().splitlines() == [
        "nginx is not installed: sudo apt-get update && sudo apt-get install -y nginx (or measure --positions alone)"]
    assert not list(tmp_path.iterdir())


def test_without_nginx_the_servers_alone_are_still_measured(monkeypatch, tmp_path):
    monkeypatch.setattr(bench_slow, "nginx_program", lambda: None)
    assert bench_slow.main(["--servers", "asgi", "--positions", "alone", "--slow", "0", "--duration", "0.3",
                            "--no-pin", "--out", str(tmp_path), "--name", "alone"]) == 0
    rows = json.loads((tmp_path / "alone.json").read_text())["rows"]
    assert [(r["server"], r["position"]) for r in rows] == [("asgi", "alone")] and rows[0]["requests"] > 0


def test_slow_heads_hold_the_only_gunicorn_sync_worker_until_they_leave():
    port = free_port()
    with ServerProcess(server_command("gunicorn", port=port), port=port) as server:
        with SlowClients(server.host, server.port, 2, mode="head", interval=0.5, settle=0.5):
            with connect(server, timeout=3) as sock:
                sock.sendall(get("/hello"))
                # The worker is reading the first slow client's head, which never ends:
                # the request waits (gunicorn gives up on a silent worker after 30 s only).
                with pytest.raises(socket.timeout):
                    sock.recv(1)
        # The slow clients have hung up: the worker is free again.
        assert exchange(server, get("/hello"))[2] == b"Hello, world!\n"


def test_a_small_run_writes_results_with_metadata_and_a_plot(tmp_path):
    require_program("nginx")
    completed = subprocess.run(
        [sys.executable, "-m", "scripts.bench", "--slow-clients", "--servers", "asgi", "--slow", "0,3",
         "--duration", "0.5", "--out", str(tmp_path), "--name", "small"],
        cwd=REPO, capture_output=True, text=True, timeout=170)
    assert completed.returncode == 0, completed.stdout + completed.stderr
    results = json.loads((tmp_path / "small.json").read_text())
    assert {"date", "git_commit", "cpu_model", "cores", "python", "nginx", "options"} <= set(results["metadata"])
    assert results["metadata"]["nginx"].startswith("nginx version")
    measured = {(r["position"], r["slow_clients"]): r for r in results["rows"]}
    assert set(measured) == {("alone", 0), ("alone", 3), ("nginx", 0), ("nginx", 3)}
    assert all(r["server"] == "asgi" and r["requests"] > 0 for r in measured.values())
    assert (tmp_path / "small.png").stat().st_size > 10_000
    assert "goal (p99 < 100 ms with 3 slow clients): asgi alone:" in completed.stdout
