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
# - use `wsgiref.validate` to find a mistake against PEP 3333;
# - read how Django's `WSGIHandler` answers the call, and match it to what a server does;
# - serve the same site with gunicorn, the server people deploy;
# - say when threads help and when only processes do, from measurements.

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
#   (the GIL), so more threads do not help; more processes use more cores.
#
# We measure the toy WSGI server with 1 thread, with 8 threads, and with 2 worker processes of
# 1 thread each, under 16 clients. (The load generator runs on the same 2 cores, which costs
# the server some CPU: the comparison between the three is what counts.)

# %%
CONFIGS = {"1 thread": ["--threads", "1"], "8 threads": ["--threads", "8"],
           "2 workers × 1 thread": ["--workers", "2", "--threads", "1"]}
WORK = {"I/O wait (/io?ms=50)": "/io?ms=50", "CPU (/cpu?n=200000)": "/cpu?n=200000"}
SECONDS = nb.pick(4, 1.5)

def run(point):
    config, work = point
    with nb.server("wsgi", extra=CONFIGS[config]) as srv:
        return nb.measure(srv.url, WORK[work], connections=16, duration=SECONDS)

measured = dict(nb.sweep([(c, w) for c in CONFIGS for w in WORK], run, desc="threads vs workers"))
nb.table([(c, w, r.rps, r.percentile(50) * 1000) for (c, w), r in measured.items()],
         ["server", "work", "requests/s", "median latency ms"])

# %%
fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
for ax, work in zip(axes, WORK):
    rps = [measured[(c, work)].rps for c in CONFIGS]
    ax.bar(list(CONFIGS), rps, color=["#999", "#4f81bd", "#c0504d"])
    ax.set_title(work); ax.set_ylabel("requests/s")
    for x, v in enumerate(rps):
        ax.text(x, v, f"{v:.0f}", ha="center", va="bottom")
fig.suptitle("Toy WSGI server, 16 clients")
plt.show()

# %%
io, cpu = WORK
gain = lambda work, config: measured[(config, work)].rps / measured[("1 thread", work)].rps
print(f"Waiting on I/O: 8 threads served {gain(io, '8 threads'):.1f}x as many requests as 1 thread "
      f"(the ceiling is 8x: 8 threads × 20 waits of 50 ms per second = 160 requests/s).")
print(f"Computing: 8 threads served {gain(cpu, '8 threads'):.2f}x as many as 1 thread "
      f"-- the GIL lets one thread run Python at a time.")
print(f"Computing with 2 processes: {gain(cpu, '2 workers × 1 thread'):.2f}x, "
      f"on {os.cpu_count()} cores shared with the load generator.")


# %% [markdown]
# This is why gunicorn has both `--workers` (processes: one per core, for CPU) and
# `--threads` (for waiting), and why the usual advice is workers ≈ cores and threads for I/O.
#
# ## Exercises
#
# **1.** Fix `broken` so that `wsgiref.validate` accepts it: write a function `fixed` in the
# next cell, then run the check cell.

# %%
def fixed(environ, start_response):
    ...


# %%
try:
    body = call_validated(fixed)
    nb.check(body, b"Hello, world!\n", hint="The body should still say Hello, world!")
except Exception as error:
    nb.check_that(False, right="", hint=f"wsgiref.validate or the call says: {error!r}")

# %% [markdown]
# **2.** Which `environ` key holds the stream the request body is read from? (Look at the
# toy server's trace above, or at `WSGIHandler.__call__`.)

# %%
answer_2 = ...

# %%
nb.check(answer_2, next(k for k, v in toy.items() if k.startswith("wsgi.") and "input" in k.lower()),
         hint="One of the wsgi.* keys; PEP 3333 lists them.");

# %% [markdown]
# **3.** With one thread and a view that waits 50 ms, how many requests per second can a server
# answer at most? Compute it, then compare with the measured value for `1 thread` on `/io`.

# %%
answer_3 = ...

# %%
nb.check(answer_3, 1000 / 50, tolerance=0.05, hint="One request at a time, 50 ms each.")
print(f"measured: {measured[('1 thread', io)].rps:.1f} requests/s")
