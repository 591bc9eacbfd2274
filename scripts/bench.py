"""The benchmark matrix: servers x endpoints x concurrency, one results file.

    python -m scripts.bench --quick                 # the default matrix, short (about two minutes)
    python -m scripts.bench                         # the full matrix (tens of minutes)
    python -m scripts.bench --servers wsgi,gunicorn-gthread --endpoints hello --concurrency 1,32
    python -m scripts.bench --goals all             # the comparisons the server issues are judged by
    python -m scripts.bench --websocket [--quick]   # WebSocket echo round trips and memory per idle socket
    python -m scripts.bench --slow-clients          # slow clients, alone and behind nginx (scripts/bench_slow.py)

How it measures (docs/design.md, "Benchmarks: how we measure"):
- every server is started with scripts.launch on a free port and pinned to one CPU set
  (core 0 on a 2-core machine; a CPU set is inherited, so workers and CGI children
  run there too); this process, which runs the load generator, pins itself to the other.
  Where processes cannot be pinned (macOS has no call for it) the run is unpinned, says
  so once, and records why in its metadata (scripts/system.py decides);
- the servers of one comparison run side by side and are measured in turn, A B C A B C ...,
  so slow drift of a shared machine falls on all of them alike; each cell is warmed up
  first, and after each measurement the server is given time to finish what it was doing;
- each row is one server, endpoint, concurrency and repeat, with the server's RSS
  (all its processes) and the CPU seconds it used (on Linux with the children it
  reaped, a CGI runner's finished requests; other systems do not report those);
  the summary gives the median of the repeats, their spread, and each toy server's
  ratio against its reference.

The WebSocket matrix (--websocket, and --goals websocket inside --goals all) meets the toy
ASGI server, uvicorn and daphne on /ws/echo: echo round trips per second at 64 connections,
and the memory of each idle open WebSocket (the server's RSS with N open minus its RSS with
none, over N) at 1,000 and 5,000; a server that does not complete an echo there is skipped
with the reason. The server catalogue is scripts.catalogue; the check of our load generator
against wrk (and of its WebSocket mode against the websockets library) is scripts.bench_wrk.

Results: results/<name>.csv and results/<name>.json (with a metadata block: CPU, cores,
versions, date, commit, pinning, and the exact server command lines).
A server kind whose module has not been written yet is skipped with a message.
"""

import argparse
import asyncio
import collections
import contextlib
import csv
import dataclasses
import datetime
import importlib.metadata
import json
import math
import os
import platform
import resource
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

from scripts import bench_slow, loadgen, system
from scripts.catalogue import BARE_WEBSOCKET_APP, HTTP_DEFAULT_SERVERS, SERVERS, TOY_SERVERS, command, server_available
from scripts.launch import DEFAULT_APPS, REPO, ServerProcess, ServerStartError, free_port
from servers.cgi_server import ENVIRONMENT_ALLOWED_PREFIX, ENVIRONMENT_ALLOWLIST

# --- what can be measured -----------------------------------------------------------------

# A process per request does not survive hundreds of concurrent clients on 2 cores;
# the CGI runner is measured at low concurrency only.
CGI_MAX_CONCURRENCY = 8
# Long enough to outlast a measurement; frequent enough that a server notices a closed
# stream within 0.2 s (it learns only when its next write fails).
STREAM_PATH = "/events?count=100&interval_ms=200"


@dataclasses.dataclass(frozen=True)
class Endpoint:
    path: str
    app: str = "site"            # "site": the sample site; "bare": scripts.hello_apps
    method: str = "GET"
    body_size: int = 0
    streams: bool = False        # hold long-lived streams instead of a request loop
    sleeps: bool = False         # the view waits (I/O) rather than computes
    concurrency: tuple = (32,)   # the full matrix's levels


ENDPOINTS = {
    "bare":        Endpoint("/", app="bare", concurrency=(1, 32)),
    "hello":       Endpoint("/hello", concurrency=(1, 32)),
    "hello-async": Endpoint("/hello-async", concurrency=(1, 32)),
    "products":    Endpoint("/products", concurrency=(1, 32)),
    "api":         Endpoint("/api/products", concurrency=(32,)),
    "io":          Endpoint("/io?ms=50", sleeps=True, concurrency=(1, 8, 64, 256, 512)),
    "io-async":    Endpoint("/io-async?ms=50", sleeps=True, concurrency=(1, 8, 64, 256, 512)),
    "cpu":         Endpoint("/cpu?n=20000", concurrency=(1, 8)),
    "upload":      Endpoint("/echo", method="POST", body_size=1_000_000, concurrency=(4,)),
    "events":      Endpoint(STREAM_PATH, streams=True, concurrency=(16, 64, 256)),
}
CGI_ENDPOINTS = ("hello", "products", "api", "cpu", "upload")

# cgi_duration: a CGI request takes a few hundred milliseconds (Django is imported each time),
# so its cells run longer to count enough of them. hold_timeout: how long a stream may take to open.
FULL = {"endpoints": list(ENDPOINTS), "duration": 3.0, "repeats": 3, "warmup": 1.0,
        "cgi_duration": 5.0, "hold_timeout": 3.0}
# --quick: the same kinds of figure, fewer cells and shorter ones (about two minutes on 2 cores).
QUICK = {
    "endpoints": {"bare": (32,), "hello": (32,), "products": (32,), "io": (8, 128),
                  "io-async": (8, 128), "events": (16, 64)},
    "cgi": {"hello": (2,)},
    "duration": 0.5, "repeats": 3, "warmup": 0.25, "cgi_duration": 2.0, "hold_timeout": 1.0,
    "sync_cap": 8,
}

CSV_COLUMNS = [
    "server", "family", "app", "endpoint", "method", "path", "concurrency", "repeat",
    "duration_s", "requests", "rps", "p50_ms", "p90_ms", "p99_ms", "max_ms", "mean_ms", "bytes",
    "refused", "reset", "timeout", "protocol", "non_2xx", "unfinished",
    "rss_mb", "cpu_s", "cpu_ms_per_request", "held", "failed", "rss_idle_mb", "kb_per_connection",
    "overhead_ms", "server_timing_ms", "settle_s",
    "handshake", "closed", "mismatch", "dropped", "loader_cpu_share",
]


# Wall-clock seconds spent in each activity of a run, reported in the metadata.
TIME_SPENT = collections.Counter()


@contextlib.contextmanager
def spending(activity):
    started = time.monotonic()
    try:
        yield
    finally:
        TIME_SPENT[activity] += time.monotonic() - started


# --- CPU sets, memory and CPU time: scripts/system.py, which knows the platform ----------------

def pin_loader():
    """(server cpus, loader cpus); this process, the load generator, is pinned to the loader's.

    Where pinning is unavailable (macOS, one core, TOOLKIT_FORCE_FALLBACKS) both are None,
    and the run says so once: server and load generator then share every core.
    """
    server_cpus, loader_cpus = system.split_cpus()
    system.announce_unpinned()
    system.pin(loader_cpus)
    return server_cpus, loader_cpus


# --- one running server ----------------------------------------------------------------------

class Server:
    """A started server and how to reach it."""

    def __init__(self, kind, app, cpus):
        self.kind = kind
        self.app = app
        self.port = free_port()
        self.argv = command(kind, app, self.port)
        self.process = ServerProcess(self.argv, port=self.port, cpus=cpus)

    def start(self):
        self.process.start()
        return self

    @property
    def url(self):
        return self.process.url

    @property
    def pgid(self):
        return self.process.pid

    def pinned_to(self):
        return system.pinned_to(self.process.pid)

    def settle(self, path, timeout=60.0):
        """Wait until the server answers again: requests abandoned at the end of a
        measurement may still be queued or running in it (a sleeping view, say).
        Returns the seconds that took."""
        started = time.monotonic()
        with spending("settling"):
            loadgen.run(self.url + path, connections=1, requests=1, timeout=timeout)
        return round(time.monotonic() - started, 3)

    def stop(self):
        with spending("stopping servers"):
            self.process.stop(timeout=10)


# --- measurements ----------------------------------------------------------------------------

def measure_load(server, endpoint_name, endpoint, concurrency, repeat, duration):
    """One closed-loop measurement; returns one row."""
    capture = server.kind == "cgi"
    cpu_before = system.cpu_seconds(server.pgid)
    result = loadgen.run(server.url + endpoint.path, connections=concurrency, duration=duration,
                         method=endpoint.method, body=b"x" * endpoint.body_size,
                         capture_server_timing=capture)
    cpu_used = system.cpu_seconds(server.pgid) - cpu_before
    row = base_row(server.kind, server.app, endpoint_name, endpoint, concurrency, repeat)
    row.update(result_fields(result))
    row["rss_mb"] = round(system.rss_bytes(server.pgid) / 1e6, 2)
    row["cpu_s"] = round(cpu_used, 3)
    row["cpu_ms_per_request"] = round(1000 * cpu_used / result.requests, 3) if result.requests else None
    if capture:
        row.update(cgi_timing_fields(result))
    return row


def measure_streams(server, endpoint_name, endpoint, count, hold_timeout):
    """Open `count` long-lived streams; how many does the server hold, and at what memory cost?"""
    idle = system.rss_bytes(server.pgid)
    hold = loadgen.hold_streams(server.url + endpoint.path, count, timeout=hold_timeout,
                                probe=lambda: system.rss_bytes(server.pgid))
    row = base_row(server.kind, server.app, endpoint_name, endpoint, count, 0)
    row.update({
        "duration_s": round(hold.seconds_to_open, 3),
        "held": hold.held,
        "failed": hold.failed,
        "rss_idle_mb": round(idle / 1e6, 2),
        "rss_mb": round(hold.probe / 1e6, 2),
        "kb_per_connection": round((hold.probe - idle) / 1e3 / hold.held, 1) if hold.held else None,
    })
    return row


def base_row(server, app, endpoint_name, endpoint, concurrency, repeat):
    return {
        "server": server, "family": SERVERS.get(server, {}).get("family", "cgi"), "app": app,
        "endpoint": endpoint_name, "method": endpoint.method, "path": endpoint.path,
        "concurrency": concurrency, "repeat": repeat,
    }


def result_fields(result):
    summary = result.summary_dict()
    fields = {key: summary[key] for key in
              ("duration_s", "requests", "rps", "p50_ms", "p90_ms", "p99_ms", "max_ms", "mean_ms", "bytes",
               "unfinished")}
    for kind, count in summary["errors"].items():
        fields[kind.replace("-", "_")] = count
    return fields


def cgi_timing_fields(result):
    """Median of each Server-Timing phase, and the runner's own overhead per request:
    the client's latency minus the `child` phase (the child process, start to exit)."""
    phases = {}
    for timing in result.server_timings:
        for name, ms in timing.items():
            phases.setdefault(name, []).append(ms)
    medians = {name: round(statistics.median(values), 3) for name, values in phases.items()}
    overheads = [latency * 1000 - timing["child"]
                 for latency, timing in zip(result.latencies, result.server_timings) if "child" in timing]
    return {
        "server_timing_ms": medians,
        "overhead_ms": round(statistics.median(overheads), 3) if overheads else None,
    }


# --- the CGI spawn floor -----------------------------------------------------------------------

def cgi_environment(method, path, port, body_size=0):
    """The CGI variables the runner would pass for this request (RFC 3875 §4.1), with
    what it passes on from its own environment."""
    script_path, _, query = path.partition("?")
    inherited = {os.fsdecode(name): os.fsdecode(value) for name, value in os.environb.items()
                 if name in ENVIRONMENT_ALLOWLIST or name.startswith(ENVIRONMENT_ALLOWED_PREFIX)}
    body = {"CONTENT_LENGTH": str(body_size)} if method in ("POST", "PUT", "PATCH") else {}
    return {
        **inherited,
        "REQUEST_METHOD": method,
        "SCRIPT_NAME": "",
        "PATH_INFO": script_path,
        "QUERY_STRING": query,
        **body,
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": str(port),
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "REMOTE_PORT": "40000",
        "HTTP_HOST": f"127.0.0.1:{port}",
        "HTTP_USER_AGENT": "loadgen",
        "GATEWAY_INTERFACE": "CGI/1.1",
        "SERVER_SOFTWARE": "spawn-floor",
        # The runner asks the child for its timings when --server-timing is on, as it is here.
        "X_CGI_TIMING": "1",
    }


def measure_cgi_floor(endpoint_name, endpoint, concurrency, repeat, duration, cpus):
    """The fastest a process-per-request server could be: run the CGI script directly,
    `concurrency` at a time, in a loop, with the environment the runner would give it."""
    script = REPO / DEFAULT_APPS["cgi"]
    argv = [sys.executable, str(script)]
    env = cgi_environment(endpoint.method, endpoint.path, 8000, endpoint.body_size)
    body = b"x" * endpoint.body_size

    def pin_child():
        system.pin(cpus)

    async def loop(latencies, statuses, deadline):
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            child = await asyncio.create_subprocess_exec(
                *argv, cwd=script.parent, env=env, stdin=subprocess.PIPE,
                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, preexec_fn=pin_child)
            output, _ = await child.communicate(body)
            if time.perf_counter() > deadline:
                break
            latencies.append(time.perf_counter() - started)
            statuses.append(_cgi_status(output) if child.returncode == 0 else 500)

    async def run_all():
        latencies, statuses = [], []
        deadline = time.perf_counter() + duration
        await asyncio.gather(*(loop(latencies, statuses, deadline) for _ in range(concurrency)))
        return latencies, statuses

    children_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    latencies, statuses = asyncio.run(run_all())
    children_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    # Only the floor's own children are reaped meanwhile: the servers are still running.
    cpu_used = (children_after.ru_utime + children_after.ru_stime
                - children_before.ru_utime - children_before.ru_stime)
    latencies.sort()
    row = base_row("cgi-floor", "site", endpoint_name, endpoint, concurrency, repeat)
    row["family"] = "cgi"
    row.update({
        "duration_s": duration, "requests": len(latencies),
        "rps": round(len(latencies) / duration, 2),
        "p50_ms": _percentile_ms(latencies, 50), "p90_ms": _percentile_ms(latencies, 90),
        "p99_ms": _percentile_ms(latencies, 99), "max_ms": _percentile_ms(latencies, 100),
        "mean_ms": round(1000 * statistics.fmean(latencies), 3) if latencies else None,
        "non_2xx": sum(1 for status in statuses if status != 200),
        "cpu_s": round(cpu_used, 3),
        "cpu_ms_per_request": round(1000 * cpu_used / len(latencies), 3) if latencies else None,
    })
    return row


def _cgi_status(output):
    """The status a CGI response asks for: its Status header, else 200 (RFC 3875 §6.3.3)."""
    head = output.split(b"\n\n", 1)[0].split(b"\r\n\r\n", 1)[0]
    for line in head.splitlines():
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"status":
            return int(value.split()[0])
    return 200


def _percentile_ms(ordered, p):
    if not ordered:
        return None
    return round(1000 * ordered[max(1, math.ceil(p / 100 * len(ordered))) - 1], 3)


# --- metadata --------------------------------------------------------------------------------

def metadata(options, servers, server_cpus, loader_cpus):
    def version(package):
        try:
            return importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            return None

    def git(*args):
        try:
            return subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True,
                                  check=True).stdout.strip()
        except (OSError, subprocess.CalledProcessError):
            return None

    described = system.description()
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "git_commit": git("rev-parse", "HEAD"),
        "git_dirty": bool(git("status", "--porcelain", "--untracked-files=no")),
        "cpu_model": described["cpu_model"],
        "cores": os.cpu_count(),
        "load_average": os.getloadavg(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "packages": {name: version(name) for name in
                     ("django", "gunicorn", "uvicorn", "httptools", "uvloop", "h11", "daphne", "channels",
                      "websockets", "wsproto")},
        "loader": {"uvloop": loadgen.uvloop is not None},
        "pinning": {**system.pinning_metadata(server_cpus, loader_cpus), "observed": servers},
        "system": described,
        "options": options,
        "commands": {},
    }


# --- the matrix --------------------------------------------------------------------------------

def plan(args):
    """{endpoint: concurrency levels} for the load servers, the same for CGI, and the timing."""
    profile = QUICK if args.quick else FULL
    if args.quick:
        endpoints = dict(profile["endpoints"])
        cgi_cells = dict(profile["cgi"])
    else:
        endpoints = {name: ENDPOINTS[name].concurrency for name in profile["endpoints"]}
        cgi_cells = {name: tuple(c for c in ENDPOINTS[name].concurrency if c <= CGI_MAX_CONCURRENCY) or (2,)
                     for name in CGI_ENDPOINTS}
    if args.endpoints:
        chosen = args.endpoints.split(",")
        unknown = [name for name in chosen if name not in ENDPOINTS]
        if unknown:
            raise SystemExit(f"unknown endpoint(s) {', '.join(unknown)}; choose from {', '.join(ENDPOINTS)}")
        endpoints = {name: endpoints.get(name, ENDPOINTS[name].concurrency) for name in chosen}
        cgi_cells = {name: cgi_cells.get(name, (2,)) for name in chosen if name in CGI_ENDPOINTS}
    if args.concurrency:
        levels = tuple(int(c) for c in args.concurrency.split(","))
        endpoints = {name: levels for name in endpoints}
        cgi_cells = {name: tuple(c for c in levels if c <= CGI_MAX_CONCURRENCY) for name in cgi_cells}
        cgi_cells = {name: levels for name, levels in cgi_cells.items() if levels}
    timing = {key: getattr(args, key) if getattr(args, key) is not None else profile[key]
              for key in ("duration", "repeats", "warmup")}
    timing["cgi_duration"] = max(timing["duration"], profile["cgi_duration"])
    timing["hold_timeout"] = profile["hold_timeout"]
    timing["sync_cap"] = profile.get("sync_cap") if args.quick and not args.concurrency else None
    return endpoints, cgi_cells, timing


def chosen_servers(args):
    names = args.servers.split(",") if args.servers else list(HTTP_DEFAULT_SERVERS)
    unknown = [name for name in names if name not in SERVERS]
    if unknown:
        raise SystemExit(f"unknown server(s) {', '.join(unknown)}; choose from {', '.join(SERVERS)}")
    available = []
    for name in names:
        reason = server_available(name)
        if reason:
            print(f"skipping {name}: {reason}", flush=True)
        else:
            available.append(name)
    return available


def matrix_cells(app, endpoints, cgi_cells, servers, sync_cap=None):
    """[(endpoint, concurrency, [server kinds])] for the servers of one application.

    sync_cap: above this concurrency gunicorn's sync worker is left out of the sleeping
    endpoints. It serves one request at a time, so its throughput there is 1/sleep at any
    concurrency, and the requests still queued when a measurement ends take it
    concurrency x sleep to work through (13 s at 256 connections).
    """
    cells = []
    for name in dict.fromkeys([*endpoints, *cgi_cells]):
        if ENDPOINTS[name].app != app:
            continue
        load_levels = endpoints.get(name, ())
        cgi_levels = cgi_cells.get(name, ()) if "cgi" in servers and app == "site" else ()
        for level in sorted(set(load_levels) | set(cgi_levels)):
            kinds = [kind for kind in servers if kind != "cgi" and level in load_levels
                     and not (kind == "gunicorn" and ENDPOINTS[name].sleeps and sync_cap and level > sync_cap)]
            if level in cgi_levels:
                kinds.append("cgi")
            cells.append((name, level, kinds))
    return cells


def run_matrix(args):
    from tqdm import tqdm

    endpoints, cgi_cells, timing = plan(args)
    servers = chosen_servers(args)
    server_cpus, loader_cpus = pin_loader()
    options = {"quick": args.quick, "endpoints": {k: list(v) for k, v in endpoints.items()},
               "cgi": {k: list(v) for k, v in cgi_cells.items()}, **timing}
    meta = metadata(options, {}, server_cpus, loader_cpus)
    sync_cap = timing.get("sync_cap")
    if sync_cap and "gunicorn" in servers and any(ENDPOINTS[name].sleeps for name in endpoints):
        print(f"gunicorn (sync) is measured on the sleeping endpoints up to {sync_cap} connections only "
              f"(one request at a time: 20 req/s at any concurrency)", flush=True)
    groups = [(app, matrix_cells(app, endpoints, cgi_cells, servers, sync_cap)) for app in ("bare", "site")]
    runs = 0
    for app, cells in groups:
        for name, level, kinds in cells:
            runs += len(kinds) * (1 if ENDPOINTS[name].streams else timing["repeats"])
            runs += timing["repeats"] if "cgi" in kinds else 0  # the spawn floor
    progress = tqdm(total=runs, unit="run", dynamic_ncols=True, file=sys.stderr)
    rows = []
    try:
        # The servers of one application run side by side and take turns in each cell.
        for app, cells in groups:
            members = [kind for kind in servers if any(kind in kinds for _, _, kinds in cells)]
            with contextlib.ExitStack() as stack:
                running = start_servers(stack, members, app, server_cpus, meta, progress)
                for name, level, kinds in cells:
                    rows += measure_cell(running, kinds, name, ENDPOINTS[name], level, timing, progress,
                                         with_floor="cgi" in kinds, server_cpus=server_cpus)
    finally:
        progress.close()
    return rows, meta


def start_servers(stack, kinds, app, cpus, meta, progress):
    """Start each server (stopped when `stack` closes) and record its command and CPU set."""
    running = {}
    for kind in kinds:
        progress.set_description(f"starting {kind}")
        server = Server(kind, app, cpus)
        stack.callback(server.stop)
        try:
            with spending("starting servers"):
                running[kind] = server.start()
        except ServerStartError as error:
            print(f"skipping {kind}: it did not start: {str(error).strip().splitlines()[-1]}", flush=True)
            continue
        meta["commands"][f"{kind} ({app})"] = server.argv
        meta["pinning"]["observed"][f"{kind} ({app})"] = server.pinned_to()
    return running


def measure_cell(running, kinds, name, endpoint, level, timing, progress, with_floor, server_cpus):
    """All servers of one (endpoint, concurrency) cell: warm up each, then measure in turns."""
    kinds = [kind for kind in kinds if kind in running]
    with_floor = with_floor and "cgi" in kinds
    rows = []
    settle_path = "/" if endpoint.app == "bare" else "/hello"
    if endpoint.streams:
        for kind in kinds:
            progress.set_description(f"{kind} {name} x{level}")
            with spending("holding streams"):
                rows.append(measure_streams(running[kind], name, endpoint, level,
                                            hold_timeout=timing["hold_timeout"] + level / 100))
            rows[-1]["settle_s"] = running[kind].settle(settle_path)
            progress.update()
        return rows
    for kind in kinds:
        progress.set_description(f"warm-up {kind} {name} x{level}")
        if timing["warmup"]:
            with spending("warming up"):
                loadgen.run(running[kind].url + endpoint.path, connections=level, duration=timing["warmup"],
                            method=endpoint.method, body=b"x" * endpoint.body_size)
            running[kind].settle(settle_path)
    for repeat in range(timing["repeats"]):
        if with_floor:
            progress.set_description(f"cgi spawn floor {name} x{level}")
            with spending("measuring"):
                rows.append(measure_cgi_floor(name, endpoint, level, repeat, timing["cgi_duration"], server_cpus))
            progress.update()
        for kind in kinds:
            progress.set_description(f"{kind} {name} x{level} #{repeat + 1}")
            duration = timing["cgi_duration"] if kind == "cgi" else timing["duration"]
            with spending("measuring"):
                rows.append(measure_load(running[kind], name, endpoint, level, repeat, duration))
            rows[-1]["settle_s"] = running[kind].settle(settle_path)
            progress.update()
    return rows


# --- output ------------------------------------------------------------------------------------

def write_results(rows, meta, out, name, summary_lines):
    out.mkdir(parents=True, exist_ok=True)
    csv_path, json_path = out / f"{name}.csv", out / f"{name}.json"
    with open(csv_path, "w", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=CSV_COLUMNS, extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow({key: json.dumps(value) if isinstance(value, dict) else value
                             for key, value in row.items()})
    with open(json_path, "w") as file:
        json.dump({"metadata": meta, "rows": rows, "summary": summary_lines}, file, indent=1)
    return csv_path, json_path


def median_and_spread(values):
    """Median, and the spread as (max - min) / median, of the repeats."""
    values = [v for v in values if v is not None]
    if not values:
        return None, None
    middle = statistics.median(values)
    return middle, ((max(values) - min(values)) / middle if middle else 0.0)


def summarize(rows):
    """The end-of-run tables: per server and cell, the median req/s (and the spread of the
    repeats), then the median server CPU time per request; each with the toy servers' ratios
    against their references (higher is better for the toy in both)."""
    websocket_rows = [row for row in rows if row["endpoint"].startswith("ws-")]
    rows = [row for row in rows if not row["endpoint"].startswith("ws-")]
    cells = {}
    for row in rows:
        if row.get("held") is not None:
            continue
        cells.setdefault((row["endpoint"], row["concurrency"]), {}).setdefault(row["server"], []).append(row)
    lines = []
    if cells:
        lines += ["requests per second (median ±spread of the repeats); ratio = toy / reference:"]
        lines += cell_table(cells, "rps", lambda toy, reference: toy / reference, spread=True)
        lines += ["", "server CPU ms per request (median; steadier than req/s when other work shares the "
                      "machine); ratio = reference / toy:"]
        lines += cell_table(cells, "cpu_ms_per_request", lambda toy, reference: reference / toy, spread=False)
    streams = [row for row in rows if row.get("held") is not None]
    if streams:
        lines += ["", "long-lived streams held (of requested), and memory per open connection:"]
        stream_table = [[row["server"], str(row["concurrency"]), str(row["held"]), f"{row['rss_mb']:.1f}",
                         f"{row['kb_per_connection']:.0f}" if row["kb_per_connection"] is not None else "-"]
                        for row in streams]
        lines += format_table(["server", "requested", "held", "rss MB", "kB/conn"], stream_table)
    if not system.reaped_children_counted() and any(row["server"] == "cgi" for row in rows):
        lines += ["", "cgi CPU figures leave out its finished children: this system does not report "
                      "the CPU time of reaped children (Linux does)"]
    cgi_rows = [row for row in rows if row["server"] == "cgi" and row.get("overhead_ms") is not None]
    if cgi_rows:
        overhead = statistics.median(row["overhead_ms"] for row in cgi_rows)
        phases = {}
        for row in cgi_rows:
            for phase, ms in row["server_timing_ms"].items():
                phases.setdefault(phase, []).append(ms)
        lines += ["", f"cgi runner overhead per request (latency minus the child's time): median {overhead:.2f} ms",
                  "cgi Server-Timing phases (median ms): "
                  + ", ".join(f"{phase} {statistics.median(v):.1f}" for phase, v in phases.items())]
    if websocket_rows:
        lines += ([""] if lines else []) + summarize_websocket(websocket_rows)
    return lines


def cell_table(cells, field, ratio, spread):
    servers = [name for name in [*SERVERS, "cgi-floor"]
               if any(run.get(field) is not None for by_server in cells.values() for run in by_server.get(name, ()))]
    toys = [toy for toy in TOY_SERVERS if toy in servers and SERVERS[toy]["reference"] in servers]
    header = ["endpoint", "conc", *servers, *(f"{toy}/{SERVERS[toy]['reference']}" for toy in toys)]
    table = []
    for (endpoint, level), by_server in cells.items():
        medians = {name: median_and_spread([run.get(field) for run in runs]) for name, runs in by_server.items()}
        line = [endpoint, str(level)]
        for name in servers:
            middle, spread_of = medians.get(name, (None, None))
            if middle is None:
                line.append("-")
            elif spread:
                line.append(f"{middle:,.0f} ±{100 * spread_of:.0f}%")
            else:
                line.append(f"{middle:,.3g}")
        for toy in toys:
            toy_value = medians.get(toy, (None,))[0]
            reference_value = medians.get(SERVERS[toy]["reference"], (None,))[0]
            line.append(f"{ratio(toy_value, reference_value):.2f}" if toy_value and reference_value else "-")
        table.append(line)
    return format_table(header, table)


def format_table(header, rows):
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows)]
    def line(cells):
        return "  ".join(str(cell).rjust(width) if i > 1 else str(cell).ljust(width)
                         for i, (cell, width) in enumerate(zip(cells, widths)))
    return [line(header), "  ".join("-" * width for width in widths), *(line(row) for row in rows)]


# --- the WebSocket matrix ----------------------------------------------------------------------
#
# Three ASGI servers on the same echo endpoint: echo round trips per second at 64
# connections, and the memory each idle open WebSocket costs (server RSS with N idle
# sockets minus its RSS with none, over N), at 1,000 and 5,000. The reference comes first.

WEBSOCKET_SERVERS = ("uvicorn", "asgi", "daphne")
WEBSOCKET_PATH = "/ws/echo"
WEBSOCKET_FULL = {"connections": 64, "idle_levels": (1000, 5000), "duration": 3.0, "repeats": 3, "warmup": 1.0,
                  "hold": 1.0}
# --websocket --quick: the same figures, shorter cells and 1,000 idle sockets only (under a minute).
WEBSOCKET_QUICK = {"connections": 64, "idle_levels": (1000,), "duration": 0.5, "repeats": 3, "warmup": 0.25,
                   "hold": 0.2}
WEBSOCKET_ERRORS = ("refused", "reset", "timeout", "handshake", "protocol", "closed", "mismatch")


def websocket_url(server):
    return server.url.replace("http://", "ws://", 1) + WEBSOCKET_PATH


def websocket_probe(server):
    """None if the server completes one echo round trip on /ws/echo, else what went wrong."""
    with spending("settling"):
        result = loadgen.websocket_run(websocket_url(server), connections=1, round_trips=1, timeout=10)
    if result.round_trips == 1:
        return None
    return "; ".join(f"{kind}: {message}" for kind, message in result.error_samples.items()) or "no echo"


def start_websocket_servers(stack, kinds, app, cpus, meta):
    """Start the servers and keep those that echo on /ws/echo; say why each other one is skipped."""
    running = start_servers(stack, kinds, app, cpus, meta, _NoProgress())
    for kind in list(running):
        problem = websocket_probe(running[kind])
        if problem:
            print(f"skipping {kind} in the WebSocket matrix: {problem}", flush=True)
            del running[kind]
    return running


def measure_websocket_echo(server, level, repeat, duration):
    """One closed loop of echo round trips; returns one row."""
    cpu_before = system.cpu_seconds(server.pgid)
    result = loadgen.websocket_run(websocket_url(server), connections=level, duration=duration)
    cpu_used = system.cpu_seconds(server.pgid) - cpu_before
    summary = result.summary_dict()
    row = base_row(server.kind, server.app, "ws-echo", Endpoint(WEBSOCKET_PATH), level, repeat)
    row.update({key: summary[key] for key in ("duration_s", "p50_ms", "p90_ms", "p99_ms", "max_ms", "mean_ms",
                                              "unfinished", "loader_cpu_share")})
    row.update(summary["errors"])
    row.update({
        "requests": result.round_trips,
        "rps": summary["rtps"],
        "rss_mb": round(system.rss_bytes(server.pgid) / 1e6, 2),
        "cpu_s": round(cpu_used, 3),
        "cpu_ms_per_request": round(1000 * cpu_used / result.round_trips, 4) if result.round_trips else None,
    })
    return row


def measure_websocket_idle(server, level, baseline, hold):
    """Hold `level` idle WebSockets open; the server's memory per socket above its baseline."""
    outcome = loadgen.hold_websockets(websocket_url(server), level, timeout=30.0, hold=hold,
                                      probe=lambda: system.rss_bytes(server.pgid))
    row = base_row(server.kind, server.app, "ws-idle", Endpoint(WEBSOCKET_PATH), level, 0)
    row.update({key: outcome.errors.get(key, 0) for key in WEBSOCKET_ERRORS})
    row.update({
        "duration_s": round(outcome.seconds_to_open, 3),
        "held": outcome.held,
        "failed": outcome.failed,
        "dropped": outcome.dropped,
        "rss_idle_mb": round(baseline / 1e6, 2),
        "rss_mb": round(outcome.probe / 1e6, 2),
        "kb_per_connection": round((outcome.probe - baseline) / 1e3 / outcome.held, 2) if outcome.held else None,
    })
    return row


def websocket_cells(kinds, app, timing, server_cpus, meta):
    """The whole WebSocket matrix for one set of servers; returns its rows and the app it served."""
    from tqdm import tqdm

    rows = []
    with contextlib.ExitStack() as stack:
        running = start_websocket_servers(stack, kinds, app, server_cpus, meta)
        if app == "site" and kinds and kinds[0] not in running:
            # The reference cannot echo on the site: the site has no /ws/echo yet.
            print(f"the sample site does not answer {WEBSOCKET_PATH} under {kinds[0]}; measuring the bare "
                  f"echo app {BARE_WEBSOCKET_APP} instead", flush=True)
            stack.close()
            return websocket_cells(kinds, "bare-ws", timing, server_cpus, meta)
        meta["options"]["websocket_app"] = app
        order = [kind for kind in kinds if kind in running]
        level = timing["connections"]
        total = len(order) * (timing["repeats"] + len(timing["idle_levels"]))
        progress = tqdm(total=total, unit="run", dynamic_ncols=True, file=sys.stderr)
        try:
            for kind in order:
                progress.set_description(f"warm-up {kind} ws-echo x{level}")
                if timing["warmup"]:
                    with spending("warming up"):
                        loadgen.websocket_run(websocket_url(running[kind]), connections=level,
                                              duration=timing["warmup"])
            for repeat in range(timing["repeats"]):
                for kind in order:
                    progress.set_description(f"{kind} ws-echo x{level} #{repeat + 1}")
                    with spending("measuring"):
                        rows.append(measure_websocket_echo(running[kind], level, repeat, timing["duration"]))
                    websocket_probe(running[kind])
                    progress.update()
            for kind in order:
                # The baseline: the server warmed up, no WebSocket open.
                baseline = system.rss_bytes(running[kind].pgid)
                for count in timing["idle_levels"]:
                    progress.set_description(f"{kind} ws-idle x{count}")
                    with spending("holding websockets"):
                        rows.append(measure_websocket_idle(running[kind], count, baseline, timing["hold"]))
                    websocket_probe(running[kind])
                    progress.update()
        finally:
            progress.close()
    return rows, app


def websocket_goals(rows, reference="uvicorn", toy="asgi"):
    """The three goals of the WebSocket issue, as ratios of figures measured in this run."""
    def echo(kind):
        values = [row["rps"] for row in rows if row["server"] == kind and row["endpoint"] == "ws-echo"]
        return statistics.median(values) if values else math.nan

    def idle(kind, count):
        return next((row for row in rows if row["server"] == kind and row["endpoint"] == "ws-idle"
                     and row["concurrency"] == count), None)

    lines, results = [], []
    level = next((row["concurrency"] for row in rows if row["endpoint"] == "ws-echo"), None)
    toy_rate, reference_rate = echo(toy), echo(reference)
    if level is not None and not math.isnan(toy_rate) and not math.isnan(reference_rate):
        ratio = toy_rate / reference_rate
        lines.append(f"websocket echo x{level}: {toy} {toy_rate:,.0f} round trips/s, {reference} "
                     f"{reference_rate:,.0f}/s, ratio {ratio:.2f} (goal >= 1.0)")
        results.append(f"websocket echo x{level} vs {reference} {ratio:.2f}")
    counts = sorted({row["concurrency"] for row in rows if row["endpoint"] == "ws-idle"})
    for count in counts:
        mine, theirs = idle(toy, count), idle(reference, count)
        if mine and theirs and mine["kb_per_connection"] and theirs["kb_per_connection"]:
            ratio = mine["kb_per_connection"] / theirs["kb_per_connection"]
            lines.append(f"memory per idle websocket x{count}: {toy} {mine['kb_per_connection']:.1f} kB, "
                         f"{reference} {theirs['kb_per_connection']:.1f} kB, ratio {ratio:.2f} (goal <= 1.0)")
            results.append(f"memory per idle websocket x{count} vs {reference} {ratio:.2f}")
    if counts:
        most = idle(toy, counts[-1])
        if most:
            errors = sum(most.get(kind) or 0 for kind in WEBSOCKET_ERRORS) + (most.get("dropped") or 0)
            verdict = "met" if most["held"] == counts[-1] and not errors else "NOT met"
            lines.append(f"{toy} held {most['held']:,} of {counts[-1]:,} websockets in one process, "
                         f"{errors} errors ({verdict}; the goal is 5,000 with none)")
            results.append(f"{toy} held {most['held']} of {counts[-1]} websockets, {errors} errors")
    if toy not in {row["server"] for row in rows}:
        lines.append(f"{toy} was not measured, so its websocket goals are open")
        results.append(f"{toy} websocket not measured")
    return lines, results


def summarize_websocket(rows):
    """The WebSocket tables: echo round trips per second, then memory per idle socket."""
    echo_cells, lines = {}, []
    for row in rows:
        if row["endpoint"] == "ws-echo":
            echo_cells.setdefault(row["server"], []).append(row)
    if echo_cells:
        level = next(iter(echo_cells.values()))[0]["concurrency"]
        table = []
        for server, runs in echo_cells.items():
            middle, spread_of = median_and_spread([run["rps"] for run in runs])
            table.append([server, f"{middle:,.0f} ±{100 * spread_of:.0f}%",
                          f"{statistics.median(run['p50_ms'] or math.nan for run in runs):.2f}",
                          f"{statistics.median(run['p99_ms'] or math.nan for run in runs):.2f}",
                          f"{statistics.median(run['cpu_ms_per_request'] or math.nan for run in runs):.3f}",
                          f"{statistics.median(run['loader_cpu_share'] for run in runs):.0%}",
                          str(sum(run.get(kind) or 0 for run in runs for kind in WEBSOCKET_ERRORS))])
        lines += [f"websocket echo round trips per second at {level} connections (median ±spread):"]
        lines += format_table(["server", "round trips/s", "p50 ms", "p99 ms", "server CPU ms/rt", "loader CPU",
                               "errors"], table)
    idle = [row for row in rows if row["endpoint"] == "ws-idle"]
    if idle:
        lines += ["", "idle websockets held open, and the server's memory per socket:"]
        lines += format_table(["server", "requested", "held", "dropped", "rss MB", "kB/websocket"],
                              [[row["server"], f"{row['concurrency']:,}", f"{row['held']:,}", str(row["dropped"]),
                                f"{row['rss_mb']:.1f}",
                                f"{row['kb_per_connection']:.1f}" if row["kb_per_connection"] is not None else "-"]
                               for row in idle])
    return lines


def websocket_kinds(args):
    names = args.servers.split(",") if args.servers else list(WEBSOCKET_SERVERS)
    unknown = [name for name in names if name not in SERVERS or SERVERS[name]["family"] != "asgi"]
    if unknown:
        raise SystemExit(f"not an ASGI server of the catalogue: {', '.join(unknown)}; "
                         f"choose from {', '.join(WEBSOCKET_SERVERS)}")
    return [name for name in chosen_servers(argparse.Namespace(servers=",".join(names)))]


def websocket_timing(args, profile):
    timing = dict(profile)
    for key in ("duration", "repeats", "warmup"):
        if getattr(args, key) is not None:
            timing[key] = getattr(args, key)
    if args.concurrency:
        timing["connections"] = int(args.concurrency.split(",")[0])
    if args.ws_idle:
        timing["idle_levels"] = tuple(int(count) for count in args.ws_idle.split(","))
    return timing


def run_websocket(args):
    """python -m scripts.bench --websocket: the matrix, its tables and its goals."""
    timing = websocket_timing(args, WEBSOCKET_QUICK if args.quick else WEBSOCKET_FULL)
    server_cpus, loader_cpus = pin_loader()
    loadgen_limit = system.raise_open_files_limit()
    meta = metadata({"websocket": True, "quick": args.quick, **timing, "open_files_limit": loadgen_limit},
                    {}, server_cpus, loader_cpus)
    rows, _ = websocket_cells(websocket_kinds(args), args.ws_app, timing, server_cpus, meta)
    return rows, meta


# --- the goals of the server issues ----------------------------------------------------------------

GOALS = {
    "wsgi": [
        ("wsgi site /hello x32 vs gunicorn-gthread", "wsgi", "gunicorn-gthread", "site", "hello", 32),
        ("wsgi bare hello x32 vs gunicorn sync", "wsgi", "gunicorn", "bare", "bare", 32),
    ],
    "asgi": [
        ("asgi bare hello x32 vs uvicorn h11", "asgi", "uvicorn", "bare", "bare", 32),
        ("asgi site /hello-async x32 vs uvicorn-fast", "asgi", "uvicorn-fast", "site", "hello-async", 32,
         ("asgi-no-freeze",)),
    ],
}


def run_goals(args):
    """Exactly the comparisons of the server issues, reference and toy measured alternately."""
    which = ["wsgi", "asgi", "cgi", "websocket"] if args.goals == "all" else [args.goals]
    duration = args.duration or 3.0
    repeats = args.repeats or 5
    warmup = args.warmup if args.warmup is not None else 1.0
    server_cpus, loader_cpus = pin_loader()
    timing = {"duration": duration, "repeats": repeats, "warmup": warmup,
              "cgi_duration": max(duration, FULL["cgi_duration"]), "hold_timeout": FULL["hold_timeout"]}
    meta = metadata({"goals": args.goals, **timing}, {}, server_cpus, loader_cpus)
    rows, results = [], []
    for group in which:
        if group == "cgi":
            results += goal_cgi(timing, server_cpus, rows, meta)
            continue
        if group == "websocket":
            results += goal_websocket(args, server_cpus, rows, meta)
            continue
        # A goal may name variants of the toy server, measured in the same turns and
        # printed beside it (they are not what the goal is judged by).
        for label, toy, reference, app, endpoint_name, level, *variants in GOALS[group]:
            variants = list(variants[0]) if variants else []
            missing = server_available(toy)
            if missing:
                print(f"skipping '{label}': {missing}", flush=True)
                continue
            endpoint = ENDPOINTS[endpoint_name]
            kinds = [reference, toy, *variants]
            with contextlib.ExitStack() as stack:
                running = start_servers(stack, kinds, app, server_cpus, meta, _NoProgress())
                cell = measure_cell(running, kinds, endpoint_name, endpoint, level, timing,
                                    _NoProgress(), with_floor=False, server_cpus=server_cpus)
            rows += cell

            def medians(kind):
                runs = [r for r in cell if r["server"] == kind]
                if not runs:
                    return math.nan, math.nan
                return (statistics.median(r["rps"] for r in runs),
                        statistics.median(r["cpu_ms_per_request"] or math.nan for r in runs))

            (toy_rps, toy_cpu), (ref_rps, ref_cpu) = medians(toy), medians(reference)
            ratio = toy_rps / ref_rps if ref_rps else math.nan
            print(f"{label}: {toy} {toy_rps:,.0f} req/s, {reference} {ref_rps:,.0f} req/s, ratio {ratio:.2f}; "
                  f"CPU per request {toy_cpu:.3f} ms vs {ref_cpu:.3f} ms, ratio {ref_cpu / toy_cpu:.2f}",
                  flush=True)
            result = f"{label} {ratio:.2f} (CPU/request {ref_cpu / toy_cpu:.2f})"
            for variant in variants:
                variant_rps, variant_cpu = medians(variant)
                variant_ratio = variant_rps / ref_rps if ref_rps else math.nan
                print(f"  beside it, {variant} ({' '.join(SERVERS[variant]['extra'])}): {variant_rps:,.0f} req/s, "
                      f"ratio {variant_ratio:.2f} to {reference}; CPU per request {variant_cpu:.3f} ms", flush=True)
                result += f" [{variant} {variant_ratio:.2f}]"
            results.append(result)
    return rows, meta, results


def goal_cgi(timing, server_cpus, rows, meta):
    reason = server_available("cgi")
    if reason:
        print(f"skipping the cgi goals: {reason}", flush=True)
        return []
    endpoint = ENDPOINTS["hello"]
    cell = []
    with contextlib.ExitStack() as stack:
        server = start_servers(stack, ["cgi"], "site", server_cpus, meta, _NoProgress())["cgi"]
        loadgen.run(server.url + endpoint.path, connections=2, duration=timing["warmup"])
        for repeat in range(timing["repeats"]):
            cell.append(measure_cgi_floor("hello", endpoint, 2, repeat, timing["cgi_duration"], server_cpus))
            cell.append(measure_load(server, "hello", endpoint, 2, repeat, timing["cgi_duration"]))
    rows += cell
    overheads = [r["overhead_ms"] for r in cell if r["server"] == "cgi" and r["overhead_ms"] is not None]
    toy_rps = statistics.median(r["rps"] for r in cell if r["server"] == "cgi")
    floor_rps = statistics.median(r["rps"] for r in cell if r["server"] == "cgi-floor")
    ratio = toy_rps / floor_rps if floor_rps else math.nan
    overhead = statistics.median(overheads) if overheads else math.nan
    if not overheads:
        print("the cgi runner sent no Server-Timing 'child' phase, so its overhead is unknown", flush=True)
    print(f"cgi /hello x2: runner {toy_rps:,.1f} req/s, spawn floor {floor_rps:,.1f} req/s, ratio {ratio:.2f}; "
          f"runner overhead median {overhead:.2f} ms", flush=True)
    return [f"cgi overhead {overhead:.2f} ms", f"cgi /hello x2 vs spawn floor {ratio:.2f}"]


def goal_websocket(args, server_cpus, rows, meta):
    """The WebSocket issue's goals: the matrix over the toy ASGI server and uvicorn (daphne beside
    them), full cells, 1,000 and 5,000 idle sockets."""
    timing = websocket_timing(args, WEBSOCKET_FULL)
    meta["options"]["websocket"] = timing
    system.raise_open_files_limit()
    kinds = [kind for kind in WEBSOCKET_SERVERS if not server_available(kind)]
    cell, _ = websocket_cells(kinds, args.ws_app, timing, server_cpus, meta)
    rows += cell
    lines, results = websocket_goals(cell)
    print("\n".join(lines), flush=True)
    return results


class _NoProgress:
    def set_description(self, text):
        pass

    def update(self):
        pass


# --- command line --------------------------------------------------------------------------------

def _interrupt(signum, frame):
    # SIGTERM ends a run like Ctrl-C does, so every `with` and ExitStack stops its server.
    raise KeyboardInterrupt


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m scripts.bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="the default matrix, short (about 2 minutes)")
    parser.add_argument("--servers", help=f"comma-separated, from: {', '.join(SERVERS)}")
    parser.add_argument("--endpoints", help=f"comma-separated, from: {', '.join(ENDPOINTS)}")
    parser.add_argument("--concurrency", help="comma-separated levels, e.g. 1,8,64 (for every endpoint)")
    parser.add_argument("--duration", type=float, help="seconds per measurement")
    parser.add_argument("--repeats", type=int, help="measurements per cell (median and spread)")
    parser.add_argument("--warmup", type=float, help="seconds of unrecorded load before a cell")
    parser.add_argument("--out", default=str(REPO / "results"), help="folder for the results (results/)")
    parser.add_argument("--name", help="file name without extension (default: quick, full or goals-WHICH)")
    parser.add_argument("--goals", choices=("wsgi", "asgi", "cgi", "websocket", "all"),
                        help="run exactly the comparisons of the server issues and print their ratios")
    parser.add_argument("--websocket", action="store_true",
                        help="the WebSocket matrix instead: echo round trips/s at 64 connections and memory per "
                             "idle WebSocket at 1,000 and 5,000 (with --quick: shorter, 1,000 only) over "
                             f"{', '.join(WEBSOCKET_SERVERS)} on {WEBSOCKET_PATH}; prints the WebSocket goals")
    parser.add_argument("--ws-app", choices=("site", "bare-ws"), default="site",
                        help="WebSocket: the sample site's Channels echo consumer (default; the bare app when "
                             f"the site has none), or bare-ws, {BARE_WEBSOCKET_APP}")
    parser.add_argument("--ws-idle", help="WebSocket: comma-separated idle socket counts (default 1000,5000)")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, _interrupt)
    name = args.name or (f"goals-{args.goals}" if args.goals else
                         ("websocket-quick" if args.quick else "websocket") if args.websocket else
                         "quick" if args.quick else "full")
    started = time.monotonic()
    try:
        if args.goals:
            rows, meta, goal_lines = run_goals(args)
            summary_lines = summarize(rows)
        elif args.websocket:
            rows, meta = run_websocket(args)
            summary_lines = summarize(rows)
            summary_lines += [""] + websocket_goals(rows)[0]
            goal_lines = None
        else:
            rows, meta = run_matrix(args)
            summary_lines = summarize(rows)
            goal_lines = None
    except KeyboardInterrupt:
        print("interrupted; every server was stopped", file=sys.stderr)
        return 130
    meta["elapsed_s"] = round(time.monotonic() - started, 1)
    meta["time_spent_s"] = {activity: round(seconds, 1) for activity, seconds in TIME_SPENT.most_common()}
    csv_path, json_path = write_results(rows, meta, Path(args.out), name, summary_lines)
    print("\n".join(summary_lines))
    spent = ", ".join(f"{activity} {seconds:.0f} s" for activity, seconds in meta["time_spent_s"].items())
    print(f"\n{len(rows)} rows in {meta['elapsed_s']:.0f} s ({spent}) -> {csv_path} and {json_path}")
    if goal_lines is not None:
        print("goals: " + "; ".join(goal_lines) if goal_lines else "goals: nothing measured")
    return 0


def dispatch(argv=None):
    """--slow-clients hands the command line to scripts.bench_slow, which has its own options."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if "--slow-clients" in argv:
        return bench_slow.main([arg for arg in argv if arg != "--slow-clients"])
    return main(argv)


if __name__ == "__main__":
    sys.exit(dispatch())
