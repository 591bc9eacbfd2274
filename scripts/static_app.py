"""The sample site with Django serving its own static files, to compare with nginx.

Under DEBUG=0 Django serves no static files; `manage.py runserver` wraps the site in
django.contrib.staticfiles' StaticFilesHandler to do it in development. The
production notebook wraps it the same way, so the same stylesheet can be fetched
from Django (through a WSGI server) and from nginx (from var/static):

    python -m gunicorn scripts.static_app:application
"""

from django.contrib.staticfiles.handlers import StaticFilesHandler

from sample_site.wsgi import application as site

application = StaticFilesHandler(site)
