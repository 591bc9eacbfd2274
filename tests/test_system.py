"""scripts.system, the one place for what differs by platform: the Linux paths, the portable
fallbacks forced on this Linux machine (TOOLKIT_FORCE_FALLBACKS=1, or the affinity calls
removed as on macOS), and the one-line refusal of native Windows by every entry point."""

import builtins
import os
import resource
import signal
import subprocess
import sys
import textwrap

import psutil
import pytest

from scripts import system
from scripts.launch import REPO
from servers import NATIVE_WINDOWS_MESSAGE

on_linux = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the Linux-only paths")

# A server-shaped tree of processes: a leader (the server), a worker in its process group
# that burns CPU and stays, a child in a session of its own (as the CGI runner starts
# them), and a child that burns CPU and is reaped (a finished CGI request).
BURN = "import time\nwhile time.process_time() < {seconds}: pass\n"
TREE = textwrap.dedent(f"""
    import subprocess, sys
    worker = subprocess.Popen([sys.executable, "-c", {BURN.format(seconds=0.2)!r} + "print('burnt', flush=True)\\nimport time; time.sleep(120)"])
    own_session = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"], start_new_session=True)
    print("pids", worker.pid, own_session.pid, flush=True)
    subprocess.run([sys.executable, "-c", {BURN.format(seconds=0.4)!r}], check=True)
    print("reaped", flush=True)
    import time; time.sleep(120)
""")


@pytest.fixture
def tree():
    """The tree above, started as launch.py starts a server (a new session); yields
    (leader pid, {every live pid}) once the worker has burnt its CPU and the other child
    has been reaped. Every process is killed afterwards, the own-session one included."""
    leader = subprocess.Popen([sys.executable, "-c", TREE], stdout=subprocess.PIPE, text=True,
                              start_new_session=True)
    pids = {leader.pid}
    try:
        seen = set()
        for line in leader.stdout:
            words = line.split()
            if words[0] == "pids":
                pids |= {int(words[1]), int(words[2])}
            seen.add(words[0])
            if {"pids", "burnt", "reaped"} <= seen:
                break
        assert {"pids", "burnt", "reaped"} <= seen, f"the tree stopped early: {seen}"
        yield leader.pid, pids
    finally:
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        leader.wait()
        psutil.wait_procs([p for p in map(_process, pids) if p], timeout=10)


def _process(pid):
    try:
        return psutil.Process(pid)
    except psutil.NoSuchProcess:
        return None


@pytest.fixture
def forced(monkeypatch):
    """The fallbacks forced, and any affinity call made anyway fails the test."""
    monkeypatch.setenv(system.FORCE_FALLBACKS, "1")

    def refuse(*args):
        raise AssertionError("an affinity call with the fallbacks forced")

    monkeypatch.setattr(os, "sched_setaffinity", refuse, raising=False)
    monkeypatch.setattr(os, "sched_getaffinity", refuse, raising=False)
    monkeypatch.setattr(system, "_announced_unpinned", False)


@pytest.fixture
def proc_reads(monkeypatch):
    """Paths under /proc that code in scripts/ itself opens or lists (psutil's own reads
    are not counted: on Linux psutil is built on /proc, and that is psutil's business)."""
    scripts = str(REPO / "scripts")
    reads = []

    def watching(function):
        def watched(path, *args, **kwargs):
            caller = sys._getframe(1).f_code.co_filename
            if str(path).startswith("/proc") and caller.startswith(scripts):
                reads.append((str(path), caller))
            return function(path, *args, **kwargs)
        return watched

    monkeypatch.setattr(builtins, "open", watching(builtins.open))
    monkeypatch.setattr(os, "listdir", watching(os.listdir))
    monkeypatch.setattr(os, "scandir", watching(os.scandir))
    return reads


# --- the figures: the same kinds with and without the fallbacks -----------------------------------

def figures(pgid):
    return {"pids": set(system.group_pids(pgid)), "cpu": system.cpu_seconds(pgid),
            "rss": system.rss_bytes(pgid), "fds": system.open_descriptors(pgid)}


def test_forced_fallbacks_give_the_same_kinds_of_figures_without_proc(tree, forced, proc_reads, monkeypatch):
    leader, pids = tree
    portable = figures(leader)
    assert proc_reads == []
    assert portable["pids"] == pids  # the own-session child too; the reaped one is gone
    assert portable["rss"] > 3 * 4_000_000  # three Python interpreters, several MB each
    assert portable["fds"] >= 3 * 3  # at least stdin, stdout and stderr each
    assert portable["cpu"] >= 0.15  # the worker's 0.2 s burn, less a clock tick or two
    assert not system.reaped_children_counted()

    monkeypatch.undo()  # the affinity calls back, for the native figures
    monkeypatch.delenv(system.FORCE_FALLBACKS, raising=False)
    native = figures(leader)
    assert native["pids"] == portable["pids"]
    assert native["rss"] > 3 * 4_000_000 and native["fds"] >= 3 * 3
    if sys.platform.startswith("linux"):
        # Linux alone reports the CPU time of reaped children: the 0.4 s child is in.
        assert system.reaped_children_counted()
        assert native["cpu"] - portable["cpu"] >= 0.3
    else:
        assert native["cpu"] >= 0.15


def test_nothing_in_the_layer_reads_proc_with_the_fallbacks_forced(forced, proc_reads):
    system.split_cpus()
    system.pin({0})
    system.pinned_to(os.getpid())
    system.pinning_metadata(None, None)
    system.group_pids(os.getpgid(0))
    system.cpu_seconds(os.getpgid(0))
    system.rss_bytes(os.getpgid(0))
    system.open_descriptors(os.getpgid(0))
    system.set_parent_death_signal()
    assert system.description()["cpu_model"]
    assert proc_reads == []


@on_linux
def test_the_proc_watch_sees_a_read_from_scripts(proc_reads, monkeypatch):
    """The watch above is not blind: unforced on Linux, cpu_model reads /proc/cpuinfo."""
    monkeypatch.delenv(system.FORCE_FALLBACKS, raising=False)
    system.cpu_model()
    assert [path for path, _ in proc_reads] == ["/proc/cpuinfo"]


# --- pinning --------------------------------------------------------------------------------------

def test_forced_fallbacks_run_unpinned_and_say_so_once(forced, capsys):
    assert system.split_cpus() == (None, None)
    assert system.pin({0}) is False
    assert system.pinned_to(os.getpid()) is None
    meta = system.pinning_metadata(*system.split_cpus())
    assert meta["pinned"] is False and system.FORCE_FALLBACKS in meta["unpinned_reason"]
    assert system.announce_unpinned() and not system.announce_unpinned()
    printed = capsys.readouterr().out.splitlines()
    assert len(printed) == 1 and printed[0].startswith("running unpinned: ")


def test_without_affinity_calls_as_on_macos(monkeypatch, capsys):
    monkeypatch.delenv(system.FORCE_FALLBACKS, raising=False)
    monkeypatch.delattr(os, "sched_setaffinity", raising=False)
    monkeypatch.delattr(os, "sched_getaffinity", raising=False)
    monkeypatch.setattr(system, "_announced_unpinned", False)
    assert "no CPU affinity call" in system.unpinned_reason()
    assert system.split_cpus() == (None, None)
    assert system.pin({0}) is False and system.pinned_to(os.getpid()) is None
    assert system.pinning_metadata(None, None)["unpinned_reason"] == system.unpinned_reason()
    system.announce_unpinned()
    assert "no CPU affinity call" in capsys.readouterr().out


@pytest.mark.skipif(not hasattr(os, "sched_getaffinity") or len(os.sched_getaffinity(0)) < 2,
                    reason="needs CPU affinity and two usable cores")
@pytest.mark.parametrize("force", [False, True])
def test_a_child_is_pinned_where_pinning_is_allowed(monkeypatch, force):
    if force:
        monkeypatch.setenv(system.FORCE_FALLBACKS, "1")
    else:
        monkeypatch.delenv(system.FORCE_FALLBACKS, raising=False)
    all_cpus = os.sched_getaffinity(0)
    server_cpus, loader_cpus = system.split_cpus() if not force else ({0}, {1})
    assert not server_cpus & loader_cpus
    # As in the benchmark: this process (the load generator) is pinned first, then starts the server.
    system.pin(loader_cpus)
    try:
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"],
                                 preexec_fn=lambda: system.prepare_child(server_cpus))
    finally:
        os.sched_setaffinity(0, all_cpus)
    try:
        monkeypatch.delenv(system.FORCE_FALLBACKS, raising=False)
        expected = sorted(all_cpus) if force else sorted(server_cpus)
        assert system.pinned_to(child.pid) == expected
        meta = system.pinning_metadata(server_cpus, loader_cpus)
        assert meta["pinned"] and meta["unpinned_reason"] is None
    finally:
        child.kill()
        child.wait()


# --- the parent death signal -----------------------------------------------------------------------

ORPHAN_MAKER = textwrap.dedent("""
    import subprocess, sys, time
    from scripts import system
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"],
                             preexec_fn=lambda: system.prepare_child(None))
    print(child.pid, flush=True)
    time.sleep(60)
""")


@pytest.mark.parametrize("force", [False, True])
def test_a_child_follows_its_killed_parent_on_linux_only(monkeypatch, force):
    env = {**os.environ, system.FORCE_FALLBACKS: "1" if force else ""}
    parent = subprocess.Popen([sys.executable, "-c", ORPHAN_MAKER], cwd=REPO, env=env,
                              stdout=subprocess.PIPE, text=True)
    child = None
    try:
        child = psutil.Process(int(parent.stdout.readline()))
        parent.kill()
        parent.wait()
        follows = sys.platform.startswith("linux") and not force
        if follows:
            # Not our child, so its exit status is not ours to read; that it ends is the point.
            child.wait(timeout=30)
            assert not child.is_running()
        else:
            # Nothing tells it: it would sleep its 60 s (killed below instead).
            with pytest.raises(psutil.TimeoutExpired):
                child.wait(timeout=1)
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait()
        if child is not None and child.is_running():
            child.kill()
            child.wait(timeout=10)


# --- the open-files limit ------------------------------------------------------------------------

@pytest.mark.parametrize("platform_name, hard, expected", [
    ("linux", 4096, 4096),
    ("linux", resource.RLIM_INFINITY, 256),  # Linux refuses an unlimited soft limit: left alone
    ("darwin", 4096, 4096),
    ("darwin", resource.RLIM_INFINITY, system.DARWIN_OPEN_MAX),  # macOS takes at most OPEN_MAX
])
def test_the_open_files_limit_is_raised_as_far_as_each_platform_allows(monkeypatch, platform_name, hard, expected):
    calls = []
    monkeypatch.setattr(system.sys, "platform", platform_name)
    monkeypatch.setattr(system.resource, "getrlimit", lambda which: (256, hard))
    monkeypatch.setattr(system.resource, "setrlimit", lambda which, limits: calls.append(limits))
    assert system.raise_open_files_limit() == expected
    assert calls == ([] if expected == 256 else [(expected, hard)])


def test_a_refused_open_files_limit_keeps_the_old_one(monkeypatch):
    def refuse(which, limits):
        raise ValueError("current limit exceeds maximum limit")

    monkeypatch.setattr(system.resource, "getrlimit", lambda which: (256, 1_000_000))
    monkeypatch.setattr(system.resource, "setrlimit", refuse)
    assert system.raise_open_files_limit() == 256


# --- native Windows ------------------------------------------------------------------------------

def entry_points():
    """Every module of servers/ and scripts/ that runs as `python -m`."""
    return sorted(f"{path.parent.name}.{path.stem}" for folder in ("servers", "scripts")
                  for path in (REPO / folder).glob("*.py") if "__main__" in path.read_text())


RUN_AS = ("import runpy, sys\n"
          "sys.platform = {platform!r}\n"
          "sys.argv = [{module!r}, '--help']\n"
          "runpy.run_module({module!r}, run_name='__main__', alter_sys=True)\n")


@pytest.mark.parametrize("module", entry_points())
def test_every_entry_point_refuses_native_windows_in_one_line(module):
    completed = subprocess.run([sys.executable, "-c", RUN_AS.format(platform="win32", module=module)],
                               cwd=REPO, capture_output=True, text=True, timeout=60)
    assert completed.returncode == 1
    assert completed.stdout == ""
    assert completed.stderr == NATIVE_WINDOWS_MESSAGE + "\n"
    assert "WSL 2" in NATIVE_WINDOWS_MESSAGE


def test_the_same_entry_point_runs_when_the_platform_is_left_alone():
    """The simulation itself is sound: with sys.platform untouched, --help answers."""
    completed = subprocess.run(
        [sys.executable, "-c", RUN_AS.format(platform=sys.platform, module="servers.wsgi_server")],
        cwd=REPO, capture_output=True, text=True, timeout=60)
    assert completed.returncode == 0, completed.stderr
    assert "--bind" in completed.stdout


# --- one place -------------------------------------------------------------------------------------

def test_only_the_layer_names_proc_or_the_linux_only_calls():
    linux_only = ("/proc", "sched_setaffinity", "sched_getaffinity", "prctl")
    offenders = {}
    for path in sorted((REPO / "scripts").glob("*.py")):
        if path.name == "system.py":
            continue
        text = path.read_text()
        found = [word for word in linux_only if word in text]
        if found:
            offenders[path.name] = found
    assert offenders == {}


# --- the benchmark and a notebook, end to end with the fallbacks forced ------------------------------

TINY_BENCH = ["--servers", "wsgi", "--endpoints", "hello", "--concurrency", "2",
              "--duration", "1", "--repeats", "1", "--warmup", "0.2"]


@pytest.mark.slow
def test_the_benchmark_runs_unpinned_with_the_fallbacks_forced(tmp_path):
    from scripts import plots

    completed = subprocess.run([sys.executable, "-m", "scripts.bench", *TINY_BENCH, "--out", str(tmp_path),
                                "--name", "forced"], cwd=REPO, capture_output=True, text=True, timeout=120,
                               env={**os.environ, system.FORCE_FALLBACKS: "1"})
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert completed.stdout.count("running unpinned: ") == 1, completed.stdout

    results = plots.load(tmp_path / "forced.json")
    pinning = results["metadata"]["pinning"]
    assert pinning["pinned"] is False and system.FORCE_FALLBACKS in pinning["unpinned_reason"]
    assert pinning["server_cpus"] is None and pinning["loader_cpus"] is None
    assert list(pinning["observed"].values()) == [None]
    described = results["metadata"]["system"]
    assert described["fallbacks_forced"] and not described["reaped_children_cpu_counted"]
    assert described["cpu_model"] == results["metadata"]["cpu_model"]

    [row] = results["rows"]
    assert row["server"] == "wsgi" and row["requests"] > 0 and row["non_2xx"] == 0
    assert row["rss_mb"] > 1 and row["cpu_s"] > 0  # psutil's figures, no /proc read by us

    assert "unpinned" in plots.throughput(results).get_title()
