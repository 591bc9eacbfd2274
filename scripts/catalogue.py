"""The servers a benchmark can measure, and what each is compared with.

scripts.launch knows how to start each server kind; this catalogue adds what a
measurement needs to know about it: the interface it speaks (its family), the
extra flags it is measured with, the reference a toy server is judged against,
variants of a kind (the same server with one flag changed), and whether the
server exists yet. The benchmark (scripts.bench), the load generator's check
against wrk (scripts.bench_wrk) and the notebooks read it from here.
"""

import importlib.util

from scripts.launch import DEFAULT_APPS, REPO, server_command

# family: the interface the server speaks; reference: what a toy server is compared with.
SERVERS = {
    "cgi":              {"family": "cgi",  "extra": ["--server-timing"], "reference": "cgi-floor"},
    "wsgi":             {"family": "wsgi", "extra": ["--threads", "8"], "reference": "gunicorn-gthread"},
    "gunicorn":         {"family": "wsgi", "extra": []},
    "gunicorn-gthread": {"family": "wsgi", "extra": []},
    "asgi":             {"family": "asgi", "extra": [], "reference": "uvicorn"},
    "uvicorn":          {"family": "asgi", "extra": []},
    "uvicorn-fast":     {"family": "asgi", "extra": []},
    "daphne":           {"family": "asgi", "extra": []},
    "gunicorn-uvicorn": {"family": "asgi", "extra": []},
    "granian-wsgi":     {"family": "wsgi", "extra": []},
    "granian-asgi":     {"family": "asgi", "extra": []},
    # A variant ("base" is the server it runs), measured only when named: the toy ASGI
    # server with Python's garbage collector left as it starts, to show what its
    # default --gc-freeze is worth.
    "asgi-no-freeze":   {"family": "asgi", "extra": ["--no-gc-freeze"], "base": "asgi"},
}
TOY_SERVERS = ("cgi", "wsgi", "asgi")
# The HTTP matrix's default servers: ours and every server people deploy beside them.
HTTP_DEFAULT_SERVERS = ("cgi", "wsgi", "gunicorn", "gunicorn-gthread", "granian-wsgi", "asgi",
                        "uvicorn", "uvicorn-fast", "gunicorn-uvicorn", "daphne", "granian-asgi")
# Bare applications: the server alone, no framework in the way (scripts.hello_apps).
BARE_APPS = {"wsgi": "scripts.hello_apps:wsgi_app", "asgi": "scripts.hello_apps:asgi_app"}
BARE_WEBSOCKET_APP = "scripts.hello_apps:ws_echo"


def base_kind(kind):
    """The scripts.launch kind a catalogue server runs (itself, unless it is a variant)."""
    return SERVERS[kind].get("base", kind)


def server_available(kind):
    """None if the server can run, else why it cannot (a toy server not written yet)."""
    kind = base_kind(kind)
    if kind in TOY_SERVERS and importlib.util.find_spec(f"servers.{kind}_server") is None:
        return f"servers/{kind}_server.py does not exist yet"
    if kind == "cgi" and not (REPO / DEFAULT_APPS["cgi"]).exists():
        return f"{DEFAULT_APPS['cgi']} does not exist"
    return None


def app_spec(kind, app):
    """What server `kind` is given to serve: "site" (the sample site), "bare" (the hello app of
    its interface), "bare-ws" (the bare WebSocket echo app)."""
    if app == "site":
        return DEFAULT_APPS[base_kind(kind)]
    if app == "bare-ws":
        return BARE_WEBSOCKET_APP
    return BARE_APPS[SERVERS[kind]["family"]]


def command(kind, app, port):
    """The argv that starts catalogue server `kind` (variants included) serving `app` on port."""
    return server_command(base_kind(kind), port=port, app=app_spec(kind, app), extra=SERVERS[kind]["extra"])
