"""The views of the sample site, one per row of the URL table in docs/design.md.

Each view is as small as the thing it stands for, so that what a benchmark
measures is the server and the interface, not the view.
"""

import asyncio
import functools
import hashlib
import importlib.metadata
import re
import sys
import time
from pathlib import Path

from django.conf import settings
from django.core.handlers.asgi import ASGIRequest
from django.http import Http404, HttpResponse, JsonResponse, StreamingHttpResponse
from django.shortcuts import render
from django.views import static
from django.views.decorators.csrf import csrf_exempt

from sample_site.shop.models import Product
from sample_site.shop.params import query_ints

MS = (0, 10_000)  # bounds of every duration in milliseconds
TEXT = "text/plain; charset=utf-8"
ECHO_READ_SIZE = 64 * 1024

# (link, what it shows) for the index page.
ENDPOINTS = [
    ("/hello", "text/plain \"Hello, world!\" from a sync view: framework overhead only"),
    ("/hello-async", "the same from an async view"),
    ("/products", "an HTML page rendered from a template and an ORM query of 50 rows"),
    ("/api/products", "the same 50 rows as JSON"),
    ("/io?ms=50", "a sync view that sleeps ms milliseconds: I/O wait in a thread"),
    ("/io-async?ms=50", "an async view that awaits asyncio.sleep: I/O wait on the event loop"),
    ("/cpu?n=20000", "a pure-Python loop of n steps: CPU-bound work and the GIL"),
    ("/stream?chunks=10&delay_ms=100", "a streamed response from a sync generator"),
    ("/events?count=10&interval_ms=500", "server-sent events, one per flush: a long-lived connection"),
    ("/echo", "POST a body: its method, content type, length and SHA-256 as JSON"),
    ("/inspect", "what the server handed Django: the WSGI environ or the ASGI scope, as JSON"),
    ("/chat", "a chat room in the browser over a WebSocket: why ASGI exists"),
]
# WebSocket endpoints (shop/routing.py): a browser's ordinary GET cannot open them, so
# the index lists them without a link.
WEBSOCKET_ENDPOINTS = [
    ("/ws/echo", "every message back, text as text and binary as binary: tests and benchmarks"),
    ("/ws/chat/<room>?name=<name>", "a chat room through the channel layer: who joins, "
                                    "who leaves, who is connected, every message"),
]


def index(request):
    return render(request, "shop/index.html", {
        "endpoints": ENDPOINTS, "websocket_endpoints": WEBSOCKET_ENDPOINTS,
        "served": served_by(request)})


def chat(request):
    return render(request, "shop/chat.html", {"served": served_by(request)})


# --- which server and interface served a request ------------------------------------


def served_by(request):
    """What served this request, read from what the server handed Django.

    A dict: `interface` and `server` in words, `facts` (the (key, value) pairs they
    were read from), `websocket` (whether this interface can hold a WebSocket) and
    `docs` (the URL of the server's annotated source, when `make docs` has built it).
    """
    if isinstance(request, ASGIRequest):
        asgi = request.scope.get("asgi", {})
        interface = f"ASGI {asgi.get('version', '2.0')}"
        if "spec_version" in asgi:
            interface += f" (HTTP spec {asgi['spec_version']})"
        # The ASGI scope has no key that names the server, so the name comes from
        # the program this process runs.
        server = program_name()
        facts = [("scope['asgi']", asgi), ("scope['server']", request.scope.get("server"))]
        module = server
    else:
        meta = request.META
        interface = "WSGI {}.{} (PEP 3333)".format(*meta.get("wsgi.version", (1, 0)))
        # GATEWAY_INTERFACE cannot tell CGI apart (granian sets it too); run_once can.
        # PEP 3333, wsgi.run_once: "This value should evaluate true if the server or
        # gateway expects (but does not guarantee!) that the application will only be
        # invoked this one time during the life of its containing process. Normally,
        # this will only be true for a gateway based on CGI (or something similar)."
        if meta.get("wsgi.run_once"):
            gateway = meta.get("GATEWAY_INTERFACE", "CGI")
            interface = f"{gateway} (RFC 3875): a new process runs the {interface} application once"
        # SERVER_SOFTWARE is a CGI variable (RFC 3875 §4.1.17) that PEP 3333 leaves
        # optional; gunicorn and the CGI runner set it, the toy WSGI server does not.
        software = meta.get("SERVER_SOFTWARE")
        server = software or program_name()
        module = server.split("/")[0]
        facts = [(key, meta[key]) for key in ("wsgi.version", "GATEWAY_INTERFACE", "SERVER_SOFTWARE",
                                              "wsgi.multithread", "wsgi.multiprocess", "wsgi.run_once")
                 if key in meta]
    return {"interface": interface, "server": with_version(server), "facts": facts,
            "websocket": isinstance(request, ASGIRequest), "docs": docs_page_for(module)}


def program_name():
    """The module this process runs (`python -m uvicorn` -> 'uvicorn'), or its script's name."""
    main = sys.modules.get("__main__")
    spec = getattr(main, "__spec__", None)
    if spec is not None and spec.name not in ("__main__", "__mp_main__"):
        return spec.name.removesuffix(".__main__")
    return Path(sys.argv[0]).name


@functools.cache  # reading the installed metadata takes about half a millisecond
def with_version(server):
    """'uvicorn' -> 'uvicorn 0.54.0' when an installed distribution has that name."""
    if "/" in server:
        return server  # SERVER_SOFTWARE carries its own version, e.g. 'gunicorn/23.0.0'
    try:
        return f"{server} {importlib.metadata.version(server)}"
    except (importlib.metadata.PackageNotFoundError, ValueError):
        return server


def docs_page_for(module):
    """The /docs/ URL of this server's rendered source, else of the docs' index; None without docs."""
    for page in (f"{module}.html", "index.html"):
        if (Path(settings.DOCS_ROOT) / page).is_file():
            return f"/docs/{page}"
    return None


def docs(request, path="index.html"):
    """A file of the rendered source under DOCS_ROOT; 404 for anything else."""
    root = Path(settings.DOCS_ROOT).resolve()
    # static.serve keeps `..` out; resolving also keeps out a symbolic link that
    # points outside the folder.
    target = (root / path).resolve()
    if not target.is_relative_to(root) or not target.is_file():
        raise Http404("no such page in the rendered docs")
    return static.serve(request, str(target.relative_to(root)), document_root=root)


def hello(request):
    return HttpResponse("Hello, world!\n", content_type=TEXT)


async def hello_async(request):
    return HttpResponse("Hello, world!\n", content_type=TEXT)


def products(request):
    return render(request, "shop/products.html", {"products": Product.objects.all()})


def api_products(request):
    rows = [product.as_dict() for product in Product.objects.all()]
    return JsonResponse({"count": len(rows), "products": rows})


@query_ints(ms=(50, *MS))
def io(request, ms):
    time.sleep(ms / 1000)
    return HttpResponse(f"slept {ms} ms\n", content_type=TEXT)


@query_ints(ms=(50, *MS))
async def io_async(request, ms):
    await asyncio.sleep(ms / 1000)
    return HttpResponse(f"slept {ms} ms\n", content_type=TEXT)


@query_ints(n=(20_000, 1, 5_000_000))
def cpu(request, n):
    total = 0
    for i in range(n):
        total = (total + i * i) % 1_000_003
    return HttpResponse(f"n={n} result={total}\n", content_type=TEXT)


@query_ints(chunks=(10, 1, 1000), delay_ms=(100, *MS))
def stream(request, chunks, delay_ms):
    # A sync generator, as most Django code streams. Under ASGI, Django cannot
    # iterate it on the event loop, so it collects all chunks in a thread first
    # and sends them at the end: compare with /events.
    def chunk_lines():
        for number in range(1, chunks + 1):
            if number > 1:
                time.sleep(delay_ms / 1000)
            yield f"chunk {number} of {chunks}\n"

    return StreamingHttpResponse(chunk_lines(), content_type=TEXT)


@query_ints(count=(10, 1, 1000), interval_ms=(500, *MS))
def events(request, count, interval_ms):
    # Django streams only the kind of iterator its handler can run as it goes: under
    # ASGI an async iterator (a sync one is collected into a list in a thread first),
    # under WSGI a sync iterator (an async one is collected with async_to_sync first).
    # Either way a mismatch would send every event at the end, so the generator is
    # chosen by the interface this request came through.
    if isinstance(request, ASGIRequest):
        body = async_events(count, interval_ms / 1000)
    else:
        body = sync_events(count, interval_ms / 1000)
    response = StreamingHttpResponse(body, content_type="text/event-stream")
    response["Cache-Control"] = "no-cache"
    return response


def event(number):
    return f"data: {number}\n\n"  # one server-sent event (HTML Living Standard §9.2)


async def async_events(count, interval):
    for number in range(1, count + 1):
        if number > 1:
            await asyncio.sleep(interval)
        yield event(number)


def sync_events(count, interval):
    for number in range(1, count + 1):
        if number > 1:
            time.sleep(interval)
        yield event(number)


def body_stream(request):
    """Where to read the request body from."""
    # Under WSGI Django reads at most CONTENT_LENGTH bytes, and none when it is
    # absent, as with a chunked body (RFC 9112 §6.1). A server that de-chunks says
    # so with wsgi.input_terminated (a de-facto extension of PEP 3333 that gunicorn
    # and others set): then wsgi.input ends where the body ends and can be read as is.
    meta = request.META
    if "CONTENT_LENGTH" not in meta and meta.get("wsgi.input_terminated"):
        return meta["wsgi.input"]
    return request


@csrf_exempt
def echo(request):
    # Read the body as a stream and hash it on the way, so a 100 MB upload never
    # sits in memory at once (request.body would hold all of it).
    stream = body_stream(request)
    digest = hashlib.sha256()
    length = 0
    while chunk := stream.read(ECHO_READ_SIZE):
        digest.update(chunk)
        length += len(chunk)
    return JsonResponse(
        {
            "method": request.method,
            "content_type": request.META.get("CONTENT_TYPE", ""),
            "body_length": length,
            "sha256": digest.hexdigest(),
        }
    )


# The meta-variables of RFC 3875 §4.1, and three that servers commonly add beside them.
CGI_VARIABLES = {
    "AUTH_TYPE", "CONTENT_LENGTH", "CONTENT_TYPE", "GATEWAY_INTERFACE", "PATH_INFO",
    "PATH_TRANSLATED", "QUERY_STRING", "REMOTE_ADDR", "REMOTE_HOST", "REMOTE_IDENT",
    "REMOTE_USER", "REQUEST_METHOD", "SCRIPT_NAME", "SERVER_NAME", "SERVER_PORT",
    "SERVER_PROTOCOL", "SERVER_SOFTWARE", "REMOTE_PORT", "REQUEST_URI", "RAW_URI",
}
SECRET_HEADER = re.compile(r"cookie|authorization|token|secret|passw|key", re.IGNORECASE)


def is_interface_key(key):
    # PEP 3333: besides the CGI variables, the environ holds HTTP_* headers, wsgi.*
    # keys and server extensions named with a dotted prefix; anything else (PATH,
    # HOME, ... copied from the process environment) is not what the server handed over.
    return key in CGI_VARIABLES or key.startswith("HTTP_") or "." in key


def json_safe(value):
    """`value` with bytes shown as b'...', and objects JSON cannot hold shown by their type."""
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    if isinstance(value, bytes):
        return repr(value)
    if isinstance(value, dict):
        return {str(key): json_safe(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(item) for item in value]
    if isinstance(value, type):
        return f"<class {value.__name__}>"
    return f"<{type(value).__name__}>"


def inspect_request(request):
    if isinstance(request, ASGIRequest):
        shown, withheld = asgi_scope_without_secrets(request.scope)
        return JsonResponse({"interface": "asgi", "scope": json_safe(shown), "withheld": withheld})
    shown, withheld = wsgi_environ_without_secrets(request.META)
    return JsonResponse({"interface": "wsgi", "meta": json_safe(shown), "withheld": withheld})


def asgi_scope_without_secrets(scope):
    """The scope without secret headers, and the names of the headers left out."""
    headers, withheld = [], []
    for name, value in scope.get("headers", []):
        header = name.decode("latin-1")
        if not SECRET_HEADER.search(header):
            headers.append((name, value))
        elif header not in withheld:
            withheld.append(header)
    return {**scope, "headers": headers}, withheld


def wsgi_environ_without_secrets(meta):
    """The interface keys of the environ without secret headers, and the keys left out."""
    shown, withheld = {}, []
    for key, value in meta.items():
        if not is_interface_key(key):
            continue
        if key.startswith("HTTP_") and SECRET_HEADER.search(key):
            withheld.append(key)
        else:
            shown[key] = value
    return shown, withheld
