"""The performance devices of the servers, kept apart from the path a request reads.

Each device here is measured: the figure that justifies it is in its docstring,
from the README's "Measured" section (docs/figures/goals-summary.txt has the run).
A device that no benchmark justified was removed rather than kept here.

Needs from the operating system: CPython's garbage collector (gc.freeze): any system;
mallopt() of the GNU C library (glibc, most Linux systems) for the mmap threshold,
which is left alone elsewhere (macOS, musl).
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import os


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


# <malloc.h>: the mallopt() parameter number of M_MMAP_THRESHOLD in the GNU C library.
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 128 * 1024


def add_mmap_threshold_argument(parser: argparse.ArgumentParser) -> None:
    """--fixed-mmap-threshold / --no-fixed-mmap-threshold; see fix_mmap_threshold()."""
    parser.add_argument(
        "--fixed-mmap-threshold", action=argparse.BooleanOptionalAction, default=True,
        help="with the GNU C library, give every block over 128 KiB (a large request body, "
             "say) its own mapping, returned to the system when freed, instead of letting "
             "malloc raise that limit and keep freed large blocks in its heaps; "
             "--no-fixed-mmap-threshold leaves malloc as it starts (default: fixed)")


def fix_mmap_threshold() -> bool:
    """mallopt(M_MMAP_THRESHOLD, 128 KiB) under glibc; False where there is no glibc.

    Measured (docs/figures/soak-wsgi-mmap.txt, 2026-12-02): the toy WSGI server under
    20,000 soak requests (uploads up to 2 MiB) grew +2.4 to +11.2 % from the middle to
    the end of the steady phase in four runs with glibc's default, and +0.4 to +4.2 %
    in three runs with the threshold fixed, and held 63-65 MiB at the middle against
    70-75 MiB.

    Why: a body of a few hundred KiB is read into memory twice, by the server's spool
    and by the framework's request.body, each time in one of several threads. The glibc
    manual (3.2.3.7, "Malloc Tunable Parameters") on M_MMAP_THRESHOLD: "All chunks
    larger than this value are allocated outside the normal heap, using the mmap system
    call. This way it is guaranteed that the memory for these chunks can be returned to
    the system on free." And: "If this parameter is not set, the default value is set as
    128 KiB and the threshold is adjusted dynamically to suit the allocation patterns of
    the program. If the parameter is set, the dynamic adjustment is disabled and the
    value is set statically to the input value." Left dynamic, the first large block
    freed raises the threshold to its size, and later large blocks come from the heaps
    of the threads that allocated them, which keep what is freed: the process grows
    with the number of threads that have once held a large body.
    """
    try:
        if not os.confstr("CS_GNU_LIBC_VERSION"):
            return False
        mallopt = ctypes.CDLL(None).mallopt
    except (ValueError, OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    return mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1


def fix_mmap_threshold_if_asked(args: argparse.Namespace) -> str:
    """--fixed-mmap-threshold: fix it now; returns what the "Listening on" line says."""
    if not args.fixed_mmap_threshold or not fix_mmap_threshold():
        return ""
    return ", large blocks mmap'd"
