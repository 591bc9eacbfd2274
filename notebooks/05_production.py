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
# # 05 · Production: do I need nginx in front of gunicorn?
#
# **Learning goals.** After this notebook you can
# - start nginx in front of a Python server and read its configuration line by line;
# - explain, from a measurement, what slow clients do to a server with a worker per connection,
#   and what nginx's buffering changes;
# - say which forwarded headers an application may believe, and when;
# - choose a deployment (proxy, server, workers, socket) and justify it with numbers.
#
# A Django site "works" under `gunicorn mysite.wsgi`, so why does every deployment guide put
# nginx in front of it? This notebook answers by measuring, on this machine, now:
# - **slow clients**: what a normal visitor waits while a few dozen clients send their requests
#   or read their responses a byte at a time, for five servers, each alone and behind nginx;
# - **static files**: nginx reading a file from disk against Django serving the same file;
# - **proxy headers**: what the application is told about the client, with and without a
#   proxy it trusts;
# - **WebSocket** through nginx;
# - **one backend process against two** behind nginx, on CPU-bound work.
#
# It ends with the deployment these measurements argue for. Every sentence that states a
# result is computed from this run's numbers.
#
# **How to use this notebook.** Run the cells from top to bottom (Shift-Enter). nginx and the
# servers start in `with` blocks on free ports and stop when the block ends, also when a cell
# fails. nginx is Debian's package (`sudo apt-get install -y nginx`); it runs as an ordinary
# process with every file it writes under `var/nginx/PORT/`. Set `TOOLKIT_QUICK=1` before
# starting Jupyter for short measurements (about a minute in all).

# %%
# Setup: work from the repository root (where servers/ and sample_site/ are),
# wherever Jupyter was started, and load the notebooks' helpers.
import os, sys, pathlib
ROOT = next(p for p in [pathlib.Path.cwd(), *pathlib.Path.cwd().parents] if (p / "servers").is_dir())
os.chdir(ROOT)
sys.path.insert(0, str(ROOT))

import concurrent.futures
import json
import matplotlib.pyplot as plt
from scripts import notebook_helpers as nb
from scripts import bench_slow, nginx

print("Python     :", sys.executable)
print("Repository :", ROOT)
print("Mode       :", "quick (TOOLKIT_QUICK=1: shorter measurements)" if nb.QUICK else "full")
print("nginx      :", nginx.nginx_program() or "NOT INSTALLED: " + nginx.INSTALL)

# %% [markdown]
# ## nginx in front: the configuration
#
# `scripts/nginx.py` writes nginx's configuration from `scripts/nginx.conf.template`, starts
# `nginx -g 'daemon off;'` on a free port, and waits until it answers. Here is the heart of the
# file it writes: the backends (an `upstream` of one or more processes, over TCP or a Unix
# socket) and the `location` that sends every request to them. Read the comments: each line
# is there for one of the measurements below.

# %%
nginx.require_nginx()
example = nginx.render_config(listen="127.0.0.1:8080", upstreams=["unix:/run/site-0.sock", "unix:/run/site-1.sock"],
                              prefix=ROOT / "var" / "nginx" / "8080")
lines = example.splitlines()
start = next(i for i, line in enumerate(lines) if "upstream site {" in line) - 2
end = next(i for i, line in enumerate(lines) if "location / {" in line)
print("\n".join(lines[start:end + 33]))

# %% [markdown]
# ## Slow clients
#
# A slow client is a phone on a bad link, or an attacker (the "slowloris" attack): it keeps a
# connection open and sends or reads a byte now and then. `scripts/bench_slow.py` opens N of
# them, a third of each kind:
# - **head**: sends its request head one byte per second, never finishing it;
# - **upload**: sends a head announcing a 1 MB body, then the body a byte per second;
# - **read**: asks for a 20 kB streamed response and reads it a byte per second.
#
# While they are connected, one ordinary client sends `GET /hello` in a loop, and we record its
# latency (p50, p99). A request that gets no answer within the time limit counts as failed.
# Each server runs alone, then behind nginx, pinned to one core (the clients on the other; where
# the machine cannot pin, as on macOS, all share every core and the output says so).
#
# **Predict first.** gunicorn's sync worker handles one connection at a time; its gthread
# worker has 8 threads; the toy WSGI server has a selector for idle connections and 8 threads;
# the toy ASGI server and uvicorn are event loops. Which of them still answer the ordinary
# client with N slow clients connected? Which of them behind nginx?

# %%
SERVERS = ["gunicorn", "gunicorn-gthread", "wsgi", "asgi", "uvicorn"]
PROFILE = nb.pick(bench_slow.FULL, bench_slow.QUICK)
SLOW = PROFILE["slow"]

from tqdm.auto import tqdm
with tqdm(total=len(SERVERS) * 2, desc="slow clients") as bar, concurrent.futures.ThreadPoolExecutor(1) as pool:
    # A notebook's kernel runs an event loop in this thread; the load generator brings its own,
    # so the measurement runs in a thread of its own.
    slow_rows = pool.submit(bench_slow.run, SERVERS, slow=SLOW, duration=PROFILE["duration"],
                            timeout=PROFILE["timeout"], settle=PROFILE["settle"], progress=bar).result()
SERVER_CPUS, CLIENT_CPUS = bench_slow.split_cpus()
print(f"servers and nginx pinned to cores {sorted(SERVER_CPUS)}, the clients to {sorted(CLIENT_CPUS)}"
      if SERVER_CPUS else nb.pinning())
print("\n".join(bench_slow.table_lines(slow_rows)))

# %%
fig, ax = plt.subplots(figsize=(9, 5))
bench_slow.plot(slow_rows, ax)
plt.show()

# %% [markdown]
# What the run says (computed from the rows above):

# %%
MOST = max(SLOW)

def row(server, position, count=MOST):
    return next(r for r in slow_rows if r["server"] == server and r["position"] == position
                and r["slow_clients"] == count)

survive_alone = [s for s in SERVERS if bench_slow.answered(row(s, "alone"))]
fail_alone = [s for s in SERVERS if s not in survive_alone]
survive_nginx = [s for s in SERVERS if bench_slow.answered(row(s, "nginx"))]
print(f"With {MOST} slow clients connected, alone:")
print(f"  still answering the ordinary client: {', '.join(survive_alone) or 'none'}")
print(f"  no longer answering it in time     : {', '.join(fail_alone) or 'none'}")
print(f"Behind nginx, answering: {', '.join(survive_nginx) or 'none'} "
      f"({len(survive_nginx)} of {len(SERVERS)} servers)")
for server in fail_alone:
    if server in survive_nginx:
        print(f"  {server}: no answer alone, p99 {row(server, 'nginx')['p99_ms']:.1f} ms behind nginx")
worst_nginx = max((row(s, "nginx") for s in survive_nginx), key=lambda r: r["p99_ms"], default=None)
if worst_nginx:
    print(f"Slowest p99 behind nginx with {MOST} slow clients: {worst_nginx['p99_ms']:.1f} ms ({worst_nginx['server']}); "
          f"goal {bench_slow.GOAL_MS:.0f} ms {'met' if worst_nginx['p99_ms'] < bench_slow.GOAL_MS else 'missed'}")

# %% [markdown]
# **Why.** nginx reads a whole request head, and a whole request body, before it opens a
# connection to the backend (`proxy_request_buffering on`), and reads the backend's whole
# response into its buffers at once, then feeds it to the client at the client's pace
# (`proxy_buffering on`). A slow client costs nginx a few kilobytes of memory in an event loop
# that holds thousands; the backend only ever meets one fast client: nginx. A server that gives
# a thread or a process to each connection, like gunicorn's workers, is exactly what slow
# clients exhaust. gunicorn's deployment guide (gunicorn.org/deploy) says it in one sentence:
# "When using the default synchronous workers you must ensure the proxy buffers slow clients;
# otherwise Gunicorn becomes vulnerable to denial-of-service attacks." An event loop (the toy ASGI server, uvicorn) is not exhausted by waiting connections.

# %% [markdown]
# ## Static files: nginx against Django
#
# Django under `DEBUG=0` serves no static files; in development `runserver` wraps the site in
# `StaticFilesHandler`, and `scripts/static_app.py` does the same for a fair comparison. nginx
# serves the copy that `manage.py collectstatic` put in `var/static/`, with `sendfile`.

# %%
from scripts.launch import ServerProcess, free_port, server_command

CSS = "/static/shop/site.css"
STATIC_CONNECTIONS, STATIC_SECONDS = 8, nb.pick(3.0, 1.0)
static = {}
with nginx.behind_nginx("gunicorn-gthread", access_log=False) as site:
    static["nginx (from var/static)"] = nb.measure(site.url, CSS, connections=STATIC_CONNECTIONS,
                                                   duration=STATIC_SECONDS)
port = free_port()
with ServerProcess(server_command("gunicorn-gthread", port=port, app="scripts.static_app:application"),
                   port=port) as django_static:
    static["Django (StaticFilesHandler, gunicorn gthread)"] = nb.measure(
        django_static.url, CSS, connections=STATIC_CONNECTIONS, duration=STATIC_SECONDS)
nb.table([(name, f"{r.rps:,.0f}", f"{r.percentile(50) * 1000:.2f}", f"{r.percentile(99) * 1000:.2f}", r.error_count)
          for name, r in static.items()],
         ["served by", "req/s", "p50 ms", "p99 ms", "errors"], caption=f"GET {CSS}, {STATIC_CONNECTIONS} connections")
by_nginx, by_django = static.values()
print(f"nginx served the stylesheet {by_nginx.rps / by_django.rps:.1f} times as fast as Django did, "
      f"and no Python process was involved.")

# %% [markdown]
# ## What the application is told about the client
#
# Behind a proxy, the peer of the backend's socket is the proxy, not the browser. nginx says who
# the client was in `X-Forwarded-For` and how it came (`http` or `https`) in
# `X-Forwarded-Proto`. The backend must believe these headers only from a proxy it trusts:
# anyone can send them. uvicorn and gunicorn trust `--forwarded-allow-ips`, 127.0.0.1 by default.
#
# Below, a client sends forged headers (`X-Forwarded-For: 203.0.113.9`,
# `X-Forwarded-Proto: https`) three ways, and we ask `/inspect` what uvicorn handed Django.

# %%
FORGED = {"X-Forwarded-For": "203.0.113.9", "X-Forwarded-Proto": "https"}

def seen_by_app(url):
    kind, scope = nb.inspect_request(url, headers=FORGED)
    forwarded = {name.decode(): value.decode() for name, value in scope["headers"] if name.startswith(b"x-forwarded")}
    return scope["client"][0] if scope["client"] else None, scope["scheme"], forwarded

views = []
with nb.server("uvicorn") as srv:
    views.append(("uvicorn alone, trusting 127.0.0.1 (its default)", *seen_by_app(srv.url)))
with nb.server("uvicorn", extra=["--forwarded-allow-ips", "192.0.2.1"]) as srv:
    views.append(("uvicorn alone, trusting only 192.0.2.1", *seen_by_app(srv.url)))
with nginx.behind_nginx("uvicorn") as site:
    views.append(("uvicorn behind nginx (TCP), trusting 127.0.0.1", *seen_by_app(site.url)))
with nginx.behind_nginx("uvicorn", unix=True) as site:
    views.append(("uvicorn behind nginx (Unix socket), trusting 127.0.0.1", *seen_by_app(site.url)))
with nginx.behind_nginx("uvicorn", unix=True, extra=["--forwarded-allow-ips", "*"]) as site:
    views.append(("uvicorn behind nginx (Unix socket), trusting '*'", *seen_by_app(site.url)))
nb.table(views, ["how", "client the app sees", "scheme", "X-Forwarded-* the app got"])
believed = [how for how, client, *_ in views if client == "203.0.113.9"]
print(f"The forged address was believed {len(believed)} time(s): {'; '.join(believed) or 'never'}.")
print("Behind nginx the app never saw the forged address: nginx replaces X-Forwarded-For "
      "(proxy_set_header X-Forwarded-For $remote_addr) instead of passing the client's on.")
unknown = [how for how, client, *_ in views if client is None]
print(f"The app did not know the client at all {len(unknown)} time(s): {'; '.join(unknown) or 'never'} "
      f"(a Unix socket's peer has no address, and a header from an untrusted peer is not used).")

# %% [markdown]
# The lesson: trust the forwarded headers only from the proxy, and let nothing but the proxy
# reach the backend. A Unix socket that only nginx can open does that best; there the peer has
# no address to check, so the server is told to trust whatever is on the socket
# (`--forwarded-allow-ips '*'`), which is safe on that socket and dangerous on a TCP port anyone
# can reach. The toy servers' `--forwarded-allow-ips` is being written on another branch; until
# then they pass the headers to the application untouched and the client is the socket's peer.

# %% [markdown]
# ## WebSocket through nginx
#
# A WebSocket starts as an HTTP request with `Upgrade: websocket`. `Upgrade` and `Connection`
# are hop-by-hop headers, which a proxy drops unless told to pass them on: the `/ws/` location
# of the configuration does, and turns buffering off. Until the sample site's own `/ws/echo`
# and `/chat` (Channels) are merged, a tiny ASGI application (`scripts/proxy_apps.py`: an echo
# and a one-room chat) stands in for it, under uvicorn on a Unix socket. Alice and Bob join the
# room through nginx; each message goes through nginx to the room and back to both.

# %%
from websockets.sync.client import connect as ws_connect

with nginx.behind_nginx("uvicorn", unix=True, app="scripts.proxy_apps:websocket_echo") as site:
    room = f"ws://{site.host}:{site.port}/ws/chat"
    with ws_connect(room, open_timeout=30) as alice, ws_connect(room, open_timeout=30) as bob:
        told = json.loads(alice.recv(timeout=30))
        bob.recv(timeout=30)
        conversation = []
        for who, websocket, text in [("alice", alice, "alice: hello, anyone here?"),
                                     ("bob", bob, "bob: hi alice, through nginx")]:
            websocket.send(text)
            conversation.append((who, text, alice.recv(timeout=30), bob.recv(timeout=30)))
    log = site.nginx.access_lines()
print("what the app was told about the connection:", json.dumps(told, indent=1))
nb.table(conversation, ["sender", "sent", "alice received", "bob received"])
delivered = sum(a == b == text for _, text, a, b in conversation)
print(f"{delivered} of {len(conversation)} messages reached both members; nginx's log: "
      f"{sum(' 101 ' in line for line in log)} connections switched protocols (101).")

# %% [markdown]
# ## One backend process, or two?
#
# Python runs one thread of Python code at a time per process, so CPU-bound views (`/cpu`) use
# one core per process whatever the threads. nginx's `upstream` with two `server` lines hands
# requests to two processes in turn (round robin). Measured on `/cpu?n=100000` (about 10 ms of
# pure Python per request), 4 connections, gunicorn's sync worker, nothing pinned; a few requests
# first, so that both processes have loaded everything before the clock starts:

# %%
CPU_PATH, CPU_SECONDS = "/cpu?n=100000", nb.pick(4.0, 2.0)
cpu = {}
for count in nb.progress([1, 2], desc="backends"):
    with nginx.behind_nginx("gunicorn", backends=count, unix=True, access_log=False) as site:
        for _ in range(2 * count):
            nb.fetch(site.url, CPU_PATH)
        cpu[count] = nb.measure(site.url, CPU_PATH, connections=4, duration=CPU_SECONDS)
nb.table([(count, f"{r.rps:,.1f}", f"{r.percentile(50) * 1000:.1f}", f"{r.percentile(99) * 1000:.1f}")
          for count, r in cpu.items()], ["backends", "req/s", "p50 ms", "p99 ms"], caption=f"GET {CPU_PATH}")
scale = cpu[2].rps / cpu[1].rps
print(f"Two backends served {scale:.2f} times the requests of one "
      f"(this machine has {os.cpu_count()} cores, shared with the load generator and nginx).")

# %% [markdown]
# ## Exercises
#
# Each check cell prints ✅, or ❌ with a hint. Under each exercise a collapsed *Solution* cell
# waits: open it after trying, not before.
#
# **1.** Which servers stopped answering the ordinary client when they ran alone with the most
# slow clients of this run? Write a list of their names as the harness spells them
# (e.g. `["gunicorn-gthread"]`).

# %%
answer_1 = ...

# %% [markdown] tags=["solution"] jupyter={"source_hidden": true}
# **Solution.** The servers whose row says "no answer" (or failed requests) in the column
# "alone" with the most slow clients: in this run, `fail_alone`.

# %% tags=["check"]
nb.check(answer_1 if answer_1 is ... else sorted(answer_1), sorted(fail_alone),
         hint="Read the column 'alone' with the most slow clients in the table of the slow-client section.");

# %% [markdown]
# **2.** One line of nginx's configuration keeps a client that uploads slowly from ever holding a
# backend worker. Copy it as it appears in the configuration printed at the top (directive,
# value and semicolon).

# %%
answer_2 = ...

# %% [markdown] tags=["solution"] jupyter={"source_hidden": true}
# **Solution.** `proxy_request_buffering on;`: nginx reads the whole request body before it
# opens a connection to the backend. (`proxy_buffering on;` is its partner for responses.)

# %% tags=["check"]
nb.check(answer_2, "proxy_request_buffering on;",
         hint="Look in `location /` for the directive about the request body.");

# %% [markdown]
# **3.** How many requests per second did nginx serve for the stylesheet for each one Django
# served? Compute it from the two measurements in `static` (to within 20 %).

# %%
answer_3 = ...

# %% [markdown] tags=["solution"] jupyter={"source_hidden": true}
# **Solution.** `by_nginx.rps / by_django.rps`: `static` holds the two loadgen results, nginx's first.

# %% tags=["check"]
nb.check(answer_3, by_nginx.rps / by_django.rps, tolerance=0.2,
         hint="by_nginx.rps / by_django.rps");

# %% [markdown]
# ## The deployment these measurements argue for

# %%
lines = []
if fail_alone:
    lines.append(f"1. Put nginx in front. Alone, {', '.join(fail_alone)} stopped answering an ordinary visitor "
                 f"while {MOST} slow clients were connected; behind nginx {len(survive_nginx)} of {len(SERVERS)} "
                 f"servers answered"
                 + (f" (slowest p99 {worst_nginx['p99_ms']:.1f} ms)." if worst_nginx else "."))
else:
    lines.append(f"1. In this run every server survived {MOST} slow clients alone; nginx still buys the rest below.")
lines.append(f"2. Let nginx serve the static files: {by_nginx.rps / by_django.rps:.1f} times Django's rate here, "
             f"without a Python process.")
lines.append("3. Behind nginx, a worker per CPU-bound request is fine: gunicorn's sync worker for WSGI, or "
             "uvicorn's worker under gunicorn for ASGI (WebSocket, long-lived streams), on a Unix socket only "
             "nginx can reach, trusting forwarded headers from nginx alone"
             + (f" (a forged X-Forwarded-For was believed {len(believed)} time(s) without it)." if believed else "."))
if scale >= 1.2:
    lines.append(f"4. Run as many backend processes as cores: two processes served {scale:.2f} times the CPU-bound "
                 f"requests of one here, and nginx's upstream spreads the requests between them.")
else:
    lines.append(f"4. Two backend processes served only {scale:.2f} times the CPU-bound requests of one in this run: "
                 f"the {os.cpu_count()} core(s) were busy with the load generator and nginx too (or other work). "
                 f"On a server with spare cores, run one backend process per core behind nginx's upstream.")
print("\n".join(lines))

# %% [markdown]
# So: yes, both. gunicorn (or uvicorn) runs Python; nginx faces the internet. Each does what the
# other cannot do well: nginx holds slow connections cheaply, serves files from disk, and spreads
# requests over processes; the Python server gives each request a worker as soon as it is
# complete. An event-loop server (uvicorn, the toy ASGI server) survives slow clients alone, as
# measured above, but still gains nginx's static files, proxy headers and load balancing.
#
# To try it yourself: `make demo-nginx BACKEND=gunicorn BACKENDS=2` and open the URL it prints;
# the configuration it wrote is `var/nginx/8080/nginx.conf`.
