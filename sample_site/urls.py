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
]
