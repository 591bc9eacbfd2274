"""Pre-fork: a parent process that keeps N worker processes alive (wsgi_server --workers N).

No request passes through this file: the parent only forks, watches and
replaces its workers, as gunicorn's arbiter does. Each worker is a fork of the
parent and inherits the listening socket; the workers all watch it, and a new
connection goes to the one whose accept() comes first. So N processes run
Python at once, and the GIL limits each one alone.

Needs from the operating system: fork without exec from a single-threaded parent, SIGCHLD
and waitpid(-1, WNOHANG): POSIX only.
"""

from __future__ import annotations

import os
import select
import signal
import socket
import sys
import time
import traceback
from typing import Callable

from servers import cli, trace
from servers.wakeup import WakeupPipe


class Arbiter:
    """The parent process of --workers N: it serves nothing itself.

    The parent waits for signals: a worker that dies is replaced; SIGTERM or
    SIGINT is passed on to the workers as SIGTERM (a graceful shutdown), and the
    parent exits when the last worker has exited. A second SIGINT kills the
    workers at once.
    """

    def __init__(self, count: int, listener: socket.socket, serve: Callable[[int], int]):
        self.count = count
        self.listener = listener
        self.serve = serve                   # serve(parent pid) runs a worker; its exit status
        self.workers: dict[int, float] = {}  # pid -> when it was started
        self.stopping = False
        self.interrupts = 0
        self.wakeup: WakeupPipe | None = None

    def run(self) -> int:
        self.wakeup = WakeupPipe()
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, self.on_stop_signal)
        # SIGCHLD needs a handler (one that does nothing) to reach the wake-up pipe.
        signal.signal(signal.SIGCHLD, lambda signum, frame: None)
        for _ in range(self.count):
            self.spawn()
        restart_at = 0.0
        while self.workers:
            select.select([self.wakeup.reader], [], [], 1.0)
            self.wakeup.drain()
            restart_at = self.reap(restart_at)
        return 0

    def spawn(self) -> None:
        pid = os.fork()
        if pid:
            self.workers[pid] = time.monotonic()
            return
        # The child: a Ctrl-C in a terminal reaches the whole process group, so the
        # workers ignore SIGINT and let the parent decide (one SIGINT: graceful).
        status = 1
        try:
            self.wakeup.close()
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            status = self.serve(os.getppid())
        except BaseException:
            trace.log(traceback.format_exc().rstrip())
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(status)

    def reap(self, restart_at: float) -> float:
        """Collect exited workers; start replacements unless shutting down."""
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return restart_at
            if pid == 0:
                break
            started = self.workers.pop(pid, None)
            if started is None or self.stopping:
                continue
            code = os.waitstatus_to_exitcode(status)
            how = f"was killed by signal {-code}" if code < 0 else f"exited with status {code}"
            trace.log(f"wsgi_server: worker {pid} {how}; starting a new one")
            # A worker that dies within a second of starting would die again:
            # wait a second before the next restart instead of forking in a loop.
            now = time.monotonic()
            if now - started < 1.0:
                restart_at = max(restart_at, now + 1.0)
        if not self.stopping:
            missing = self.count - len(self.workers)
            if missing and time.monotonic() >= restart_at:
                for _ in range(missing):
                    self.spawn()
        return restart_at

    def on_stop_signal(self, signum, frame) -> None:
        if signum == signal.SIGINT:
            self.interrupts += 1
        if self.interrupts >= 2:
            self.signal_workers(signal.SIGKILL)
            cli.remove_socket_files()
            os._exit(1)
        if not self.stopping:
            self.stopping = True
            self.listener.close()
        self.signal_workers(signal.SIGTERM)

    def signal_workers(self, signum: int) -> None:
        for pid in self.workers:
            try:
                os.kill(pid, signum)
            except ProcessLookupError:
                pass  # exited already; reap() collects it
