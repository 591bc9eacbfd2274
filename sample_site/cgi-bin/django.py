#!/usr/bin/env python3
"""The sample Django site as a CGI script: one process, one request.

The CGI runner starts this file for every request, with the repository's
interpreter and this folder as the current directory:

    python -m servers.cgi_server sample_site/cgi-bin/django.py --bind 127.0.0.1:8000

Everything a long-running server does once (start Python, import Django, read
the settings, load the URL table) happens here again for each request; the
runner's --server-timing shows how long each of those steps takes.
"""

# The first statement: interpreter start-up ends here (the runner's "startup" phase).
import time; STARTED = time.monotonic()  # noqa: E401,E702

import os
import sys

# Python puts this script's folder first on sys.path, where `import django` would
# find this very file. The repository root (two folders up) takes its place, which
# makes `sample_site` and `servers` importable wherever the runner starts us.
sys.path[0] = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "sample_site.settings")

from django.core.wsgi import get_wsgi_application  # noqa: E402

from servers import cgi_app  # noqa: E402

application = get_wsgi_application()  # imports Django and runs django.setup()
IMPORTED = time.monotonic()

cgi_app.run(application, started=STARTED, imported=IMPORTED)
