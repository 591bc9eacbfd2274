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
# # 04 · The comparison: toy servers, gunicorn and uvicorn
#
# **Learning goals.** After this notebook you can
# - run the benchmark harness and read its results file (with the machine it ran on);
# - read throughput, latency and memory figures, and say which server model wins where and why;
# - check every conclusion against the numbers of *this* run: the sentences below are computed
#   from the results, so they cannot contradict them.

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
# ## Running the benchmark
#
# `python -m scripts.bench` starts each server on a free port, pins it to one core and the load
# generator to the other (on a 2-core machine), warms it up, measures, and writes every row with
# the machine's description (CPU, cores, versions, date, commit, pinning) to a results file.
# Servers of one comparison are measured in turn, A B A B, so a busy moment of the machine
# falls on all of them alike.
#
# We run it four times from here, into `var/notebooks/bench/`, so everything below comes from
# this run (the full mode takes tens of minutes; `TOOLKIT_QUICK=1` about one):
# 1. **pages**: the bare "hello" app with no framework, Django's `/hello`, the `/products` page
#    (a template and an ORM query) and `/cpu` (pure Python work);
# 2. **waiting**: `/io?ms=50` (sync view) and `/io-async?ms=50` (async view) at rising concurrency;
# 3. **streams**: how many long-lived `/events` streams each server holds, and the memory each costs;
# 4. **cgi**: the CGI runner, with its Server-Timing phases, against its floor (starting the same
#    script in a loop).

# %%
from scripts import plots

BENCH_DIR = nb.workdir("bench")
SERVERS = ["wsgi", "gunicorn-gthread", "asgi", "uvicorn"] + nb.pick(["gunicorn", "uvicorn-fast"], [])
TIMING = ["--duration", str(nb.pick(3, 0.75)), "--repeats", str(nb.pick(3, 1)), "--warmup", str(nb.pick(1, 0.2))]
PAGE_LEVEL = nb.pick(32, 8)
WAIT_LEVELS = nb.pick([1, 8, 64, 256, 512], [8, 64])
STREAMS = nb.pick([16, 64, 256], [16])

def levels(values):
    return ",".join(str(v) for v in values)


# %%
pages = nb.run_bench(["--servers", ",".join(SERVERS), "--endpoints", "bare,hello,products,cpu",
                      "--concurrency", str(PAGE_LEVEL), *TIMING], out=BENCH_DIR, name="pages")

# %%
waiting = nb.run_bench(["--servers", ",".join(SERVERS), "--endpoints", "io,io-async",
                        "--concurrency", levels(WAIT_LEVELS), *TIMING], out=BENCH_DIR, name="waiting")

# %%
streams = nb.run_bench(["--servers", ",".join(SERVERS), "--endpoints", "events",
                        "--concurrency", levels(STREAMS), *TIMING], out=BENCH_DIR, name="streams")

# %%
cgi = nb.run_bench(["--servers", "cgi", "--endpoints", "hello", "--concurrency", "2",
                    "--duration", str(nb.pick(10, 3)), "--repeats", str(nb.pick(3, 1))],
                   out=BENCH_DIR, name="cgi")
results = nb.merge_results(pages, waiting, streams, cgi)

# %% [markdown]
# ## The machine
#
# A benchmark figure means nothing without the machine it came from. The harness records it:

# %%
meta = results["metadata"]
nb.table([("date", meta.get("date")), ("commit", meta.get("git_commit", "")[:10] + (" (uncommitted changes)" if meta.get("git_dirty") else "")),
          ("CPU", meta.get("cpu_model")), ("cores", meta.get("cores")), ("Python", meta.get("python")),
          ("packages", ", ".join(f"{k} {v}" for k, v in meta.get("packages", {}).items())),
          ("server on CPUs", meta.get("pinning", {}).get("server_cpus")),
          ("load generator on CPUs", meta.get("pinning", {}).get("loader_cpus")),
          ("load average at the start", meta.get("load_average"))],
         ["", "this run"])


# %%
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


# %% [markdown]
# ## 1 · Framework overhead: a bare app and Django's `/hello`
#
# The bare app answers "Hello, world!" with no framework: what remains is the server's own cost
# per request (parsing, building the environ or scope, writing the response). Django's `/hello`
# adds the framework: request object, middleware, URL resolution, response object.

# %%
bars(["bare", "hello"], PAGE_LEVEL, "Server overhead alone, then with Django")
nb.table([(server, rps(server, "bare", PAGE_LEVEL), rps(server, "hello", PAGE_LEVEL),
           cpu_ms(server, "bare", PAGE_LEVEL), cpu_ms(server, "hello", PAGE_LEVEL)) for server in SERVERS],
         ["server", "bare req/s", "Django /hello req/s", "bare CPU ms/request", "Django CPU ms/request"])

# %%
for toy, reference in (("wsgi", "gunicorn-gthread"), ("asgi", "uvicorn")):
    for endpoint in ("bare", "hello"):
        ratio = rps(toy, endpoint, PAGE_LEVEL) / rps(reference, endpoint, PAGE_LEVEL)
        print(f"{endpoint:6} the toy {toy} server served {ratio:.2f}x the requests of {reference}.")
django_cost = {s: cpu_ms(s, "hello", PAGE_LEVEL) - cpu_ms(s, "bare", PAGE_LEVEL) for s in SERVERS}
print("Django's own CPU per request, /hello minus bare: "
      + ", ".join(f"{s} {ms:.2f} ms" for s, ms in django_cost.items()) + ".")

# %% [markdown]
# ## 2 · A realistic page, and CPU-bound work
#
# `/products` renders a template around an ORM query of 50 rows; `/cpu` runs a pure-Python loop.
# Here the application's own work is most of each request, so the server matters less.

# %%
bars(["hello", "products", "cpu"], PAGE_LEVEL, "Django pages")
spread = {e: max(rps(s, e, PAGE_LEVEL) for s in SERVERS) / min(rps(s, e, PAGE_LEVEL) for s in SERVERS)
          for e in ("hello", "products", "cpu")}
slowdown = {s: rps(s, "hello", PAGE_LEVEL) / rps(s, "products", PAGE_LEVEL) for s in SERVERS}
print(f"/products is {min(slowdown.values()):.1f}x to {max(slowdown.values()):.1f}x slower than /hello, "
      f"depending on the server.")
print("Fastest over slowest server: " + ", ".join(f"{e} {r:.1f}x" for e, r in spread.items())
      + ": the more work the application does, the less the server's share shows"
      + (" (as here)." if spread["cpu"] < spread["hello"] else " (not in this run: look at the spread)."))

# %% [markdown]
# ## 3 · Waiting: sync views, async views, rising concurrency
#
# `/io?ms=50` sleeps in a sync view, `/io-async?ms=50` awaits in an async view. A thread-pool
# server serves at most threads ÷ 0.05 s requests per second on the sync view; an event loop
# can keep many more waits in flight, until its CPU runs out.

# %%
fig, axes = plt.subplots(1, 2, figsize=(12, 4), layout="constrained")
for ax, endpoint in zip(axes, ("io", "io-async")):
    plots.throughput(results, endpoint=endpoint, ax=ax)
plt.show()

# %%
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

# %% [markdown]
# ## 4 · Long-lived connections and memory
#
# `/events` is a stream of server-sent events that stays open for half a minute. A thread-pool
# server needs one thread per open stream; an event loop needs one small object per connection.
# The harness opens the streams, counts how many the server holds, and reads its memory.

# %%
stream_rows = [row for row in results["rows"] if row.get("held") is not None]
nb.table([(row["server"], row["concurrency"], row["held"], row["rss_mb"], row.get("kb_per_connection"))
          for row in stream_rows], ["server", "streams asked", "streams held", "memory MB", "kB per connection"])
if plots.available(results).count("memory"):
    plots.memory(results)
    plt.show()

# %%
most = max(STREAMS)
held = {s: nb.median_of(results, "held", server=s, endpoint="events", concurrency=most) for s in SERVERS}
for server, count in held.items():
    kb = nb.median_of(results, "kb_per_connection", server=server, endpoint="events", concurrency=most)
    print(f"{server:17} held {count:.0f} of {most} streams" + (f", {kb:.0f} kB each" if kb == kb else ""))
full = [s for s, n in held.items() if n >= most]
print("Held every stream:", ", ".join(full) or "none", "| ran out:", ", ".join(s for s in held if s not in full) or "none")

# %% [markdown]
# ## 5 · CGI: the price of a process per request
#
# The runner's Server-Timing header splits each request into phases (see `01_cgi`). The floor
# is what no CGI server can beat: starting the same script, with the same environment, in a loop.

# %%
plots.cgi_phases(results)
plt.show()

# %%
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

# %% [markdown]
# ## The summary table of the harness
#
# Each toy server's throughput as a ratio of its reference, measured in the same run.

# %%
for run in (pages, waiting, cgi):
    print("\n".join(run.get("summary", [])), end="\n\n")

# %% [markdown]
# ## Exercises
#
# **1.** Which server served the most requests per second on Django's `/hello` in this run?
# Write its name as the harness spells it (e.g. `"gunicorn-gthread"`).

# %%
answer_1 = ...

# %%
nb.check(answer_1, max(SERVERS, key=lambda s: rps(s, "hello", PAGE_LEVEL)), hint="Look at the bars of section 1.");

# %% [markdown]
# **2.** How many requests per second did the toy WSGI server serve on `/hello` for each one the
# CGI runner served? Compute it from the two rows (to within 20 %).

# %%
answer_2 = ...

# %%
nb.check(answer_2, rps("wsgi", "hello", PAGE_LEVEL) / rps("cgi", "hello", 2), tolerance=0.2,
         hint='rps("wsgi", "hello", PAGE_LEVEL) / rps("cgi", "hello", 2)');

# %% [markdown]
# **3.** A thread-pool server with 8 threads and a view that waits 50 ms: what is the most
# requests per second it can serve, whatever the number of clients?

# %%
answer_3 = ...

# %%
nb.check(answer_3, 8 / 0.05, tolerance=0.02, hint="threads / seconds per request.")
print(f"measured at {top} clients: toy wsgi {rps('wsgi', 'io', top):.0f}/s, gunicorn-gthread {rps('gunicorn-gthread', 'io', top):.0f}/s")
