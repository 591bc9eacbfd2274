"""How long a server waits for a client's request head: one policy for the three servers.

    a new connection      its first request head is due --timeout after accept
    kept alive, idle      a next request may begin within --keepalive
    a head has begun      the whole head is due --timeout after its first byte
                          (a new connection keeps its accept deadline)
    a body is arriving    its next bytes are due --timeout after the last ones
                          (the WSGI server in its selector, the CGI runner in
                          the connection's thread: both read a body whole)

When the wait ends without a complete head, an idle connection closes quietly
(a client that keeps a connection open expects that); one whose head (or body)
had begun gets 408 first. RFC 9110 §15.5.9: "The 408 (Request Timeout) status code
indicates that the server did not receive a complete request message within the
time that it was prepared to wait." A client that sends its head one byte at a
time cannot hold a connection for longer than --timeout.

Needs from the operating system: nothing beyond the Python process it runs in.
"""

from __future__ import annotations

import argparse
import enum
from dataclasses import dataclass


class Waiting(enum.Enum):
    """What a connection waits for from its client."""
    FIRST_REQUEST = "first request"
    NEXT_REQUEST = "next request"
    REST_OF_HEAD = "rest of head"
    REST_OF_BODY = "rest of body"


@dataclass(frozen=True, slots=True)
class TimeoutPolicy:
    head: float    # --timeout
    idle: float    # --keepalive

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> TimeoutPolicy:
        return cls(head=args.timeout, idle=args.keepalive)

    def deadline(self, waiting: Waiting, now: float) -> float:
        """Until when to wait, from `now` (time.monotonic() or an event loop's clock).

        For REST_OF_HEAD this is the deadline of a kept-alive connection whose
        next head has begun; a new connection keeps the one it got at accept.
        """
        return now + (self.idle if waiting is Waiting.NEXT_REQUEST else self.head)

    @staticmethod
    def status_on_expiry(waiting: Waiting) -> int | None:
        """408 for a head or body that had begun; None: close without a response."""
        return 408 if waiting in (Waiting.REST_OF_HEAD, Waiting.REST_OF_BODY) else None
