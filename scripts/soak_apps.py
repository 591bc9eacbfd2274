"""sample_site's WSGI and ASGI applications with one addition for scripts/soak.py:
POST /_soak/collect runs Python's cyclic garbage collector in the server process.

Why: Django leaves reference cycles behind each request, and under ASGI one of them
holds the request's thread-sensitive executor (asgiref's ThreadSensitiveContext),
whose idle thread lives until the collector frees the cycle. Counted before a
collection, those threads look like a leak that grows with the load; after one,
they are gone. The soak counts threads and descriptors after a collection, so that
what it reports as not back to baseline is something no collection can free.
Every other request goes to the site unchanged.
"""

import gc

from sample_site.asgi import application as site_asgi
from sample_site.wsgi import application as site_wsgi

COLLECT_PATH = "/_soak/collect"


def _collect_body():
    return f"collected {gc.collect()} objects\n".encode()


def wsgi_application(environ, start_response):
    if environ.get("PATH_INFO") == COLLECT_PATH and environ["REQUEST_METHOD"] == "POST":
        body = _collect_body()
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
        return [body]
    return site_wsgi(environ, start_response)


async def asgi_application(scope, receive, send):
    if scope["type"] == "http" and scope["path"] == COLLECT_PATH and scope["method"] == "POST":
        body = _collect_body()
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"text/plain"),
                                (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})
        return
    await site_asgi(scope, receive, send)
