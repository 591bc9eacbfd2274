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
# # 00 · One request, three interfaces: CGI, WSGI, ASGI
#
# **Learning goals.** After this notebook you can
# - say in one sentence each what CGI, WSGI and ASGI are, and which problem each one solved;
# - read what a server hands a Python web application: a CGI environment, a WSGI `environ`,
#   an ASGI `scope` with its messages;
# - read a WSGI server of thirty lines that serves Django, and name what a real one adds;
# - find the same HTTP request in all three forms, and say what differs;
# - see which process and which thread served each request under each interface.

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
# ## Thirty years in one page
#
# **1993 · CGI, the Common Gateway Interface.** The NCSA web server could run a *program* to
# answer a request. For every request it starts a new process, puts the request in
# environment variables (`REQUEST_METHOD`, `PATH_INFO`, `QUERY_STRING`, one `HTTP_*` per
# header) and the body on the program's standard input, and sends back what the program
# prints. Any language works, and a crash takes down one request only. It was written down
# as RFC 3875 in 2004. Its cost: a new process, and for Python a new interpreter that imports
# the whole framework again, for *every* request.
#
# **1996 · FastCGI** keeps the program running and sends it request after request over a
# socket. The start-up is paid once. Each language still needs its own glue to the web server.
#
# **2003 · WSGI, PEP 333** (PEP 3333 for Python 3, 2010). For Python, the interface becomes a
# *function call* inside a long-running process: `app(environ, start_response)` returns an
# iterable of bytes. The `environ` dict keeps CGI's variable names, so the request looks
# familiar. Any WSGI server (gunicorn, mod_wsgi, uWSGI, waitress) runs any WSGI framework
# (Django, Flask). A thread or a process is busy for the whole request, waiting included.
#
# **2016-2019 · ASGI** (from Django Channels; ASGI 3.0 in 2019). The application is a
# *coroutine*, `await app(scope, receive, send)`, and the request and response travel as
# messages. One event loop can keep thousands of waiting connections (long polls, server-sent
# events, WebSockets) without a thread each. Django ships `asgi.py` since 3.0 (2019) and async
# views since 3.1 (2020); uvicorn, hypercorn and daphne are ASGI servers.
#
# The picture: what runs the application, and what it is handed.

# %%
nb.draw_models()

# %% [markdown]
# ## First reading: a WSGI server in thirty lines
#
# Before the real servers, the smallest thing that can serve Django: one function that
# listens, accepts one connection, reads the request head, builds the `environ`, calls
# Django's `application`, writes the answer and closes. Read it top to bottom; every later
# notebook is about what this one leaves out.

# %%
import io, socket, sys, threading
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "sample_site.settings")
from sample_site.wsgi import application      # the object gunicorn imports: Django, ready

def serve_one(listener, app):
    connection, client = listener.accept()                  # 2. accept one client
    with connection:                                        # 7. close when done
        head = b""
        while b"\r\n\r\n" not in head:                      # 3. read until the empty line
            chunk = connection.recv(65536)
            if not chunk:                                   # the client left before the end
                return
            head += chunk
        head, _, body = head.partition(b"\r\n\r\n")
        request_line, *header_lines = head.decode("latin-1").split("\r\n")
        method, target, protocol = request_line.split(" ")
        path, _, query = target.partition("?")
        environ = {"REQUEST_METHOD": method, "PATH_INFO": path, "QUERY_STRING": query,   # 4. the environ
                   "SERVER_NAME": "127.0.0.1", "SERVER_PORT": str(listener.getsockname()[1]),
                   "SERVER_PROTOCOL": protocol, "SCRIPT_NAME": "", "REMOTE_ADDR": client[0],
                   "wsgi.version": (1, 0), "wsgi.url_scheme": "http", "wsgi.input": io.BytesIO(body),
                   "wsgi.errors": sys.stderr, "wsgi.multithread": False,
                   "wsgi.multiprocess": False, "wsgi.run_once": False}
        # PEP 3333, environ Variables: "Variables corresponding to the client-supplied HTTP
        # request headers (i.e., variables whose names begin with "HTTP_")."
        for line in header_lines:
            name, _, value = line.partition(":")
            environ["HTTP_" + name.strip().upper().replace("-", "_")] = value.strip()
        started = []
        def start_response(status, headers, exc_info=None):
            started[:] = [status, headers]
        chunks = app(environ, start_response)                # 5. call the application
        payload = b"".join(chunks)
        status, headers = started
        lines = [f"HTTP/1.1 {status}", *(f"{k}: {v}" for k, v in headers), "Connection: close"]
        connection.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + payload)  # 6. write

def tiny_request(app, path):
    """Serve one request with serve_one in a thread, send it, answer the response."""
    with socket.create_server(("127.0.0.1", 0)) as listener:   # 1. listen on a free port
        server = threading.Thread(target=serve_one, args=(listener, app))
        server.start()
        try:
            return nb.fetch(f"http://127.0.0.1:{listener.getsockname()[1]}", path)
        finally:
            server.join()

tiny = tiny_request(application, "/hello")
print(tiny.status, tiny.reason, tiny.header("Content-Type"), "|", tiny.text.strip())

# %% [markdown]
# The same request to the toy WSGI server of this repository, `servers/wsgi_server.py`, which
# calls the same `application`:

# %%
with nb.server("wsgi") as srv:
    toy = nb.fetch(srv.url, "/hello")
nb.table([("status", f"{tiny.status} {tiny.reason}", f"{toy.status} {toy.reason}"),
          ("body", tiny.text.strip(), toy.text.strip()),
          ("header names", ", ".join(k for k, _ in tiny.headers), ", ".join(k for k, _ in toy.headers))],
         ["", "thirty-line server", "toy WSGI server"])
print("Same page from both:", tiny.body == toy.body)

# %% [markdown]
# Same page. What the thirty lines leave out, and where the toy server handles it (file,
# function and line are looked up live in `servers/`, so the table follows the code):

# %%
from servers import common, http11, wsgi_server
left_out = [
    ("a head that arrives in pieces, or never ends; limits on its size", http11.ServerConnection),
    ("a malformed request answered with 400, not a crash", http11.ServerConnection),
    ("a request body (Content-Length or chunked) read from the socket as the app asks", wsgi_server.RequestBody),
    ("CONTENT_TYPE and CONTENT_LENGTH without HTTP_, repeated headers joined", common.request_variables),
    ("keep-alive: several requests on one connection", wsgi_server.Connection.serve_requests),
    ("many clients at once: a pool of threads", wsgi_server.Worker.hand_to_pool),
    ("several processes (--workers)", wsgi_server.Arbiter.spawn),
    ("streaming the body as the app yields it, and calling its close()", wsgi_server.Exchange.send_result),
    ("an exception in the app becomes a 500 (exc_info)", wsgi_server.Exchange.fail),
    ("slow or silent clients time out", wsgi_server.Worker.expire_timers),
    ("Ctrl-C / SIGTERM: finish the requests in flight, then stop", wsgi_server.Worker.shutdown),
]
nb.table([(what, nb.where(obj)) for what, obj in left_out], ["left out of the thirty lines", "handled in"])

# %% [markdown]
# ## The same request, three times
#
# This repository has one small server per interface, written to be read (`servers/`):
# `cgi_server.py` starts `sample_site/cgi-bin/django.py` for each request, `wsgi_server.py`
# calls `sample_site.wsgi:application` from a thread pool, and `asgi_server.py` awaits
# `sample_site.asgi:application` on an asyncio event loop. All three serve the same, unchanged
# Django site.
#
# We send each of them the same request, `GET /inspect?lang=en` with one extra header
# `X-Course: web-servers`. The Django view `/inspect` answers with what the server handed
# Django, as JSON. The servers run with `--trace`, so each also prints its own view of the
# request; we keep that output too.

# %%
PATH, HEADERS = "/inspect?lang=en", {"X-Course": "web-servers"}
seen, traces = {}, {}
for kind in nb.progress(["cgi", "wsgi", "asgi"], desc="servers"):
    with nb.server(kind, extra=["--trace"]) as srv:
        mark = len(srv.output())
        interface, seen[kind] = nb.inspect_request(srv.url, PATH, headers=HEADERS)
        traces[kind] = nb.trace_blocks(nb.output_since(srv, mark))
    print(f"{kind} server: Django was handed {'a WSGI environ' if interface == 'wsgi' else 'an ASGI scope'}")

# %% [markdown]
# Side by side: the environment the CGI server handed the child process (from its trace), the
# WSGI `environ` and the ASGI `scope` as Django received them (from `/inspect`). Bytes are
# shown as `b'...'`, objects by their type (`wsgi.input` is a file-like object, not data).

# %%
cgi_env = next(block for block in traces["cgi"] if "environment" in block.title.lower()).mapping()
wsgi_environ, asgi_scope = seen["wsgi"], seen["asgi"]
nb.side_by_side({"CGI environment (RFC 3875)": cgi_env,
                 "WSGI environ (PEP 3333)": wsgi_environ,
                 "ASGI scope (ASGI HTTP spec)": asgi_scope})

# %% [markdown]
# ### What maps to what
#
# The same facts under three names. Every value below is looked up in the three captures
# above, not typed in.

# %%
rows = [
    ("method", "REQUEST_METHOD", cgi_env.get("REQUEST_METHOD"), wsgi_environ.get("REQUEST_METHOD"), "method", asgi_scope.get("method")),
    ("path", "PATH_INFO", cgi_env.get("PATH_INFO"), wsgi_environ.get("PATH_INFO"), "path", asgi_scope.get("path")),
    ("query", "QUERY_STRING", cgi_env.get("QUERY_STRING"), wsgi_environ.get("QUERY_STRING"), "query_string", asgi_scope.get("query_string")),
    ("header X-Course", "HTTP_X_COURSE", cgi_env.get("HTTP_X_COURSE"), wsgi_environ.get("HTTP_X_COURSE"), "headers", dict(asgi_scope["headers"]).get(b"x-course")),
    ("protocol", "SERVER_PROTOCOL", cgi_env.get("SERVER_PROTOCOL"), wsgi_environ.get("SERVER_PROTOCOL"), "http_version", asgi_scope.get("http_version")),
    ("client address", "REMOTE_ADDR", cgi_env.get("REMOTE_ADDR"), wsgi_environ.get("REMOTE_ADDR"), "client", asgi_scope.get("client")),
    ("request body", "(stdin)", "-", wsgi_environ.get("wsgi.input"), "receive()", "http.request messages"),
]
nb.table(rows, ["fact", "CGI / WSGI name", "CGI value", "WSGI value", "ASGI key", "ASGI value"])

# %% [markdown]
# What only one of them has. CGI names the gateway and the server software, and passes on the
# few variables of the server's own environment a program needs to start (`PATH`, the locale);
# with `--trace` on, `X_CGI_TIMING` asks the child to report its timings. WSGI adds the
# `wsgi.*` keys (the body stream, the error stream, whether the app may be called from several
# threads or processes); ASGI keeps headers as a list of byte pairs, exactly as they came,
# and has no body in the scope at all: the body arrives through `receive()`.
#
# Inside the CGI child, `servers/cgi_app.py` turns that environment into a WSGI `environ` for
# Django, which is why `/inspect` says "wsgi" there too: look at `wsgi.run_once` below.

# %%
only_cgi = [key for key in cgi_env if key not in wsgi_environ]
only_wsgi = [key for key in wsgi_environ if key not in cgi_env]
print("only in the CGI environment:", ", ".join(only_cgi) or "nothing")
print("only in the WSGI environ   :", ", ".join(only_wsgi) or "nothing")
print("ASGI scope keys            :", ", ".join(asgi_scope))
print("Django in the CGI child    : wsgi.run_once =", seen["cgi"]["wsgi.run_once"],
      "| under the WSGI server: wsgi.run_once =", wsgi_environ["wsgi.run_once"])

# %% [markdown]
# ### The servers' own view: `--trace`
#
# With `--trace`, each server prints, in the order the request travels, the raw request head,
# what it handed the application, and the response. The layout is the same for all three, so
# you can read them side by side. The ASGI trace also shows each *message*: the request body
# arriving (`http.request`) and the response leaving in two messages.

# %%
nb.side_by_side({kind: "\n\n".join(f"── {b.title}\n{b.text}" for b in blocks)
                 for kind, blocks in traces.items()})

# %%
messages = [b.message_type() for b in traces["asgi"] if b.message_type()]
print("ASGI messages, in order:", " → ".join(messages))

# %% [markdown]
# ## Who serves each request: processes and threads
#
# CGI starts a process per request; a WSGI server calls the application from threads of one
# long-running process; an ASGI server from one thread, its event loop. Claims like these are
# cheap, so we look. Each server below runs a tiny application that answers with the process
# id (`os.getpid()`) and thread id (`threading.get_ident()`) that ran it. Under CGI the
# application is a shell script (`$$` is its process id): CGI runs any program at all.
#
# **Predict first.** Four requests go to each server, one after the other. How many
# *different* process ids will the four answers show under each server? Write your
# prediction, run the cell, and only then run the measurement: it records your prediction as
# it stands when it starts.

# %%
prediction_processes = {"cgi": ..., "wsgi": ..., "asgi": ...}

# %% [markdown] tags=["solution"] jupyter={"source_hidden": true}
# **Solution.** A new process for every CGI request; one process for each of the others.
#
# ```python
# prediction_processes = {"cgi": 4, "wsgi": 1, "asgi": 1}
# ```

# %%
nb.record_prediction("processes", prediction_processes)
whoami_sh = nb.workdir("cgi-bin") / "whoami.sh"
whoami_sh.write_text(nb.WHOAMI_SH)
whoami_sh.chmod(0o755)
served = {}
with nb.cgi_bin_server(whoami_sh.parent) as srv:
    served["cgi"] = nb.who_served(srv.url, "/cgi-bin/whoami.sh", requests=4)
with nb.server("wsgi", app="scripts.notebook_helpers:whoami_wsgi") as srv:
    served["wsgi"] = nb.who_served(srv.url, "/", requests=4)
    served["wsgi, 4 at once"] = nb.who_served(srv.url, "/?wait=0.3", requests=4, at_once=4)
with nb.server("wsgi", app="scripts.notebook_helpers:whoami_wsgi", extra=["--workers", "2"]) as srv:
    served["wsgi --workers 2, 8 at once"] = nb.who_served(srv.url, "/?wait=0.3", requests=8, at_once=8)
with nb.server("asgi", app="scripts.notebook_helpers:whoami_asgi") as srv:
    served["asgi"] = nb.who_served(srv.url, "/", requests=4)
    served["asgi, 4 at once"] = nb.who_served(srv.url, "/?wait=0.3", requests=4, at_once=4)
nb.table([(name, ", ".join(str(a["pid"]) for a in answers),
           ", ".join("-" if a["thread"] is None else str(a["thread"])[-5:] for a in answers),
           len({a["pid"] for a in answers}), len({(a["pid"], a["thread"]) for a in answers}))
          for name, answers in served.items()],
         ["server", "process id per request", "thread id per request (last digits)", "processes", "threads"])
measured_processes = {kind: len({a["pid"] for a in served[kind]}) for kind in ("cgi", "wsgi", "asgi")}

# %% tags=["check"]
nb.check_prediction("processes", measured_processes,
                    hint="Which of the three starts a program for each request, and which call a function "
                         "in a process that keeps running?");

# %% [markdown]
# Read the rows that ran several requests at once: the toy WSGI server used one thread per
# request in flight (its pool has several), the ASGI server one thread for all of them (its
# event loop switched between the requests while each waited), and `--workers 2` spread the
# requests over the worker processes the kernel woke up (which of the two takes a connection
# is the kernel's choice, so the split differs from run to run).

# %%
def count(name, what):
    answers = served[name]
    return len({a["pid"] for a in answers}) if what == "pid" else len({(a["pid"], a["thread"]) for a in answers})
print(f"4 requests at once: the WSGI server ran them on {count('wsgi, 4 at once', 'thread')} threads, "
      f"the ASGI server on {count('asgi, 4 at once', 'thread')} thread; "
      f"with --workers 2, 8 requests at once went to {count('wsgi --workers 2, 8 at once', 'pid')} processes.")

# %% [markdown]
# ## Exercises
#
# **1. Your own application.** Write a WSGI application `my_app` that answers `200 OK`, with
# `Content-Type: text/plain`, and the body `You asked for PATH` where PATH is the path of
# the request (without the query string). The check serves it with the thirty-line server.

# %%
def my_app(environ, start_response):
    ...

# %% [markdown] tags=["solution"] jupyter={"source_hidden": true}
# **Solution.** The path is in `environ["PATH_INFO"]`; the body is an iterable of bytes.
#
# ```python
# def my_app(environ, start_response):
#     start_response("200 OK", [("Content-Type", "text/plain")])
#     return [f"You asked for {environ['PATH_INFO']}".encode()]
# ```

# %% tags=["check"]
def try_my_app():
    answer = tiny_request(my_app, "/any/path?x=1")
    assert answer.status == 200, f"the status was {answer.status}"
    assert answer.header("Content-Type", "").startswith("text/plain"), f"Content-Type was {answer.header('Content-Type')}"
    assert answer.text == "You asked for /any/path", f"the body was {answer.text!r}"
    return f"GET /any/path?x=1 answered {answer.text!r}."
nb.check_code(try_my_app, hint="start_response(status, headers) first, then return a list holding "
              "one bytes object; the path is environ['PATH_INFO'].");

# %% [markdown]
# **2.** The request carried the header `X-Course: web-servers`. Under which key does the WSGI
# `environ` hold it?

# %%
answer_2 = ...

# %% [markdown] tags=["solution"] jupyter={"source_hidden": true}
# **Solution.**
#
# ```python
# answer_2 = "HTTP_X_COURSE"
# ```

# %% tags=["check"]
nb.check(answer_2, next(k for k, v in wsgi_environ.items() if v == "web-servers"),
         hint="PEP 3333 and RFC 3875 §4.1.18: HTTP_ + the name upper-cased, '-' becomes '_'.");

# %% [markdown]
# **3.** In the ASGI trace, Django *received* messages from the server (`receive() -> app`) and
# *sent* messages to it (`app -> send()`). Which messages carried the *response*? Write their
# types in the order the trace shows them, as a list of strings (e.g. `["a", "b"]`).

# %%
answer_3 = ...

# %% [markdown] tags=["solution"] jupyter={"source_hidden": true}
# **Solution.** The status and headers leave first, then the body. (The trace may also show
# `http.disconnect` after them: Django keeps a task waiting on `receive()` while the view
# runs, `listen_for_disconnect`, so that it can stop the view if the client goes away;
# notebook 03 looks at it.)
#
# ```python
# answer_3 = ["http.response.start", "http.response.body"]
# ```

# %% tags=["check"]
nb.check(answer_3, [m for m in messages if m.startswith("http.response")],
         hint="Read the ASGI trace above: each block shows one message; the response goes app -> send().");
