"""Who is the client, and was it HTTPS? Believing X-Forwarded-For/-Proto from a proxy.

Behind nginx every connection comes from nginx, so the peer address of the
socket names the proxy, not the client. RFC 3875 §8.2: "Script authors should
be aware that the REMOTE_ADDR and REMOTE_HOST meta-variables (see sections 4.1.8
and 4.1.9) may not identify the ultimate source of the request. They identify
the client for the immediate request to the server; that client may be a proxy,
gateway, or other intermediary acting on behalf of the actual source client."

A proxy says who its client was in X-Forwarded-For (each proxy appends the
address it saw) and which scheme it was asked with in X-Forwarded-Proto. Any
client can send those headers too, so they are believed only when the peer is a
proxy we trust (--forwarded-allow-ips, default 127.0.0.1, gunicorn's and
uvicorn's default). Then:

    REMOTE_ADDR (CGI, WSGI environ)   the rightmost X-Forwarded-For address that is
                                      not a trusted proxy: addresses further left
                                      were written by whoever sent the request, and
                                      may be forged
    wsgi.url_scheme / HTTPS=on        X-Forwarded-Proto, when it is http or https
    ASGI scope client, scheme         the same; a WebSocket's scheme becomes ws or wss

RFC 3875 §4.1.8: "The REMOTE_ADDR variable MUST be set to the network address of
the client sending the request to the server." For wsgi.url_scheme, PEP 3333
("environ Variables"): "A string representing the ... portion of the URL at
which the application is being invoked."

Needs from the operating system: nothing beyond the Python process it runs in.
"""

from __future__ import annotations

import argparse
import ipaddress

from servers import cli

DEFAULT = "127.0.0.1"


def add_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--forwarded-allow-ips", type=parse, default=DEFAULT, metavar="IPS",
        help="comma-separated addresses or networks (10.0.0.0/8) of proxies whose "
             "X-Forwarded-For and X-Forwarded-Proto headers are believed (default "
             "%(default)s). '*' trusts every peer: then any client can claim any address "
             "and HTTPS, so use it only when nothing but a proxy can reach the server. "
             "A peer on a Unix socket (--bind unix:PATH) counts as 127.0.0.1")


def parse(text: str) -> ProxyTrust:
    """--forwarded-allow-ips as given; argparse.ArgumentTypeError on a bad entry."""
    if text.strip() == "*":
        return ProxyTrust(None)
    networks = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"--forwarded-allow-ips: {item!r} is not an IP address or network") from None
    return ProxyTrust(tuple(networks))


class ProxyTrust:
    """The proxies whose X-Forwarded-* headers are believed (None: every peer)."""

    def __init__(self, networks: tuple | None):
        self.networks = networks

    def trusts(self, host: str) -> bool:
        if self.networks is None:
            return True
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return False
        return any(address in network for network in self.networks)

    def client_and_scheme(self, peer: tuple | None, headers: list,
                          scheme: str = "http") -> tuple[tuple | None, str]:
        """(client (host, port), scheme) for a request from `peer` with these headers.

        headers are http11's (lower-case name, value) bytes pairs. peer None is a
        Unix socket's peer, trusted as cli.LOCAL_PEER would be (see servers/cli.py).
        """
        forwarded_for, forwarded_proto = [], None
        for name, value in headers:
            if name == b"x-forwarded-for":
                forwarded_for += [item.strip() for item in value.decode("latin-1").split(",")]
            elif name == b"x-forwarded-proto":
                forwarded_proto = value.decode("latin-1").split(",")[-1].strip().lower()
        if not (forwarded_for or forwarded_proto) or not self.trusts(
                cli.LOCAL_PEER if peer is None else peer[0]):
            return peer, scheme
        client = peer
        for host in reversed(forwarded_for):
            if not _is_address(host):
                break  # a malformed entry: believe nothing to its left
            client = (host, 0)  # the port the client used is not forwarded
            if not self.trusts(host):
                break
        if forwarded_proto in ("http", "https", "ws", "wss"):
            # A WebSocket's scheme is ws or wss (ASGI's scope); a proxy names the
            # scheme it was reached by, http or https, whichever it is.
            secure = forwarded_proto in ("https", "wss")
            if scheme in ("ws", "wss"):
                scheme = "wss" if secure else "ws"
            else:
                scheme = "https" if secure else "http"
        return client, scheme


def _is_address(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True
