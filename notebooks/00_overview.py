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
# - find the same HTTP request in all three forms, and say what differs.

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
# ## Exercises
#
# **1.** Under CGI, one variable tells the program which version of the Common Gateway
# Interface the server speaks. What is its name? Write it as a string.

# %%
answer_1 = ...

# %%
nb.check(answer_1, next(k for k in cgi_env if str(cgi_env[k]).startswith("CGI/")),
         hint="Look for a key that is in the CGI column only.");

# %% [markdown]
# **2.** The request carried the header `X-Course: web-servers`. Under which key does the WSGI
# `environ` hold it?

# %%
answer_2 = ...

# %%
nb.check(answer_2, next(k for k, v in wsgi_environ.items() if v == "web-servers"),
         hint="PEP 3333 and RFC 3875 §4.1.18: HTTP_ + the name upper-cased, '-' becomes '_'.");

# %% [markdown]
# **3.** In the ASGI trace, Django *received* messages from the server (`receive() -> app`) and
# *sent* messages to it (`app -> send()`). Write the message types in the order the trace
# shows them, as a list of strings (e.g. `["a", "b"]`).

# %%
answer_3 = ...

# %%
nb.check(answer_3, messages, hint="Read the ASGI trace above: each block shows one message.");
