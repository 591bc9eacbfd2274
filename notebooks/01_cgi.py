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
# # 01 · CGI: a new process for every request
#
# **Learning goals.** After this notebook you can
# - write a CGI script, in Python and in shell, and have a server run it;
# - predict and then see what a crashing and a hanging script do to the client and the server;
# - name the RFC 3875 meta-variables a CGI program receives, and where the body is;
# - say where the time of one CGI request goes (starting a process, starting Python,
#   importing Django, running the view), from measurements on this machine;
# - explain why FastCGI and then WSGI replaced CGI.

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
# ## A CGI script, written here
#
# A CGI program reads the request from its environment and its standard input, and writes
# the response on its standard output: a header block, an empty line, the body
# (RFC 3875 §6). No framework, no library. The next cell writes one into
# `var/notebooks/cgi-bin/` (a folder git ignores); the cell after it makes it executable.

# %%
CGI_BIN = nb.workdir("cgi-bin")
print(CGI_BIN)

# %%
# %%writefile var/notebooks/cgi-bin/env.py
# #!/usr/bin/env python3
"""The classic first CGI script: print a header block, then the request as the program sees it."""
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

# %%
(CGI_BIN / "env.py").chmod(0o755)


# %% [markdown]
# The toy CGI server maps `/cgi-bin/NAME/rest/of/path` to the script `NAME` in a folder
# (`--cgi-dir`), the classic cgi-bin layout. We send three requests: two GETs and a POST with
# a small body (the first GET also carries a `Proxy:` header; more on that below). Look at the
# process id in the first line of each answer.

# %%
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

# %% [markdown]
# Three requests, three process ids: each request started a new program, which exited after
# answering. Here is the environment of the first one, checked against the meta-variables
# of RFC 3875 §4.1.

# %%
RFC_3875 = [("AUTH_TYPE", "4.1.1"), ("CONTENT_LENGTH", "4.1.2"), ("CONTENT_TYPE", "4.1.3"),
            ("GATEWAY_INTERFACE", "4.1.4"), ("PATH_INFO", "4.1.5"), ("PATH_TRANSLATED", "4.1.6"),
            ("QUERY_STRING", "4.1.7"), ("REMOTE_ADDR", "4.1.8"), ("REMOTE_HOST", "4.1.9"),
            ("REMOTE_IDENT", "4.1.10"), ("REMOTE_USER", "4.1.11"), ("REQUEST_METHOD", "4.1.12"),
            ("SCRIPT_NAME", "4.1.13"), ("SERVER_NAME", "4.1.14"), ("SERVER_PORT", "4.1.15"),
            ("SERVER_PROTOCOL", "4.1.16"), ("SERVER_SOFTWARE", "4.1.17")]
nb.table([(name, "§" + section, env.get(name, "(not set)"), post_env.get(name, "(not set)"))
          for name, section in RFC_3875],
         ["variable", "RFC 3875", "GET /cgi-bin/env.py/some/path?x=1&y=2", "POST /cgi-bin/env.py/upload"])

# %%
headers = {k: v for k, v in env.items() if k.startswith("HTTP_")}
standard = {name for name, _ in RFC_3875}
others = sorted(k for k in env if k not in standard and not k.startswith("HTTP_"))
print("§4.1.18, one HTTP_ variable per request header:")
for name, value in headers.items():
    print(f"  {name} = {value}")
print("Anything else the program got:", ", ".join(others) or "nothing")
print("The server's own HOME or USER reached the program:", any(k in env for k in ("HOME", "USER")))
print("We sent a 'Proxy:' header; HTTP_PROXY reached the program:", "HTTP_PROXY" in env)

# %% [markdown]
# A few things to notice, all in the output above:
# - `SCRIPT_NAME` is the path of the script (`/cgi-bin/env.py`), `PATH_INFO` the rest of the path.
# - `CONTENT_LENGTH` and `CONTENT_TYPE` are set when there is a body; the body itself is on stdin.
# - The server builds the environment from nothing: its own variables (your `HOME`, any
#   password in its environment) are not handed on, except the few a Python program needs to
#   start (`PATH`, locale, the virtualenv). A header called `Proxy:` never becomes
#   `HTTP_PROXY`: programs read that variable as *their* proxy setting (the "httpoxy" hole of 2016).
#
# ## Django over CGI: where does the time go?
#
# `sample_site/cgi-bin/django.py` runs the whole Django site as a CGI script. With
# `--server-timing`, the toy server adds a `Server-Timing` header to each response with the
# phases of that one request, measured by the server and the child together:
#
# | phase | what it measures |
# |---|---|
# | `spawn` | the server creating the process: `fork` and `exec` |
# | `startup` | the Python interpreter starting, until the script's first line runs |
# | `import` | importing Django and `django.setup()` |
# | `app` | the request inside Django: the only part a WSGI server also pays |
# | `child` | the child's whole life as the server saw it (the four above, then writing and exiting) |
# | `total` | the whole request inside the server |
#
# (How each is measured is written next to the code: `phases` in `servers/cgi_server.py`.)

# %%
N = nb.pick(20, 4)
phases = []
with nb.server("cgi", extra=["--server-timing"]) as srv:
    for _ in nb.progress(range(N), desc="CGI requests"):
        phases.append(nb.server_timing(nb.fetch(srv.url, "/hello")))
names = [name for name in phases[0]]
print("phases reported:", ", ".join(names))

# %%
import statistics
median = {name: statistics.median(p[name] for p in phases) for name in names}
nb.table([(name, median[name], f"{median[name] / median['total']:.0%}") for name in names],
         ["phase", "median ms", "share of total"], caption=f"{N} requests to /hello over CGI")

# %%
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

# %%
before_view = median["total"] - median["app"]
print(f"Of a median request of {median['total']:.0f} ms, Django's view itself took {median['app']:.1f} ms "
      f"({median['app'] / median['total']:.1%}).")
print(f"Importing Django took {median['import']:.0f} ms ({median['import'] / median['total']:.0%}); "
      f"starting the process and the interpreter {median['spawn'] + median['startup']:.0f} ms.")
print(f"So {before_view / median['app']:.0f} times as long was spent getting ready as answering.")

# %% [markdown]
# ## When a script crashes or hangs
#
# A CGI program is a separate process: whatever it does, the server only sees its output and
# its exit. Two bad scripts, in two languages: `crash.py` divides by zero, `hang.sh` (a shell
# script) never answers. The runner starts with `--cgi-timeout 1`: a child still running after
# one second is killed with its whole process group.
#
# **Predict first.** Which HTTP status will the client get for each, and what will a normal
# request to `env.py` right after them get? (RFC 9110 §15.6 lists the 5xx codes: 500 Internal
# Server Error, 502 Bad Gateway, 503 Service Unavailable, 504 Gateway Timeout.)

# %%
prediction_failures = {"crash.py": ..., "hang.sh": ..., "env.py after them": ...}

# %% [markdown] jupyter={"source_hidden": true} tags=["solution"]
# **Solution.** The runner is a gateway to the script: a script that gives no valid answer is a
# bad gateway (502), one that gives none in time a gateway timeout (504). The runner itself
# is another process and goes on serving.
#
# ```python
# prediction_failures = {"crash.py": 502, "hang.sh": 504, "env.py after them": 200}
# ```

# %%
nb.record_prediction("failures", prediction_failures)
(CGI_BIN / "crash.py").write_text("#!/usr/bin/env python3\nprint(1 / 0)\n")
(CGI_BIN / "hang.sh").write_text("#!/bin/sh\n# Never answers: sleeps past any sensible timeout.\nsleep 600\n")
for script in ("crash.py", "hang.sh"):
    (CGI_BIN / script).chmod(0o755)
with nb.cgi_bin_server(CGI_BIN, extra=["--cgi-timeout", "1"]) as srv:
    runner_pid = srv.pid
    bad = {name: nb.fetch(srv.url, f"/cgi-bin/{name}") for name in ("crash.py", "hang.sh", "env.py")}
    runner_alive = srv.process.poll() is None
    runner_said = srv.output()
nb.table([(name, answer.status, answer.reason, f"{answer.seconds:.2f}", answer.text.splitlines()[0][:70])
          for name, answer in bad.items()], ["script", "status", "reason", "seconds", "first line of the body"])
print(f"The runner (pid {runner_pid}) was still running after both: {runner_alive}. What it logged:")
print("\n".join(line for line in runner_said.splitlines() if "crash.py" in line or "cgi:" in line or "killed" in line))
measured_failures = {"crash.py": bad["crash.py"].status, "hang.sh": bad["hang.sh"].status,
                     "env.py after them": bad["env.py"].status}

# %% tags=["check"]
nb.check_prediction("failures", measured_failures,
                    hint="The runner stands between the client and the script, as a gateway does; "
                         "look for 'Gateway' among the 5xx reasons.");

# %% [markdown]
# One request failed each time, and only that one: the traceback went to the runner's log
# (the script's stderr), the hanging shell was killed, and the next request was served as if
# nothing had happened. A crash inside a WSGI or ASGI application is different: it is an
# exception in the server's own process, which the server must catch (notebook 00 showed
# where the toy WSGI server does).

# %% [markdown]
# ## How many requests per second is that?
#
# Now many requests at once: two clients, each sending its next request as soon as the last
# one is answered, for a few seconds. Then the same Django site and the same URL under the toy
# WSGI server, where Django is imported once and stays in memory.

# %%
SECONDS = nb.pick(8, 2)
results = {}
for kind in nb.progress(["cgi", "wsgi"], desc="servers"):
    with nb.server(kind) as srv:
        results[kind] = nb.measure(srv.url, "/hello", connections=2, duration=SECONDS)
nb.table([(kind, r.requests, r.rps, r.percentile(50) * 1000) for kind, r in results.items()],
         ["server", "requests", "requests/s", "median latency ms"])

# %%
cgi_rps, wsgi_rps = results["cgi"].rps, results["wsgi"].rps
print(f"CGI served {cgi_rps:.1f} requests/s; the WSGI server {wsgi_rps:,.0f} requests/s, "
      f"{wsgi_rps / cgi_rps:,.0f} times as many, on the same machine, same site, same URL.")
print(f"With {os.cpu_count()} cores and {median['total']:.0f} ms per request, CGI cannot do much better than "
      f"{os.cpu_count() * 1000 / median['total']:.1f} requests/s.")

# %% [markdown]
# ## Why FastCGI, and then WSGI
#
# The measurements say it: almost all of a CGI request is spent *before* the application
# runs. FastCGI (1996) kept the program running and fed it request after request over a
# socket, so start-up and imports were paid once per process instead of once per request.
# WSGI (2003) went one step further for Python: no separate program and no protocol between
# the server and the application, just a function call inside a long-running process, with
# the same CGI variable names in the `environ`. What CGI did well stays worth knowing: it is
# simple, any language works (the shell script above), and a crash or a memory leak dies with
# its request (the section before).

# %% [markdown]
# ## Exercises
#
# **1. A CGI script in shell.** CGI needs no Python: any program that reads its environment and
# writes a header block, an empty line and a body will do. Complete `greet.sh` below so that
# `/cgi-bin/greet.sh?Ada` answers `200`, with `Content-Type: text/plain`, and the body
# `Hello, Ada` (the query string is in `$QUERY_STRING`, RFC 3875 §4.1.7). Run the cell to write
# the file, then the check.

# %%
# %%writefile var/notebooks/cgi-bin/greet.sh
# #!/bin/sh
# Answer "Hello, NAME" for /cgi-bin/greet.sh?NAME: a header block, an empty line, the body.

# %% [markdown] jupyter={"source_hidden": true} tags=["solution"]
# **Solution.** The cell's text, written from Python here; `printf` writes the CRLF line ends
# HTTP uses (a CGI server accepts plain LF too).
#
# ```python
# (CGI_BIN / "greet.sh").write_text(r'''#!/bin/sh
# printf 'Status: 200 OK\r\nContent-Type: text/plain\r\n\r\n'
# printf 'Hello, %s\n' "$QUERY_STRING"
# ''')
# ```

# %% tags=["check"]
def try_greet():
    script = CGI_BIN / "greet.sh"
    script.chmod(0o755)
    with nb.cgi_bin_server(CGI_BIN) as srv:
        answer = nb.fetch(srv.url, "/cgi-bin/greet.sh?Ada")
    assert answer.status == 200, f"the server answered {answer.status}: {answer.text.strip()[:120]}"
    assert answer.header("Content-Type", "").startswith("text/plain"), f"Content-Type was {answer.header('Content-Type')}"
    assert answer.text.strip() == "Hello, Ada", f"the body was {answer.text!r}"
    return f"/cgi-bin/greet.sh?Ada answered {answer.text.strip()!r} from a shell script."
nb.check_code(try_greet, hint="printf the header lines, then an empty line, then the body; "
              "the name is \"$QUERY_STRING\".");

# %% [markdown]
# **2.** From the table of median phases: what share of a CGI request's `total` went into
# importing Django? Give a fraction between 0 and 1 (e.g. `0.25`).

# %%
answer_2 = ...

# %% [markdown] jupyter={"source_hidden": true} tags=["solution"]
# **Solution.** Computed from this run's medians (the share is typically more than half).
#
# ```python
# answer_2 = median["import"] / median["total"]
# ```

# %% tags=["check"]
nb.check(answer_2, median["import"] / median["total"], tolerance=0.15,
         hint="Divide the import median by the total median.");

# %% [markdown]
# **3.** If each request takes the median `total` you measured and the machine runs one
# request per core at a time, how many requests per second can CGI serve at most on this
# machine? (`os.cpu_count()` tells the cores.)

# %%
answer_3 = ...

# %% [markdown] jupyter={"source_hidden": true} tags=["solution"]
# **Solution.** Each core finishes 1000 / total requests per second.
#
# ```python
# answer_3 = os.cpu_count() * 1000 / median["total"]
# ```

# %% tags=["check"]
nb.check(answer_3, os.cpu_count() * 1000 / median["total"], tolerance=0.15,
         hint="cores × (1000 ms / median total ms).");
