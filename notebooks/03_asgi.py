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
# - show with measurements where threads run out and the event loop does not, why one blocking
#   call in an async view hurts everyone, and what a sync view costs under ASGI.

# %% [markdown]
# **How to use this notebook.** Run the cells from top to bottom (Shift-Enter). A cell that
# starts a server does it in a `with nb.server(...) as srv:` block: the server starts on a free
# port, the cell waits until it answers, and the server stops when the block ends, also when the
# cell fails. If you interrupt or restart the kernel, its servers are stopped too.
# Set `TOOLKIT_QUICK=1` in the environment before starting Jupyter for short measurements.

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

curves = {}
for name, (kind, extra, path) in SETUPS.items():
    with nb.server(kind, extra=extra) as srv:
        curves[name] = dict(nb.sweep(LEVELS, lambda c: nb.measure(srv.url, path, connections=c, duration=SECONDS),
                                     desc=name))

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


# %%
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
#
# ## Exercises
#
# **1.** The application in the next cell blocks the loop. Fix it (one line, plus an import),
# run the cell, then the check cell: it serves your application and measures it with 16 clients.

# %%
# %%writefile var/notebooks/apps/exercise_asgi.py
import time


async def app(scope, receive, send):
    time.sleep(0.05)
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": b"done\n"})


# %%
mine = serve_and_measure("exercise_asgi:app")
nb.check_that(mine.rps > 4 * blocking.rps,
              right=f"Right: {mine.rps:.0f} requests/s, {mine.rps / blocking.rps:.0f}x the blocking version.",
              hint=f"{mine.rps:.0f} requests/s, like the blocking version ({blocking.rps:.0f}/s). Await instead of blocking.");

# %% [markdown]
# **2.** In the trace of `first_asgi`, which message type did the application *receive*?

# %%
answer_2 = ...

# %%
nb.check(answer_2, messages[0], hint="The first message in the trace came from the server.");

# %% [markdown]
# **3.** 256 clients each ask for a view that waits 50 ms. A WSGI server has 8 threads. What is
# the median latency you would expect, in ms? (Each thread serves 20 requests per second; every
# client waits its turn.)

# %%
answer_3 = ...

# %%
nb.check(answer_3, 256 / (8 * 20) * 1000, tolerance=0.1, hint="clients / (threads × 20 per s), in ms.")
if 256 in curves["WSGI, 8 threads, sync view"]:
    print(f"measured: {curves['WSGI, 8 threads, sync view'][256].percentile(50) * 1000:.0f} ms")
