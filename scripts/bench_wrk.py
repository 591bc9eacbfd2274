"""Is our load generator fast enough? Each server measured by it and by wrk, in turns.

    python -m scripts.bench_wrk                  # every server kind serving the sample site
    python -m scripts.loadgen --check-against-wrk    # the same (the load generator hands over to this)
    python -m scripts.bench_wrk --websocket      # the WebSocket mode against the websockets library

A load generator that is slower than the server it measures measures itself. wrk
(written in C on epoll) is the usual yardstick: for each server kind that serves the
sample site, the server runs on the server CPU set, and wrk and scripts.loadgen, each
with one thread on the loader's core, take turns against it (wrk, ours, wrk, ours);
the medians are compared. A ratio of at least 0.9 means our figures are the server's.
The CGI runner is met with 2 connections: more would only queue processes.

wrk does not speak WebSocket. With --websocket, the second loader is the same closed
loop of echo round trips written with the `websockets` library's asyncio client (a
well-kept implementation in C and Python), against uvicorn serving the bare echo app,
the fastest echo server here; the two take turns. Our mode should reach at least the
library's rate, and its CPU share of its core, printed beside it, says how close it came
to being the limit itself.
"""

import argparse
import asyncio
import contextlib
import shutil
import statistics
import subprocess
import sys
import time

import websockets.asyncio.client

from scripts import loadgen, system
from scripts.bench import Server, pin_loader, websocket_url
from scripts.catalogue import HTTP_DEFAULT_SERVERS, server_available

GOAL = 0.9


def check_against_wrk(duration=5.0, connections=32, path="/hello"):
    """{kind: our req/s over wrk's} for each server kind serving the site, or None without wrk."""
    wrk = shutil.which("wrk")
    if wrk is None:
        print("wrk is not installed, so there is nothing to check against "
              "(on Debian or Ubuntu: apt-get install wrk).")
        return None
    server_cpus, loader_cpus = pin_loader()
    ratios = {}
    for kind in HTTP_DEFAULT_SERVERS:
        missing = server_available(kind)
        if missing:
            print(f"{kind:18} skipped: {missing}")
            continue
        level = 2 if kind == "cgi" else connections
        server = Server(kind, "site", server_cpus)
        with contextlib.ExitStack() as stack:
            stack.callback(server.stop)
            url = server.start().url + path
            loadgen.run(url, connections=level, duration=1.0)
            ours, theirs = [], []
            for _ in range(2):
                completed = subprocess.run([wrk, "-t1", f"-c{level}", f"-d{round(duration)}s", url],
                                           capture_output=True, text=True, check=True)
                theirs.append(wrk_rps(completed.stdout))
                ours.append(loadgen.run(url, connections=level, duration=duration).rps)
        ratio = statistics.median(ours) / statistics.median(theirs)
        ratios[kind] = ratio
        print(f"{kind:18} x{level:<3} loadgen {statistics.median(ours):10,.0f} req/s   "
              f"wrk {statistics.median(theirs):10,.0f} req/s   ratio {ratio:.2f}"
              + ("" if ratio >= GOAL else f"   (below the {GOAL} goal)"), flush=True)
    return ratios


def wrk_rps(output):
    """The Requests/sec figure of wrk's report."""
    for line in output.splitlines():
        if line.startswith("Requests/sec:"):
            return float(line.split(":")[1])
    raise RuntimeError(f"no Requests/sec line in wrk's output:\n{output}")


async def library_echo_async(url, connections, duration, message_size=64):
    """Round trips per second of N clients of the websockets library, each sending a message,
    awaiting its echo and checking it, as our WebSocket mode does. Returns (rate, mismatches)."""
    counts = [0] * connections
    mismatches = 0
    stopping = False
    origin = "http://" + url.split("://", 1)[1].split("/", 1)[0]

    async def client(number, ready):
        nonlocal mismatches
        async with websockets.asyncio.client.connect(url, origin=origin, compression=None, ping_interval=None,
                                                     max_size=None) as ws:
            ready.set_result(None)
            sequence = 0
            while not stopping:
                sequence += 1
                message = (f"{number}:{sequence}:" + "x" * message_size)[:max(message_size, 16)]
                await ws.send(message)
                if await ws.recv() == message:
                    counts[number] += 1
                else:
                    mismatches += 1

    loop = asyncio.get_running_loop()
    ready = [loop.create_future() for _ in range(connections)]
    tasks = [asyncio.ensure_future(client(number, ready[number])) for number in range(connections)]
    await asyncio.gather(*ready)
    before, started = sum(counts), time.perf_counter()
    await asyncio.sleep(duration)
    rate = (sum(counts) - before) / (time.perf_counter() - started)
    stopping = True
    await asyncio.gather(*tasks)
    return rate, mismatches


def check_websocket_loader(duration=3.0, connections=64):
    """Our WebSocket mode's round trips per second over the websockets library's, in turns."""
    server_cpus, loader_cpus = pin_loader()
    system.raise_open_files_limit()
    server = Server("uvicorn", "bare-ws", server_cpus)
    with contextlib.ExitStack() as stack:
        stack.callback(server.stop)
        server.start()
        url = websocket_url(server)
        loadgen.websocket_run(url, connections=connections, duration=1.0)
        ours, theirs, shares = [], [], []
        for _ in range(2):
            with asyncio.Runner(loop_factory=loadgen.uvloop.new_event_loop if loadgen.uvloop else None) as runner:
                rate, mismatches = runner.run(library_echo_async(url, connections, duration))
            if mismatches:
                raise RuntimeError(f"the websockets-library loader saw {mismatches} wrong echoes")
            theirs.append(rate)
            result = loadgen.websocket_run(url, connections=connections, duration=duration)
            ours.append(result.rtps)
            shares.append(result.loader_cpu_share)
    ratio = statistics.median(ours) / statistics.median(theirs)
    print(f"websocket echo x{connections} on uvicorn (bare echo app): loadgen {statistics.median(ours):,.0f} "
          f"round trips/s using {statistics.median(shares):.0%} of its core, websockets library "
          f"{statistics.median(theirs):,.0f}/s, ratio {ratio:.2f}"
          + ("" if ratio >= 1.0 else "   (below the library: our loader is the slower one)"), flush=True)
    return ratio


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m scripts.bench_wrk", description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per turn of each loader (5)")
    parser.add_argument("--connections", type=int, help="connections of both loaders (32; --websocket: 64)")
    parser.add_argument("--path", default="/hello", help="the site path both loaders request (/hello)")
    parser.add_argument("--websocket", action="store_true",
                        help="check the WebSocket mode against a loader on the websockets library instead")
    args = parser.parse_args(argv)
    if args.websocket:
        return 0 if check_websocket_loader(args.duration, args.connections or 64) >= 1.0 else 1
    ratios = check_against_wrk(args.duration, args.connections or 32, args.path)
    return 0 if ratios is None or all(ratio >= GOAL for ratio in ratios.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
