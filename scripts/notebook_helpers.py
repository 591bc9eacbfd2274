"""What the classroom notebooks need beyond scripts.launch.

Every notebook's first code cell is `from classroom import setup; nb = setup()`
(notebooks/classroom.py, which calls `start_notebook()`), then uses these helpers
so that its own cells stay about the lesson:

- `server(kind, ...)`, `cgi_bin_server(dir)`: a `scripts.launch.ServerProcess` on a
  free port, used in a `with` block, so the server stops when the block ends, when
  the cell fails, and (through launch.py's atexit handler and PR_SET_PDEATHSIG)
  when the kernel ends;
- `fetch(...)`, `inspect_request(...)`: one HTTP request with the standard library;
  the sample site's /inspect turned back into the environ or scope Django was handed;
- `whoami_wsgi`, `whoami_asgi`, `WHOAMI_SH`, `who_served(...)`: which process and
  thread answered each request; `where(obj)`: the file and line of a server's function;
- `server_timing(...)`, `trace_blocks(...)`, `output_since(...)`: read what a
  server reported about a request (the Server-Timing header, the --trace view);
- `measure(...)`, `sweep(...)`, `progress(...)`, `cpu_seconds(...)`, `peak_threads(...)`:
  load from scripts.loadgen with a progress bar, the CPU time and the threads a server
  used; `server(..., pinned=True)` with `measure(..., pinned=True)` split the cores as
  scripts.bench does (`split_cpus()`);
- `run_bench(...)`, `merge_results(...)`, `median_of(...)`: the benchmark harness
  run from a notebook, and figures taken from its results;
- `table(...)`, `side_by_side(...)`, `show_source(...)`, `draw_models()`: show
  data captured live;
- `check(...)`, `check_that(...)`, `check_code(...)`, `record_prediction(...)`,
  `check_prediction(...)`: the exercises' check cells.

Quick mode: with TOOLKIT_QUICK=1 in the environment (what `make notebooks-check`
sets), `pick(full, quick)` returns the quick value, so each measurement is shorter
and the whole set of notebooks runs in a few minutes.
"""

from __future__ import annotations

import ast
import concurrent.futures
import html
import http.client
import inspect
import json
import os
import re
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

from scripts.launch import HOST, REPO, ServerProcess, free_port, server_command

QUICK = os.environ.get("TOOLKIT_QUICK", "") not in ("", "0")

# Files the notebooks write (CGI scripts, small applications, benchmark results)
# live under var/, which git ignores.
WORK = REPO / "var" / "notebooks"


def start_notebook() -> None:
    """Work from the repository root, whatever folder Jupyter started the kernel in, and say so.

    scripts.check_notebooks reads the `Python :` line to catch a kernel of another interpreter.
    """
    os.chdir(REPO)
    print("Python     :", sys.executable)
    print("Repository :", REPO)
    print("Mode       :", "quick (TOOLKIT_QUICK=1: shorter measurements)" if QUICK else "full")


def pick(full: Any, quick: Any) -> Any:
    """`full` normally, `quick` when TOOLKIT_QUICK=1 asks for a short run."""
    return quick if QUICK else full


def workdir(name: str) -> Path:
    """An empty-or-existing folder under var/notebooks/ for files a notebook writes."""
    path = WORK / name
    path.mkdir(parents=True, exist_ok=True)
    return path


# --- servers -----------------------------------------------------------------

def split_cpus() -> tuple[set[int] | None, set[int] | None]:
    """(server cores, load generator cores), split as scripts.bench splits them: the last core
    for the load, the rest for the server; (None, None) with a single core."""
    from scripts import bench
    return bench.split_cpus()


def server(kind: str, *, app: str | None = None, extra: Sequence[str] = (),
           pythonpath: str | os.PathLike | None = None, pinned: bool = False) -> ServerProcess:
    """A server of `kind` (see scripts.launch.KINDS) on a free port, not yet started.

    Use it as `with server("wsgi") as srv: ...`: the block starts it, waits until
    it accepts connections, and stops it at the end, also when the cell raises.
    `pythonpath` adds a folder (e.g. one a notebook wrote an application into) to
    the server's import path, so `app="module:attr"` can name a module there.
    `pinned` keeps the server (all its processes) on the benchmark's server cores;
    use it with `measure(..., pinned=True)` whenever a comparison is about cores.
    """
    port = free_port()
    env = {}
    if pythonpath is not None:
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(Path(pythonpath).resolve()), os.environ.get("PYTHONPATH", "")) if p)
    argv = server_command(kind, port=port, app=app, extra=list(extra))
    return ServerProcess(argv, port=port, env=env, cpus=split_cpus()[0] if pinned else None)


def cgi_bin_server(directory: str | os.PathLike, *, prefix: str = "/cgi-bin",
                   extra: Sequence[str] = ()) -> ServerProcess:
    """The toy CGI server in its classic cgi-bin form: PREFIX/NAME/rest runs DIRECTORY/NAME.

    (scripts.launch.server_command starts it with one front-controller SCRIPT; this
    form has a folder instead, so the command is spelled out here.)
    """
    port = free_port()
    argv = [sys.executable, "-m", "servers.cgi_server", "--cgi-dir", str(Path(directory).resolve()),
            "--prefix", prefix, "--bind", f"{HOST}:{port}", *extra]
    return ServerProcess(argv, port=port)


def output_since(srv: ServerProcess, mark: int, *, settle: float = 0.3, timeout: float = 5.0) -> str:
    """What `srv` printed after `mark` (a length of srv.output() taken earlier).

    A server writes its --trace blocks around the time it sends the response, so
    the client may have its answer a moment before the last block is printed:
    wait until the output has stopped growing for `settle` seconds.
    """
    deadline = time.monotonic() + timeout
    seen = len(srv.output())
    quiet_since = time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(0.05)
        now = len(srv.output())
        if now != seen:
            seen, quiet_since = now, time.monotonic()
        elif now > mark and time.monotonic() - quiet_since >= settle:
            break
    return srv.output()[mark:]


# --- one request -------------------------------------------------------------

@dataclass
class Response:
    status: int
    reason: str
    headers: list[tuple[str, str]]
    body: bytes
    seconds: float

    def header(self, name: str, default: str | None = None) -> str | None:
        """The first header called `name` (any case)."""
        for key, value in self.headers:
            if key.lower() == name.lower():
                return value
        return default

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")

    def json(self) -> Any:
        return json.loads(self.body)


def fetch(url: str, path: str = "/", *, method: str = "GET", headers: Mapping[str, str] | None = None,
          body: bytes | None = None, timeout: float = 30.0) -> Response:
    """One request on a new connection to `url` (a server's srv.url), read to the end."""
    match = re.fullmatch(r"http://\[?([^\]]+?)\]?:(\d+)", url)
    if not match:
        raise ValueError(f"expected http://HOST:PORT, got {url!r}")
    connection = http.client.HTTPConnection(match[1], int(match[2]), timeout=timeout)
    started = time.perf_counter()
    try:
        connection.request(method, path, body=body, headers=dict(headers or {}))
        answer = connection.getresponse()
        data = answer.read()
    finally:
        connection.close()
    return Response(answer.status, answer.reason, answer.getheaders(), data, time.perf_counter() - started)


def revive(value: Any) -> Any:
    """Undo /inspect's JSON-safe form: "b'...'" strings become bytes again, pairs become tuples.

    So a scope or environ fetched from /inspect shows the same Python values the
    application was handed (and the --trace view shows).
    """
    if isinstance(value, str) and re.fullmatch(r"b'.*'|b\".*\"", value, re.S):
        return ast.literal_eval(value)
    if isinstance(value, dict):
        return {key: revive(item) for key, item in value.items()}
    if isinstance(value, list):
        items = [revive(item) for item in value]
        flat = all(not isinstance(item, (list, tuple, dict)) for item in items)
        return tuple(items) if flat and len(items) == 2 else items
    return value


def inspect_request(url: str, path: str = "/inspect", **options: Any) -> tuple[str, dict]:
    """GET the sample site's /inspect: answer ("wsgi", environ) or ("asgi", scope), as handed to Django."""
    answer = fetch(url, path, **options)
    if answer.status != 200:
        raise RuntimeError(f"{path} answered {answer.status} {answer.reason}: {answer.text[:200]}")
    data = answer.json()
    return data["interface"], revive(data["meta"] if data["interface"] == "wsgi" else data["scope"])


def server_timing(response: Response) -> dict[str, float]:
    """The response's Server-Timing header as {phase: milliseconds}, in the server's order.

    `app;dur=1.234, total;dur=2.000` -> {"app": 1.234, "total": 2.0} (scripts.loadgen's parser).
    """
    from scripts import loadgen
    return loadgen.parse_server_timing(response.header("Server-Timing", "").encode("latin-1"))


# --- who served a request: process and thread ------------------------------------

def _whoami_body(query: str) -> bytes:
    return json.dumps({"pid": os.getpid(), "thread": threading.get_ident()}).encode() + b"\n"


def _wait_seconds(query: str) -> float:
    from urllib.parse import parse_qs
    return float(parse_qs(query).get("wait", ["0"])[0])


def whoami_wsgi(environ, start_response):
    """A WSGI app answering the process id and thread id that ran it; ?wait=S holds the thread S seconds."""
    time.sleep(_wait_seconds(environ.get("QUERY_STRING", "")))
    start_response("200 OK", [("Content-Type", "application/json")])
    return [_whoami_body(environ.get("QUERY_STRING", ""))]


async def whoami_asgi(scope, receive, send):
    """The same for ASGI; ?wait=S awaits S seconds, which leaves the event loop's thread free."""
    import asyncio
    if scope["type"] != "http":
        raise RuntimeError(f"this app only serves HTTP, not {scope['type']!r}")
    await asyncio.sleep(_wait_seconds(scope["query_string"].decode("latin-1")))
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": _whoami_body("")})


WHOAMI_SH = """#!/bin/sh
# A CGI script needs no Python: a header block, an empty line, then the body, on stdout.
# $$ is the shell's own process id; a shell script runs in one thread.
printf 'Content-Type: application/json\\r\\n\\r\\n'
printf '{"pid": %d, "thread": null}\\n' $$
"""


def who_served(url: str, path: str, *, requests: int, at_once: int = 1) -> list[dict]:
    """Send `requests` requests, `at_once` at a time; answer each one's {"pid", "thread"}, in order."""
    with concurrent.futures.ThreadPoolExecutor(at_once) as pool:
        return [answer.json() for answer in pool.map(lambda _: fetch(url, path), range(requests))]


def where(obj: Any) -> str:
    """`file: Qualified.name (line N)` of a function or class in this repository."""
    path = Path(inspect.getsourcefile(obj)).resolve().relative_to(REPO)
    return f"{path}: {obj.__qualname__} (line {inspect.getsourcelines(obj)[1]})"


# --- the --trace teaching view -------------------------------------------------

@dataclass
class TraceBlock:
    """One block of --trace output: `── wsgi #3 ── request head` and its indented lines."""
    kind: str
    number: int
    title: str
    lines: list[str]

    @property
    def text(self) -> str:
        return "\n".join(self.lines)

    def mapping(self) -> dict[str, Any]:
        """A mapping block (environ, scope, CGI env) as {key: value}.

        Values the trace shows as Python literals ('GET', b'/x', (1, 0)) come back as
        those values; the others (<RequestBody>, a file object) stay as shown.
        """
        mapping = {}
        for line in self.lines:
            pair = re.match(r"(\S+)\s+(.*)", line)
            if pair:
                try:
                    mapping[pair[1]] = ast.literal_eval(pair[2])
                except (ValueError, SyntaxError):
                    mapping[pair[1]] = pair[2]
        return mapping

    def message_type(self) -> str | None:
        """The `type` of an ASGI message block ('http.request', ...), if it is one."""
        found = re.search(r"'type': '([^']+)'", self.text)
        return found[1] if found else None


TRACE_HEAD = re.compile(r"^── (\S+) #(\d+) ── (.*)$")


def trace_blocks(output: str) -> list[TraceBlock]:
    """The --trace blocks in a server's output, in order; other lines (logs) are skipped."""
    blocks: list[TraceBlock] = []
    current = None
    for line in output.splitlines():
        head = TRACE_HEAD.match(line)
        if head:
            current = TraceBlock(head[1], int(head[2]), head[3], [])
            blocks.append(current)
        elif current is not None and line.startswith("  "):
            current.lines.append(line[2:])
        else:
            current = None
    return blocks


def show_trace(blocks: Sequence[TraceBlock]) -> None:
    """Print trace blocks the way the server wrote them."""
    for block in blocks:
        print(f"── {block.kind} #{block.number} ── {block.title}")
        for line in block.lines:
            print("  " + line)


# --- load ----------------------------------------------------------------------

def measure(url: str, path: str, *, connections: int, duration: float, warm: bool = True,
            pinned: bool = False, **options: Any):
    """Closed-loop load from scripts.loadgen: `connections` keep-alive clients for `duration` s.

    Answers a scripts.loadgen.Result (.rps, .requests, .percentile(50) in seconds, .errors, ...).
    With `warm`, one request goes first and is waited for: it warms up a fresh
    server (Django loads some things on the first request), and on a server still
    busy with requests a previous measurement abandoned at its end, it waits in
    line behind them, so they are not counted against this measurement.
    With `pinned`, the load runs on the benchmark's load generator core, away from
    a server started with `server(..., pinned=True)`.
    """
    from scripts import loadgen
    if warm:
        fetch(url, path)
    loader_cpus = split_cpus()[1] if pinned else None

    def load():
        if loader_cpus:
            # Linux pins only the calling thread: this one, which exists for this load only.
            os.sched_setaffinity(0, loader_cpus)
        return loadgen.run(url + path, connections=connections, duration=duration, **options)

    # A notebook kernel already runs an event loop in its main thread, and
    # loadgen.run starts its own: give it a thread of its own to run in.
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(load).result()


def peak_threads(srv: ServerProcess, run: Callable[[], Any], *, every: float = 0.02) -> tuple[Any, int, int]:
    """Run `run()` (a measurement) while counting the threads of the server's processes.

    Answers (what run() answered, threads before, the most threads seen at once).
    """
    import psutil

    def count() -> int:
        try:
            top = psutil.Process(srv.pid)
            return sum(p.num_threads() for p in [top, *top.children(recursive=True)])
        except psutil.NoSuchProcess:
            return 0

    before = count()
    seen = [before]
    done = threading.Event()

    def sample():
        while not done.wait(every):
            seen.append(count())

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        result = run()
    finally:
        done.set()
        sampler.join()
    return result, before, max(seen)


def progress(items: Iterable[Any], *, desc: str):
    """`items` with a progress bar (tqdm), for loops whose steps take a while."""
    from tqdm.auto import tqdm
    return tqdm(list(items), desc=desc)


def cpu_seconds(srv: ServerProcess) -> float:
    """CPU time (user + system) used so far by the server's processes (scripts.bench reads /proc)."""
    from scripts import bench
    return bench.cpu_seconds(srv.pid)


def sweep(points: Iterable[Any], run: Callable[[Any], Any], *, desc: str) -> list[tuple[Any, Any]]:
    """Run `run(point)` for each point with a progress bar; answer [(point, result), ...]."""
    results = []
    for point in progress(points, desc=desc):
        results.append((point, run(point)))
    return results


# --- the benchmark harness ------------------------------------------------------

def run_bench(arguments: Sequence[str], *, out: str | os.PathLike, name: str) -> dict:
    """Run `python -m scripts.bench ARGUMENTS --out OUT --name NAME`, showing its progress live.

    Answers the results file it wrote, loaded with scripts.plots.load. The harness
    runs in its own process (it pins itself to a core, which the notebook's kernel
    should not be); if the cell is interrupted or fails, the harness gets SIGINT and
    stops its servers, and if the kernel dies, the harness gets SIGTERM (launch.py's
    parent-death signal).
    """
    import signal
    import subprocess

    from scripts import launch, plots
    argv = [sys.executable, "-m", "scripts.bench", *arguments, "--out", str(out), "--name", name]
    print("$", " ".join(["python", *argv[1:]]).replace(str(REPO) + "/", ""), flush=True)
    process = subprocess.Popen(argv, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               preexec_fn=lambda: launch.prepare_child(None))
    try:
        while chunk := process.stdout.read1(4096):
            sys.stdout.write(chunk.decode("utf-8", "replace"))
            sys.stdout.flush()
        status = process.wait()
    except BaseException:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        raise
    if status != 0:
        raise RuntimeError(f"scripts.bench exited with status {status}")
    return plots.load(Path(out) / f"{name}.json")


def merge_results(first: dict, *others: dict) -> dict:
    """One results dict from several runs of this notebook (rows together, the first's metadata)."""
    merged = dict(first)
    merged["rows"] = [row for results in (first, *others) for row in results["rows"]]
    return merged


def median_of(results: dict, field: str, **where: Any) -> float:
    """The median of `field` over the rows matching `where` (server=..., endpoint=..., concurrency=...).

    NaN when no row matches or none has the field, so a computed sentence shows "nan"
    rather than a number the run did not measure.
    """
    import math
    import statistics
    values = [row[field] for row in results["rows"]
              if all(row.get(key) == value for key, value in where.items()) and row.get(field) is not None]
    return statistics.median(values) if values else math.nan


# --- showing data ----------------------------------------------------------------

def _display(obj: Any) -> None:
    from IPython.display import display
    display(obj)


def _cell(value: Any) -> str:
    if isinstance(value, float):
        value = f"{value:,.1f}" if abs(value) >= 10 else f"{value:.3g}"
    return html.escape(str(value))


def table(rows: Iterable[Sequence[Any]], headers: Sequence[str], *, caption: str = "") -> None:
    """Show rows as an HTML table (floats rounded for reading)."""
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td style='text-align:left'>{_cell(v)}</td>" for v in row) + "</tr>"
                   for row in rows)
    title = f"<caption>{html.escape(caption)}</caption>" if caption else ""
    from IPython.display import HTML
    _display(HTML(f"<table>{title}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"))


def format_mapping(mapping: Mapping[str, Any]) -> str:
    """`KEY  value` lines with the keys aligned, in the mapping's own order."""
    if not mapping:
        return "(empty)"
    width = max(len(str(k)) for k in mapping)
    return "\n".join(f"{str(k):<{width}}  {v!r}" for k, v in mapping.items())


def side_by_side(columns: Mapping[str, str | Mapping[str, Any]]) -> None:
    """Show texts (or mappings, formatted with aligned keys) next to each other, one column each."""
    cells = []
    for title, content in columns.items():
        text = content if isinstance(content, str) else format_mapping(content)
        cells.append(f"<td style='vertical-align:top;text-align:left'><b>{html.escape(title)}</b>"
                     f"<pre style='font-size:11px'>{html.escape(text)}</pre></td>")
    from IPython.display import HTML
    _display(HTML(f"<table><tr>{''.join(cells)}</tr></table>"))


def show_source(obj: Any, *, lines: tuple[int, int] | None = None) -> None:
    """Show the source of a function or class as the installed package has it, with its file and line."""
    source, first = inspect.getsourcelines(obj)
    if lines is not None:
        source = source[lines[0]:lines[1]]
        first += lines[0]
    path = Path(inspect.getsourcefile(obj))
    try:
        path = path.relative_to(REPO)
    except ValueError:
        pass
    from IPython.display import Code, Markdown
    _display(Markdown(f"`{path}`, line {first}:"))
    _display(Code("".join(source), language="python"))


# --- exercises -----------------------------------------------------------------
#
# A check cell (tagged `check`) prints one line: ✅ and why, or ❌ and a hint. It fails
# on an exercise left as it was given (`...`, or code that does not work yet) and passes
# only on a working answer; tests/test_notebooks.py runs every notebook without the
# solutions (every check must fail with its hint) and with them (every check must pass).

@dataclass
class Check:
    """The outcome of one exercise check (also printed)."""
    right: bool
    message: str = field(default="")

    def __bool__(self) -> bool:
        return self.right


def _report(right: bool, message: str, hint: str) -> Check:
    if not hint.strip():
        raise ValueError("every check needs a hint for the student who has not got it yet")
    result = Check(right, message if right else f"{message} Hint: {hint}")
    print(("✅ " if result.right else "❌ ") + result.message.strip())
    return result


NOT_ANSWERED = "Not answered yet: replace ... in the cell above, run it, then run this cell."


def check(answer: Any, expected: Any, *, tolerance: float | None = None, hint: str) -> Check:
    """Compare a student's answer with a value computed from this run's measurements.

    Numbers compare within a relative `tolerance` when given; strings compare
    ignoring case and surrounding space. An answer left at `...` is not judged.
    """
    if unanswered(answer):
        return _report(False, NOT_ANSWERED, hint)
    if tolerance is not None and isinstance(answer, (int, float)) and not isinstance(answer, bool):
        right = abs(answer - expected) <= tolerance * abs(expected)
        return _report(right, f"Right: {answer:g} is within {tolerance:.0%} of {expected:g}." if right
                       else f"Not yet: {answer:g} is not within {tolerance:.0%} of the measured value.", hint)
    normal = (lambda v: v.strip().lower()) if isinstance(expected, str) and isinstance(answer, str) else (lambda v: v)
    right = normal(answer) == normal(expected)
    return _report(right, f"Right: {answer!r}." if right else f"Not yet: {answer!r} is not it.", hint)


def check_that(condition: bool, *, right: str, hint: str, wrong: str = "Not yet.") -> Check:
    """An exercise check that is a condition on measured values, not one expected answer."""
    return _report(bool(condition), right if condition else wrong, hint)


def check_code(test: Callable[[], str], *, hint: str) -> Check:
    """Check code the student wrote: `test()` exercises it and answers what worked.

    Any exception (the `...` body of an untouched exercise raises or returns None,
    an assertion on its result fails) is the check failing, shown with the hint.
    """
    try:
        worked = test()
    except Exception as error:  # the student's code may fail in any way; the message says how
        # One line: the verdict line is what a reader (and tests/test_notebooks.py) looks at.
        said = " ".join(str(error).split())
        return _report(False, f"Not yet: {type(error).__name__}: {said}".rstrip(": "), hint)
    return _report(True, f"Right: {worked}", hint)


# Predict, then measure: the measuring cell records the prediction as it stands when the
# measurement starts, so a prediction written afterwards does not count.
PREDICTIONS: dict[str, Any] = {}


def unanswered(value: Any) -> bool:
    """`...`, or a dict or list still holding a `...` the student was to replace."""
    if isinstance(value, dict):
        return any(unanswered(item) for item in value.values())
    if isinstance(value, (list, tuple)):
        return any(unanswered(item) for item in value)
    return value is ...


def record_prediction(name: str, value: Any) -> None:
    """Called first thing in a measuring cell: keep the prediction made before it ran."""
    PREDICTIONS[name] = value
    print(f"Your prediction ({name}):", "not written yet" if unanswered(value) else repr(value))


def check_prediction(name: str, measured: Any, *, hint: str, tolerance: float | None = None) -> Check:
    """Compare the prediction recorded before the measurement with what it measured."""
    predicted = PREDICTIONS.get(name, ...)
    if unanswered(predicted):
        return _report(False, "No prediction was recorded before the measurement ran: write it, run "
                              "that cell, then the measuring cell again, then this one.", hint)
    if tolerance is not None:
        right = abs(predicted - measured) <= tolerance * abs(measured)
    else:
        right = predicted == measured
    said = f"You predicted {predicted!r}; the run measured {measured!r}."
    return _report(right, f"Right: {said}" if right else f"Not this time: {said}", hint)


# --- the one picture of 00_overview ---------------------------------------------

def draw_models():
    """Three rows, one per interface: who runs the application, and what it is handed."""
    import matplotlib.pyplot as plt
    from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

    rows = [
        ("CGI (1993)", "#c0504d", "web server", "fork + exec\na NEW process\nper request",
         "env variables + stdin\n→ stdout", "program\n(Python starts,\nimports Django)"),
        ("WSGI (2003)", "#4f81bd", "server process\n(thread pool)", "a thread calls\napp(environ,\nstart_response)",
         "dict + callable\n→ iterable of bytes", "Django, already\nimported"),
        ("ASGI (2016-19)", "#9bbb59", "server process\n(event loop)", "a task awaits\napp(scope,\nreceive, send)",
         "dict + messages\n(both ways)", "Django, already\nimported"),
    ]
    fig, ax = plt.subplots(figsize=(11, 4.6))
    ax.set_xlim(0, 11)
    ax.set_ylim(0, len(rows) * 1.5 + 0.2)
    ax.axis("off")
    xs = [0.1, 2.3, 4.6, 7.0, 9.3]
    for i, (name, colour, *boxes) in enumerate(rows):
        y = (len(rows) - 1 - i) * 1.5 + 0.3
        ax.text(0.1, y + 1.05, name, fontsize=12, fontweight="bold", color=colour)
        stages = ["client\n(browser)", *boxes]
        for j, (x, label) in enumerate(zip(xs, stages)):
            ax.add_patch(FancyBboxPatch((x, y), 1.6, 0.9, boxstyle="round,pad=0.05",
                                        facecolor=colour if j in (2, 3) else "white",
                                        alpha=0.25 if j in (2, 3) else 1, edgecolor=colour))
            ax.text(x + 0.8, y + 0.45, label, ha="center", va="center", fontsize=8.5)
            if j:
                ax.add_patch(FancyArrowPatch((xs[j - 1] + 1.65, y + 0.45), (x - 0.05, y + 0.45),
                                             arrowstyle="->", mutation_scale=12, color=colour))
    ax.set_title("One HTTP request, three ways to reach a Python application", fontsize=13)
    plt.show()
