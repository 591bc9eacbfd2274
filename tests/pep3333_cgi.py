#!/usr/bin/env python3
"""tests/pep3333_apps.py as a CGI script, through servers/cgi_app.py."""
import os
import sys

# The runner starts us in tests/; the repository root makes `servers` and `tests` importable.
sys.path[0] = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

from servers import cgi_app  # noqa: E402
from tests.pep3333_apps import app  # noqa: E402

cgi_app.run(app)
