"""The WSGI entry point: `sample_site.wsgi:application` (PEP 3333)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "sample_site.settings")

application = get_wsgi_application()
