"""Is our load generator fast enough? Each server measured by it and by wrk, in turns.

    python -m scripts.bench_wrk                  # every server kind serving the sample site
    python -m scripts.loadgen --check-against-wrk    # the same (the load generator hands over to this)

A load generator that is slower than the server it measures measures itself. wrk
(written in C on epoll) is the usual yardstick: for each server kind that serves the
sample site, the server runs on the server CPU set, and wrk and scripts.loadgen, each
with one thread on the loader's core, take turns against it (wrk, ours, wrk, ours);
the medians are compared. A ratio of at least 0.9 means our figures are the server's.
The CGI runner is met with 2 connections: more would only queue processes.
"""

import argparse
import contextlib
import shutil
import statistics
import subprocess
import sys

from scripts import loadgen
from scripts.bench import Server, pin_loader
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


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m scripts.bench_wrk", description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per turn of each loader (5)")
    parser.add_argument("--connections", type=int, default=32, help="connections of both loaders (32)")
    parser.add_argument("--path", default="/hello", help="the site path both loaders request (/hello)")
    args = parser.parse_args(argv)
    ratios = check_against_wrk(args.duration, args.connections, args.path)
    return 0 if ratios is None or all(ratio >= GOAL for ratio in ratios.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
