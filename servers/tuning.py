"""The performance devices of the servers, kept apart from the path a request reads.

Each device here is measured: the figure that justifies it is in its docstring,
from the README's "Measured" section (docs/figures/goals-summary.txt has the run).
A device that no benchmark justified was removed rather than kept here.

Needs from the operating system: CPython's garbage collector (gc.freeze): any system.
"""

from __future__ import annotations

import argparse
import gc


def add_gc_freeze_argument(parser: argparse.ArgumentParser) -> None:
    """--gc-freeze / --no-gc-freeze, for the servers that import the application once
    and keep it in memory (WSGI, ASGI); see freeze_startup_objects()."""
    parser.add_argument(
        "--gc-freeze", action=argparse.BooleanOptionalAction, default=True,
        help="once the application is imported, move every object that exists then "
             "(the framework, the URL table, the settings) out of reach of Python's cyclic "
             "garbage collector, so its full collections while serving skip them "
             "(gc.freeze()); --no-gc-freeze leaves the collector as Python sets it up "
             "(default: freeze)")


def freeze_startup_objects() -> int:
    """gc.freeze() the objects of start-up; returns how many were frozen.

    Measured (docs/figures/goals-summary.txt, 2026-11-25): the ASGI server on
    Django's /hello-async reached 1.04 of uvicorn-fast with the freeze and 0.97
    without it in the same run; in five side-by-side comparisons the freeze saved
    5-13 % of the server's CPU per request.

    Python's cyclic collector runs on top of reference counting; its full
    collections visit every container object alive. An imported framework is tens
    of thousands of such objects that will live as long as the process, and a
    request's reference cycles (an exception's traceback back to its frame, say)
    keep triggering collections that walk them all again. The gc documentation:
    freeze() moves "all the objects tracked by the garbage collector" to "a
    permanent generation" and ignores "them in all the future collections". When
    it was added (Python 3.7, bpo-31558) the same page said what for: "before a
    POSIX fork() call to make the gc copy-on-write friendly or to speed up
    collection". Collecting first keeps start-up garbage from being frozen too.
    """
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()


def freeze_if_asked(args: argparse.Namespace) -> str:
    """--gc-freeze: freeze now; returns what the "Listening on" line says about it."""
    if not args.gc_freeze:
        return ""
    return f", {freeze_startup_objects():,} start-up objects frozen"
