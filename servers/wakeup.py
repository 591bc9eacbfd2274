"""The signal wake-up pipe: how a signal ends a select() at once.

A Python signal handler runs in the main thread between two bytecodes, so a
main thread blocked in select() would notice SIGTERM only when select() returns
by itself. signal.set_wakeup_fd() makes the interpreter also write the signal's
number to a file descriptor; with the reading end watched by the selector, the
signal wakes it. Used by the WSGI worker, the pre-fork parent and the CGI runner
(the ASGI server gets the same from asyncio's loop.add_signal_handler).

Needs from the operating system: signal.set_wakeup_fd on a non-blocking socket pair: POSIX
signals (Linux and macOS).
"""

from __future__ import annotations

import signal
import socket


class WakeupPipe:
    """A socket pair; the interpreter writes to one end when a signal arrives."""

    def __init__(self) -> None:
        self.reader, self.writer = socket.socketpair()
        self.reader.setblocking(False)
        self.writer.setblocking(False)
        # warn_on_full_buffer: a burst of signals may fill the pipe; the bytes
        # only say "wake up", so losing some of them is harmless.
        signal.set_wakeup_fd(self.writer.fileno(), warn_on_full_buffer=False)

    def drain(self) -> None:
        """Read the signal numbers written so far (the handlers did the work)."""
        try:
            while self.reader.recv(64):
                pass
        except BlockingIOError:
            pass

    def close(self) -> None:
        """In a forked child: stop the wake-ups meant for the parent."""
        signal.set_wakeup_fd(-1)
        self.reader.close()
        self.writer.close()
