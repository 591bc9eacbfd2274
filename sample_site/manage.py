#!/usr/bin/env python
"""Django's command-line utility for the sample site.

Run from the repository root: `python sample_site/manage.py migrate`.
"""

import os
import sys
from pathlib import Path

# Python puts this file's folder on sys.path; the site is imported as the
# package `sample_site`, so the repository root must be there instead.
REPO_DIR = Path(__file__).resolve().parent.parent
sys.path[0] = str(REPO_DIR)

if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "sample_site.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)
