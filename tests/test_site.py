"""The sample site through Django's test clients: every endpoint of the URL table.

`Client` builds a WSGI request and `AsyncClient` an ASGI one, so each endpoint is
checked under the interface it is meant for (and under both where the view
chooses its behaviour by the interface). No server runs here; tests/ has the
real-socket tests of each server.
"""

import hashlib
import importlib.util
import io
import json
import os
import re
import sqlite3
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

import pytest
from asgiref.sync import async_to_sync
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.test import AsyncClient, Client
from django.urls import get_resolver
from django.utils.html import escape

from sample_site.shop import views
from sample_site.shop.management.commands.seed_products import PRODUCT_COUNT, product_fields
from sample_site.shop.models import Product
from sample_site.shop.params import BadParameter, bounded_int
from sample_site.shop.routing import websocket_urlpatterns

REPO = Path(__file__).resolve().parent.parent
TEXT = "text/plain; charset=utf-8"


@pytest.fixture
def client():
    return Client()


def run_async(coroutine_function):
    """Run an AsyncClient exchange from a sync test.

    async_to_sync (rather than asyncio.run) sends the sync parts Django runs with
    sync_to_async back to this thread, where the test's database connection is.
    """
    return async_to_sync(coroutine_function)()


def async_get(path, **kwargs):
    async def exchange():
        return await AsyncClient().get(path, **kwargs)

    return run_async(exchange)


@pytest.fixture
def seeded(db):
    call_command("seed_products", stdout=open(os.devnull, "w"))


# --- / ---------------------------------------------------------------------------


def test_index_links_every_endpoint_of_the_url_table(client):
    response = client.get("/")
    assert response.status_code == 200
    assert response["Content-Type"] == "text/html; charset=utf-8"
    html = response.content.decode()
    assert html.startswith("<!DOCTYPE html>")
    for link, description in views.ENDPOINTS:
        assert f'href="{link.replace("&", "&amp;")}"' in html
        assert description.replace('"', "&quot;") in html
    for endpoint, description in views.WEBSOCKET_ENDPOINTS:
        assert f"<code>{escape(endpoint)}</code>" in html
        assert escape(description) in html
    # /docs/ is linked from the page only when the rendered source exists (below); the
    # stylesheet's /static/ is what the page loads, not an endpoint.
    routes = {"/" + str(pattern.pattern) for pattern in get_resolver().url_patterns} - {"/"}
    assert routes - {"/docs/", "/docs/<path:path>", "/^static/(?P<path>.*)$"} == {
        link.split("?")[0] for link, _ in views.ENDPOINTS}
    websocket_routes = {"/" + str(route.pattern) for route in websocket_urlpatterns}
    assert websocket_routes == {endpoint.split("?")[0].replace("<room>", "<str:room>")
                                for endpoint, _ in views.WEBSOCKET_ENDPOINTS}


def test_unknown_path_is_404(client):
    assert client.get("/nowhere").status_code == 404


# --- /hello and /hello-async ------------------------------------------------------


def test_hello(client):
    response = client.get("/hello")
    assert response.status_code == 200
    assert response["Content-Type"] == TEXT
    assert response.content == b"Hello, world!\n"


@pytest.mark.parametrize("path", ["/hello", "/hello-async"])
def test_hello_under_asgi(path):
    response = async_get(path)
    assert response.status_code == 200
    assert response["Content-Type"] == TEXT
    assert response.content == b"Hello, world!\n"


def test_hello_async_under_wsgi(client):
    response = client.get("/hello-async")
    assert response.status_code == 200
    assert response.content == b"Hello, world!\n"


def test_async_views_stay_coroutine_functions():
    # Django runs a view on the event loop only if it is a coroutine function; the
    # parameter decorator must not hide that.
    assert views.hello_async.__code__.co_flags & 0x80
    assert views.io_async.__code__.co_flags & 0x80
    assert not views.io.__code__.co_flags & 0x80


# --- /products and /api/products --------------------------------------------------


def test_seed_is_deterministic_and_idempotent(seeded):
    first = list(Product.objects.values())
    call_command("seed_products", stdout=open(os.devnull, "w"))
    assert list(Product.objects.values()) == first
    assert len(first) == PRODUCT_COUNT == 50
    assert product_fields(1) == {
        "sku": "SKU-0001", "name": "Sturdy Lamp", "category": "home",
        "price": Decimal("41.99"), "stock": 13,
    }


def test_products_page(client, seeded):
    response = client.get("/products")
    assert response.status_code == 200
    assert response["Content-Type"] == "text/html; charset=utf-8"
    html = response.content.decode()
    assert html.count("<td>SKU-") == 50
    assert "<td>SKU-0001</td><td>Sturdy Lamp</td><td>home</td>" in html
    assert "SKU-0050" in html


def test_products_page_without_rows_says_how_to_seed(client, db):
    response = client.get("/products")
    assert response.status_code == 200
    assert b"seed_products" in response.content


def test_api_products(client, seeded):
    response = client.get("/api/products")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    data = response.json()
    assert data["count"] == 50
    assert len(data["products"]) == 50
    first = data["products"][0]
    assert first == {"id": first["id"], "sku": "SKU-0001", "name": "Sturdy Lamp",
                     "category": "home", "price": "41.99", "stock": 13}
    assert [row["sku"] for row in data["products"]] == [f"SKU-{n:04d}" for n in range(1, 51)]


# --- parameters: parsed and bounded -----------------------------------------------

# (path, parameter, low, high) for every query parameter of the site.
PARAMETERS = [
    ("/io", "ms", 0, 10_000),
    ("/io-async", "ms", 0, 10_000),
    ("/cpu", "n", 1, 5_000_000),
    ("/stream", "chunks", 1, 1000),
    ("/stream", "delay_ms", 0, 10_000),
    ("/events", "count", 1, 1000),
    ("/events", "interval_ms", 0, 10_000),
]
NOT_NUMBERS = ["", "abc", "-1", "+5", " 5", "5 ", "1e3", "5.0", "0x10", "1_000", "\u0665", "9" * 5000]


def bad_values(low, high):
    return NOT_NUMBERS + [str(high + 1), str(10**12)] + ([str(low - 1)] if low > 0 else [])


@pytest.mark.parametrize("path, name, low, high", PARAMETERS)
def test_bad_parameter_is_400_with_a_one_line_reason(client, path, name, low, high):
    for value in bad_values(low, high):
        response = client.get(path, {name: value})
        assert response.status_code == 400, value
        assert response["Content-Type"] == TEXT
        body = response.content.decode()
        assert body.endswith("\n") and body.count("\n") == 1, body
        assert body.startswith(f"{name} must be a whole number from {low} to {high}, got ")
        assert len(body) < 120


@pytest.mark.parametrize("path, name, low, high",
                         [row for row in PARAMETERS if row[0] in ("/io-async", "/events")])
def test_bad_parameter_is_400_under_asgi(path, name, low, high):
    response = async_get(path, data={name: str(high + 1)})
    assert response.status_code == 400
    assert response["Content-Type"] == TEXT
    assert response.content.decode() == (
        f"{name} must be a whole number from {low} to {high}, got '{high + 1}'\n")


@pytest.mark.parametrize("path, name, low, high", PARAMETERS)
def test_bounds_are_inclusive(path, name, low, high):
    for value in (low, high):
        assert bounded_int({name: str(value)}, name, 7, low, high) == value
    assert bounded_int({}, name, 7, low, high) == 7
    for value in bad_values(low, high):
        with pytest.raises(BadParameter):
            bounded_int({name: value}, name, 7, low, high)


# --- /io, /io-async, /cpu ----------------------------------------------------------


def test_io_sleeps(client):
    started = time.monotonic()
    response = client.get("/io", {"ms": "120"})
    assert time.monotonic() - started >= 0.12
    assert response.status_code == 200
    assert response["Content-Type"] == TEXT
    assert response.content == b"slept 120 ms\n"
    assert client.get("/io", {"ms": "0"}).content == b"slept 0 ms\n"


def test_io_async_sleeps():
    started = time.monotonic()
    response = async_get("/io-async", data={"ms": "120"})
    assert time.monotonic() - started >= 0.12
    assert response.status_code == 200
    assert response["Content-Type"] == TEXT
    assert response.content == b"slept 120 ms\n"


def test_cpu(client):
    response = client.get("/cpu", {"n": "1000"})
    assert response.status_code == 200
    assert response["Content-Type"] == TEXT
    expected = sum(i * i for i in range(1000)) % 1_000_003
    assert response.content == f"n=1000 result={expected}\n".encode()
    assert client.get("/cpu").content.startswith(b"n=20000 result=")


# --- /stream and /events -------------------------------------------------------------


def timed_chunks(response):
    """(seconds since the first chunk, chunk) for each chunk of a sync streaming response."""
    chunks = []
    for chunk in response.streaming_content:
        chunks.append((time.monotonic(), chunk))
    return [(moment - chunks[0][0], chunk) for moment, chunk in chunks]


def test_stream(client):
    response = client.get("/stream", {"chunks": "4", "delay_ms": "50"})
    assert response.status_code == 200
    assert response.streaming
    assert response["Content-Type"] == TEXT
    chunks = timed_chunks(response)
    assert [chunk for _, chunk in chunks] == [f"chunk {n} of 4\n".encode() for n in range(1, 5)]
    assert chunks[-1][0] >= 3 * 0.05


def test_stream_defaults_and_bounds(client):
    response = client.get("/stream", {"delay_ms": "0"})
    assert len(list(response.streaming_content)) == 10
    response = client.get("/stream", {"chunks": "1000", "delay_ms": "0"})
    assert len(list(response.streaming_content)) == 1000


def check_events(chunks, count, interval):
    assert [chunk for _, chunk in chunks] == [f"data: {n}\n\n".encode() for n in range(1, count + 1)]
    # Loose on purpose: a busy machine may be late, never early.
    assert chunks[-1][0] >= (count - 1) * interval
    assert all(later[0] - earlier[0] >= interval * 0.9 for earlier, later in zip(chunks, chunks[1:]))


def test_events_under_wsgi_stream_from_a_sync_generator(client):
    response = client.get("/events", {"count": "5", "interval_ms": "60"})
    assert response.status_code == 200
    assert response["Content-Type"] == "text/event-stream"
    assert response["Cache-Control"] == "no-cache"
    assert not response.is_async
    check_events(timed_chunks(response), 5, 0.06)


def test_events_under_asgi_stream_from_an_async_generator():
    async def exchange():
        response = await AsyncClient().get("/events", {"count": "5", "interval_ms": "60"})
        chunks = []
        async for chunk in response.streaming_content:
            chunks.append((time.monotonic(), chunk))
        return response, [(moment - chunks[0][0], chunk) for moment, chunk in chunks]

    response, chunks = run_async(exchange)
    assert response.status_code == 200
    assert response["Content-Type"] == "text/event-stream"
    assert response["Cache-Control"] == "no-cache"
    assert response.is_async
    check_events(chunks, 5, 0.06)


def test_events_defaults_and_upper_count(client):
    response = client.get("/events", {"interval_ms": "0"})
    assert len(list(response.streaming_content)) == 10
    response = client.get("/events", {"count": "1000", "interval_ms": "0"})
    events = list(response.streaming_content)
    assert len(events) == 1000 and events[-1] == b"data: 1000\n\n"


# --- /echo -----------------------------------------------------------------------------

# Larger than DATA_UPLOAD_MAX_MEMORY_SIZE (2.5 MB): a view that touched request.body
# would answer 400 (RequestDataTooBig), so passing shows the body was streamed.
BIG_BODY = hashlib.shake_256(b"sample site").digest(5 * 1024 * 1024 + 7)


def test_echo_hashes_a_multi_megabyte_body(client):
    response = client.post("/echo", BIG_BODY, content_type="application/octet-stream")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert response.json() == {
        "method": "POST",
        "content_type": "application/octet-stream",
        "body_length": len(BIG_BODY),
        "sha256": hashlib.sha256(BIG_BODY).hexdigest(),
    }


def test_echo_under_asgi():
    async def exchange():
        return await AsyncClient().post("/echo", BIG_BODY, content_type="application/octet-stream")

    response = run_async(exchange)
    assert response.status_code == 200
    assert response.json()["body_length"] == len(BIG_BODY)
    assert response.json()["sha256"] == hashlib.sha256(BIG_BODY).hexdigest()


@pytest.mark.parametrize("method", ["put", "patch", "delete"])
def test_echo_accepts_any_method_without_a_csrf_token(method):
    client = Client(enforce_csrf_checks=True)
    response = getattr(client, method)("/echo", b"abc", content_type="text/plain")
    assert response.status_code == 200
    assert response.json() == {
        "method": method.upper(), "content_type": "text/plain", "body_length": 3,
        "sha256": hashlib.sha256(b"abc").hexdigest(),
    }


def test_echo_without_a_body(client):
    assert client.get("/echo").json() == {
        "method": "GET", "content_type": "", "body_length": 0,
        "sha256": hashlib.sha256(b"").hexdigest(),
    }


def test_echo_reads_a_dechunked_wsgi_body_without_content_length(client):
    body = b"chunked " * 10_000
    response = client.generic("POST", "/echo", **{"wsgi.input": io.BytesIO(body),
                                                  "wsgi.input_terminated": True})
    assert response.json()["body_length"] == len(body)
    assert response.json()["sha256"] == hashlib.sha256(body).hexdigest()


# --- /inspect -------------------------------------------------------------------------

SECRET_HEADERS = {"Cookie": "session=s3cr3t", "Authorization": "Bearer s3cr3t", "X-Api-Token": "s3cr3t"}


def test_inspect_under_wsgi(client):
    response = client.get("/inspect", {"a": "1"}, headers={**SECRET_HEADERS, "X-Lesson": "one"},
                          PATH="/usr/bin", GATEWAY_INTERFACE="CGI/1.1")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert b"s3cr3t" not in response.content
    data = response.json()
    assert data["interface"] == "wsgi"
    meta = data["meta"]
    assert meta["REQUEST_METHOD"] == "GET"
    assert meta["PATH_INFO"] == "/inspect"
    assert meta["QUERY_STRING"] == "a=1"
    assert meta["GATEWAY_INTERFACE"] == "CGI/1.1"
    assert meta["HTTP_X_LESSON"] == "one"
    assert meta["wsgi.version"] == [1, 0]
    assert meta["wsgi.input"] == "<FakePayload>"
    assert "PATH" not in meta  # the process environment is not part of the interface
    assert sorted(data["withheld"]) == ["HTTP_AUTHORIZATION", "HTTP_COOKIE", "HTTP_X_API_TOKEN"]
    assert not set(data["withheld"]) & set(meta)


def test_inspect_under_asgi():
    response = async_get("/inspect", data={"a": "1"}, headers={**SECRET_HEADERS, "X-Lesson": "one"})
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert b"s3cr3t" not in response.content
    data = response.json()
    assert data["interface"] == "asgi"
    scope = data["scope"]
    assert scope["type"] == "http"
    assert scope["method"] == "GET"
    assert scope["path"] == "/inspect"
    # Servers hand bytes (ASGI HTTP spec); Django's AsyncClient hands a str here.
    assert scope["query_string"] in ("b'a=1'", "a=1")
    assert ["b'x-lesson'", "b'one'"] in scope["headers"]
    assert sorted(data["withheld"]) == ["authorization", "cookie", "x-api-token"]
    json.dumps(scope)


def test_json_safe():
    class Thing:
        pass

    assert views.json_safe({"a": (1, b"\x00x", None), 2: [Thing(), Thing, 1.5, True]}) == {
        "a": [1, "b'\\x00x'", None], "2": ["<Thing>", "<class Thing>", 1.5, True],
    }


# --- which server served the page; the rendered source at /docs/ ----------------------

CGI_ENVIRON = {"wsgi.run_once": True, "GATEWAY_INTERFACE": "CGI/1.1",
               "SERVER_SOFTWARE": "servers.cgi_server/1.0"}


@pytest.fixture
def docs_root(settings, tmp_path):
    """A rendered-docs folder of our own, with a file outside it that must stay unreachable."""
    root = tmp_path / "docs"
    (root / "assets").mkdir(parents=True)
    (root / "index.html").write_text("<h1>reading order</h1>")
    (root / "servers.cgi_server.html").write_text("<h1>cgi_server.py</h1>")
    (root / "servers.asgi_server.html").write_text("<h1>asgi_server.py</h1>")
    (root / "assets" / "page.css").write_text("body { margin: 0 }")
    (tmp_path / "secret.txt").write_text("outside the docs")
    (root / "escape.html").symlink_to(tmp_path / "secret.txt")
    settings.DOCS_ROOT = root
    return root


def served_section(html):
    return re.search(r'<section class="served">.*?</section>', html, re.S).group(0)


def test_pages_say_they_were_served_through_wsgi(client, settings, tmp_path):
    settings.DOCS_ROOT = tmp_path / "not-built"
    for path in ("/", "/chat"):
        served = served_section(client.get(path).content.decode())
        assert '<strong class="interface">WSGI 1.0 (PEP 3333)</strong>' in served
        assert "<code>wsgi.version</code></td><td><code>(1, 0)</code>" in served
        assert "/docs/" not in served  # nothing to link to before `make docs`


def test_chat_under_wsgi_explains_why_it_cannot_connect(client):
    html = client.get("/chat").content.decode()
    assert 'id="why-not"' in html
    assert "once per request" in html and "make demo-asgi" in html
    assert re.search(r'<button id="join-button" disabled>', html)


def test_pages_under_cgi_name_the_runner_and_link_its_source(client, docs_root):
    for path in ("/", "/chat"):
        served = served_section(client.get(path, **CGI_ENVIRON).content.decode())
        assert '<strong class="server">servers.cgi_server/1.0</strong>' in served
        assert "CGI/1.1 (RFC 3875)" in served
        assert '<a class="docs" href="/docs/servers.cgi_server.html">' in served


def test_pages_under_asgi_say_so_and_the_chat_can_connect(docs_root, monkeypatch):
    html = async_get("/chat").content.decode()
    served = served_section(html)
    assert '<strong class="interface">ASGI 3.0' in served
    assert "<code>scope[&#x27;asgi&#x27;]</code>" in served
    assert 'id="why-not"' not in html
    assert '<button id="join-button">' in html
    # The test runner is no server with a page of its own: the link goes to the index.
    assert '<a class="docs" href="/docs/index.html">' in served
    monkeypatch.setattr(views, "program_name", lambda: "servers.asgi_server")
    served = served_section(async_get("/").content.decode())
    assert '<strong class="server">servers.asgi_server</strong>' in served
    assert '<a class="docs" href="/docs/servers.asgi_server.html">' in served


def test_server_names_get_their_installed_version():
    assert re.fullmatch(r"uvicorn \d+\.\d+\.\d+", views.with_version("uvicorn"))
    assert views.with_version("gunicorn/27.0.1") == "gunicorn/27.0.1"
    assert views.with_version("servers.asgi_server") == "servers.asgi_server"


def test_docs_serves_the_files_of_the_rendered_folder(client, docs_root):
    response = client.get("/docs/")
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == b"<h1>reading order</h1>"
    response = client.get("/docs/servers.cgi_server.html")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")
    assert b"".join(response.streaming_content) == b"<h1>cgi_server.py</h1>"
    response = client.get("/docs/assets/page.css")
    assert response.status_code == 200 and response["Content-Type"].startswith("text/css")


@pytest.mark.parametrize("path", ["/docs/missing.html", "/docs/assets", "/docs/assets/",
                                  "/docs/../secret.txt", "/docs/%2e%2e/secret.txt",
                                  "/docs/assets/../../secret.txt", "/docs/escape.html",
                                  "/docs//etc/passwd"])
def test_docs_is_404_for_anything_but_a_file_inside_the_folder(client, docs_root, path):
    response = client.get(path)
    assert response.status_code == 404, path
    assert b"outside the docs" not in response.content


def test_docs_is_404_before_the_docs_are_built(client, settings, tmp_path):
    settings.DOCS_ROOT = tmp_path / "not-built"
    assert client.get("/docs/").status_code == 404
    assert client.get("/docs/index.html").status_code == 404


# --- settings, entry points, manage.py ------------------------------------------------


def load_settings(monkeypatch, **environ):
    """A fresh copy of sample_site/settings.py evaluated under `environ`."""
    for name in ("DJANGO_DEBUG", "DJANGO_SECRET_KEY", "SAMPLE_SITE_DB", "CHANNEL_LAYER", "REDIS_URL",
                 "SAMPLE_SITE_DOCS"):
        monkeypatch.delenv(name, raising=False)
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    spec = importlib.util.spec_from_file_location("fresh_settings", REPO / "sample_site" / "settings.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_settings_defaults(monkeypatch):
    settings = load_settings(monkeypatch)
    assert settings.DEBUG is False
    assert "insecure" in settings.SECRET_KEY
    assert settings.DATABASES["default"]["NAME"] == REPO / "var" / "db.sqlite3"
    assert {"localhost", "127.0.0.1", "[::1]"} <= set(settings.ALLOWED_HOSTS)
    assert settings.USE_TZ is True


def test_settings_from_the_environment(monkeypatch, tmp_path):
    database = tmp_path / "new" / "folder" / "site.sqlite3"
    settings = load_settings(monkeypatch, DJANGO_DEBUG="1", DJANGO_SECRET_KEY="k" * 50,
                             SAMPLE_SITE_DB=str(database))
    assert settings.DEBUG is True
    assert settings.SECRET_KEY == "k" * 50
    assert settings.DATABASES["default"]["NAME"] == database
    assert database.parent.is_dir()
    assert load_settings(monkeypatch, DJANGO_DEBUG="yes").DEBUG is False


def test_channel_layer_and_docs_settings(monkeypatch, tmp_path):
    settings = load_settings(monkeypatch)
    assert settings.CHANNEL_LAYERS["default"]["BACKEND"] == "channels.layers.InMemoryChannelLayer"
    assert settings.DOCS_ROOT == REPO / "var" / "docs"
    settings = load_settings(monkeypatch, CHANNEL_LAYER="redis")
    assert settings.CHANNEL_LAYERS["default"] == {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {"hosts": ["redis://127.0.0.1:6379/0"]}}
    settings = load_settings(monkeypatch, CHANNEL_LAYER="redis", REDIS_URL="redis://10.0.0.5:7000/2",
                             SAMPLE_SITE_DOCS=str(tmp_path))
    assert settings.CHANNEL_LAYERS["default"]["CONFIG"]["hosts"] == ["redis://10.0.0.5:7000/2"]
    assert settings.DOCS_ROOT == tmp_path
    with pytest.raises(ImproperlyConfigured, match="^CHANNEL_LAYER must be memory or redis, got 'rabbit'$"):
        load_settings(monkeypatch, CHANNEL_LAYER="rabbit")


def test_entry_points_expose_application():
    from sample_site.asgi import application as asgi_application, django_application
    from sample_site.wsgi import application as wsgi_application

    assert callable(wsgi_application) and callable(asgi_application)
    # HTTP reaches Django's own handler untouched; WebSocket goes through Channels.
    assert asgi_application.application_mapping["http"] is django_application
    assert set(asgi_application.application_mapping) == {"http", "websocket"}


def test_manage_py_migrates_and_seeds_from_the_repo_root(tmp_path):
    database = tmp_path / "var" / "db.sqlite3"
    environ = {**os.environ, "SAMPLE_SITE_DB": str(database)}
    manage = [sys.executable, "sample_site/manage.py"]
    for command in (["migrate", "--noinput"], ["seed_products"], ["seed_products"]):
        result = subprocess.run(manage + command, cwd=REPO, env=environ, capture_output=True, text=True)
        assert result.returncode == 0, result.stderr
    assert re.search(r"50 products present \(0 created\)", result.stdout)
    with sqlite3.connect(database) as connection:
        assert connection.execute("select count(*) from shop_product").fetchone() == (50,)


def test_the_stylesheet_is_served_by_django_without_nginx(client):
    html = client.get("/").content.decode()
    assert 'href="/static/shop/site.css"' in html
    response = client.get("/static/shop/site.css")
    assert response.status_code == 200
    assert b"font-family" in b"".join(response.streaming_content)
