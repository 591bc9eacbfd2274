"""A request body read whole before the application runs (WSGI server and CGI runner).

Two reasons to read the whole body first. The first is a lesson in what PEP 3333
and RFC 3875 leave open: both tell the application where the body ends only
through CONTENT_LENGTH, and a chunked upload has no Content-Length. RFC 3875
§4.1.2: "The server MUST set this meta-variable if and only if the request is
accompanied by a message-body entity. The CONTENT_LENGTH value must reflect the
length of the message-body after the server has removed any transfer-codings or
content-codings." Django reads exactly CONTENT_LENGTH bytes of wsgi.input (none
when it is missing), so it would see an empty body. Both servers therefore
de-chunk the whole body first and set CONTENT_LENGTH to its size.

The second: a client that sends its body a byte at a time would hold what the
server has least of for as long as the application waits for that body, a pool
thread of the WSGI server, a child slot of the CGI runner. The WSGI server's
selector side collects every body in a Spool as the bytes arrive, and a thread
runs the application only when the whole request is there; the CGI runner's
connection thread reads the body into a Spool before it takes a child slot.

A body is kept in memory up to SPOOL_IN_MEMORY, then in a temporary file, and
never exceeds --max-body (http11 answers 413 beyond it). The cost: the
application starts only when the upload ends.

Needs from the operating system: a temporary file: any system.
"""

from __future__ import annotations

import tempfile

from servers import http11

SPOOL_IN_MEMORY = 1024 * 1024


class BodyRefused(Exception):
    """The body is malformed or too large: answer with this status and close."""

    def __init__(self, status: int, reason: str):
        super().__init__(reason)
        self.status = status
        self.reason = reason


class Spool:
    """The body of one request as it arrives: in memory, then in a temporary file."""

    __slots__ = ("file", "size", "complete")

    def __init__(self):
        self.file = tempfile.SpooledTemporaryFile(SPOOL_IN_MEMORY)
        self.size = 0             # body bytes stored so far
        self.complete = False

    def take(self, events: list) -> bool:
        """Store the body events of http11; True once the body is complete.

        Then self.file is at position 0, ready to be read by the application.
        """
        for event in events:
            if isinstance(event, http11.Data):
                self.file.write(event.data)
                self.size += len(event.data)
            elif isinstance(event, http11.EndOfMessage):
                self.complete = True
                self.file.seek(0)
                return True
            else:
                raise BodyRefused(getattr(event, "status", 400),
                                  getattr(event, "reason", "connection closed during the body"))
        return False

    def close(self) -> None:
        self.file.close()

