"""The ASGI entry point: `sample_site.asgi:application` (ASGI 3).

HTTP goes to Django's own ASGI handler, exactly as before Channels; WebSocket
connections go through Channels' router to the consumers of shop/routing.py.
"""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "sample_site.settings")

# Set up Django (settings, apps) before importing anything that uses models or
# settings: the consumers and Channels' origin check do.
django_application = get_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402

from sample_site.shop.routing import websocket_urlpatterns  # noqa: E402

application = ProtocolTypeRouter({
    "http": django_application,
    # A browser sends the page's origin with the handshake; one from another site
    # (or none at all) is refused with a 403, so a page elsewhere cannot open a chat
    # socket in the name of a visitor. Clients outside a browser send an Origin
    # header naming one of ALLOWED_HOSTS, e.g. Origin: http://127.0.0.1:8000.
    "websocket": AllowedHostsOriginValidator(URLRouter(websocket_urlpatterns)),
})
