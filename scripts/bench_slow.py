"""Slow clients: how long a normal request waits while N clients dribble, alone and behind nginx.

    python -m scripts.bench_slow                     # 0 and 50 slow clients, every server, alone and behind nginx
    python -m scripts.bench_slow --quick             # 0 and 30 slow clients, shorter (about a minute)
    python -m scripts.bench_slow --servers gunicorn,wsgi --slow 0,10,50 --mode head
    python -m scripts.bench_slow --servers all       # also gunicorn-uvicorn, daphne, granian (WSGI, ASGI)
    python -m scripts.bench --slow-clients ...       # the same, from the benchmark's command

The experiment behind "do I need nginx in front of gunicorn?". A slow client is one
on a bad mobile link, or a slowloris attacker: it holds a connection open and sends
or reads a byte now and then. Three kinds, mixed evenly by default (--mode mix):

- head:   sends its request head one byte per --interval, never finishing it;
- upload: sends a complete head announcing a 1 MB body, then the body a byte at a time;
- read:   asks for a 20 kB response with a tiny receive buffer and reads it a byte at a time.

When the server closes such a connection (a head timeout, say), the client opens a
new one, as an attacker would. While N of them are connected, one normal client
sends GET /hello in a closed loop for --duration seconds; its p50 and p99 latency,
and how many of its requests failed (an error, or no answer within 2 s; 0.5 s with
--quick), are the result. When none came back the row says "no answer".

Each server runs alone, then behind nginx (scripts/nginx.py, one backend, over TCP),
with the server and nginx pinned to core 0 and this process (the slow clients and
the normal client) to core 1 when there are two cores (unpinned, said once and recorded,
where the platform cannot pin: scripts/system.py). The goal of issue 14: behind
nginx every server keeps p99 < 100 ms with 50 slow clients, and the toy servers do
it alone too. Results: results/slow-clients.json (with metadata) and .png.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime
import importlib.metadata
import json
import math
import os
import platform
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

from scripts import loadgen, system
from scripts.launch import KINDS, REPO, ServerProcess, free_port, server_command
from scripts.nginx import INSTALL, behind_nginx, nginx_program

# The servers of the lesson: gunicorn's two WSGI workers, the toy servers, uvicorn.
DEFAULT_SERVERS = ("gunicorn", "gunicorn-gthread", "wsgi", "asgi", "uvicorn")
# --servers all: with the other servers people deploy.
ALL_SERVERS = DEFAULT_SERVERS + ("gunicorn-uvicorn", "daphne", "granian-wsgi", "granian-asgi")
MODES = ("head", "upload", "read")
POSITIONS = ("alone", "nginx")
GOAL_MS = 100.0
NORMAL_PATH = "/hello"
UPLOAD_BYTES = 1_000_000
# /stream?chunks=1000&delay_ms=0 is about 20 kB, more than a 1 kB receive window
# and the server's first send buffer hold, so a sync server's write blocks on it.
READ_PATH = "/stream?chunks=1000&delay_ms=0"
READ_BUFFER = 1024

# A normal request waiting longer than `timeout` counts as failed; the timeout is
# shorter than the duration so that a request stuck behind slow clients is counted.
# `settle`: the seconds between the slow clients connecting and the measurement.
# The readers' first responses cost the server about 0.1 s each to produce (a
# thousand chunks), so a single-threaded server needs a moment to get past that burst.
FULL = {"slow": (0, 50), "duration": 5.0, "timeout": 2.0, "settle": 4.0}
QUICK = {"slow": (0, 30), "duration": 1.0, "timeout": 0.5, "settle": 2.0}


# --- the slow clients ----------------------------------------------------------------------------

class SlowClients:
    """`count` slow clients against host:port, on an event loop in a thread of their own.

        with SlowClients(HOST, port, 50, mode="mix"):
            ...  # measure normal requests here

    Entering waits until every client has connected once (and `settle` seconds more,
    for the server to take them up); leaving closes every connection.
    """

    def __init__(self, host: str, port: int, count: int, *, mode: str = "mix", interval: float = 1.0,
                 settle: float = 1.0, connect_timeout: float = 10.0):
        if mode not in (*MODES, "mix"):
            raise ValueError(f"unknown slow-client mode {mode!r}; choose from {', '.join(MODES)} or mix")
        self.host, self.port, self.count = host, port, count
        self.modes = [MODES[i % len(MODES)] if mode == "mix" else mode for i in range(count)]
        self.interval, self.settle, self.connect_timeout = interval, settle, connect_timeout
        self.connected = 0
        self.reconnects = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._all_connected = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> "SlowClients":
        if self.count == 0:
            return self
        ready = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(ready,), daemon=True)
        self._thread.start()
        ready.wait()
        if not self._all_connected.wait(self.connect_timeout):
            self.__exit__()
            raise RuntimeError(f"only {self.connected} of {self.count} slow clients could connect "
                               f"within {self.connect_timeout:.0f} s")
        time.sleep(self.settle)
        return self

    def __exit__(self, *exc_info) -> None:
        if self._thread is None:
            return
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout=10)
        self._thread = None

    def _run(self, ready: threading.Event) -> None:
        self._loop = asyncio.new_event_loop()
        self._stop = asyncio.Event()
        ready.set()
        try:
            self._loop.run_until_complete(self._main())
        finally:
            self._loop.close()

    async def _main(self) -> None:
        tasks = [asyncio.ensure_future(self._client(mode)) for mode in self.modes]
        await self._stop.wait()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _client(self, mode: str) -> None:
        first = True
        while True:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setblocking(False)
            if mode == "read":
                # Set before connecting: the window the client advertises follows from it.
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, READ_BUFFER)
            try:
                await self._loop.sock_connect(sock, (self.host, self.port))
                if first:
                    first = False
                    self.connected += 1
                    if self.connected == self.count:
                        self._all_connected.set()
                else:
                    self.reconnects += 1
                await getattr(self, f"_{mode}")(sock)
            except OSError:
                pass  # refused, reset or closed by the server: come back, as an attacker would
            finally:
                sock.close()
            await asyncio.sleep(self.interval)

    async def _head(self, sock: socket.socket) -> None:
        await self._loop.sock_sendall(sock, b"GET /hello HTTP/1.1\r\nHost: localhost\r\nX-Slow: ")
        while True:
            await asyncio.sleep(self.interval)
            await self._loop.sock_sendall(sock, b"x")

    async def _upload(self, sock: socket.socket) -> None:
        await self._loop.sock_sendall(sock, (
            f"POST /echo HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/octet-stream\r\n"
            f"Content-Length: {UPLOAD_BYTES}\r\n\r\n").encode())
        for _ in range(UPLOAD_BYTES):
            await asyncio.sleep(self.interval)
            await self._loop.sock_sendall(sock, b"x")

    async def _read(self, sock: socket.socket) -> None:
        await self._loop.sock_sendall(sock, f"GET {READ_PATH} HTTP/1.1\r\nHost: localhost\r\n\r\n".encode())
        while await self._loop.sock_recv(sock, 1):
            await asyncio.sleep(self.interval)


# --- one measurement ---------------------------------------------------------------------------

def normal_requests(url: str, *, duration: float, timeout: float) -> dict:
    """One client sending GET /hello in a closed loop: what a normal visitor gets."""
    result = loadgen.run(url + NORMAL_PATH, connections=1, duration=duration, timeout=timeout)
    return {
        "requests": result.requests,
        # Errors include the requests that waited past `timeout`; the one request in
        # flight when the duration ends is not counted (it is "unfinished").
        "failed": result.error_count,
        "unfinished": result.unfinished,
        "errors": {kind: count for kind, count in result.errors.items() if count},
        "p50_ms": _ms(result.percentile(50)),
        "p99_ms": _ms(result.percentile(99)),
    }


def _ms(seconds: float) -> float | None:
    return None if math.isnan(seconds) else round(seconds * 1000, 3)


def answered(row: dict) -> bool:
    """Every normal request came back (so p99 means something)."""
    return row["requests"] > 0 and row["failed"] == 0


def recover(url: str, timeout: float = 40.0) -> None:
    """Wait until the server answers again after the slow clients left (a sync worker
    may still be stuck in one of their connections, or killed and restarted)."""
    loadgen.run(url + NORMAL_PATH, connections=1, requests=1, timeout=timeout)


@contextlib.contextmanager
def serving(kind: str, position: str, cpus: set[int] | None):
    """(url, host, port) of `kind` alone or behind nginx, stopped at the end."""
    if position == "nginx":
        with behind_nginx(kind, access_log=False, backend_cpus=cpus, nginx_cpus=cpus) as site:
            yield site.url, site.host, site.port
        return
    port = free_port()
    with ServerProcess(server_command(kind, port=port), port=port, cpus=cpus) as server:
        yield server.url, server.host, server.port


def split_cpus() -> tuple[set[int] | None, set[int] | None]:
    """(servers' CPUs, ours): core 0 and the rest, when there are at least two and the
    platform can pin (scripts/system.py); else (None, None)."""
    server_cpus, loader_cpus = system.split_cpus()
    if not server_cpus:
        return None, None
    cpus = sorted(server_cpus | loader_cpus)
    return {cpus[0]}, set(cpus[1:])


def run(servers=DEFAULT_SERVERS, *, slow=FULL["slow"], mode="mix", positions=POSITIONS,
        duration=FULL["duration"], timeout=FULL["timeout"], settle=FULL["settle"],
        interval=1.0, pin=True, progress=None) -> list[dict]:
    """Measure every server x position x slow-client count; one row each."""
    server_cpus, own_cpus = split_cpus() if pin else (None, None)
    rows = []
    steps = [(kind, position) for kind in servers for position in positions]
    for kind, position in steps:
        if progress is not None:
            progress.set_description(f"{kind} {position}")
        with serving(kind, position, server_cpus) as (url, host, port):
            with _pinned(own_cpus):
                for count in slow:
                    with SlowClients(host, port, count, mode=mode, interval=interval, settle=settle) as clients:
                        row = normal_requests(url, duration=duration, timeout=timeout)
                    rows.append({"server": kind, "position": position, "slow_clients": count,
                                 "mode": mode, "reconnects": clients.reconnects, **row})
                    recover(url)
        if progress is not None:
            progress.update()
    return rows


@contextlib.contextmanager
def _pinned(cpus: set[int] | None):
    if not cpus:
        yield
        return
    before = system.pinned_to(0)
    system.pin(cpus)
    try:
        yield
    finally:
        system.pin(set(before) if before else None)


# --- results ---------------------------------------------------------------------------------------

def metadata(options: dict) -> dict:
    def version(package):
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            return importlib.metadata.version(package)
        return None

    def command(*argv):
        with contextlib.suppress(OSError, subprocess.CalledProcessError):
            done = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, check=True)
            return (done.stdout + done.stderr).strip()
        return None

    program = nginx_program()
    described = system.description()
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "git_commit": command("git", "rev-parse", "HEAD"),
        "git_dirty": bool(command("git", "status", "--porcelain", "--untracked-files=no")),
        "cpu_model": described["cpu_model"],
        "cores": os.cpu_count(),
        "load_average": os.getloadavg(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "nginx": command(program, "-v") if program else None,
        "packages": {name: version(name) for name in ("django", "gunicorn", "uvicorn", "h11")},
        "options": options,
        "system": described,
    }


def goal_lines(rows: list[dict], goal_slow: int) -> list[str]:
    """Issue 14's goal, judged on the rows with `goal_slow` slow clients."""
    lines = []
    for row in rows:
        if row["slow_clients"] != goal_slow:
            continue
        needed = row["position"] == "nginx" or row["server"] in ("wsgi", "asgi", "cgi")
        if not needed:
            continue
        met = answered(row) and row["p99_ms"] < GOAL_MS
        lines.append(f"{row['server']} {row['position']}: {'met' if met else 'MISSED'} ({_shown(row)})")
    return lines


def _shown(row: dict) -> str:
    if row["requests"] == 0:
        return "no answer"
    text = f"{row['p99_ms']:.1f} ms"
    return text + (f", {row['failed']} failed" if row["failed"] else "")


def table_lines(rows: list[dict]) -> list[str]:
    """Per server: p99 of normal requests for each slow-client count, alone and behind nginx."""
    counts = sorted({row["slow_clients"] for row in rows})
    columns = [(position, count) for position in POSITIONS for count in counts
               if any(r["position"] == position and r["slow_clients"] == count for r in rows)]
    header = ["server"] + [f"{'alone' if p == 'alone' else 'nginx'}, {c} slow" for p, c in columns]
    body = []
    for kind in dict.fromkeys(row["server"] for row in rows):
        cells = [kind]
        for position, count in columns:
            match = [r for r in rows if r["server"] == kind and r["position"] == position and r["slow_clients"] == count]
            cells.append(_shown(match[0]) if match else "-")
        body.append(cells)
    widths = [max(len(str(line[i])) for line in [header, *body]) for i in range(len(header))]
    format_line = lambda cells: "  ".join(str(cell).ljust(width) for cell, width in zip(cells, widths))
    return ["normal-request p99 (GET /hello)", format_line(header), *map(format_line, body)]


def plot(rows: list[dict], ax=None):
    """p99 of normal requests against the number of slow clients; a request that never
    came back is drawn at the top, marked x."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(8, 4.5))
    answered_p99 = [r["p99_ms"] for r in rows if answered(r)]
    ceiling = max([*answered_p99, GOAL_MS]) * 3
    for index, kind in enumerate(dict.fromkeys(r["server"] for r in rows)):
        color = f"C{index}"
        for position, style in (("alone", "-"), ("nginx", "--")):
            mine = sorted((r for r in rows if r["server"] == kind and r["position"] == position),
                          key=lambda r: r["slow_clients"])
            if not mine:
                continue
            xs = [r["slow_clients"] for r in mine]
            ys = [r["p99_ms"] if answered(r) else ceiling for r in mine]
            ax.plot(xs, ys, style, color=color, marker="o", label=f"{kind} ({position})")
            for x, r in zip(xs, mine):
                if not answered(r):
                    ax.plot([x], [ceiling], "x", color=color, markersize=12, markeredgewidth=2)
    ax.axhline(GOAL_MS, color="grey", linewidth=0.8, linestyle=":")
    ax.annotate(f"goal: {GOAL_MS:.0f} ms", (0, GOAL_MS), textcoords="offset points", xytext=(4, 3),
                fontsize="small", color="grey")
    ax.annotate("x: no answer", (0, ceiling), textcoords="offset points", xytext=(4, -12),
                fontsize="small", color="grey")
    ax.set_yscale("log")
    ax.set_xlabel("slow clients connected")
    ax.set_ylabel("p99 of GET /hello (ms); x = failed")
    ax.set_title("A normal request while slow clients hold connections (solid: alone, dashed: behind nginx)")
    ax.legend(fontsize="small", ncol=2)
    return ax


def write_results(rows: list[dict], meta: dict, out: Path, name: str) -> tuple[Path, Path]:
    out.mkdir(parents=True, exist_ok=True)
    json_path = out / f"{name}.json"
    json_path.write_text(json.dumps({"metadata": meta, "rows": rows}, indent=1))
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, ax = plt.subplots(figsize=(9, 5))
    plot(rows, ax)
    figure.tight_layout()
    png_path = out / f"{name}.png"
    figure.savefig(png_path, dpi=120)
    plt.close(figure)
    return json_path, png_path


# --- command line -----------------------------------------------------------------------------------

def _interrupt(signum, frame):
    raise KeyboardInterrupt


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of this mode (also offered by `python -m scripts.bench --slow-clients`)."""
    parser.add_argument("--servers", help=f"comma-separated kinds (default {','.join(DEFAULT_SERVERS)}), "
                                          f"any of {', '.join(KINDS)}; or all: {','.join(ALL_SERVERS)}")
    parser.add_argument("--slow", help="comma-separated slow-client counts (default 0,50)")
    parser.add_argument("--mode", default="mix", choices=(*MODES, "mix"),
                        help="what the slow clients do (default mix: a third each)")
    parser.add_argument("--positions", default="alone,nginx", help="alone, nginx or both (default alone,nginx)")
    parser.add_argument("--duration", type=float, help="seconds of normal requests per measurement")
    parser.add_argument("--interval", type=float, default=1.0, help="seconds between a slow client's bytes (1)")
    parser.add_argument("--quick", action="store_true", help="short measurements")
    parser.add_argument("--no-pin", action="store_true", help="do not pin the servers and the clients to cores")
    parser.add_argument("--out", default=str(REPO / "results"), help="folder for the results (results/)")
    parser.add_argument("--name", default="slow-clients", help="file name without extension (slow-clients)")


def main(argv: list[str] | None = None, parser: argparse.ArgumentParser | None = None) -> int:
    if parser is None:
        parser = argparse.ArgumentParser(prog="python -m scripts.bench_slow", description=__doc__.split("\n\n")[0])
        add_arguments(parser)
    args = parser.parse_args(argv)
    servers = (ALL_SERVERS if args.servers == "all" else tuple(args.servers.split(",")) if args.servers
               else DEFAULT_SERVERS)
    unknown = [kind for kind in servers if kind not in KINDS]
    if unknown:
        parser.error(f"unknown server(s) {', '.join(unknown)}; choose from {', '.join(KINDS)}")
    positions = tuple(args.positions.split(","))
    if not positions or any(position not in POSITIONS for position in positions):
        parser.error("--positions takes alone, nginx or alone,nginx")
    profile = QUICK if args.quick else FULL
    try:
        slow = tuple(int(count) for count in args.slow.split(",")) if args.slow else profile["slow"]
    except ValueError:
        parser.error(f"--slow takes whole numbers separated by commas, got {args.slow!r}")
    if any(count < 0 for count in slow):
        parser.error("--slow: counts cannot be negative")
    if "nginx" in positions and nginx_program() is None:
        print(f"nginx is not installed: {INSTALL} (or measure --positions alone)", file=sys.stderr)
        return 1
    duration = args.duration or profile["duration"]
    options = {"servers": servers, "slow": slow, "mode": args.mode, "positions": positions,
               "duration": duration, "timeout": profile["timeout"], "settle": profile["settle"],
               "interval": args.interval, "pinned": not args.no_pin and system.unpinned_reason() is None,
               "unpinned_reason": "--no-pin" if args.no_pin else system.unpinned_reason(),
               "normal_path": NORMAL_PATH}
    if not args.no_pin:
        system.announce_unpinned()
    signal.signal(signal.SIGTERM, _interrupt)
    from tqdm import tqdm

    started = time.monotonic()
    try:
        with tqdm(total=len(servers) * len(positions), unit="setup", file=sys.stderr) as progress:
            rows = run(servers, slow=slow, mode=args.mode, positions=positions, duration=duration,
                       timeout=profile["timeout"], settle=profile["settle"], interval=args.interval,
                       pin=not args.no_pin, progress=progress)
    except KeyboardInterrupt:
        print("interrupted; every server was stopped", file=sys.stderr)
        return 130
    meta = metadata(options)
    meta["elapsed_s"] = round(time.monotonic() - started, 1)
    json_path, png_path = write_results(rows, meta, Path(args.out), args.name)
    print("\n".join(table_lines(rows)))
    goal_slow = max(slow)
    if goal_slow > 0:
        print(f"goal (p99 < {GOAL_MS:.0f} ms with {goal_slow} slow clients): " + "; ".join(goal_lines(rows, goal_slow)))
    print(f"{len(rows)} rows in {meta['elapsed_s']:.0f} s -> {json_path} and {png_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
