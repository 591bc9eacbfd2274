"""What differs between Linux and macOS, in one place.

The benchmark, the launcher, the load generator and the notebooks ask the operating
system four kinds of question, and each platform answers some of them differently:

- How much CPU time and memory do a server's processes use, and which processes are
  they (a pre-forking server's workers, a CGI runner's children)? psutil answers on
  both platforms, so nothing here parses /proc for them. One figure exists on Linux
  only: the CPU time of children a process has already reaped (psutil reports 0
  elsewhere), which is where a CGI runner's finished children end up.
- Can a process be held to some CPUs? Linux has os.sched_setaffinity; macOS has no way
  to bind a process to a core. Without it the benchmark runs unpinned, says so once,
  and records why in its results.
- Can a child be told to die with its parent? Linux's prctl(PR_SET_PDEATHSIG) does it;
  elsewhere the launcher's atexit handler is all there is.
- How many files may a process open? macOS refuses a soft limit above its per-process
  maximum even when the hard limit says "unlimited".

Set TOOLKIT_FORCE_FALLBACKS=1 to take every portable path on Linux too: no affinity
calls, no prctl, no /proc, reaped children's CPU time not counted. The tests use it to
keep the macOS paths working on a Linux CI.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import platform
import resource
import signal
import subprocess
import sys

import psutil

FORCE_FALLBACKS = "TOOLKIT_FORCE_FALLBACKS"


def fallbacks_forced() -> bool:
    """True when TOOLKIT_FORCE_FALLBACKS asks for the portable paths (any value but "" or "0")."""
    return os.environ.get(FORCE_FALLBACKS, "") not in ("", "0")


def linux_calls_allowed() -> bool:
    """On Linux, with the fallbacks not forced: the Linux-only calls may be made."""
    return sys.platform.startswith("linux") and not fallbacks_forced()


# --- CPU pinning -------------------------------------------------------------------------------

def affinity_calls_allowed() -> bool:
    """The platform can hold a process to CPUs (os.sched_setaffinity), and no fallback is forced."""
    return hasattr(os, "sched_setaffinity") and not fallbacks_forced()


def unpinned_reason() -> str | None:
    """Why server and load generator cannot be given CPUs of their own here, or None when they can.

    Ask before pinning this process: once it is held to the loader's one core, that core
    is all it may use.
    """
    if fallbacks_forced():
        return f"{FORCE_FALLBACKS} is set, so no CPU affinity calls are made"
    if not hasattr(os, "sched_setaffinity"):
        return f"{platform.system()} has no CPU affinity call (os.sched_setaffinity)"
    if len(os.sched_getaffinity(0)) < 2:
        return "this process may use only one CPU, so server and load generator cannot be separated"
    return None


def split_cpus() -> tuple[set[int] | None, set[int] | None]:
    """(server cpus, loader cpus): the last usable core for the loader, the rest for the server.

    (None, None) when pinning is unavailable (see unpinned_reason()).
    """
    if unpinned_reason():
        return None, None
    cpus = sorted(os.sched_getaffinity(0))
    return set(cpus[:-1]), {cpus[-1]}


def pin(cpus: set[int] | None, pid: int = 0) -> bool:
    """Hold process `pid` to `cpus`; False, doing nothing, where that cannot be done.

    pid 0 is the caller; on Linux that means the calling thread, which is the whole
    process in a child between fork and exec. A CPU set is inherited, so a server
    pinned before it starts keeps its workers and CGI children there too.
    """
    if not cpus or not affinity_calls_allowed():
        return False
    os.sched_setaffinity(pid, cpus)
    return True


def pinned_to(pid: int) -> list[int] | None:
    """The CPUs process `pid` may run on, or None where the platform cannot say."""
    if not affinity_calls_allowed():
        return None
    with contextlib.suppress(ProcessLookupError):
        return sorted(os.sched_getaffinity(pid))
    return None


def pinning_metadata(server_cpus: set[int] | None, loader_cpus: set[int] | None) -> dict:
    """What a results file records about pinning: whether it was done, on which cores, or why not."""
    reason = unpinned_reason() if not (server_cpus and loader_cpus) else None
    return {
        "pinned": bool(server_cpus and loader_cpus),
        "unpinned_reason": reason,
        "server_cpus": sorted(server_cpus) if server_cpus else None,
        "loader_cpus": sorted(loader_cpus) if loader_cpus else None,
    }


_announced_unpinned = False


def announce_unpinned(file=None) -> bool:
    """Print, once per process, that measurements run unpinned and why. True if it printed."""
    global _announced_unpinned
    reason = unpinned_reason()
    if not reason or _announced_unpinned:
        return False
    _announced_unpinned = True
    print(f"running unpinned: {reason}; server and load generator share every core, "
          f"so compare only figures from the same run", file=file or sys.stdout, flush=True)
    return True


# --- a server's processes ----------------------------------------------------------------------

def group_processes(pgid: int) -> list[psutil.Process]:
    """Every process of a server: the members of process group `pgid` and all their
    descendants (a CGI child leads a session, so a group of its own, of its own).

    scripts.launch starts each server as the leader of its own process group, so
    `pgid` is also the server's pid.
    """
    parents, members = {}, set()
    for process in psutil.process_iter(["ppid"]):
        parents[process.pid] = process.info["ppid"]
        with contextlib.suppress(OSError):
            if os.getpgid(process.pid) == pgid:
                members.add(process.pid)
    found = set(members)
    while True:
        children = {pid for pid, parent in parents.items() if parent in found} - found
        if not children:
            break
        found |= children
    processes = []
    for pid in sorted(found):
        with contextlib.suppress(psutil.Error):
            processes.append(psutil.Process(pid))
    return processes


def group_pids(pgid: int) -> list[int]:
    """The pids of group_processes(pgid), sorted."""
    return [process.pid for process in group_processes(pgid)]


def group_listens_on(pgid: int, port: int) -> bool:
    """Whether a process of the server with process group `pgid` listens on TCP `port`.
    Where the platform will not list a process's sockets, the answer is yes."""
    for process in group_processes(pgid):
        try:
            connections = process.net_connections(kind="tcp")
        except psutil.AccessDenied:
            return True
        except psutil.Error:
            continue  # gone meanwhile
        if any(c.status == psutil.CONN_LISTEN and c.laddr and c.laddr.port == port for c in connections):
            return True
    return False


def reaped_children_counted() -> bool:
    """Whether cpu_seconds() includes children a process already waited for (Linux only)."""
    return linux_calls_allowed()


def cpu_seconds(pgid: int) -> float:
    """CPU time (user + system) the server's processes have used so far.

    On Linux this includes the children they have already reaped (a CGI runner's
    finished children); psutil reports those as 0 on macOS, so there they are missing,
    and reaped_children_counted() says so.
    """
    total = 0.0
    with_children = reaped_children_counted()
    for process in group_processes(pgid):
        with contextlib.suppress(psutil.Error):
            times = process.cpu_times()
            total += times.user + times.system
            if with_children:
                total += times.children_user + times.children_system
    return total


def rss_bytes(pgid: int) -> int:
    """Resident memory of all the server's processes (shared pages count once per process)."""
    total = 0
    for process in group_processes(pgid):
        with contextlib.suppress(psutil.Error):
            total += process.memory_info().rss
    return total


def open_descriptors(pgid: int) -> int:
    """File descriptors the server's processes hold open (sockets among them)."""
    total = 0
    for process in group_processes(pgid):
        with contextlib.suppress(psutil.Error):
            total += process.num_fds()
    return total


# --- starting a child --------------------------------------------------------------------------

# macOS: OPEN_MAX from <sys/syslimits.h>, the most setrlimit(RLIMIT_NOFILE) accepts
# when the hard limit is unlimited.
DARWIN_OPEN_MAX = 10240


def raise_open_files_limit() -> int:
    """Raise this process's soft limit on open files as far as allowed; returns the new soft limit.

    Each socket is a file descriptor, and the usual soft limit (1024 on Linux, 256 on
    macOS) is below the thousands of connections a benchmark holds open.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    # Linux refuses an unlimited soft limit (fs.nr_open caps it); macOS refuses one above OPEN_MAX.
    wanted = hard
    if hard == resource.RLIM_INFINITY:
        if sys.platform != "darwin":
            return soft
        wanted = DARWIN_OPEN_MAX
    if soft == resource.RLIM_INFINITY or soft >= wanted:
        return soft
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
    except (ValueError, OSError):
        return soft
    return wanted


# prctl(2): PR_SET_PDEATHSIG is option 1.
PR_SET_PDEATHSIG = 1


def set_parent_death_signal(signum: int = signal.SIGTERM) -> bool:
    """Linux: have the kernel send `signum` to this process when its parent dies, even by
    SIGKILL (a killed notebook kernel, say), when no atexit handler runs. Elsewhere (or
    with the fallbacks forced) nothing happens and the result is False."""
    if not linux_calls_allowed():
        return False
    libc = ctypes.CDLL(None, use_errno=True)
    return libc.prctl(PR_SET_PDEATHSIG, signum, 0, 0, 0) == 0


def prepare_child(cpus: set[int] | None) -> None:
    """Runs in a server's child between fork and exec: pin it, raise its open-files limit
    (uvicorn and daphne do not), and have it follow its parent into death where possible.

    Plain system calls only: after a fork in a threaded process, a library that takes
    locks (psutil's caches) could wait forever for a lock held by a thread that is gone.
    """
    pin(cpus)
    raise_open_files_limit()
    set_parent_death_signal()


# --- the machine ------------------------------------------------------------------------------

def cpu_model() -> str:
    """The processor's name as the system reports it ("AMD EPYC 7B13", "Apple M2")."""
    if linux_calls_allowed():
        with contextlib.suppress(OSError), open("/proc/cpuinfo") as file:
            for line in file:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    if sys.platform == "darwin":
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            name = subprocess.run(["sysctl", "-n", "machdep.cpu.brand_string"], capture_output=True,
                                  text=True, timeout=5, check=True).stdout.strip()
            if name:
                return name
    return platform.processor() or platform.machine() or "unknown"


def description() -> dict:
    """The platform facts a results file records beside the figures."""
    return {
        "system": platform.system(),
        "cpu_model": cpu_model(),
        "fallbacks_forced": fallbacks_forced(),
        "reaped_children_cpu_counted": reaped_children_counted(),
        "parent_death_signal": linux_calls_allowed(),
    }
