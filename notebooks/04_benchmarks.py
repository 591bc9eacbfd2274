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
#   from the results, so they cannot contradict them;
# - compare servers only at equal client counts, and say what the toy servers leave out
#   before reading a toy/production ratio.

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
import json, os, pathlib
import matplotlib.pyplot as plt
from classroom import setup
nb = setup()

# %% [markdown]
# ## Running the benchmark, or showing a pre-run one
#
# `python -m scripts.bench` starts each server on a free port, pins it to one core and the load
# generator to the other (on a 2-core machine), warms it up, measures, and writes every row with
# the machine's description (CPU, cores, versions, date, commit, pinning) to a results file.
# Servers of one comparison are measured in turn, A B A B, so a busy moment of the machine
# falls on all of them alike.
#
# **Which results this notebook shows.** In class there is no time to measure (the full mode
# takes tens of minutes): run `make bench` before class, and this notebook shows that run,
# `results/quick.json`. Without it, the notebook measures here, four times, into
# `var/notebooks/bench/` (`TOOLKIT_QUICK=1`: about a minute):
# 1. **pages**: the bare "hello" app with no framework, Django's `/hello`, the `/products` page
#    (a template and an ORM query) and `/cpu` (pure Python work);
# 2. **waiting**: `/io?ms=50` (sync view) and `/io-async?ms=50` (async view) at rising concurrency;
# 3. **streams**: how many long-lived `/events` streams each server holds, and the memory each costs;
# 4. **cgi**: the CGI runner, with its Server-Timing phases, against its floor (starting the same
#    script in a loop), and the toy WSGI server at the same 2 clients.
#
# Set `MEASURE_HERE = True` to measure even when a pre-run file exists. (The variable
# `TOOLKIT_BENCH_RESULTS` in the environment names another results file to show.)

# %%
from scripts import plots

MEASURE_HERE = False
PRE_RUN = pathlib.Path(os.environ.get("TOOLKIT_BENCH_RESULTS") or "results/quick.json")
BENCH_DIR = nb.workdir("bench")
SHOWN = "pre-run" if PRE_RUN.exists() and not MEASURE_HERE else "measured here"
print(f"This notebook shows: {PRE_RUN if SHOWN == 'pre-run' else 'a run made now, into ' + str(BENCH_DIR)} ({SHOWN}).")

# %% [markdown]
# **Predict first.** Before any number: (a) at the most clients of the waiting test, which
# will serve more requests per second, the best thread-pool server on the sync view or the best
# event loop on the async view (`"thread pool"` or `"event loop"`)? (b) On Django's `/hello` with
# 2 clients each, how many times as many requests will the toy WSGI server serve as the CGI
# runner: `"a few times"`, `"about ten times"` or `"a hundred times or more"`?

# %%
prediction_bench = {"waiting": ..., "WSGI over CGI": ...}

# %% [markdown] tags=["solution"] jupyter={"source_hidden": true}
# **Solution.** 8 threads cap the sync view at 160 requests/s, whatever the clients; the event
# loop is limited by its CPU only. A CGI request costs a few hundred ms (a process, Python,
# Django's imports: notebook 01); a WSGI request well under a millisecond of the server's
# time: a ratio of hundreds, whatever the machine.
#
# ```python
# prediction_bench = {"waiting": "event loop", "WSGI over CGI": "a hundred times or more"}
# ```

# %%
nb.record_prediction("bench", prediction_bench)
SERVERS = ["wsgi", "gunicorn-gthread", "asgi", "uvicorn"] + nb.pick(["gunicorn", "uvicorn-fast"], [])
TIMING = ["--duration", str(nb.pick(3, 0.75)), "--repeats", str(nb.pick(3, 1)), "--warmup", str(nb.pick(1, 0.2))]

def levels(values):
    return ",".join(str(v) for v in values)

if SHOWN == "pre-run":
    results = plots.load(PRE_RUN)
else:
    PAGE_LEVEL, WAIT_LEVELS, STREAMS = nb.pick(32, 8), nb.pick([1, 8, 64, 256, 512], [8, 64]), nb.pick([16, 64, 256], [16])
    pages = nb.run_bench(["--servers", ",".join(SERVERS), "--endpoints", "bare,hello,products,cpu",
                          "--concurrency", str(PAGE_LEVEL), *TIMING], out=BENCH_DIR, name="pages")
    waiting = nb.run_bench(["--servers", ",".join(SERVERS), "--endpoints", "io,io-async",
                            "--concurrency", levels(WAIT_LEVELS), *TIMING], out=BENCH_DIR, name="waiting")
    streams = nb.run_bench(["--servers", ",".join(SERVERS), "--endpoints", "events",
                            "--concurrency", levels(STREAMS), *TIMING], out=BENCH_DIR, name="streams")
    # The CGI runner and the toy WSGI server at the same 2 clients, so their ratio compares like with like.
    cgi = nb.run_bench(["--servers", "cgi,wsgi", "--endpoints", "hello", "--concurrency", "2",
                        "--duration", str(nb.pick(10, 3)), "--repeats", str(nb.pick(3, 1))],
                       out=BENCH_DIR, name="cgi")
    results = nb.merge_results(pages, waiting, streams, cgi)
    (BENCH_DIR / "notebook.json").write_text(json.dumps(results))

# %% [markdown]
# What the results hold: the servers, and the client counts of each test (a pre-run file may
# have measured other ones than this notebook would).

# %%
def measured_levels(endpoint, servers=None):
    return sorted({row["concurrency"] for row in results["rows"]
                   if row["endpoint"] == endpoint and (servers is None or row["server"] in servers)})

SERVERS = [s for s in SERVERS if any(row["server"] == s for row in results["rows"])]
PAGE_LEVEL = max(measured_levels("hello", SERVERS))
PAGE_ENDPOINTS = [e for e in ("hello", "products", "cpu") if PAGE_LEVEL in measured_levels(e, SERVERS)]
WAIT_LEVELS = measured_levels("io", SERVERS)
STREAMS = measured_levels("events", SERVERS)
nb.table([("servers", ", ".join(SERVERS)), ("pages, clients", PAGE_LEVEL), ("page endpoints", ", ".join(PAGE_ENDPOINTS)),
          ("waiting, clients", ", ".join(map(str, WAIT_LEVELS))), ("streams", ", ".join(map(str, STREAMS)) or "none"),
          ("CGI, clients", ", ".join(map(str, measured_levels("hello", ["cgi"]))))], ["", SHOWN])

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

# %% [markdown]
# **Before reading a toy/production ratio.** Both sides of each ratio below served the same
# requests at the same number of clients on the same pinned core. But the toy servers are
# written to be read, and leave out what the servers people deploy do for every request:
# - TLS (HTTPS), HTTP/2 and HTTP/3: the toy servers speak HTTP/1.1 in clear only;
# - several worker processes supervised and restarted: here each server ran one process
#   (gunicorn `--workers 1`, one uvicorn process), so that one core is compared with one core;
# - access logs (switched off on every side here), proxy headers (`X-Forwarded-For`), a
#   configuration system, signals to reload, graceful upgrades;
# - years of hardening against slow, malformed and hostile clients (the toy servers have
#   limits and timeouts, but have not met the Internet).
#
# A toy server that is faster here is faster at a smaller job.

# %%
for toy, reference in (("wsgi", "gunicorn-gthread"), ("asgi", "uvicorn")):
    for endpoint in ("bare", "hello"):
        ratio = rps(toy, endpoint, PAGE_LEVEL) / rps(reference, endpoint, PAGE_LEVEL)
        print(f"{endpoint:6} at {PAGE_LEVEL} clients each, the toy {toy} server served {ratio:.2f}x the requests "
              f"of {reference}.")
django_cost = {s: cpu_ms(s, "hello", PAGE_LEVEL) - cpu_ms(s, "bare", PAGE_LEVEL) for s in SERVERS}
print("Django's own CPU per request, /hello minus bare: "
      + ", ".join(f"{s} {ms:.2f} ms" for s, ms in django_cost.items()) + ".")

# %% [markdown]
# ## 2 · A realistic page, and CPU-bound work
#
# `/products` renders a template around an ORM query of 50 rows; `/cpu` runs a pure-Python loop.
# Here the application's own work is most of each request, so the server matters less.

# %%
bars(PAGE_ENDPOINTS, PAGE_LEVEL, "Django pages")
spread = {e: max(rps(s, e, PAGE_LEVEL) for s in SERVERS) / min(rps(s, e, PAGE_LEVEL) for s in SERVERS)
          for e in PAGE_ENDPOINTS}
heaviest = PAGE_ENDPOINTS[-1]
slowdown = {s: rps(s, "hello", PAGE_LEVEL) / rps(s, "products", PAGE_LEVEL) for s in SERVERS}
print(f"/products is {min(slowdown.values()):.1f}x to {max(slowdown.values()):.1f}x slower than /hello, "
      f"depending on the server.")
print("Fastest over slowest server: " + ", ".join(f"{e} {r:.1f}x" for e, r in spread.items())
      + ": the more work the application does, the less the server's share shows"
      + (" (as here)." if spread[heaviest] < spread["hello"] else " (not in this run: look at the spread)."))

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
CGI_LEVEL = min(measured_levels("hello", ["cgi"]))
cgi_rps = rps("cgi", "hello", CGI_LEVEL)
floor_rps = rps("cgi-floor", "hello", CGI_LEVEL)
print(f"A CGI request to /hello took {phase['total']:.0f} ms, of which Django's view {phase['app']:.1f} ms "
      f"and importing Django {phase['import']:.0f} ms ({phase['import'] / phase['total']:.0%}).")
print(f"The CGI runner served {cgi_rps:.1f} requests/s with {CGI_LEVEL} clients"
      + (f", {cgi_rps / floor_rps:.2f}x its floor of {floor_rps:.1f}/s" if floor_rps == floor_rps else "") + ".")
if CGI_LEVEL in measured_levels("hello", ["wsgi"]):
    wsgi_over_cgi = rps("wsgi", "hello", CGI_LEVEL) / cgi_rps
    print(f"The toy WSGI server, also with {CGI_LEVEL} clients: {rps('wsgi', 'hello', CGI_LEVEL):,.0f}/s, "
          f"{wsgi_over_cgi:,.0f}x as many.")
else:
    # A file without the toy WSGI server at the CGI runner's client count: compare the server's
    # CPU per request instead, which does not depend on the number of clients.
    wsgi_over_cgi = cpu_ms("cgi", "hello", CGI_LEVEL) / cpu_ms("wsgi", "hello", PAGE_LEVEL)
    print(f"This file has no toy WSGI run at {CGI_LEVEL} clients; per request, CGI cost "
          f"{cpu_ms('cgi', 'hello', CGI_LEVEL):.0f} ms of CPU and the toy WSGI server "
          f"{cpu_ms('wsgi', 'hello', PAGE_LEVEL):.2f} ms: {wsgi_over_cgi:,.0f}x.")

# %% tags=["check"]
import math
top = WAIT_LEVELS[-1]
thread_pool = max(rps(s, "io", top) for s in ("wsgi", "gunicorn-gthread"))
event_loop = max(rps(s, "io-async", top) for s in ("asgi", "uvicorn"))
order = "a few times" if wsgi_over_cgi < 6 else "about ten times" if wsgi_over_cgi < 40 else "a hundred times or more"
nb.check_prediction("bench", {"waiting": "event loop" if event_loop > thread_pool else "thread pool",
                              "WSGI over CGI": order},
                    hint="8 threads × 20 waits per second is a ceiling; a CGI request starts Python and "
                         "imports Django, a WSGI request does neither.");

# %% [markdown]
# ## The summary table of the harness
#
# Each toy server's throughput as a ratio of its reference, measured in the same run at the
# same client counts. Read each ratio with the list of section 1: the toy servers do less per
# request (no TLS, no HTTP/2, one process, no access log, little hardening), so a ratio above
# 1 says the smaller job was done faster, not that the toy server could replace its reference.

# %%
print("\n".join(results.get("summary", [])) if SHOWN == "pre-run" else
      "\n\n".join("\n".join(run.get("summary", [])) for run in (pages, waiting, cgi)))

# %% [markdown]
# ## Exercises
#
# **1. Compare like with like.** A ratio between two servers means something only when both
# served the same endpoint at the same number of clients. Write `ratios(server, reference,
# endpoint)`, answering `{clients: requests/s of server ÷ requests/s of reference}` for every
# client count at which *both* were measured on that endpoint, and no other. Use `rps(server,
# endpoint, clients)` and `measured_levels(endpoint, [server])`.

# %%
def ratios(server, reference, endpoint):
    ...

# %% [markdown] tags=["solution"] jupyter={"source_hidden": true}
# **Solution.** The client counts both have: the intersection of the two sets.
#
# ```python
# def ratios(server, reference, endpoint):
#     both = set(measured_levels(endpoint, [server])) & set(measured_levels(endpoint, [reference]))
#     return {level: rps(server, endpoint, level) / rps(reference, endpoint, level) for level in sorted(both)}
# ```

# %% tags=["check"]
def try_ratios():
    checked = []
    for server, reference, endpoint in (("asgi", "uvicorn", "io-async"), ("wsgi", "gunicorn-gthread", "io"),
                                        ("wsgi", "cgi", "hello")):
        both = sorted(set(measured_levels(endpoint, [server])) & set(measured_levels(endpoint, [reference])))
        answer = ratios(server, reference, endpoint)
        assert isinstance(answer, dict), f"ratios({server!r}, {reference!r}, {endpoint!r}) answered {answer!r}, not a dict"
        assert sorted(answer) == both, (f"for {server}/{reference} on {endpoint}: client counts {sorted(answer)}, "
                                        f"but both were measured at {both} only")
        for level in both:
            expected = rps(server, endpoint, level) / rps(reference, endpoint, level)
            assert math.isclose(answer[level], expected, rel_tol=1e-6), f"at {level} clients: {answer[level]} != {expected}"
        checked.append(f"{server}/{reference} {endpoint}: " + ", ".join(f"{k} clients {v:.2f}x" for k, v in answer.items()))
    return "; ".join(checked)

nb.check_code(try_ratios, hint="the levels of both: set(measured_levels(endpoint, [server])) & "
              "set(measured_levels(endpoint, [reference])); then one division per level.");

# %% [markdown]
# **2.** Which server served the most requests per second on Django's `/hello` in these results?
# Write its name as the harness spells it (e.g. `"gunicorn-gthread"`).

# %%
answer_2 = ...

# %% [markdown] tags=["solution"] jupyter={"source_hidden": true}
# **Solution.** Read from the results, not typed in (it changes from machine to machine).
#
# ```python
# answer_2 = max(SERVERS, key=lambda s: rps(s, "hello", PAGE_LEVEL))
# ```

# %% tags=["check"]
nb.check(answer_2, max(SERVERS, key=lambda s: rps(s, "hello", PAGE_LEVEL)), hint="Look at the bars of section 1.");

# %% [markdown]
# **3.** A thread-pool server with 8 threads and a view that waits 50 ms: what is the most
# requests per second it can serve, whatever the number of clients?

# %%
answer_3 = ...

# %% [markdown] tags=["solution"] jupyter={"source_hidden": true}
# **Solution.** Each thread finishes 1 / 0.05 s = 20 requests per second.
#
# ```python
# answer_3 = 8 / 0.05
# ```

# %% tags=["check"]
nb.check(answer_3, 8 / 0.05, tolerance=0.02, hint="threads / seconds per request.")
print(f"measured at {top} clients: toy wsgi {rps('wsgi', 'io', top):.0f}/s, gunicorn-gthread {rps('gunicorn-gthread', 'io', top):.0f}/s")
