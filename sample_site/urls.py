"""The URL table of the sample site (the same under every server; see DESIGN.md)."""

from django.urls import path

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
]
# The WebSocket endpoints, /ws/echo and /ws/chat/<room>, are routed by Channels in
# sample_site/asgi.py (table: shop/routing.py). Under a WSGI server Django sees a
# WebSocket handshake as a plain GET and answers 404 from this table.
