"""The URL table of the sample site (the same under every server; see docs/design.md)."""

from django.contrib.staticfiles.views import serve as serve_static
from django.urls import path, re_path

from sample_site.shop import views

urlpatterns = [
    path("", views.index, name="index"),
    path("hello", views.hello, name="hello"),
    path("hello-async", views.hello_async, name="hello-async"),
    path("products", views.products, name="products"),
    path("api/products", views.api_products, name="api-products"),
    path("io", views.io, name="io"),
    path("io-async", views.io_async, name="io-async"),
    path("cpu", views.cpu, name="cpu"),
    path("stream", views.stream, name="stream"),
    path("events", views.events, name="events"),
    path("echo", views.echo, name="echo"),
    path("inspect", views.inspect_request, name="inspect"),
    path("chat", views.chat, name="chat"),
    # The annotated source that `make docs` renders into var/docs (issue 16).
    path("docs/", views.docs, name="docs-index"),
    path("docs/<path:path>", views.docs, name="docs"),
    # The stylesheet, found by the staticfiles finders, when no nginx is in front: the pages
    # look the same under every server. Behind nginx (scripts/nginx.py) /static/ is served
    # from var/static and never reaches Django; notebook 05 measures the difference.
    re_path(r"^static/(?P<path>.*)$", serve_static, {"insecure": True}),
]
# The WebSocket endpoints, /ws/echo and /ws/chat/<room>, are routed by Channels in
# sample_site/asgi.py (table: shop/routing.py). Under a WSGI server Django sees a
# WebSocket handshake as a plain GET and answers 404 from this table.
