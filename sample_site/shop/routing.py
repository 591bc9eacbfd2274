"""The WebSocket URL table of the sample site (Channels' counterpart of urls.py)."""

from django.urls import path

from sample_site.shop import consumers

websocket_urlpatterns = [
    path("ws/echo", consumers.echo),
    # Any room name reaches the consumer, which refuses a bad one with a 403:
    # an unmatched path would be an error in the router, a 500 to the client.
    path("ws/chat/<str:room>", consumers.ChatConsumer.as_asgi()),
]
