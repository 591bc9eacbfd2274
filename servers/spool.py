"""A chunked request body, read whole into a temporary file (WSGI server and CGI runner).

A lesson in what PEP 3333 and RFC 3875 leave open: both tell the application
where the body ends only through CONTENT_LENGTH, and a chunked upload has no
Content-Length. RFC 3875 §4.1.2: "The server MUST set this meta-variable if and
only if the request is accompanied by a message-body entity. The CONTENT_LENGTH
value must reflect the length of the message-body after the server has removed
any transfer-codings or content-codings." Django reads exactly CONTENT_LENGTH
bytes of wsgi.input (none when it is missing), so it would see an empty body.

Both servers therefore de-chunk the whole body first (at most --max-body bytes,
kept in memory up to SPOOL_IN_MEMORY, then on disk) and set CONTENT_LENGTH to
its size. The cost: the application starts only when the upload ends.
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


def read_chunked_body(connection: http11.ServerConnection, events: list, send, receive):
    """(file at position 0, its size) once the whole body is in.

    events are the body events that came with the head; send(bytes) writes to
    the client, receive() returns its next bytes (b"" at EOF; it raises
    TimeoutError or another OSError when the client is too slow or gone).
    """
    spool = tempfile.SpooledTemporaryFile(SPOOL_IN_MEMORY)
    try:
        # The body is read now, before the application could ask for it, so a
        # client that waits for "100 Continue" is told to send it now.
        interim = connection.send_continue()
        if interim:
            send(interim)
        while True:
            for event in events:
                if isinstance(event, http11.Data):
                    spool.write(event.data)
                elif isinstance(event, http11.EndOfMessage):
                    size = spool.tell()
                    spool.seek(0)
                    return spool, size
                else:
                    raise BodyRefused(event.status, event.reason)
            events = connection.receive(receive())
    except BaseException:
        spool.close()
        raise
