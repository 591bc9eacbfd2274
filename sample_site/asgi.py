"""The ASGI entry point: `sample_site.asgi:application` (ASGI 3)."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "sample_site.settings")

application = get_asgi_application()
