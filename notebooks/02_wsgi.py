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
# # 02 · WSGI: a function call in a long-running process
#
# **Learning goals.** After this notebook you can
# - write a WSGI application with its three parts: `environ`, `start_response`, the iterable;
# - use `wsgiref.validate` to find a mistake against PEP 3333, and write a middleware;
# - read how Django's `WSGIHandler` answers the call, and match it to what a server does;
# - serve the same site with gunicorn, the server people deploy;
# - say when threads help and when only processes do, from measurements, with gunicorn's
#   `--workers` and `--threads` beside the toy server's.

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
# ## A WSGI application, written here
#
# PEP 3333 in three lines: the server calls `app(environ, start_response)`; the application
# calls `start_response(status, headers)` once, then returns an iterable of `bytes` (a list,
# or a generator that produces the body piece by piece). The next cell writes the
# application to a file, so the toy server (another process) can import it as `first_wsgi:app`.

# %%
APPS = nb.workdir("apps")
print(APPS)

# %%
# %%writefile var/notebooks/apps/first_wsgi.py
"""A WSGI application (PEP 3333) with no framework."""


def app(environ, start_response):
    # environ: a dict of CGI-style variables (REQUEST_METHOD, PATH_INFO, HTTP_*) and wsgi.* keys
    body_size = int(environ.get("CONTENT_LENGTH") or 0)
    body = environ["wsgi.input"].read(body_size)
    text = (f"Hello! You sent {environ['REQUEST_METHOD']} {environ['PATH_INFO']}"
            f" with {len(body)} body bytes.\n")
    # start_response(status, headers): the status as "200 OK", headers as (str, str) pairs
    start_response("200 OK", [("Content-Type", "text/plain; charset=utf-8")])
    # the return value: an iterable of bytes; a generator streams it piece by piece
    yield text.encode()
    yield b"Goodbye.\n"


# %%
with nb.server("wsgi", app="first_wsgi:app", pythonpath=APPS, extra=["--trace"]) as srv:
    mark = len(srv.output())
    hello = nb.fetch(srv.url, "/greet?lang=en", method="POST", body=b"hello server")
    trace = nb.trace_blocks(nb.output_since(srv, mark))
print(hello.status, hello.reason, hello.header("Transfer-Encoding") or hello.header("Content-Length"))
print(hello.text)
nb.show_trace(trace)

# %% [markdown]
# The trace shows the `environ` the server built for this request, the CGI names first in the
# same order as the CGI server uses, then the `wsgi.*` keys. The application returned a
# generator and gave no `Content-Length`, so the server sent the body in chunks
# (`Transfer-Encoding: chunked`, RFC 9112 §7.1) as the generator produced them.
#
# ## `wsgiref.validate`: a checker for both sides
#
# The standard library has a checker: wrap an application in `wsgiref.validate.validator`
# and every rule of PEP 3333 that the application *or the server* breaks raises an
# `AssertionError`. Here is an application with a common mistake: its body is a `str`.

# %%
from wsgiref.util import setup_testing_defaults
from wsgiref.validate import validator

def broken(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return ["Hello, world!\n"]            # the mistake: PEP 3333 bodies are bytes, not str

def call_validated(app):
    """Call app the way a server would, through the validator; answer the body."""
    environ = {"QUERY_STRING": ""}
    setup_testing_defaults(environ)
    result = validator(app)(environ, lambda status, headers, exc_info=None: None)
    try:
        return b"".join(result)
    finally:
        result.close()

try:
    call_validated(broken)
except AssertionError as error:
    print("wsgiref.validate caught it:", error)


# %% [markdown]
# The toy server also refuses it: a body that is not bytes is an error in the application, so
# the client gets `500 Internal Server Error` (the traceback goes to the server's log, never to
# the client).

# %%
# %%writefile var/notebooks/apps/broken_wsgi.py
def app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return ["Hello, world!\n"]


# %%
with nb.server("wsgi", app="broken_wsgi:app", pythonpath=APPS) as srv:
    mark = len(srv.output())
    refused = nb.fetch(srv.url, "/")
    log = nb.output_since(srv, mark)
print("client got:", refused.status, refused.reason, repr(refused.text))
print("server log, last lines:")
print("\n".join(log.strip().splitlines()[-3:]))

# %% [markdown]
# ## Django is a WSGI application too
#
# `sample_site/wsgi.py` is the file `django-admin startproject` writes: it calls
# `get_wsgi_application()` once and names the result `application`. That is what a WSGI
# server imports (`sample_site.wsgi:application`). Below, the source of the *installed* Django.

# %%
print(pathlib.Path("sample_site/wsgi.py").read_text())

# %%
import django.core.handlers.wsgi
import django.core.wsgi
nb.show_source(django.core.wsgi.get_wsgi_application)
nb.show_source(django.core.handlers.wsgi.WSGIHandler.__call__)

# %% [markdown]
# Read `__call__` against PEP 3333 and the toy server:
# - `environ` becomes a `WSGIRequest`; `request.META` *is* the `environ` the server built;
#   the body is read from `environ["wsgi.input"]`.
# - `start_response(status, response_headers)` is the server's callable: Django calls it once,
#   with the status as `"200 OK"` and the headers as a list of `(str, str)` pairs.
# - The return value is the response object itself, which is iterable (its content) and has a
#   `close()` that the server must call when it is done (PEP 3333 asks for this, and Django
#   uses it to send its `request_finished` signal and close database connections).
# - For a file response, Django uses `environ["wsgi.file_wrapper"]` if the server offers it,
#   so the server can send the file with `os.sendfile`.
#
# Here is the place in the toy server where all this meets: the function that calls the
# application.

# %%
from servers import wsgi_server
nb.show_source(wsgi_server.Exchange.run)

# %% [markdown]
# ## gunicorn serves the same site
#
# The command from Django's deployment docs is `gunicorn sample_site.wsgi`. Same application
# object, another server: compare the `environ` each one builds for the same request.

# %%
environs = {}
for kind in ("wsgi", "gunicorn"):
    with nb.server(kind) as srv:
        environs[kind] = nb.inspect_request(srv.url, "/inspect?lang=en")[1]
toy, gun = environs["wsgi"], environs["gunicorn"]
print("in both              :", len(set(toy) & set(gun)), "keys")
print("only in the toy's    :", ", ".join(sorted(set(toy) - set(gun))) or "nothing")
print("only in gunicorn's   :", ", ".join(sorted(set(gun) - set(toy))) or "nothing")
nb.table([(key, toy.get(key, "(absent)"), gun.get(key, "(absent)")) for key in
          ("SERVER_SOFTWARE", "wsgi.multithread", "wsgi.multiprocess", "wsgi.input", "PATH_INFO", "QUERY_STRING")],
         ["key", "toy wsgi server", "gunicorn"])

# %% [markdown]
# ## Threads or processes?
#
# A WSGI server runs one request per thread at a time: while a view waits (for a database, a
# remote API), its thread waits too. So a server runs several threads, and several worker
# *processes*. Which helps depends on what the view does:
#
# - `/io?ms=50` waits 50 ms (`time.sleep`, standing for a database call). A waiting thread
#   releases Python's GIL, so other threads run meanwhile.
# - `/cpu?n=...` computes in pure Python. Only one thread per process runs Python at a time
#   (the GIL), so more threads do not help; more processes help only if there are free cores.
#
# We measure the toy WSGI server with 1 thread, 8 threads, and 2 worker processes of 1 thread,
# and gunicorn with the same two settings (`--threads 8`, `--workers 2`), under 16 clients.
# As in the benchmark (`scripts/bench.py`), the servers are pinned to the machine's cores but
# the last, and the load generator to the last one, so that the two do not take turns on the
# same core.
#
# **Predict first.** Compared with 1 thread, will 8 threads serve no more requests per second
# (`"no more"`) or several times as many (`"several times"`), on the waiting view and on the
# computing one?

# %%
prediction_threads = {"I/O wait": ..., "CPU": ...}

# %% [markdown] tags=["solution"] jupyter={"source_hidden": true}
# **Solution.** Waiting threads release the GIL, computing ones do not.
#
# ```python
# prediction_threads = {"I/O wait": "several times", "CPU": "no more"}
# ```

# %%
nb.record_prediction("threads", prediction_threads)
SERVER_CPUS, LOADER_CPUS = nb.split_cpus()
CONFIGS = {"toy, 1 thread": ("wsgi", ["--threads", "1"]),
           "toy, 8 threads": ("wsgi", ["--threads", "8"]),
           "toy, 2 workers × 1 thread": ("wsgi", ["--workers", "2", "--threads", "1"]),
           "gunicorn --threads 8": ("gunicorn-gthread", []),
           "gunicorn --workers 2": ("gunicorn", ["--workers", "2"])}
WORK = {"I/O wait": "/io?ms=50", "CPU": "/cpu?n=200000"}
SECONDS = nb.pick(4, 1.5)

def run(point):
    config, work = point
    kind, extra = CONFIGS[config]
    with nb.server(kind, extra=extra, pinned=True) as srv:
        return nb.measure(srv.url, WORK[work], connections=16, duration=SECONDS, pinned=True)

measured = dict(nb.sweep([(c, w) for c in CONFIGS for w in WORK], run, desc="threads vs workers"))
print(f"server pinned to cores {sorted(SERVER_CPUS) if SERVER_CPUS else 'all'}, "
      f"load generator to {sorted(LOADER_CPUS) if LOADER_CPUS else 'all'}")
nb.table([(c, f"{w} ({WORK[w]})", r.rps, r.percentile(50) * 1000) for (c, w), r in measured.items()],
         ["server", "work", "requests/s", "median latency ms"])

# %%
fig, axes = plt.subplots(1, 2, figsize=(12, 4))
for ax, work in zip(axes, WORK):
    rps = [measured[(c, work)].rps for c in CONFIGS]
    ax.bar(range(len(CONFIGS)), rps, color=["#999", "#4f81bd", "#c0504d", "#8fb3de", "#e39c9a"])
    ax.set_xticks(range(len(CONFIGS)), [c.replace(", ", "\n").replace(" --", "\n--") for c in CONFIGS], fontsize=8)
    ax.set_title(f"{work} ({WORK[work]})"); ax.set_ylabel("requests/s")
    for x, v in enumerate(rps):
        ax.text(x, v, f"{v:.0f}", ha="center", va="bottom")
fig.suptitle("16 clients; servers pinned away from the load generator")
plt.show()

# %%
def gain(work, config):
    return measured[(config, work)].rps / measured[("toy, 1 thread", work)].rps

def verdict(ratio):
    return "several times" if ratio >= 3 else "no more" if ratio <= 1.5 else "in between"

measured_threads = {work: verdict(gain(work, "toy, 8 threads")) for work in WORK}
cores = len(SERVER_CPUS) if SERVER_CPUS else os.cpu_count()
workers_cpu = gain("CPU", "toy, 2 workers × 1 thread")
print(f"Waiting on I/O: 8 threads served {gain('I/O wait', 'toy, 8 threads'):.1f}x as many requests as 1 thread "
      f"(the ceiling is 8x: 8 threads × 20 waits of 50 ms per second = 160 requests/s).")
print(f"Computing: 8 threads served {gain('CPU', 'toy, 8 threads'):.2f}x as many as 1 thread.")
print(f"Computing with 2 worker processes: {workers_cpu:.2f}x, with {cores} core(s) for the server: "
      + ("a second process found a free core." if workers_cpu >= 1.4 else
         "the second process had no core of its own to run on, so it only took turns with the first."))
print(f"gunicorn beside the toy server: --threads 8 {measured[('gunicorn --threads 8', 'I/O wait')].rps:.0f} vs "
      f"{measured[('toy, 8 threads', 'I/O wait')].rps:.0f} requests/s waiting; --workers 2 (sync workers, one request "
      f"each) {measured[('gunicorn --workers 2', 'I/O wait')].rps:.0f} waiting, "
      f"{measured[('gunicorn --workers 2', 'CPU')].rps:.0f} computing.")

# %% tags=["check"]
nb.check_prediction("threads", measured_threads,
                    hint="time.sleep releases the GIL, a Python loop holds it; read the two bar charts.");

# %% [markdown]
# This is why gunicorn has both `--workers` (processes: they use more cores for computing) and
# `--threads` (for waiting). The usual advice, a few workers per core and threads for I/O,
# follows from the two charts; the run above says how much a second worker brought on the
# cores this server was given.


# %% [markdown]
# ## Exercises
#
# **1. A middleware.** A WSGI middleware is a WSGI application that wraps another one: it can
# change the `environ` on the way in and the status, headers or body on the way out. Write
# `timing(app)`, which answers an application that calls `app` and adds a header
# `Server-Timing: app;dur=MS`, MS being the milliseconds `app` took to return its body, and
# leaves the status and the body as `app` gave them. The check runs it through
# `wsgiref.validate` on both sides.

# %%
def timing(app):
    ...

# %% [markdown] tags=["solution"] jupyter={"source_hidden": true}
# **Solution.** Catch the application's `start_response` call to add the header; here the body
# is collected first, so that the time covers it (a streaming middleware would send the
# timing in a trailer, or time only the call).
#
# ```python
# import time
#
# def timing(app):
#     def wrapped(environ, start_response):
#         started = time.perf_counter()
#         seen = {}
#         def remember(status, headers, exc_info=None):
#             seen["status"], seen["headers"], seen["exc_info"] = status, headers, exc_info
#         result = app(environ, remember)
#         try:
#             body = b"".join(result)
#         finally:
#             if hasattr(result, "close"):
#                 result.close()
#         took = (time.perf_counter() - started) * 1000
#         start_response(seen["status"], [*seen["headers"], ("Server-Timing", f"app;dur={took:.3f}")],
#                        seen["exc_info"])
#         return [body]
#     return wrapped
# ```

# %% tags=["check"]
import time

def slow_app(environ, start_response):
    start_response("201 Created", [("Content-Type", "text/plain")])
    yield b"made "
    time.sleep(0.05)
    yield b"slowly\n"

def try_timing():
    seen = {}
    environ = {"QUERY_STRING": ""}
    setup_testing_defaults(environ)
    result = validator(timing(validator(slow_app)))(environ, lambda s, h, e=None: seen.update(status=s, headers=h))
    try:
        body = b"".join(result)
    finally:
        result.close()
    assert seen.get("status") == "201 Created", f"the status was {seen.get('status')!r}"
    assert body == b"made slowly\n", f"the body was {body!r}"
    header = dict(seen["headers"]).get("Server-Timing")
    assert header, f"no Server-Timing header among {seen['headers']}"
    took = float(header.split("dur=")[1])
    assert took >= 50, f"Server-Timing says {took} ms, but the app took at least 50 ms to give its body"
    return f"status and body passed through; Server-Timing: {header}."

nb.check_code(try_timing, hint="return a function (environ, start_response); call app with your own "
              "start_response that adds the header, and time until the body is done.");

# %% [markdown]
# **2.** Fix `broken` so that `wsgiref.validate` accepts it: write a function `fixed` in the
# next cell, then run the check cell.

# %%
def fixed(environ, start_response):
    ...

# %% [markdown] tags=["solution"] jupyter={"source_hidden": true}
# **Solution.** The body must be an iterable of bytes.
#
# ```python
# def fixed(environ, start_response):
#     start_response("200 OK", [("Content-Type", "text/plain")])
#     return [b"Hello, world!\n"]
# ```

# %% tags=["check"]
def try_fixed():
    body = call_validated(fixed)
    assert body == b"Hello, world!\n", f"the validator passed, but the body was {body!r}"
    return f"the validator accepted it; the body is {body!r}."
nb.check_code(try_fixed, hint="The body should still say Hello, world!, as bytes: b\"...\".");

# %% [markdown]
# **3.** Which `environ` key holds the stream the request body is read from? (Look at the
# toy server's trace above, or at `WSGIHandler.__call__`.)

# %%
answer_3 = ...

# %% [markdown] tags=["solution"] jupyter={"source_hidden": true}
# **Solution.**
#
# ```python
# answer_3 = "wsgi.input"
# ```

# %% tags=["check"]
nb.check(answer_3, next(k for k, v in toy.items() if k.startswith("wsgi.") and "input" in k.lower()),
         hint="One of the wsgi.* keys; PEP 3333 lists them.");
