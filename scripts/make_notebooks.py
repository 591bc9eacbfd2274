"""Write the five classroom notebooks in notebooks/ (without outputs).

The notebooks are the product; this script is their source, so that a change to a
shared cell (the setup cell, say) is made once, and every cell gets a stable id
(diffs in git show real changes only). Edit the cells here, then run

    .venv/bin/python -m scripts.make_notebooks

and commit both this file and notebooks/*.ipynb.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import nbformat

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"

SETUP = """\
# Setup: work from the repository root (where servers/ and sample_site/ are),
# wherever Jupyter was started, and load the notebooks' helpers.
import os, sys, pathlib
ROOT = next(p for p in [pathlib.Path.cwd(), *pathlib.Path.cwd().parents] if (p / "servers").is_dir())
os.chdir(ROOT)
sys.path.insert(0, str(ROOT))

import matplotlib.pyplot as plt
from scripts import notebook_helpers as nb

print("Python     :", sys.executable)
print("Repository :", ROOT)
print("Mode       :", "quick (TOOLKIT_QUICK=1: shorter measurements)" if nb.QUICK else "full")
"""

HOW_TO = """\
**How to use this notebook.** Run the cells from top to bottom (Shift-Enter). A cell that
starts a server does it in a `with nb.server(...) as srv:` block: the server starts on a free
port, the cell waits until it answers, and the server stops when the block ends, also when the
cell fails. If you interrupt or restart the kernel, its servers are stopped too.
Set `TOOLKIT_QUICK=1` in the environment before starting Jupyter for short measurements.
"""


def md(text: str) -> tuple[str, str]:
    return ("markdown", textwrap.dedent(text).strip("\n"))


def code(text: str) -> tuple[str, str]:
    return ("code", textwrap.dedent(text).strip("\n"))


# --------------------------------------------------------------------------------------
# 00 · overview
# --------------------------------------------------------------------------------------

OVERVIEW = [
    md("""
    # 00 · One request, three interfaces: CGI, WSGI, ASGI

    **Learning goals.** After this notebook you can
    - say in one sentence each what CGI, WSGI and ASGI are, and which problem each one solved;
    - read what a server hands a Python web application: a CGI environment, a WSGI `environ`,
      an ASGI `scope` with its messages;
    - find the same HTTP request in all three forms, and say what differs.
    """),
    md(HOW_TO),
    code(SETUP),
    md("""
    ## Thirty years in one page

    **1993 · CGI, the Common Gateway Interface.** The NCSA web server could run a *program* to
    answer a request. For every request it starts a new process, puts the request in
    environment variables (`REQUEST_METHOD`, `PATH_INFO`, `QUERY_STRING`, one `HTTP_*` per
    header) and the body on the program's standard input, and sends back what the program
    prints. Any language works, and a crash takes down one request only. It was written down
    as RFC 3875 in 2004. Its cost: a new process, and for Python a new interpreter that imports
    the whole framework again, for *every* request.

    **1996 · FastCGI** keeps the program running and sends it request after request over a
    socket. The start-up is paid once. Each language still needs its own glue to the web server.

    **2003 · WSGI, PEP 333** (PEP 3333 for Python 3, 2010). For Python, the interface becomes a
    *function call* inside a long-running process: `app(environ, start_response)` returns an
    iterable of bytes. The `environ` dict keeps CGI's variable names, so the request looks
    familiar. Any WSGI server (gunicorn, mod_wsgi, uWSGI, waitress) runs any WSGI framework
    (Django, Flask). A thread or a process is busy for the whole request, waiting included.

    **2016-2019 · ASGI** (from Django Channels; ASGI 3.0 in 2019). The application is a
    *coroutine*, `await app(scope, receive, send)`, and the request and response travel as
    messages. One event loop can keep thousands of waiting connections (long polls, server-sent
    events, WebSockets) without a thread each. Django ships `asgi.py` since 3.0 (2019) and async
    views since 3.1 (2020); uvicorn, hypercorn and daphne are ASGI servers.

    The picture: what runs the application, and what it is handed.
    """),
    code("""
    nb.draw_models()
    """),
    md("""
    ## The same request, three times

    This repository has one small server per interface, written to be read (`servers/`):
    `cgi_server.py` starts `sample_site/cgi-bin/django.py` for each request, `wsgi_server.py`
    calls `sample_site.wsgi:application` from a thread pool, and `asgi_server.py` awaits
    `sample_site.asgi:application` on an asyncio event loop. All three serve the same, unchanged
    Django site.

    We send each of them the same request, `GET /inspect?lang=en` with one extra header
    `X-Course: web-servers`. The Django view `/inspect` answers with what the server handed
    Django, as JSON. The servers run with `--trace`, so each also prints its own view of the
    request; we keep that output too.
    """),
    code("""
    PATH, HEADERS = "/inspect?lang=en", {"X-Course": "web-servers"}
    seen, traces = {}, {}
    for kind in nb.progress(["cgi", "wsgi", "asgi"], desc="servers"):
        with nb.server(kind, extra=["--trace"]) as srv:
            mark = len(srv.output())
            interface, seen[kind] = nb.inspect_request(srv.url, PATH, headers=HEADERS)
            traces[kind] = nb.trace_blocks(nb.output_since(srv, mark))
        print(f"{kind} server: Django was handed {'a WSGI environ' if interface == 'wsgi' else 'an ASGI scope'}")
    """),
    md("""
    Side by side: the environment the CGI server handed the child process (from its trace), the
    WSGI `environ` and the ASGI `scope` as Django received them (from `/inspect`). Bytes are
    shown as `b'...'`, objects by their type (`wsgi.input` is a file-like object, not data).
    """),
    code("""
    cgi_env = next(block for block in traces["cgi"] if "environment" in block.title.lower()).mapping()
    wsgi_environ, asgi_scope = seen["wsgi"], seen["asgi"]
    nb.side_by_side({"CGI environment (RFC 3875)": cgi_env,
                     "WSGI environ (PEP 3333)": wsgi_environ,
                     "ASGI scope (ASGI HTTP spec)": asgi_scope})
    """),
    md("""
    ### What maps to what

    The same facts under three names. Every value below is looked up in the three captures
    above, not typed in.
    """),
    code("""
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
    """),
    md("""
    What only one of them has. CGI names the gateway and the server software, and passes on the
    few variables of the server's own environment a program needs to start (`PATH`, the locale);
    with `--trace` on, `X_CGI_TIMING` asks the child to report its timings. WSGI adds the
    `wsgi.*` keys (the body stream, the error stream, whether the app may be called from several
    threads or processes); ASGI keeps headers as a list of byte pairs, exactly as they came,
    and has no body in the scope at all: the body arrives through `receive()`.

    Inside the CGI child, `servers/cgi_app.py` turns that environment into a WSGI `environ` for
    Django, which is why `/inspect` says "wsgi" there too: look at `wsgi.run_once` below.
    """),
    code("""
    only_cgi = [key for key in cgi_env if key not in wsgi_environ]
    only_wsgi = [key for key in wsgi_environ if key not in cgi_env]
    print("only in the CGI environment:", ", ".join(only_cgi) or "nothing")
    print("only in the WSGI environ   :", ", ".join(only_wsgi) or "nothing")
    print("ASGI scope keys            :", ", ".join(asgi_scope))
    print("Django in the CGI child    : wsgi.run_once =", seen["cgi"]["wsgi.run_once"],
          "| under the WSGI server: wsgi.run_once =", wsgi_environ["wsgi.run_once"])
    """),
    md("""
    ### The servers' own view: `--trace`

    With `--trace`, each server prints, in the order the request travels, the raw request head,
    what it handed the application, and the response. The layout is the same for all three, so
    you can read them side by side. The ASGI trace also shows each *message*: the request body
    arriving (`http.request`) and the response leaving in two messages.
    """),
    code("""
    nb.side_by_side({kind: "\\n\\n".join(f"── {b.title}\\n{b.text}" for b in blocks)
                     for kind, blocks in traces.items()})
    """),
    code("""
    messages = [b.message_type() for b in traces["asgi"] if b.message_type()]
    print("ASGI messages, in order:", " → ".join(messages))
    """),
    md("""
    ## Exercises

    **1.** Under CGI, one variable tells the program which version of the Common Gateway
    Interface the server speaks. What is its name? Write it as a string.
    """),
    code("""
    answer_1 = ...
    """),
    code("""
    nb.check(answer_1, next(k for k in cgi_env if str(cgi_env[k]).startswith("CGI/")),
             hint="Look for a key that is in the CGI column only.");
    """),
    md("""
    **2.** The request carried the header `X-Course: web-servers`. Under which key does the WSGI
    `environ` hold it?
    """),
    code("""
    answer_2 = ...
    """),
    code("""
    nb.check(answer_2, next(k for k, v in wsgi_environ.items() if v == "web-servers"),
             hint="PEP 3333 and RFC 3875 §4.1.18: HTTP_ + the name upper-cased, '-' becomes '_'.");
    """),
    md("""
    **3.** In the ASGI trace, Django *received* messages from the server (`receive() -> app`) and
    *sent* messages to it (`app -> send()`). Write the message types in the order the trace
    shows them, as a list of strings (e.g. `["a", "b"]`).
    """),
    code("""
    answer_3 = ...
    """),
    code("""
    nb.check(answer_3, messages, hint="Read the ASGI trace above: each block shows one message.");
    """),
]


# --------------------------------------------------------------------------------------
# 01 · CGI
# --------------------------------------------------------------------------------------

CGI = [
    md("""
    # 01 · CGI: a new process for every request

    **Learning goals.** After this notebook you can
    - write a CGI script and have a server run it;
    - name the RFC 3875 meta-variables a CGI program receives, and where the body is;
    - say where the time of one CGI request goes (starting a process, starting Python,
      importing Django, running the view), from measurements on this machine;
    - explain why FastCGI and then WSGI replaced CGI.
    """),
    md(HOW_TO),
    code(SETUP),
    md("""
    ## A CGI script, written here

    A CGI program reads the request from its environment and its standard input, and writes
    the response on its standard output: a header block, an empty line, the body
    (RFC 3875 §6). No framework, no library. The next cell writes one into
    `var/notebooks/cgi-bin/` (a folder git ignores); the cell after it makes it executable.
    """),
    code("""
    CGI_BIN = nb.workdir("cgi-bin")
    print(CGI_BIN)
    """),
    code("""
    %%writefile var/notebooks/cgi-bin/env.py
    #!/usr/bin/env python3
    \"\"\"The classic first CGI script: print a header block, then the request as the program sees it.\"\"\"
    import os
    import sys

    # RFC 3875 §4.2: the body is on stdin, CONTENT_LENGTH bytes of it.
    length = int(os.environ.get("CONTENT_LENGTH") or 0)
    body = sys.stdin.buffer.read(length)

    # RFC 3875 §6: header lines, an empty line, then the body.
    print("Content-Type: text/plain; charset=utf-8")
    print()
    print(f"pid {os.getpid()}, {len(body)} body bytes")
    for name, value in sorted(os.environ.items()):
        print(f"{name}={value}")
    """),
    code("""
    (CGI_BIN / "env.py").chmod(0o755)
    """),
    md("""
    The toy CGI server maps `/cgi-bin/NAME/rest/of/path` to the script `NAME` in a folder
    (`--cgi-dir`), the classic cgi-bin layout. We send three requests: two GETs and a POST with
    a small body (the first GET also carries a `Proxy:` header; more on that below). Look at the
    process id in the first line of each answer.
    """),
    code("""
    def parse_env_page(text):
        first, *lines = text.splitlines()
        return first, dict(line.split("=", 1) for line in lines if "=" in line)

    with nb.cgi_bin_server(CGI_BIN) as srv:
        pages = [
            nb.fetch(srv.url, "/cgi-bin/env.py/some/path?x=1&y=2",
                     headers={"X-Course": "web-servers", "Proxy": "http://attacker.example:3128"}),
            nb.fetch(srv.url, "/cgi-bin/env.py"),
            nb.fetch(srv.url, "/cgi-bin/env.py/upload", method="POST", body=b"name=Ada",
                     headers={"Content-Type": "application/x-www-form-urlencoded"}),
        ]
    for page in pages:
        print(page.status, parse_env_page(page.text)[0])
    first_line, env = parse_env_page(pages[0].text)
    post_env = parse_env_page(pages[2].text)[1]
    """),
    md("""
    Three requests, three process ids: each request started a new program, which exited after
    answering. Here is the environment of the first one, checked against the meta-variables
    of RFC 3875 §4.1.
    """),
    code("""
    RFC_3875 = [("AUTH_TYPE", "4.1.1"), ("CONTENT_LENGTH", "4.1.2"), ("CONTENT_TYPE", "4.1.3"),
                ("GATEWAY_INTERFACE", "4.1.4"), ("PATH_INFO", "4.1.5"), ("PATH_TRANSLATED", "4.1.6"),
                ("QUERY_STRING", "4.1.7"), ("REMOTE_ADDR", "4.1.8"), ("REMOTE_HOST", "4.1.9"),
                ("REMOTE_IDENT", "4.1.10"), ("REMOTE_USER", "4.1.11"), ("REQUEST_METHOD", "4.1.12"),
                ("SCRIPT_NAME", "4.1.13"), ("SERVER_NAME", "4.1.14"), ("SERVER_PORT", "4.1.15"),
                ("SERVER_PROTOCOL", "4.1.16"), ("SERVER_SOFTWARE", "4.1.17")]
    nb.table([(name, "§" + section, env.get(name, "(not set)"), post_env.get(name, "(not set)"))
              for name, section in RFC_3875],
             ["variable", "RFC 3875", "GET /cgi-bin/env.py/some/path?x=1&y=2", "POST /cgi-bin/env.py/upload"])
    """),
    code("""
    headers = {k: v for k, v in env.items() if k.startswith("HTTP_")}
    standard = {name for name, _ in RFC_3875}
    others = sorted(k for k in env if k not in standard and not k.startswith("HTTP_"))
    print("§4.1.18, one HTTP_ variable per request header:")
    for name, value in headers.items():
        print(f"  {name} = {value}")
    print("Anything else the program got:", ", ".join(others) or "nothing")
    print("The server's own HOME or USER reached the program:", any(k in env for k in ("HOME", "USER")))
    print("We sent a 'Proxy:' header; HTTP_PROXY reached the program:", "HTTP_PROXY" in env)
    """),
    md("""
    A few things to notice, all in the output above:
    - `SCRIPT_NAME` is the path of the script (`/cgi-bin/env.py`), `PATH_INFO` the rest of the path.
    - `CONTENT_LENGTH` and `CONTENT_TYPE` are set when there is a body; the body itself is on stdin.
    - The server builds the environment from nothing: its own variables (your `HOME`, any
      password in its environment) are not handed on, except the few a Python program needs to
      start (`PATH`, locale, the virtualenv). A header called `Proxy:` never becomes
      `HTTP_PROXY`: programs read that variable as *their* proxy setting (the "httpoxy" hole of 2016).

    ## Django over CGI: where does the time go?

    `sample_site/cgi-bin/django.py` runs the whole Django site as a CGI script. With
    `--server-timing`, the toy server adds a `Server-Timing` header to each response with the
    phases of that one request, measured by the server and the child together:

    | phase | what it measures |
    |---|---|
    | `spawn` | the server creating the process: `fork` and `exec` |
    | `startup` | the Python interpreter starting, until the script's first line runs |
    | `import` | importing Django and `django.setup()` |
    | `app` | the request inside Django: the only part a WSGI server also pays |
    | `child` | the child's whole life as the server saw it (the four above, then writing and exiting) |
    | `total` | the whole request inside the server |

    (How each is measured is written next to the code: `phases` in `servers/cgi_server.py`.)
    """),
    code("""
    N = nb.pick(20, 4)
    phases = []
    with nb.server("cgi", extra=["--server-timing"]) as srv:
        for _ in nb.progress(range(N), desc="CGI requests"):
            phases.append(nb.server_timing(nb.fetch(srv.url, "/hello")))
    names = [name for name in phases[0]]
    print("phases reported:", ", ".join(names))
    """),
    code("""
    import statistics
    median = {name: statistics.median(p[name] for p in phases) for name in names}
    nb.table([(name, median[name], f"{median[name] / median['total']:.0%}") for name in names],
             ["phase", "median ms", "share of total"], caption=f"{N} requests to /hello over CGI")
    """),
    code("""
    STACK = {"spawn": lambda p: p["spawn"], "startup": lambda p: p["startup"], "import": lambda p: p["import"],
             "app": lambda p: p["app"],
             "child: response and exit": lambda p: p["child"] - p["spawn"] - p["startup"] - p["import"] - p["app"],
             "server: the rest": lambda p: p["total"] - p["child"]}
    fig, ax = plt.subplots(figsize=(9, 3.5))
    bottom = [0.0] * N
    for name, part in STACK.items():
        values = [max(0.0, part(p)) for p in phases]
        ax.bar(range(1, N + 1), values, bottom=bottom, label=name)
        bottom = [b + v for b, v in zip(bottom, values)]
    ax.set_xlabel("request number"); ax.set_ylabel("ms"); ax.legend(loc="upper right", fontsize=8)
    ax.set_title("One CGI request to Django's /hello, phase by phase")
    plt.show()
    """),
    code("""
    before_view = median["total"] - median["app"]
    print(f"Of a median request of {median['total']:.0f} ms, Django's view itself took {median['app']:.1f} ms "
          f"({median['app'] / median['total']:.1%}).")
    print(f"Importing Django took {median['import']:.0f} ms ({median['import'] / median['total']:.0%}); "
          f"starting the process and the interpreter {median['spawn'] + median['startup']:.0f} ms.")
    print(f"So {before_view / median['app']:.0f} times as long was spent getting ready as answering.")
    """),
    md("""
    ## How many requests per second is that?

    Now many requests at once: two clients, each sending its next request as soon as the last
    one is answered, for a few seconds. Then the same Django site and the same URL under the toy
    WSGI server, where Django is imported once and stays in memory.
    """),
    code("""
    SECONDS = nb.pick(8, 2)
    results = {}
    for kind in nb.progress(["cgi", "wsgi"], desc="servers"):
        with nb.server(kind) as srv:
            results[kind] = nb.measure(srv.url, "/hello", connections=2, duration=SECONDS)
    nb.table([(kind, r.requests, r.rps, r.percentile(50) * 1000) for kind, r in results.items()],
             ["server", "requests", "requests/s", "median latency ms"])
    """),
    code("""
    cgi_rps, wsgi_rps = results["cgi"].rps, results["wsgi"].rps
    print(f"CGI served {cgi_rps:.1f} requests/s; the WSGI server {wsgi_rps:,.0f} requests/s, "
          f"{wsgi_rps / cgi_rps:,.0f} times as many, on the same machine, same site, same URL.")
    print(f"With {os.cpu_count()} cores and {median['total']:.0f} ms per request, CGI cannot do much better than "
          f"{os.cpu_count() * 1000 / median['total']:.1f} requests/s.")
    """),
    md("""
    ## Why FastCGI, and then WSGI

    The measurements say it: almost all of a CGI request is spent *before* the application
    runs. FastCGI (1996) kept the program running and fed it request after request over a
    socket, so start-up and imports were paid once per process instead of once per request.
    WSGI (2003) went one step further for Python: no separate program and no protocol between
    the server and the application, just a function call inside a long-running process, with
    the same CGI variable names in the `environ`. What CGI did well stays worth knowing: it is
    simple, any language works, and a crash or a memory leak dies with its request.

    ## Exercises

    **1.** RFC 3875 §6.3.3: a CGI script chooses the status with a `Status:` header line, e.g.
    `Status: 404 Not Found`. Change the `%%writefile` cell above so `env.py` answers
    `418 I'm a teapot`, run that cell again, then run the check cell (it asks the server).
    """),
    code("""
    with nb.cgi_bin_server(CGI_BIN) as srv:
        teapot = nb.fetch(srv.url, "/cgi-bin/env.py")
    nb.check(teapot.status, 418, hint=f"The server answered {teapot.status}; add a Status: line before the empty line.");
    """),
    md("""
    **2.** From the table of median phases: what share of a CGI request's `total` went into
    importing Django? Give a fraction between 0 and 1 (e.g. `0.25`).
    """),
    code("""
    answer_2 = ...
    """),
    code("""
    nb.check(answer_2, median["import"] / median["total"], tolerance=0.15,
             hint="Divide the import median by the total median.");
    """),
    md("""
    **3.** If each request takes the median `total` you measured and the machine runs one
    request per core at a time, how many requests per second can CGI serve at most on this
    machine? (`os.cpu_count()` tells the cores.)
    """),
    code("""
    answer_3 = ...
    """),
    code("""
    nb.check(answer_3, os.cpu_count() * 1000 / median["total"], tolerance=0.15,
             hint="cores × (1000 ms / median total ms).");
    """),
]


# --------------------------------------------------------------------------------------
# 02 · WSGI
# --------------------------------------------------------------------------------------

WSGI = [
    md("""
    # 02 · WSGI: a function call in a long-running process

    **Learning goals.** After this notebook you can
    - write a WSGI application with its three parts: `environ`, `start_response`, the iterable;
    - use `wsgiref.validate` to find a mistake against PEP 3333;
    - read how Django's `WSGIHandler` answers the call, and match it to what a server does;
    - serve the same site with gunicorn, the server people deploy;
    - say when threads help and when only processes do, from measurements.
    """),
    md(HOW_TO),
    code(SETUP),
    md("""
    ## A WSGI application, written here

    PEP 3333 in three lines: the server calls `app(environ, start_response)`; the application
    calls `start_response(status, headers)` once, then returns an iterable of `bytes` (a list,
    or a generator that produces the body piece by piece). The next cell writes the
    application to a file, so the toy server (another process) can import it as `first_wsgi:app`.
    """),
    code("""
    APPS = nb.workdir("apps")
    print(APPS)
    """),
    code("""
    %%writefile var/notebooks/apps/first_wsgi.py
    \"\"\"A WSGI application (PEP 3333) with no framework.\"\"\"


    def app(environ, start_response):
        # environ: a dict of CGI-style variables (REQUEST_METHOD, PATH_INFO, HTTP_*) and wsgi.* keys
        body_size = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(body_size)
        text = (f"Hello! You sent {environ['REQUEST_METHOD']} {environ['PATH_INFO']}"
                f" with {len(body)} body bytes.\\n")
        # start_response(status, headers): the status as "200 OK", headers as (str, str) pairs
        start_response("200 OK", [("Content-Type", "text/plain; charset=utf-8")])
        # the return value: an iterable of bytes; a generator streams it piece by piece
        yield text.encode()
        yield b"Goodbye.\\n"
    """),
    code("""
    with nb.server("wsgi", app="first_wsgi:app", pythonpath=APPS, extra=["--trace"]) as srv:
        mark = len(srv.output())
        hello = nb.fetch(srv.url, "/greet?lang=en", method="POST", body=b"hello server")
        trace = nb.trace_blocks(nb.output_since(srv, mark))
    print(hello.status, hello.reason, hello.header("Transfer-Encoding") or hello.header("Content-Length"))
    print(hello.text)
    nb.show_trace(trace)
    """),
    md("""
    The trace shows the `environ` the server built for this request, the CGI names first in the
    same order as the CGI server uses, then the `wsgi.*` keys. The application returned a
    generator and gave no `Content-Length`, so the server sent the body in chunks
    (`Transfer-Encoding: chunked`, RFC 9112 §7.1) as the generator produced them.

    ## `wsgiref.validate`: a checker for both sides

    The standard library has a checker: wrap an application in `wsgiref.validate.validator`
    and every rule of PEP 3333 that the application *or the server* breaks raises an
    `AssertionError`. Here is an application with a common mistake: its body is a `str`.
    """),
    code("""
    from wsgiref.util import setup_testing_defaults
    from wsgiref.validate import validator

    def broken(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain")])
        return ["Hello, world!\\n"]            # the mistake: PEP 3333 bodies are bytes, not str

    def call_validated(app):
        \"\"\"Call app the way a server would, through the validator; answer the body.\"\"\"
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
    """),
    md("""
    The toy server also refuses it: a body that is not bytes is an error in the application, so
    the client gets `500 Internal Server Error` (the traceback goes to the server's log, never to
    the client).
    """),
    code("""
    %%writefile var/notebooks/apps/broken_wsgi.py
    def app(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain")])
        return ["Hello, world!\\n"]
    """),
    code("""
    with nb.server("wsgi", app="broken_wsgi:app", pythonpath=APPS) as srv:
        mark = len(srv.output())
        refused = nb.fetch(srv.url, "/")
        log = nb.output_since(srv, mark)
    print("client got:", refused.status, refused.reason, repr(refused.text))
    print("server log, last lines:")
    print("\\n".join(log.strip().splitlines()[-3:]))
    """),
    md("""
    ## Django is a WSGI application too

    `sample_site/wsgi.py` is the file `django-admin startproject` writes: it calls
    `get_wsgi_application()` once and names the result `application`. That is what a WSGI
    server imports (`sample_site.wsgi:application`). Below, the source of the *installed* Django.
    """),
    code("""
    print((ROOT / "sample_site" / "wsgi.py").read_text())
    """),
    code("""
    import django.core.handlers.wsgi
    import django.core.wsgi
    nb.show_source(django.core.wsgi.get_wsgi_application)
    nb.show_source(django.core.handlers.wsgi.WSGIHandler.__call__)
    """),
    md("""
    Read `__call__` against PEP 3333 and the toy server:
    - `environ` becomes a `WSGIRequest`; `request.META` *is* the `environ` the server built;
      the body is read from `environ["wsgi.input"]`.
    - `start_response(status, response_headers)` is the server's callable: Django calls it once,
      with the status as `"200 OK"` and the headers as a list of `(str, str)` pairs.
    - The return value is the response object itself, which is iterable (its content) and has a
      `close()` that the server must call when it is done (PEP 3333 asks for this, and Django
      uses it to send its `request_finished` signal and close database connections).
    - For a file response, Django uses `environ["wsgi.file_wrapper"]` if the server offers it,
      so the server can send the file with `os.sendfile`.

    Here is the place in the toy server where all this meets: the function that calls the
    application.
    """),
    code("""
    from servers import wsgi_server
    nb.show_source(wsgi_server.Exchange.run)
    """),
    md("""
    ## gunicorn serves the same site

    The command from Django's deployment docs is `gunicorn sample_site.wsgi`. Same application
    object, another server: compare the `environ` each one builds for the same request.
    """),
    code("""
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
    """),
    md("""
    ## Threads or processes?

    A WSGI server runs one request per thread at a time: while a view waits (for a database, a
    remote API), its thread waits too. So a server runs several threads, and several worker
    *processes*. Which helps depends on what the view does:

    - `/io?ms=50` waits 50 ms (`time.sleep`, standing for a database call). A waiting thread
      releases Python's GIL, so other threads run meanwhile.
    - `/cpu?n=...` computes in pure Python. Only one thread per process runs Python at a time
      (the GIL), so more threads do not help; more processes use more cores.

    We measure the toy WSGI server with 1 thread, with 8 threads, and with 2 worker processes of
    1 thread each, under 16 clients. (The load generator runs on the same 2 cores, which costs
    the server some CPU: the comparison between the three is what counts.)
    """),
    code("""
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
    """),
    code("""
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
    for ax, work in zip(axes, WORK):
        rps = [measured[(c, work)].rps for c in CONFIGS]
        ax.bar(list(CONFIGS), rps, color=["#999", "#4f81bd", "#c0504d"])
        ax.set_title(work); ax.set_ylabel("requests/s")
        for x, v in enumerate(rps):
            ax.text(x, v, f"{v:.0f}", ha="center", va="bottom")
    fig.suptitle("Toy WSGI server, 16 clients")
    plt.show()
    """),
    code("""
    io, cpu = WORK
    gain = lambda work, config: measured[(config, work)].rps / measured[("1 thread", work)].rps
    print(f"Waiting on I/O: 8 threads served {gain(io, '8 threads'):.1f}x as many requests as 1 thread "
          f"(the ceiling is 8x: 8 threads × 20 waits of 50 ms per second = 160 requests/s).")
    print(f"Computing: 8 threads served {gain(cpu, '8 threads'):.2f}x as many as 1 thread "
          f"-- the GIL lets one thread run Python at a time.")
    print(f"Computing with 2 processes: {gain(cpu, '2 workers × 1 thread'):.2f}x, "
          f"on {os.cpu_count()} cores shared with the load generator.")
    """),
    md("""
    This is why gunicorn has both `--workers` (processes: one per core, for CPU) and
    `--threads` (for waiting), and why the usual advice is workers ≈ cores and threads for I/O.

    ## Exercises

    **1.** Fix `broken` so that `wsgiref.validate` accepts it: write a function `fixed` in the
    next cell, then run the check cell.
    """),
    code("""
    def fixed(environ, start_response):
        ...
    """),
    code("""
    try:
        body = call_validated(fixed)
        nb.check(body, b"Hello, world!\\n", hint="The body should still say Hello, world!")
    except Exception as error:
        nb.check_that(False, right="", hint=f"wsgiref.validate or the call says: {error!r}")
    """),
    md("""
    **2.** Which `environ` key holds the stream the request body is read from? (Look at the
    toy server's trace above, or at `WSGIHandler.__call__`.)
    """),
    code("""
    answer_2 = ...
    """),
    code("""
    nb.check(answer_2, next(k for k, v in toy.items() if k.startswith("wsgi.") and "input" in k.lower()),
             hint="One of the wsgi.* keys; PEP 3333 lists them.");
    """),
    md("""
    **3.** With one thread and a view that waits 50 ms, how many requests per second can a server
    answer at most? Compute it, then compare with the measured value for `1 thread` on `/io`.
    """),
    code("""
    answer_3 = ...
    """),
    code("""
    nb.check(answer_3, 1000 / 50, tolerance=0.05, hint="One request at a time, 50 ms each.")
    print(f"measured: {measured[('1 thread', io)].rps:.1f} requests/s")
    """),
]


# --------------------------------------------------------------------------------------
# 03 · ASGI
# --------------------------------------------------------------------------------------

ASGI = [
    md("""
    # 03 · ASGI: coroutines and messages on an event loop

    **Learning goals.** After this notebook you can
    - write an ASGI application with `scope`, `receive` and `send`, and read its messages in a trace;
    - read Django's `ASGIHandler` and see where it runs sync code in a thread;
    - serve the same site with uvicorn;
    - show with measurements where threads run out and the event loop does not, why one blocking
      call in an async view hurts everyone, and what a sync view costs under ASGI.
    """),
    md(HOW_TO),
    code(SETUP),
    md("""
    ## An ASGI application, written here

    The ASGI HTTP spec in four lines: the server awaits `app(scope, receive, send)`. `scope` is a
    dict describing the request (no body). `await receive()` returns `http.request` messages
    carrying the body, piece by piece, until `more_body` is false. The application answers with
    `await send(...)`: one `http.response.start` (status and headers, as bytes), then one or
    more `http.response.body`.
    """),
    code("""
    APPS = nb.workdir("apps")
    """),
    code("""
    %%writefile var/notebooks/apps/first_asgi.py
    \"\"\"An ASGI application (ASGI 3, HTTP) with no framework.\"\"\"
    from servers.asgi_checker import checked


    async def app(scope, receive, send):
        assert scope["type"] == "http", "this app serves HTTP only (run the server with --lifespan off)"
        size = 0
        while True:                                   # the body arrives in http.request messages
            message = await receive()
            size += len(message.get("body", b""))
            if not message.get("more_body", False):
                break
        text = f"Hello! You sent {scope['method']} {scope['path']} with {size} body bytes.\\n"
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"text/plain; charset=utf-8")]})
        await send({"type": "http.response.body", "body": text.encode(), "more_body": True})
        await send({"type": "http.response.body", "body": b"Goodbye.\\n"})


    # The same application inside the ASGI checker (our counterpart of wsgiref.validate):
    # any message out of order or of the wrong type raises ASGIViolation.
    checked_app = checked(app)
    """),
    code("""
    with nb.server("asgi", app="first_asgi:checked_app", pythonpath=APPS, extra=["--trace", "--lifespan", "off"]) as srv:
        mark = len(srv.output())
        hello = nb.fetch(srv.url, "/greet?lang=en", method="POST", body=b"hello server")
        trace = nb.trace_blocks(nb.output_since(srv, mark))
    print(hello.status, hello.reason)
    print(hello.text)
    nb.show_trace(trace)
    """),
    code("""
    messages = [b.message_type() for b in trace if b.message_type()]
    print("messages in order:", " → ".join(messages))
    """),
    md("""
    Between `receive` and `send` the application may `await` anything: while it waits, the same
    thread runs other requests. That is the whole point, and its danger, as we measure below.

    ## Django's `ASGIHandler`

    `sample_site/asgi.py` calls `get_asgi_application()`. Here is how the installed Django
    answers the call. Note `handle()`: it reads the whole body first, and `get_response_async`
    runs the middleware and the view. A *sync* view (plain `def`) is run with `sync_to_async`,
    in a thread; an `async def` view runs on the event loop itself.
    """),
    code("""
    import django.core.handlers.asgi
    nb.show_source(django.core.handlers.asgi.ASGIHandler.__call__)
    nb.show_source(django.core.handlers.asgi.ASGIHandler.handle)
    """),
    md("""
    ## uvicorn serves the same site

    The command from Django's docs: `python -m uvicorn sample_site.asgi:application`. We compare
    the scope uvicorn and the toy server hand Django for the same request.
    """),
    code("""
    scopes = {}
    for kind in ("asgi", "uvicorn"):
        with nb.server(kind) as srv:
            scopes[kind] = nb.inspect_request(srv.url, "/inspect?lang=en")[1]
    nb.side_by_side({"toy asgi server": scopes["asgi"], "uvicorn": scopes["uvicorn"]})
    """),
    md("""
    ## Waiting: threads run out, the event loop does not

    Every client asks for a page whose view waits 50 ms (a database, a remote API):
    - `/io?ms=50` is a sync view with `time.sleep`; under the toy WSGI server it holds one of 8
      threads while it waits; under ASGI, Django runs it in a thread too;
    - `/io-async?ms=50` is an `async def` view with `await asyncio.sleep`; under ASGI it waits on
      the event loop, holding no thread.

    We raise the number of clients and count the requests per second.
    """),
    code("""
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
    """),
    code("""
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 3.8))
    for name, curve in curves.items():
        left.plot(LEVELS, [curve[c].rps for c in LEVELS], marker="o", label=name)
        right.plot(LEVELS, [curve[c].percentile(50) * 1000 for c in LEVELS], marker="o", label=name)
    left.plot(LEVELS, [c * 20 for c in LEVELS], ":", color="grey", label="ideal: clients × 20/s")
    left.set_xscale("log", base=2); left.set_yscale("log"); left.set_xlabel("clients"); left.set_ylabel("requests/s")
    right.set_xscale("log", base=2); right.set_xlabel("clients"); right.set_ylabel("median latency ms")
    left.legend(fontsize=8); fig.suptitle("Views that wait 50 ms")
    plt.show()
    """),
    code("""
    top = LEVELS[-1]
    rows = [(name, curve[top].rps, curve[top].percentile(50) * 1000) for name, curve in curves.items()]
    nb.table(rows, ["setup", f"requests/s at {top} clients", "median latency ms"])
    wsgi_rps = curves["WSGI, 8 threads, sync view"][top].rps
    async_rps = curves["ASGI, async view"][top].rps
    print(f"At {top} clients, 8 threads served {wsgi_rps:.0f} requests/s (their ceiling: 8 / 0.05 s = 160/s); "
          f"the async view on the event loop served {async_rps:.0f}/s, {async_rps / wsgi_rps:.1f}x as many.")
    """),
    md("""
    ## One blocking call inside an async view

    An `async def` view runs on the event loop itself. If it calls something that blocks
    (`time.sleep`, `requests.get`, a sync database driver), the *whole loop* stops: no other
    request moves until it returns. Two small ASGI applications, identical but for one line:
    """),
    code("""
    %%writefile var/notebooks/apps/sleepy_asgi.py
    import asyncio
    import time

    HEADERS = [(b"content-type", b"text/plain")]


    async def polite(scope, receive, send):
        await asyncio.sleep(0.05)          # waits on the event loop: other requests run meanwhile
        await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
        await send({"type": "http.response.body", "body": b"done\\n"})


    async def blocking(scope, receive, send):
        time.sleep(0.05)                   # blocks the event loop: nothing else runs for 50 ms
        await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
        await send({"type": "http.response.body", "body": b"done\\n"})
    """),
    code("""
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
    """),
    md("""
    ## What a sync view costs under ASGI

    Most Django code is sync: the ORM, most middleware, most views. Under ASGI, Django runs each
    sync piece with `sync_to_async`, which hands it to a thread and waits for the result: a
    thread hop per request, and an event loop *and* a thread doing the work a WSGI server does
    with a thread alone. Measured: the same `/hello` (a sync view) under the toy WSGI server and
    the toy ASGI server, and `/hello-async` (an `async def` view) under ASGI; 8 clients.
    """),
    code("""
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
    """),
    code("""
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
    """),
    md("""
    ## The garbage collector's share

    Python frees most objects by reference counting, at the moment the last reference goes.
    Objects in a reference *cycle* wait for the cyclic garbage collector, and Django's ASGI
    handler leaves a cycle behind with every request: a finished task holds its exception,
    the exception its traceback, the traceback the handler's frame, and the frame the task.
    To reclaim them the collector runs full collections, which visit every container object
    alive, and after `import django` that is tens of thousands of objects that will live as
    long as the server. So both toy servers call `gc.freeze()` once the application is
    imported (`common.freeze_startup_objects()`): what exists then moves to a permanent
    generation the collector skips. `--no-gc-freeze` turns that off. Both, side by side, on
    `/hello-async` with 32 clients, measured in turns:
    """),
    code("""
    import re
    import statistics

    FREEZE = {"gc.freeze() (the default)": [], "--no-gc-freeze": ["--no-gc-freeze"]}
    with nb.server("asgi", extra=FREEZE["gc.freeze() (the default)"]) as frozen_srv, \\
         nb.server("asgi", extra=FREEZE["--no-gc-freeze"]) as plain_srv:
        servers = dict(zip(FREEZE, (frozen_srv, plain_srv)))
        cpu_per_request = {name: [] for name in FREEZE}
        rounds = nb.pick(3, 1)
        for _ in nb.progress(range(rounds), desc="rounds, each server in turn"):
            for name, srv in servers.items():
                before = nb.cpu_seconds(srv)
                result = nb.measure(srv.url, "/hello-async", connections=32, duration=nb.pick(4, 1.5))
                cpu_per_request[name].append((nb.cpu_seconds(srv) - before) * 1000 / max(result.requests, 1))
        announced = re.search(r"([\\d,]+) start-up objects frozen", frozen_srv.output())
    assert announced, "the server's Listening line should say how many objects it froze"
    frozen_count = int(announced.group(1).replace(",", ""))
    freeze_ms = {name: statistics.median(values) for name, values in cpu_per_request.items()}
    nb.table([(name, ms) for name, ms in freeze_ms.items()],
             ["toy ASGI server", "server CPU ms per request (median of the rounds)"])
    """),
    code("""
    with_freeze, without_freeze = freeze_ms.values()
    saved = 1 - with_freeze / without_freeze
    print(f"At start-up the server froze {frozen_count:,} objects: Django, the site, the server itself.")
    print(f"CPU per request: {with_freeze:.3f} ms with the freeze, {without_freeze:.3f} ms without: "
          + (f"the freeze saved {saved:.0%}, the collector's walks over the framework." if saved >= 0.02
             else f"{saved:+.0%}, within this machine's noise; run the cell again, or in full mode."))
    """),
    md("""
    When the whole stack is sync, ASGI has nothing to offer it, and the numbers above show
    what the adaptation costs on this machine. ASGI pays off when requests *wait*: long-lived
    connections, streaming, calls to slow services made with `await`, as measured earlier.

    ## Exercises

    **1.** The application in the next cell blocks the loop. Fix it (one line, plus an import),
    run the cell, then the check cell: it serves your application and measures it with 16 clients.
    """),
    code("""
    %%writefile var/notebooks/apps/exercise_asgi.py
    import time


    async def app(scope, receive, send):
        time.sleep(0.05)
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "http.response.body", "body": b"done\\n"})
    """),
    code("""
    mine = serve_and_measure("exercise_asgi:app")
    nb.check_that(mine.rps > 4 * blocking.rps,
                  right=f"Right: {mine.rps:.0f} requests/s, {mine.rps / blocking.rps:.0f}x the blocking version.",
                  hint=f"{mine.rps:.0f} requests/s, like the blocking version ({blocking.rps:.0f}/s). Await instead of blocking.");
    """),
    md("""
    **2.** In the trace of `first_asgi`, which message type did the application *receive*?
    """),
    code("""
    answer_2 = ...
    """),
    code("""
    nb.check(answer_2, messages[0], hint="The first message in the trace came from the server.");
    """),
    md("""
    **3.** 256 clients each ask for a view that waits 50 ms. A WSGI server has 8 threads. What is
    the median latency you would expect, in ms? (Each thread serves 20 requests per second; every
    client waits its turn.)
    """),
    code("""
    answer_3 = ...
    """),
    code("""
    nb.check(answer_3, 256 / (8 * 20) * 1000, tolerance=0.1, hint="clients / (threads × 20 per s), in ms.")
    if 256 in curves["WSGI, 8 threads, sync view"]:
        print(f"measured: {curves['WSGI, 8 threads, sync view'][256].percentile(50) * 1000:.0f} ms")
    """),
]


# --------------------------------------------------------------------------------------
# 04 · benchmarks
# --------------------------------------------------------------------------------------

BENCH = [
    md("""
    # 04 · The comparison: toy servers, gunicorn and uvicorn

    **Learning goals.** After this notebook you can
    - run the benchmark harness and read its results file (with the machine it ran on);
    - read throughput, latency and memory figures, and say which server model wins where and why;
    - check every conclusion against the numbers of *this* run: the sentences below are computed
      from the results, so they cannot contradict them.
    """),
    md(HOW_TO),
    code(SETUP),
    md("""
    ## Running the benchmark

    `python -m scripts.bench` starts each server on a free port, pins it to one core and the load
    generator to the other (on a 2-core machine), warms it up, measures, and writes every row with
    the machine's description (CPU, cores, versions, date, commit, pinning) to a results file.
    Servers of one comparison are measured in turn, A B A B, so a busy moment of the machine
    falls on all of them alike.

    We run it four times from here, into `var/notebooks/bench/`, so everything below comes from
    this run (the full mode takes tens of minutes; `TOOLKIT_QUICK=1` about one):
    1. **pages**: the bare "hello" app with no framework, Django's `/hello`, the `/products` page
       (a template and an ORM query) and `/cpu` (pure Python work);
    2. **waiting**: `/io?ms=50` (sync view) and `/io-async?ms=50` (async view) at rising concurrency;
    3. **streams**: how many long-lived `/events` streams each server holds, and the memory each costs;
    4. **cgi**: the CGI runner, with its Server-Timing phases, against its floor (starting the same
       script in a loop).
    """),
    code("""
    from scripts import plots

    BENCH_DIR = nb.workdir("bench")
    SERVERS = ["wsgi", "gunicorn-gthread", "asgi", "uvicorn"] + nb.pick(["gunicorn", "uvicorn-fast"], [])
    TIMING = ["--duration", str(nb.pick(3, 0.75)), "--repeats", str(nb.pick(3, 1)), "--warmup", str(nb.pick(1, 0.2))]
    PAGE_LEVEL = nb.pick(32, 8)
    WAIT_LEVELS = nb.pick([1, 8, 64, 256, 512], [8, 64])
    STREAMS = nb.pick([16, 64, 256], [16])

    def levels(values):
        return ",".join(str(v) for v in values)
    """),
    code("""
    pages = nb.run_bench(["--servers", ",".join(SERVERS), "--endpoints", "bare,hello,products,cpu",
                          "--concurrency", str(PAGE_LEVEL), *TIMING], out=BENCH_DIR, name="pages")
    """),
    code("""
    waiting = nb.run_bench(["--servers", ",".join(SERVERS), "--endpoints", "io,io-async",
                            "--concurrency", levels(WAIT_LEVELS), *TIMING], out=BENCH_DIR, name="waiting")
    """),
    code("""
    streams = nb.run_bench(["--servers", ",".join(SERVERS), "--endpoints", "events",
                            "--concurrency", levels(STREAMS), *TIMING], out=BENCH_DIR, name="streams")
    """),
    code("""
    cgi = nb.run_bench(["--servers", "cgi", "--endpoints", "hello", "--concurrency", "2",
                        "--duration", str(nb.pick(10, 3)), "--repeats", str(nb.pick(3, 1))],
                       out=BENCH_DIR, name="cgi")
    results = nb.merge_results(pages, waiting, streams, cgi)
    """),
    md("""
    ## The machine

    A benchmark figure means nothing without the machine it came from. The harness records it:
    """),
    code("""
    meta = results["metadata"]
    nb.table([("date", meta.get("date")), ("commit", meta.get("git_commit", "")[:10] + (" (uncommitted changes)" if meta.get("git_dirty") else "")),
              ("CPU", meta.get("cpu_model")), ("cores", meta.get("cores")), ("Python", meta.get("python")),
              ("packages", ", ".join(f"{k} {v}" for k, v in meta.get("packages", {}).items())),
              ("server on CPUs", meta.get("pinning", {}).get("server_cpus")),
              ("load generator on CPUs", meta.get("pinning", {}).get("loader_cpus")),
              ("load average at the start", meta.get("load_average"))],
             ["", "this run"])
    """),
    code("""
    def rps(server, endpoint, level):
        return nb.median_of(results, "rps", server=server, endpoint=endpoint, concurrency=level)

    def cpu_ms(server, endpoint, level):
        return nb.median_of(results, "cpu_ms_per_request", server=server, endpoint=endpoint, concurrency=level)

    def bars(endpoints, level, title):
        fig, axes = plt.subplots(1, len(endpoints), figsize=(3.2 * len(endpoints), 3.4), layout="constrained")
        for ax, endpoint in zip(axes, endpoints):
            values = [rps(server, endpoint, level) for server in SERVERS]
            ax.bar(SERVERS, values, color=[plots.COLOURS.get(server, "grey") for server in SERVERS])
            ax.set_title(endpoint); ax.tick_params(axis="x", rotation=60)
        axes[0].set_ylabel("requests/s (median)")
        fig.suptitle(f"{title}, {level} clients")
        plt.show()
    """),
    md("""
    ## 1 · Framework overhead: a bare app and Django's `/hello`

    The bare app answers "Hello, world!" with no framework: what remains is the server's own cost
    per request (parsing, building the environ or scope, writing the response). Django's `/hello`
    adds the framework: request object, middleware, URL resolution, response object.
    """),
    code("""
    bars(["bare", "hello"], PAGE_LEVEL, "Server overhead alone, then with Django")
    nb.table([(server, rps(server, "bare", PAGE_LEVEL), rps(server, "hello", PAGE_LEVEL),
               cpu_ms(server, "bare", PAGE_LEVEL), cpu_ms(server, "hello", PAGE_LEVEL)) for server in SERVERS],
             ["server", "bare req/s", "Django /hello req/s", "bare CPU ms/request", "Django CPU ms/request"])
    """),
    code("""
    for toy, reference in (("wsgi", "gunicorn-gthread"), ("asgi", "uvicorn")):
        for endpoint in ("bare", "hello"):
            ratio = rps(toy, endpoint, PAGE_LEVEL) / rps(reference, endpoint, PAGE_LEVEL)
            print(f"{endpoint:6} the toy {toy} server served {ratio:.2f}x the requests of {reference}.")
    django_cost = {s: cpu_ms(s, "hello", PAGE_LEVEL) - cpu_ms(s, "bare", PAGE_LEVEL) for s in SERVERS}
    print("Django's own CPU per request, /hello minus bare: "
          + ", ".join(f"{s} {ms:.2f} ms" for s, ms in django_cost.items()) + ".")
    """),
    md("""
    ## 2 · A realistic page, and CPU-bound work

    `/products` renders a template around an ORM query of 50 rows; `/cpu` runs a pure-Python loop.
    Here the application's own work is most of each request, so the server matters less.
    """),
    code("""
    bars(["hello", "products", "cpu"], PAGE_LEVEL, "Django pages")
    spread = {e: max(rps(s, e, PAGE_LEVEL) for s in SERVERS) / min(rps(s, e, PAGE_LEVEL) for s in SERVERS)
              for e in ("hello", "products", "cpu")}
    slowdown = {s: rps(s, "hello", PAGE_LEVEL) / rps(s, "products", PAGE_LEVEL) for s in SERVERS}
    print(f"/products is {min(slowdown.values()):.1f}x to {max(slowdown.values()):.1f}x slower than /hello, "
          f"depending on the server.")
    print("Fastest over slowest server: " + ", ".join(f"{e} {r:.1f}x" for e, r in spread.items())
          + ": the more work the application does, the less the server's share shows"
          + (" (as here)." if spread["cpu"] < spread["hello"] else " (not in this run: look at the spread)."))
    """),
    md("""
    ## 3 · Waiting: sync views, async views, rising concurrency

    `/io?ms=50` sleeps in a sync view, `/io-async?ms=50` awaits in an async view. A thread-pool
    server serves at most threads ÷ 0.05 s requests per second on the sync view; an event loop
    can keep many more waits in flight, until its CPU runs out.
    """),
    code("""
    fig, axes = plt.subplots(1, 2, figsize=(12, 4), layout="constrained")
    for ax, endpoint in zip(axes, ("io", "io-async")):
        plots.throughput(results, endpoint=endpoint, ax=ax)
    plt.show()
    """),
    code("""
    top = WAIT_LEVELS[-1]
    nb.table([(s, rps(s, "io", top), rps(s, "io-async", top),
               nb.median_of(results, "p50_ms", server=s, endpoint="io", concurrency=top),
               nb.median_of(results, "p50_ms", server=s, endpoint="io-async", concurrency=top)) for s in SERVERS],
             ["server", "/io req/s", "/io-async req/s", "/io median ms", "/io-async median ms"],
             caption=f"{top} clients, each view waits 50 ms")
    best_sync = max(("wsgi", "gunicorn-gthread"), key=lambda s: rps(s, "io", top))
    best_async = max(("asgi", "uvicorn"), key=lambda s: rps(s, "io-async", top))
    print(f"At {top} clients the best thread-pool server ({best_sync}, 8 threads) served {rps(best_sync, 'io', top):.0f} "
          f"requests/s on the sync view (its ceiling: 8 / 0.05 s = 160/s); the best event loop ({best_async}) served "
          f"{rps(best_async, 'io-async', top):.0f}/s on the async view, "
          f"{rps(best_async, 'io-async', top) / rps(best_sync, 'io', top):.1f}x as many.")
    """),
    md("""
    ## 4 · Long-lived connections and memory

    `/events` is a stream of server-sent events that stays open for half a minute. A thread-pool
    server needs one thread per open stream; an event loop needs one small object per connection.
    The harness opens the streams, counts how many the server holds, and reads its memory.
    """),
    code("""
    stream_rows = [row for row in results["rows"] if row.get("held") is not None]
    nb.table([(row["server"], row["concurrency"], row["held"], row["rss_mb"], row.get("kb_per_connection"))
              for row in stream_rows], ["server", "streams asked", "streams held", "memory MB", "kB per connection"])
    if plots.available(results).count("memory"):
        plots.memory(results)
        plt.show()
    """),
    code("""
    most = max(STREAMS)
    held = {s: nb.median_of(results, "held", server=s, endpoint="events", concurrency=most) for s in SERVERS}
    for server, count in held.items():
        kb = nb.median_of(results, "kb_per_connection", server=server, endpoint="events", concurrency=most)
        print(f"{server:17} held {count:.0f} of {most} streams" + (f", {kb:.0f} kB each" if kb == kb else ""))
    full = [s for s, n in held.items() if n >= most]
    print("Held every stream:", ", ".join(full) or "none", "| ran out:", ", ".join(s for s in held if s not in full) or "none")
    """),
    md("""
    ## 5 · CGI: the price of a process per request

    The runner's Server-Timing header splits each request into phases (see `01_cgi`). The floor
    is what no CGI server can beat: starting the same script, with the same environment, in a loop.
    """),
    code("""
    plots.cgi_phases(results)
    plt.show()
    """),
    code("""
    timings = [row["server_timing_ms"] for row in results["rows"] if row["server"] == "cgi" and row.get("server_timing_ms")]
    phase = {name: nb.median_of({"rows": timings}, name) for name in ("spawn", "startup", "import", "app", "total")}
    cgi_rps = rps("cgi", "hello", 2)
    floor_rps = rps("cgi-floor", "hello", 2)
    wsgi_rps = rps("wsgi", "hello", PAGE_LEVEL)
    print(f"A CGI request to /hello took {phase['total']:.0f} ms, of which Django's view {phase['app']:.1f} ms "
          f"and importing Django {phase['import']:.0f} ms ({phase['import'] / phase['total']:.0%}).")
    print(f"The CGI runner served {cgi_rps:.1f} requests/s with 2 clients"
          + (f", {cgi_rps / floor_rps:.2f}x its floor of {floor_rps:.1f}/s" if floor_rps == floor_rps else "")
          + f"; the toy WSGI server {wsgi_rps:,.0f}/s, {wsgi_rps / cgi_rps:,.0f}x as many.")
    """),
    md("""
    ## The summary table of the harness

    Each toy server's throughput as a ratio of its reference, measured in the same run.
    """),
    code("""
    for run in (pages, waiting, cgi):
        print("\\n".join(run.get("summary", [])), end="\\n\\n")
    """),
    md("""
    ## Exercises

    **1.** Which server served the most requests per second on Django's `/hello` in this run?
    Write its name as the harness spells it (e.g. `"gunicorn-gthread"`).
    """),
    code("""
    answer_1 = ...
    """),
    code("""
    nb.check(answer_1, max(SERVERS, key=lambda s: rps(s, "hello", PAGE_LEVEL)), hint="Look at the bars of section 1.");
    """),
    md("""
    **2.** How many requests per second did the toy WSGI server serve on `/hello` for each one the
    CGI runner served? Compute it from the two rows (to within 20 %).
    """),
    code("""
    answer_2 = ...
    """),
    code("""
    nb.check(answer_2, rps("wsgi", "hello", PAGE_LEVEL) / rps("cgi", "hello", 2), tolerance=0.2,
             hint='rps("wsgi", "hello", PAGE_LEVEL) / rps("cgi", "hello", 2)');
    """),
    md("""
    **3.** A thread-pool server with 8 threads and a view that waits 50 ms: what is the most
    requests per second it can serve, whatever the number of clients?
    """),
    code("""
    answer_3 = ...
    """),
    code("""
    nb.check(answer_3, 8 / 0.05, tolerance=0.02, hint="threads / seconds per request.")
    print(f"measured at {top} clients: toy wsgi {rps('wsgi', 'io', top):.0f}/s, gunicorn-gthread {rps('gunicorn-gthread', 'io', top):.0f}/s")
    """),
]


NOTEBOOKS_CONTENT = {
    "00_overview.ipynb": OVERVIEW,
    "01_cgi.ipynb": CGI,
    "02_wsgi.ipynb": WSGI,
    "03_asgi.ipynb": ASGI,
    "04_benchmarks.ipynb": BENCH,
}


def build(name: str, cells: list[tuple[str, str]]) -> nbformat.NotebookNode:
    notebook = nbformat.v4.new_notebook()
    notebook.metadata = {
        "kernelspec": {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"},
        "language_info": {"name": "python"},
    }
    stem = name.split("_", 1)[0]
    for number, (kind, source) in enumerate(cells):
        make = nbformat.v4.new_markdown_cell if kind == "markdown" else nbformat.v4.new_code_cell
        cell = make(source)
        cell.id = f"nb{stem}-{number:02d}"
        notebook.cells.append(cell)
    nbformat.validate(notebook)
    return notebook


def main() -> None:
    NOTEBOOKS.mkdir(exist_ok=True)
    for name, cells in NOTEBOOKS_CONTENT.items():
        path = NOTEBOOKS / name
        nbformat.write(build(name, cells), path)
        print(path.relative_to(NOTEBOOKS.parent))


if __name__ == "__main__":
    main()
