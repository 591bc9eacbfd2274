"""Lingering close: end a connection without destroying the last response.

Closing a socket that still has unread input makes the kernel answer with a
reset, and a reset can destroy the response that the client has not read yet:
it would never see its 400 or 413, or the end of a response to a request whose
body the application did not read. RFC 9112 §9.6: "servers typically close a
connection in stages. First, the server performs a half-close by closing only
the write side of the read/write connection. The server then continues to read
from the connection until it receives a corresponding close by the client".

The WSGI server does the reading in its selector (half_close, then the
connection is parked until EOF or LINGER_SECONDS); the CGI runner, a thread per
connection, reads in that thread (lingering_close).

Needs from the operating system: a TCP half-close (shutdown(SHUT_WR)): any POSIX system.
"""

from __future__ import annotations

import socket
import time

# How long a closing connection keeps reading (and dropping) what the client still sends.
LINGER_SECONDS = 2.0
READ_SIZE = 65536


def half_close(sock: socket.socket) -> bool:
    """Close the write side; False if the connection is gone already (then it is closed)."""
    try:
        sock.shutdown(socket.SHUT_WR)
    except OSError:
        sock.close()
        return False
    return True


def lingering_close(sock: socket.socket) -> None:
    """Half-close, read until the client closes or LINGER_SECONDS pass, then close."""
    if not half_close(sock):
        return
    deadline = time.monotonic() + LINGER_SECONDS
    try:
        while (remaining := deadline - time.monotonic()) > 0:
            sock.settimeout(remaining)
            if not sock.recv(READ_SIZE):
                break
    except OSError:
        pass
    sock.close()
