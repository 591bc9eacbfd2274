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
# - say which forwarded headers an application may believe, and when, and write that rule;
# - choose a deployment (proxy, server, workers, socket) and justify it with numbers.
#
# A Django site "works" under `gunicorn mysite.wsgi`, so why does every deployment guide put
# nginx in front of it? This notebook answers by measuring, on this machine, now:
# - **slow clients**: what a normal visitor waits while a few dozen clients send their requests
#   or read their responses a byte at a time, for five servers (three in quick mode), each alone
#   and behind nginx;
# - **static files**: nginx reading a file from disk against Django serving the same file;
# - **proxy headers**: what the application is told about the client, with and without a
#   proxy it trusts;
# - **WebSocket** through nginx: the site's echo and chat room;
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
# Setup: work from the repository root, load the helpers as `nb` (notebooks/classroom.py).
import concurrent.futures, json, os
import matplotlib.pyplot as plt
from classroom import setup
nb = setup()

from scripts import bench_slow, nginx
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
                              prefix=nginx.NGINX_HOME / "8080")
lines = example.splitlines()
start = next(i for i, line in enumerate(lines) if "upstream site {" in line) - 2
end = next(i for i, line in enumerate(lines) if "location / {" in line)
print("\n".join(lines[start:end + 33]))

# %% [markdown]
# ## Slow clients
#
# A slow client is a phone on a bad link, or an attacker (the "slowloris" attack): it keeps a
# connection open and sends or reads a byte now and then.
#
# **A first look, and a prediction.** gunicorn's sync worker (one process, as
# `gunicorn mysite.wsgi` starts it) handles one connection at a time. Three clients connect
# and send their request heads half a byte per second, never finishing them. While they are
# connected, an ordinary visitor asks for `/hello`: is it answered (`"answers"`), or does it
# wait for more than 2 seconds (`"no answer"`)? Once with gunicorn alone, once with nginx in
# front of the same gunicorn.

# %%
prediction_slow = {"alone": ..., "behind nginx": ...}

# %% [markdown] tags=["solution"] jupyter={"source_hidden": true}
# **Solution.** Alone, the worker took the first slow client from the queue and reads its head,
# which never ends: the visitor waits in the queue behind it. Behind nginx, the worker only
# ever meets nginx, which forwards a request once its head (and body) is complete: the slow
# heads stay in nginx, and the visitor's complete request goes straight through.
#
# ```python
# prediction_slow = {"alone": "no answer", "behind nginx": "answers"}
# ```

# %%
nb.record_prediction("slow heads", prediction_slow)
WAIT_ALONE = 2.0

def visitor_during_slow_heads(target, wait):
    """'answers' or 'no answer' for GET /hello while three slow heads hold connections to target."""
    with bench_slow.SlowClients(target.host, target.port, 3, mode="head", interval=0.5, settle=0.5):
        try:
            answer = nb.fetch(target.url, "/hello", timeout=wait)
        except TimeoutError:
            return "no answer", f"nothing within {wait:.0f} s"
        return "answers", f"{answer.status} in {answer.seconds * 1000:.0f} ms"

first_look = {}
with nb.server("gunicorn") as srv:
    first_look["alone"] = visitor_during_slow_heads(srv, WAIT_ALONE)
# Behind nginx the answer comes in milliseconds; the generous limit only keeps a busy
# machine from turning a late answer into a wrong "no answer".
with nginx.behind_nginx("gunicorn") as site:
    first_look["behind nginx"] = visitor_during_slow_heads(site, 30.0)
nb.table([(where, verdict, detail) for where, (verdict, detail) in first_look.items()],
         ["gunicorn (sync, one worker)", "the visitor", "how"], caption="GET /hello while 3 slow heads are connected")

# %% tags=["check"]
nb.check_prediction("slow heads", {where: verdict for where, (verdict, _) in first_look.items()},
                    hint="How many connections does one sync worker read at a time, and which connections "
                         "does it read from when nginx is in front?");

# %% [markdown]
# **The whole picture.** `scripts/bench_slow.py` opens N slow clients, a third of each kind:
# - **head**: sends its request head one byte per second, never finishing it;
# - **upload**: sends a head announcing a 1 MB body, then the body a byte per second;
# - **read**: asks for a 20 kB streamed response and reads it a byte per second.
#
# While they are connected, one ordinary client sends `GET /hello` in a loop, and we record its
# latency (p50, p99). A request that gets no answer within the time limit counts as failed.
# Each server runs alone, then behind nginx, pinned to one core (the clients on the other; where
# the machine cannot pin, as on macOS, all share every core and the output says so).
# gunicorn's gthread worker has 8 threads; the toy WSGI server has a selector for idle
# connections and 8 threads; the toy ASGI server and uvicorn are event loops. Quick mode
# measures three of the five servers: one of each kind of worker.

# %%
# Quick mode: one server of each kind (a process, threads, an event loop) per connection.
SERVERS = nb.pick(["gunicorn", "gunicorn-gthread", "wsgi", "asgi", "uvicorn"],
                  ["gunicorn", "gunicorn-gthread", "uvicorn"])
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
# With no nginx in front, the sample site serves its stylesheet itself: `sample_site/urls.py`
# routes `/static/` to `django.contrib.staticfiles`' `serve` view, which finds the file and
# streams it through Django (request, URL resolver, view, response). Behind nginx, `/static/`
# never reaches Django: nginx serves the copy that `manage.py collectstatic` put in
# `var/static/`, with `sendfile`. The same file, the same gunicorn (gthread), asked both ways:

# %%
CSS = "/static/shop/site.css"
STATIC_CONNECTIONS, STATIC_SECONDS = 8, nb.pick(3.0, 1.0)
static = {}
with nginx.behind_nginx("gunicorn-gthread", access_log=False) as site:
    static["nginx (from var/static)"] = nb.measure(site.url, CSS, connections=STATIC_CONNECTIONS,
                                                   duration=STATIC_SECONDS)
with nb.server("gunicorn-gthread") as django_static:
    static["Django (staticfiles' serve view, gunicorn gthread)"] = nb.measure(
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
# anyone can send them. uvicorn, gunicorn, the toy WSGI server and the toy CGI runner believe
# them only from the peers in `--forwarded-allow-ips`, 127.0.0.1 by default.
#
# Below, a client sends forged headers (`X-Forwarded-For: 203.0.113.9`,
# `X-Forwarded-Proto: https`) several ways, and we ask `/inspect` what uvicorn, and the toy
# WSGI server, handed Django: the client address and the scheme of the ASGI `scope`, or
# `REMOTE_ADDR` and `wsgi.url_scheme` of the WSGI `environ`.

# %%
FORGED = {"X-Forwarded-For": "203.0.113.9", "X-Forwarded-Proto": "https"}

def seen_by_app(url):
    kind, seen = nb.inspect_request(url, headers=FORGED)
    if kind == "asgi":
        forwarded = {name.decode(): value.decode() for name, value in seen["headers"] if name.startswith(b"x-forwarded")}
        return seen["client"][0] if seen["client"] else None, seen["scheme"], forwarded
    forwarded = {name[5:].replace("_", "-").lower(): value for name, value in seen.items()
                 if name.startswith("HTTP_X_FORWARDED_")}
    return seen.get("REMOTE_ADDR"), seen["wsgi.url_scheme"], forwarded

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
with nb.server("wsgi") as srv:
    views.append(("toy WSGI server alone, trusting 127.0.0.1 (its default)", *seen_by_app(srv.url)))
with nb.server("wsgi", extra=["--forwarded-allow-ips", "192.0.2.1"]) as srv:
    views.append(("toy WSGI server alone, trusting only 192.0.2.1", *seen_by_app(srv.url)))
with nginx.behind_nginx("wsgi") as site:
    views.append(("toy WSGI server behind nginx (TCP), trusting 127.0.0.1", *seen_by_app(site.url)))
nb.table(views, ["how", "client the app sees", "scheme", "X-Forwarded-* the app got"])
believed = [how for how, client, *_ in views if client == "203.0.113.9"]
print(f"The forged address was believed {len(believed)} time(s): {'; '.join(believed) or 'never'}.")
behind = [(how, client) for how, client, *_ in views if "behind nginx" in how]
fooled = [how for how, client in behind if client == "203.0.113.9"]
print(f"Behind nginx the app saw the forged address {len(fooled)} time(s) in {len(behind)}: "
      + ("nginx replaces X-Forwarded-For (proxy_set_header X-Forwarded-For $remote_addr) "
         "instead of passing the client's on." if not fooled else "; ".join(fooled)))
unknown = [how for how, client, *_ in views if client is None]
print(f"The app did not know the client at all {len(unknown)} time(s): {'; '.join(unknown) or 'never'} "
      f"(a Unix socket's peer has no address, and a header from an untrusted peer is not used).")

# %% [markdown]
# The lesson: trust the forwarded headers only from the proxy, and let nothing but the proxy
# reach the backend. A Unix socket that only nginx can open does that best; there the peer has
# no address to check, so the server is told to trust whatever is on the socket
# (`--forwarded-allow-ips '*'`), which is safe on that socket and dangerous on a TCP port anyone
# can reach. The toy WSGI server follows the same rule (`servers/forwarded.py`); it listens on
# TCP only, so behind nginx it trusts 127.0.0.1, nginx's address, as the table shows.

# %% [markdown]
# ## WebSocket through nginx
#
# A WebSocket starts as an HTTP request with `Upgrade: websocket`. `Upgrade` and `Connection`
# are hop-by-hop headers, which a proxy drops unless told to pass them on: the `/ws/` location
# of the configuration does, and turns buffering off. The sample site's own endpoints (Django
# Channels) go through it: `/ws/echo` sends every message back, and `/ws/chat/ROOM?name=NAME`
# is a chat room (the page `/chat` is its browser client). Here the toy ASGI server runs the
# site behind nginx. Channels refuses a handshake whose `Origin` header is not one of the
# site's hosts (a page on another site must not open a socket with the visitor's cookies), so
# a client outside a browser sends the `Origin` a browser would. Alice and Bob join a room
# through nginx; each message goes through nginx to the room and back to both.

# %%
import time
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

def ws_open(site, path, origin=True):
    return connect(f"ws://{site.host}:{site.port}{path}", open_timeout=30, proxy=None,
                   origin=f"http://{site.host}:{site.port}" if origin else None)

def next_of(websocket, kind):
    """The next chat event of this type (join, here, leave, message), skipping the others."""
    while (event := json.loads(websocket.recv(timeout=30)))["type"] != kind:
        pass
    return event

with nginx.behind_nginx("asgi") as site:
    with ws_open(site, "/ws/echo") as echo:
        echoed = []
        for message in ("hello through nginx", b"\x00\xffbytes too"):
            echo.send(message)
            echoed.append((message, echo.recv(timeout=30)))
    try:
        ws_open(site, "/ws/echo", origin=False).close()
        without_origin = "accepted"
    except InvalidStatus as refused:
        without_origin = f"refused, {refused.response.status_code}"
    with ws_open(site, "/ws/chat/lobby?name=alice") as alice, ws_open(site, "/ws/chat/lobby?name=bob") as bob:
        next_of(alice, "welcome"), next_of(bob, "welcome"), next_of(bob, "here")
        conversation = []
        for who, websocket, text in [("alice", alice, "hello, anyone here?"), ("bob", bob, "hi alice, through nginx")]:
            websocket.send(json.dumps({"text": text}))
            conversation.append((who, text, next_of(alice, "message")["text"], next_of(bob, "message")["text"]))
    # nginx logs a WebSocket when it closes, a moment after the client has hung up.
    deadline = time.monotonic() + 10
    while sum(" 101 " in line for line in site.nginx.access_lines()) < 3 and time.monotonic() < deadline:
        time.sleep(0.1)
    log = site.nginx.access_lines()
nb.table([(repr(sent), repr(back), sent == back) for sent, back in echoed], ["sent to /ws/echo", "came back", "same"])
print("A handshake without Origin:", without_origin)
nb.table(conversation, ["sender", "sent", "alice received", "bob received"])
delivered = sum(a == b == text for _, text, a, b in conversation)
print(f"{delivered} of {len(conversation)} chat messages reached both members; nginx's log: "
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
# **1. Who is the client?** Write `client_address(peer, forwarded_for, trusted)`, the rule a
# server behind proxies follows to fill `REMOTE_ADDR` (WSGI) or `client` (ASGI):
# - `peer` is the address at the other end of the socket, e.g. `"127.0.0.1"`;
# - `forwarded_for` is the `X-Forwarded-For` header, or `None` when there is none: addresses
#   separated by commas, each proxy appending the one it saw, so the rightmost was written by
#   the last proxy and the leftmost by whoever sent the request first (perhaps a liar);
# - `trusted` is a set of proxy addresses (`--forwarded-allow-ips`).
#
# Answer `peer` when the peer is not a trusted proxy. Otherwise walk the header from the right
# and answer the first address that is not a trusted proxy (anything further left may be
# forged); when every address in it is trusted, the leftmost; with no header, `peer`. The check
# compares your function with the toy servers' `servers/forwarded.py` on many cases, and with
# what the toy WSGI server told Django on a live request.

# %%
def client_address(peer, forwarded_for, trusted):
    ...

# %% [markdown] tags=["solution"] jupyter={"source_hidden": true}
# **Solution.** Only a trusted peer is allowed to speak for someone else, and only as far to
# the left as the chain of trusted proxies goes.
#
# ```python
# def client_address(peer, forwarded_for, trusted):
#     if peer not in trusted or not forwarded_for:
#         return peer
#     client = peer
#     for address in reversed([item.strip() for item in forwarded_for.split(",")]):
#         client = address
#         if address not in trusted:
#             break
#     return client
# ```

# %% tags=["check"]
import itertools
from servers import forwarded

def try_client_address():
    addresses = ["127.0.0.1", "10.0.0.2", "203.0.113.9", "198.51.100.7"]
    headers = [None, *(", ".join(chain) for size in (1, 2, 3) for chain in itertools.permutations(addresses, size))]
    trusts = [{"127.0.0.1"}, {"127.0.0.1", "10.0.0.2"}, {"192.0.2.1"}]
    for trusted, peer, header in itertools.product(trusts, addresses, headers):
        wire = [(b"x-forwarded-for", header.encode())] if header is not None else []
        (expected, _), _ = forwarded.parse(",".join(sorted(trusted))).client_and_scheme((peer, 50000), wire)
        got = client_address(peer, header, trusted)
        assert got == expected, f"peer {peer}, X-Forwarded-For {header!r}, trusted {sorted(trusted)}: {got!r}, not {expected!r}"
    header = "203.0.113.9, 10.0.0.2"
    with nb.server("wsgi", extra=["--forwarded-allow-ips", "127.0.0.1,10.0.0.2"]) as srv:
        _, environ = nb.inspect_request(srv.url, headers={"X-Forwarded-For": header})
    mine = client_address("127.0.0.1", header, {"127.0.0.1", "10.0.0.2"})
    assert mine == environ["REMOTE_ADDR"], f"the toy WSGI server told Django {environ['REMOTE_ADDR']}, you say {mine}"
    return f"{len(trusts) * len(addresses) * len(headers)} cases agree, and live: REMOTE_ADDR {mine} for {header!r}."

nb.check_code(try_client_address, hint="if the peer is not trusted, answer it; else go through "
              "forwarded_for.split(',') from the right, stripping spaces, and stop at the first untrusted address.");

# %% [markdown]
# **2.** One line of nginx's configuration keeps a client that uploads slowly from ever holding a
# backend worker. Copy it as it appears in the configuration printed at the top (directive,
# value and semicolon).

# %%
answer_2 = ...

# %% [markdown] tags=["solution"] jupyter={"source_hidden": true}
# **Solution.** nginx reads the whole request body before it opens a connection to the backend.
# (`proxy_buffering on;` is its partner for responses.)
#
# ```python
# answer_2 = "proxy_request_buffering on;"
# ```

# %% tags=["check"]
nb.check(answer_2, "proxy_request_buffering on;",
         hint="Look in `location /` for the directive about the request body.");

# %% [markdown]
# **3.** How many requests per second did nginx serve for the stylesheet for each one Django
# served? Compute it from the two measurements in `static` (to within 20 %).

# %%
answer_3 = ...

# %% [markdown] tags=["solution"] jupyter={"source_hidden": true}
# **Solution.** `static` holds the two loadgen results, nginx's first; `.rps` is each one's rate.
#
# ```python
# answer_3 = static["nginx (from var/static)"].rps / static["Django (staticfiles' serve view, gunicorn gthread)"].rps
# ```

# %% tags=["check"]
nb.check(answer_3, by_nginx.rps / by_django.rps, tolerance=0.2,
         hint="Each value of `static` has an `.rps`: divide nginx's by Django's.");

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
# complete. An event-loop server (uvicorn, the toy ASGI server) is not exhausted by slow clients
# alone (the table above shows how uvicorn fared in this run), but still gains nginx's static
# files, proxy headers and load balancing.
#
# To try it yourself: `make demo-nginx BACKEND=gunicorn BACKENDS=2` and open the URL it prints;
# the configuration it wrote is `var/nginx/8080/nginx.conf`.
