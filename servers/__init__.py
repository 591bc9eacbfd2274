"""The toy CGI, WSGI and ASGI servers.

They need a POSIX system: the CGI runner starts a process per request and kills its
process group on a timeout, and the WSGI server pre-forks workers and restarts them on
SIGCHLD. Linux and macOS have all of it; native Windows has none of it, so every
entry point (`python -m servers.X`, `python -m scripts.Y`) stops at this import with
one line that says where the toolkit does run.
"""

import sys

NATIVE_WINDOWS_MESSAGE = (
    "This toolkit runs on Linux and macOS; on Windows, run it inside WSL 2 "
    "(https://learn.microsoft.com/windows/wsl/install): the CGI runner and the pre-forking "
    "server need POSIX processes and signals, which native Windows does not have.")


def refuse_native_windows() -> None:
    """Exit with NATIVE_WINDOWS_MESSAGE (status 1, no traceback) on native Windows."""
    if sys.platform == "win32":
        sys.exit(NATIVE_WINDOWS_MESSAGE)


refuse_native_windows()
