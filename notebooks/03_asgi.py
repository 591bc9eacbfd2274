# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     notebook_metadata_filter: kernelspec,-jupytext.text_representation.jupytext_version
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 03 · ASGI: coroutines and messages on an event loop
#
# **Learning goals.** After this notebook you can
# - write an ASGI application with `scope`, `receive` and `send`, and read its messages in a trace;
# - read Django's `ASGIHandler` and see where it runs sync code in a thread;
# - serve the same site with uvicorn;
# - write an ASGI application that streams, and one that waits without blocking the loop;
# - show with measurements where threads run out and the event loop does not, how many
#   threads Django runs under ASGI, why one blocking call in an async view hurts everyone,
#   and what a sync view costs under ASGI;
# - see what Django does when a client disconnects mid-request (`listen_for_disconnect`).

# %% [markdown]
# **How to use this notebook.** Run the cells from top to bottom (Shift-Enter). A cell that
# starts a server does it in a `with nb.server(...) as srv:` block: the server starts on a free
# port, the cell waits until it answers, and the server stops when the block ends, also when the
# cell fails. If you interrupt or restart the kernel, its servers are stopped too.
# Set `TOOLKIT_QUICK=1` in the environment before starting Jupyter for short measurements.
#
# **Exercises.** Some ask you to write code, some to *predict* a result before the cell that
# measures it (the measuring cell records your prediction when it starts). Each check cell
# prints ✅, or ❌ with a hint; it fails until your answer works. Under each exercise a
# collapsed *Solution* cell waits: open it after trying, not before.

# %%
# Setup: work from the repository root, load the helpers as `nb` (notebooks/classroom.py).
import os, pathlib
import matplotlib.pyplot as plt
from classroom import setup
nb = setup()

# %% [markdown]
# ## An ASGI application, written here
#
# The ASGI HTTP spec in four lines: the server awaits `app(scope, receive, send)`. `scope` is a
# dict describing the request (no body). `await receive()` returns `http.request` messages
# carrying the body, piece by piece, until `more_body` is false. The application answers with
# `await send(...)`: one `http.response.start` (status and headers, as bytes), then one or
# more `http.response.body`.

# %%
APPS = nb.workdir("apps")

# %%
# %%writefile var/notebooks/apps/first_asgi.py
"""An ASGI application (ASGI 3, HTTP) with no framework."""
from servers.asgi_checker import checked


async def app(scope, receive, send):
    assert scope["type"] == "http", "this app serves HTTP only (run the server with --lifespan off)"
    size = 0
    while True:                                   # the body arrives in http.request messages
        message = await receive()
        size += len(message.get("body", b""))
        if not message.get("more_body", False):
            break
    text = f"Hello! You sent {scope['method']} {scope['path']} with {size} body bytes.\n"
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/plain; charset=utf-8")]})
    await send({"type": "http.response.body", "body": text.encode(), "more_body": True})
    await send({"type": "http.response.body", "body": b"Goodbye.\n"})


# The same application inside the ASGI checker (our counterpart of wsgiref.validate):
# any message out of order or of the wrong type raises ASGIViolation.
checked_app = checked(app)

# %%
with nb.server("asgi", app="first_asgi:checked_app", pythonpath=APPS, extra=["--trace", "--lifespan", "off"]) as srv:
    mark = len(srv.output())
    hello = nb.fetch(srv.url, "/greet?lang=en", method="POST", body=b"hello server")
    trace = nb.trace_blocks(nb.output_since(srv, mark))
print(hello.status, hello.reason)
print(hello.text)
nb.show_trace(trace)

# %%
messages = [b.message_type() for b in trace if b.message_type()]
print("messages in order:", " → ".join(messages))

# %% [markdown]
# Between `receive` and `send` the application may `await` anything: while it waits, the same
# thread runs other requests. That is the whole point, and its danger, as we measure below.
#
# ## Django's `ASGIHandler`
#
# `sample_site/asgi.py` calls `get_asgi_application()`. Here is how the installed Django
# answers the call. Note `handle()`: it reads the whole body first, and `get_response_async`
# runs the middleware and the view. A *sync* view (plain `def`) is run with `sync_to_async`,
# in a thread; an `async def` view runs on the event loop itself.

# %%
import django.core.handlers.asgi
nb.show_source(django.core.handlers.asgi.ASGIHandler.__call__)
nb.show_source(django.core.handlers.asgi.ASGIHandler.handle)

# %% [markdown]
# ## uvicorn serves the same site
#
# The command from Django's docs: `python -m uvicorn sample_site.asgi:application`. We compare
# the scope uvicorn and the toy server hand Django for the same request.

# %%
scopes = {}
for kind in ("asgi", "uvicorn"):
    with nb.server(kind) as srv:
        scopes[kind] = nb.inspect_request(srv.url, "/inspect?lang=en")[1]
nb.side_by_side({"toy asgi server": scopes["asgi"], "uvicorn": scopes["uvicorn"]})

# %% [markdown]
# ## Waiting: threads run out, the event loop does not
#
# Every client asks for a page whose view waits 50 ms (a database, a remote API):
# - `/io?ms=50` is a sync view with `time.sleep`; under the toy WSGI server it holds one of 8
#   threads while it waits; under ASGI, Django runs it in a thread too;
# - `/io-async?ms=50` is an `async def` view with `await asyncio.sleep`; under ASGI it waits on
#   the event loop, holding no thread.
#
# We raise the number of clients and count the requests per second.

# %%
LEVELS = nb.pick([1, 8, 32, 128, 256], [1, 8, 32])
SECONDS = nb.pick(3, 1)
SETUPS = {"WSGI, 8 threads, sync view": ("wsgi", ["--threads", "8"], "/io?ms=50"),
          "ASGI, sync view": ("asgi", [], "/io?ms=50"),
          "ASGI, async view": ("asgi", [], "/io-async?ms=50")}

curves, threads = {}, {}
for name, (kind, extra, path) in SETUPS.items():
    with nb.server(kind, extra=extra) as srv:
        # Also count the server's threads while the load runs: who does the waiting?
        curves[name], _, threads[name] = nb.peak_threads(srv, lambda: dict(
            nb.sweep(LEVELS, lambda c: nb.measure(srv.url, path, connections=c, duration=SECONDS), desc=name)))

# %%
fig, (left, right) = plt.subplots(1, 2, figsize=(11, 3.8))
for name, curve in curves.items():
    left.plot(LEVELS, [curve[c].rps for c in LEVELS], marker="o", label=name)
    right.plot(LEVELS, [curve[c].percentile(50) * 1000 for c in LEVELS], marker="o", label=name)
left.plot(LEVELS, [c * 20 for c in LEVELS], ":", color="grey", label="ideal: clients × 20/s")
left.set_xscale("log", base=2); left.set_yscale("log"); left.set_xlabel("clients"); left.set_ylabel("requests/s")
right.set_xscale("log", base=2); right.set_xlabel("clients"); right.set_ylabel("median latency ms")
left.legend(fontsize=8); fig.suptitle("Views that wait 50 ms")
plt.show()

# %%
top = LEVELS[-1]
rows = [(name, curve[top].rps, curve[top].percentile(50) * 1000) for name, curve in curves.items()]
nb.table(rows, ["setup", f"requests/s at {top} clients", "median latency ms"])
wsgi_rps = curves["WSGI, 8 threads, sync view"][top].rps
async_rps = curves["ASGI, async view"][top].rps
print(f"At {top} clients, 8 threads served {wsgi_rps:.0f} requests/s (their ceiling: 8 / 0.05 s = 160/s); "
      f"the async view on the event loop served {async_rps:.0f}/s, {async_rps / wsgi_rps:.1f}x as many.")
nb.table([(name, count) for name, count in threads.items()], ["setup", "threads in the server at its busiest"])
asgi_sync_threads, asgi_async_threads = threads["ASGI, sync view"], threads["ASGI, async view"]
print(f"Under the toy ASGI server, Django ran the sync view with up to {asgi_sync_threads} threads in the process: "
      f"the event loop is one of them, the rest are the threads sync_to_async handed the view to.")
print(f"With the async view the process had up to {asgi_async_threads} threads: "
      + ("far fewer, the view waited on the loop." if asgi_async_threads < asgi_sync_threads / 2 else
         "not far fewer, because Django still runs its sync parts through sync_to_async, async view or "
         "not: the request_started and request_finished signal receivers (they close database "
         "connections) and the response's close()."))

# %% [markdown]
# ## One blocking call inside an async view
#
# An `async def` view runs on the event loop itself. If it calls something that blocks
# (`time.sleep`, `requests.get`, a sync database driver), the *whole loop* stops: no other
# request moves until it returns. Two small ASGI applications, identical but for one line:

# %%
# %%writefile var/notebooks/apps/sleepy_asgi.py
import asyncio
import time

HEADERS = [(b"content-type", b"text/plain")]


async def polite(scope, receive, send):
    await asyncio.sleep(0.05)          # waits on the event loop: other requests run meanwhile
    await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
    await send({"type": "http.response.body", "body": b"done\n"})


async def blocking(scope, receive, send):
    time.sleep(0.05)                   # blocks the event loop: nothing else runs for 50 ms
    await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
    await send({"type": "http.response.body", "body": b"done\n"})


# %% [markdown]
# **Predict first.** 16 clients, each sending its next request as soon as the last is answered,
# for each application. Each request waits 50 ms. About how many requests per second will
# each serve: `"about 20"` or `"about 320"`?

# %%
prediction_blocking = {"polite": ..., "blocking": ...}

# %% [markdown] tags=["solution"] jupyter={"source_hidden": true}
# **Solution.** `polite` waits on the loop, so all 16 wait at once: 16 × 20 = 320 per second at
# most. `blocking` stops the loop for each of them in turn: 1 / 0.05 s = 20 per second at most.
#
# ```python
# prediction_blocking = {"polite": "about 320", "blocking": "about 20"}
# ```

# %%
nb.record_prediction("blocking", prediction_blocking)

def serve_and_measure(app, clients=16):
    with nb.server("asgi", app=app, pythonpath=APPS, extra=["--lifespan", "off"]) as srv:
        return nb.measure(srv.url, "/", connections=clients, duration=nb.pick(3, 1.5))

sleepy = dict(nb.sweep(["sleepy_asgi:polite", "sleepy_asgi:blocking"], serve_and_measure, desc="async apps"))
nb.table([(app, r.rps, r.percentile(50) * 1000) for app, r in sleepy.items()],
         ["application (16 clients)", "requests/s", "median latency ms"])
polite, blocking = sleepy.values()
print(f"One time.sleep instead of await asyncio.sleep: {polite.rps / blocking.rps:.0f}x fewer requests/s "
      f"({blocking.rps:.0f}/s: one request at a time, as if the server had one thread), and a median "
      f"latency of {blocking.percentile(50) * 1000:.0f} ms instead of {polite.percentile(50) * 1000:.0f} ms.")

# %% tags=["check"]
import math
nearest = lambda rps: "about 20" if rps < math.sqrt(20 * 320) else "about 320"
nb.check_prediction("blocking", {"polite": nearest(polite.rps), "blocking": nearest(blocking.rps)},
                    hint="How many 50 ms waits fit in a second, and how many clients can wait at the same time?");

# %% [markdown]
# ## A client that leaves: `listen_for_disconnect`
#
# A client may give up before the answer is ready: a closed tab, a timeout in front. Under
# WSGI the server finds out only when it writes the response. Under ASGI the server says so at
# once: its next `receive()` answers `http.disconnect`. Django's `ASGIHandler` runs a task
# that does nothing but wait for that message while the view runs:

# %%
nb.show_source(django.core.handlers.asgi.ASGIHandler.listen_for_disconnect)

# %% [markdown]
# Live: a client asks for `/io-async?ms=1500` (an async view that waits 1.5 s), and hangs up
# after 0.3 s. A second client asks for the same and waits. The trace shows what Django got
# and what it sent for each.

# %%
import socket
import time

def leave_early(srv, path, after):
    with socket.create_connection((srv.host, srv.port)) as client:
        client.sendall(f"GET {path} HTTP/1.1\r\nHost: {srv.host}\r\n\r\n".encode())
        time.sleep(after)

with nb.server("asgi", extra=["--trace"]) as srv:
    mark = len(srv.output())
    leave_early(srv, "/io-async?ms=1500", after=0.3)
    stayed = nb.fetch(srv.url, "/io-async?ms=1500")
    disconnect_trace = nb.trace_blocks(nb.output_since(srv, mark, settle=0.5))
by_request = {}
for block in disconnect_trace:
    if block.message_type():
        by_request.setdefault(block.number, []).append(f"{block.title}: {block.message_type()}")
for number, lines in by_request.items():
    print(f"request #{number}:", " | ".join(lines))
left, waited = (by_request.get(n, []) for n in sorted(by_request)[:2])
print(f"The client that left: {'no response was sent' if not any('response' in l for l in left) else 'a response was still sent'}; "
      f"the one that waited got {stayed.status} after {stayed.seconds:.1f} s.")

# %% [markdown]
# When `http.disconnect` arrived, `listen_for_disconnect` raised `RequestAborted`, Django
# cancelled the task running the view, and no response was sent: the server stopped working
# for someone who had left. A sync view cannot be stopped that way: its thread runs on to the
# end, and the answer is thrown away.

# %% [markdown]
# ## What a sync view costs under ASGI
#
# Most Django code is sync: the ORM, most middleware, most views. Under ASGI, Django runs each
# sync piece with `sync_to_async`, which hands it to a thread and waits for the result: a
# thread hop per request, and an event loop *and* a thread doing the work a WSGI server does
# with a thread alone. Measured: the same `/hello` (a sync view) under the toy WSGI server and
# the toy ASGI server, and `/hello-async` (an `async def` view) under ASGI; 8 clients.

# %%
CASES = {"WSGI · /hello (sync)": ("wsgi", "/hello"), "ASGI · /hello (sync)": ("asgi", "/hello"),
         "ASGI · /hello-async (async)": ("asgi", "/hello-async"),
         "gunicorn gthread · /hello": ("gunicorn-gthread", "/hello"),
         "uvicorn · /hello": ("uvicorn-fast", "/hello")}

def run_case(name):
    kind, path = CASES[name]
    with nb.server(kind) as srv:
        nb.fetch(srv.url, path)                        # the first request warms Django up
        before = nb.cpu_seconds(srv)
        result = nb.measure(srv.url, path, connections=8, duration=nb.pick(4, 1.5), warm=False)
        cpu_ms = (nb.cpu_seconds(srv) - before) * 1000 / max(result.requests, 1)
    return result, cpu_ms

costs = dict(nb.sweep(CASES, run_case, desc="per-request cost"))
nb.table([(name, r.rps, cpu_ms, r.percentile(50) * 1000) for name, (r, cpu_ms) in costs.items()],
         ["server · URL", "requests/s", "server CPU ms per request", "median latency ms"])

# %%
cpu = {name: cpu_ms for name, (r, cpu_ms) in costs.items()}
wsgi_sync, asgi_sync, asgi_async = (cpu[name] for name in list(CASES)[:3])
print(f"The same sync view cost the server {wsgi_sync:.2f} ms of CPU per request under WSGI and "
      f"{asgi_sync:.2f} ms under ASGI: {asgi_sync / wsgi_sync:.1f}x.")
print(f"Under ASGI, the async view cost {asgi_async:.2f} ms against {asgi_sync:.2f} ms for the sync one "
      f"({asgi_async / asgi_sync:.2f}x): "
      + ("the sync view's hop to a thread shows." if asgi_async < 0.9 * asgi_sync
         else "about the same, so the view's own hop to a thread is not what dominates: Django's "
              "request handling under ASGI costs this much for every request, async view or not."
         if asgi_async <= 1.1 * asgi_sync else "here the async view cost more."))
print(f"For comparison, the servers people deploy: gunicorn (gthread) {cpu['gunicorn gthread · /hello']:.2f} ms, "
      f"uvicorn (httptools, uvloop) {cpu['uvicorn · /hello']:.2f} ms per request for the same sync view.")

# %% [markdown]
# ## The garbage collector's share
#
# Python frees most objects by reference counting, at the moment the last reference goes.
# Objects in a reference *cycle* wait for the cyclic garbage collector, and Django's ASGI
# handler leaves a cycle behind with every request: a finished task holds its exception,
# the exception its traceback, the traceback the handler's frame, and the frame the task.
# To reclaim them the collector runs full collections, which visit every container object
# alive, and after `import django` that is tens of thousands of objects that will live as
# long as the server. So both toy servers call `gc.freeze()` once the application is
# imported (`common.freeze_startup_objects()`): what exists then moves to a permanent
# generation the collector skips. `--no-gc-freeze` turns that off. Both, side by side, on
# `/hello-async` with 32 clients, measured in turns:

# %%
import re
import statistics

FREEZE = {"gc.freeze() (the default)": [], "--no-gc-freeze": ["--no-gc-freeze"]}
with nb.server("asgi", extra=FREEZE["gc.freeze() (the default)"]) as frozen_srv, \
     nb.server("asgi", extra=FREEZE["--no-gc-freeze"]) as plain_srv:
    servers = dict(zip(FREEZE, (frozen_srv, plain_srv)))
    cpu_per_request = {name: [] for name in FREEZE}
    rounds = nb.pick(3, 1)
    for _ in nb.progress(range(rounds), desc="rounds, each server in turn"):
        for name, srv in servers.items():
            before = nb.cpu_seconds(srv)
            result = nb.measure(srv.url, "/hello-async", connections=32, duration=nb.pick(4, 1.5))
            cpu_per_request[name].append((nb.cpu_seconds(srv) - before) * 1000 / max(result.requests, 1))
    announced = re.search(r"([\d,]+) start-up objects frozen", frozen_srv.output())
assert announced, "the server's Listening line should say how many objects it froze"
frozen_count = int(announced.group(1).replace(",", ""))
freeze_ms = {name: statistics.median(values) for name, values in cpu_per_request.items()}
nb.table([(name, ms) for name, ms in freeze_ms.items()],
         ["toy ASGI server", "server CPU ms per request (median of the rounds)"])

# %%
with_freeze, without_freeze = freeze_ms.values()
saved = 1 - with_freeze / without_freeze
print(f"At start-up the server froze {frozen_count:,} objects: Django, the site, the server itself.")
print(f"CPU per request: {with_freeze:.3f} ms with the freeze, {without_freeze:.3f} ms without: "
      + (f"the freeze saved {saved:.0%}, the collector's walks over the framework." if saved >= 0.02
         else f"{saved:+.0%}, within this machine's noise; run the cell again, or in full mode."))

# %% [markdown]
# When the whole stack is sync, ASGI has nothing to offer it, and the numbers above show
# what the adaptation costs on this machine. ASGI pays off when requests *wait*: long-lived
# connections, streaming, calls to slow services made with `await`, as measured earlier.

# %% [markdown]
# ## Exercises
#
# **1. An ASGI application that streams.** Write `ticker`, which answers `200` with
# `content-type: text/plain` and the body `tick 1\n`, `tick 2\n`, `tick 3\n` sent as three
# separate `http.response.body` messages, awaiting 0.1 s before each of the last two (so a
# browser would see them arrive one by one). The next cell writes it to a file; the check
# serves it with the toy ASGI server, traced.

# %%
# %%writefile var/notebooks/apps/ticker_asgi.py
import asyncio


async def ticker(scope, receive, send):
    ...

# %% [markdown] tags=["solution"] jupyter={"source_hidden": true}
# **Solution.** `more_body: True` on every body message but the last tells the server more is
# coming; without a `content-length` the toy server sends the pieces chunked as they come.
#
# ```python
# (APPS / "ticker_asgi.py").write_text('''import asyncio
#
#
# async def ticker(scope, receive, send):
#     await send({"type": "http.response.start", "status": 200,
#                 "headers": [(b"content-type", b"text/plain")]})
#     for number in (1, 2, 3):
#         if number > 1:
#             await asyncio.sleep(0.1)
#         await send({"type": "http.response.body", "body": f"tick {number}\\n".encode(),
#                     "more_body": number < 3})
# ''')
# ```

# %% tags=["check"]
def try_ticker():
    with nb.server("asgi", app="ticker_checked:app", pythonpath=APPS, extra=["--trace", "--lifespan", "off"]) as srv:
        mark = len(srv.output())
        answer = nb.fetch(srv.url, "/")
        blocks = nb.trace_blocks(nb.output_since(srv, mark))
    assert answer.status == 200, f"the server answered {answer.status}: {answer.text[:200]}"
    assert answer.header("Content-Type", "").startswith("text/plain"), f"content-type was {answer.header('Content-Type')}"
    assert answer.text == "tick 1\ntick 2\ntick 3\n", f"the body was {answer.text!r}"
    bodies = [b for b in blocks if b.message_type() == "http.response.body"]
    assert len(bodies) == 3, f"the trace shows {len(bodies)} http.response.body messages, not 3"
    assert answer.seconds >= 0.2, f"the whole answer took {answer.seconds:.2f} s: where are the two waits of 0.1 s?"
    return f"three body messages, {answer.text!r}, in {answer.seconds:.2f} s."

# The application goes through the ASGI checker, which refuses messages out of order.
(APPS / "ticker_checked.py").write_text("from servers.asgi_checker import checked\n"
                                        "from ticker_asgi import ticker\n\napp = checked(ticker)\n")
nb.check_code(try_ticker, hint="one http.response.start, then three http.response.body with "
              "more_body=True on the first two; await asyncio.sleep(0.1) between them.");

# %% [markdown]
# **2. Unblock the loop.** The application in the next cell blocks the loop. Fix it (one line,
# plus an import), run the cell, then the check cell: it serves your application to 16 clients
# at once and watches how many requests are inside it at the same time, and how long each took.

# %%
# %%writefile var/notebooks/apps/exercise_asgi.py
import time


async def app(scope, receive, send):
    time.sleep(0.05)
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": b"done\n"})

# %% [markdown] tags=["solution"] jupyter={"source_hidden": true}
# **Solution.** The wait must stay (it stands for a call to a database), but on the loop.
#
# ```python
# (APPS / "exercise_asgi.py").write_text('''import asyncio
#
#
# async def app(scope, receive, send):
#     await asyncio.sleep(0.05)
#     await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
#     await send({"type": "http.response.body", "body": b"done\\n"})
# ''')
# ```

# %%
# %%writefile var/notebooks/apps/exercise_probe.py
"""Your app inside a middleware that counts the requests inside it and times each one."""
import time

from exercise_asgi import app as inner

inside = 0


async def app(scope, receive, send):
    global inside
    inside += 1
    started = time.perf_counter()
    crowd = inside

    async def send_counted(message):
        nonlocal crowd
        crowd = max(crowd, inside)
        if message["type"] == "http.response.start":
            took = (time.perf_counter() - started) * 1000
            message = {**message, "headers": [*message.get("headers", []),
                                              (b"x-inside", str(crowd).encode()), (b"x-took-ms", f"{took:.1f}".encode())]}
        await send(message)

    try:
        await inner(scope, receive, send_counted)
    finally:
        inside -= 1

# %% tags=["check"]
import concurrent.futures

def try_unblocked():
    with nb.server("asgi", app="exercise_probe:app", pythonpath=APPS, extra=["--lifespan", "off"]) as srv:
        with concurrent.futures.ThreadPoolExecutor(16) as pool:
            answers = list(pool.map(lambda _: nb.fetch(srv.url, "/"), range(32)))
    most_inside = max(int(a.header("x-inside")) for a in answers)
    shortest = min(float(a.header("x-took-ms")) for a in answers)
    assert shortest >= 45, f"a request took {shortest:.1f} ms inside the app: the 50 ms wait is gone, not moved"
    assert most_inside > 1, "never more than one request inside the app at once: the loop is still blocked"
    return f"up to {most_inside} requests waited inside the app at once, each for at least {shortest:.0f} ms."

nb.check_code(try_unblocked, hint="await asyncio.sleep(0.05) instead of time.sleep(0.05): keep the wait, "
              "let the loop run others meanwhile.");

# %% [markdown]
# **3.** 256 clients each ask for a view that waits 50 ms. A WSGI server has 8 threads. What is
# the median latency you would expect, in ms? (Each thread serves 20 requests per second; every
# client waits its turn.)

# %%
answer_3 = ...

# %% [markdown] tags=["solution"] jupyter={"source_hidden": true}
# **Solution.** 8 threads serve 160 requests per second; 256 clients in line wait 256 / 160 s.
#
# ```python
# answer_3 = 256 / (8 * 20) * 1000
# ```

# %% tags=["check"]
nb.check(answer_3, 256 / (8 * 20) * 1000, tolerance=0.1, hint="clients / (threads × 20 per s), in ms.");
