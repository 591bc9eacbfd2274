"""Settings of the sample site.

Deliberately lean: one app, no admin, sessions, auth, static files or middleware,
so that a request costs little framework time and the differences between the
servers show in the benchmarks.
"""

import os
from pathlib import Path

SITE_DIR = Path(__file__).resolve().parent
REPO_DIR = SITE_DIR.parent

# DEVELOPMENT FALLBACK ONLY: this key is public (it is in the repository).
# Anything reachable from outside loopback must set DJANGO_SECRET_KEY.
SECRET_KEY = os.environ.get(
    "DJANGO_SECRET_KEY",
    "insecure-development-key-do-not-use-in-production",
)

DEBUG = os.environ.get("DJANGO_DEBUG") == "1"

# "testserver" is the host name Django's test client sends.
ALLOWED_HOSTS = ["localhost", "127.0.0.1", "[::1]", "testserver"]

INSTALLED_APPS = ["sample_site.shop"]

MIDDLEWARE = []

ROOT_URLCONF = "sample_site.urls"
WSGI_APPLICATION = "sample_site.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "APP_DIRS": True,
        "OPTIONS": {"context_processors": []},
    },
]

# The database lives under the repository in var/ (git-ignored); migrate creates it.
DATABASE_PATH = Path(os.environ.get("SAMPLE_SITE_DB", REPO_DIR / "var" / "db.sqlite3"))
DATABASE_PATH.parent.mkdir(parents=True, exist_ok=True)
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": DATABASE_PATH,
        # Django's default CONN_MAX_AGE = 0: a connection per request, closed at its
        # end. Persistent connections would pile up under ASGI, where Django runs the
        # sync code of each request in a thread of its own (ThreadSensitiveContext).
    },
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Static files (the site's stylesheet): `manage.py collectstatic` gathers them into
# var/static (git-ignored), from where nginx serves them without asking Python
# (scripts/nginx.py). Without nginx, urls.py serves them through staticfiles' own view.
INSTALLED_APPS += ["django.contrib.staticfiles"]
STATIC_URL = "/static/"
STATIC_ROOT = REPO_DIR / "var" / "static"

USE_TZ = True
TIME_ZONE = "UTC"
USE_I18N = False

# ── WebSockets (Django Channels) and the rendered source, served at /docs/ ──
# The chat's channel layer: in memory (one process) unless CHANNEL_LAYER=redis,
# with which several server processes share one chat through Redis.
CHANNEL_LAYER = os.environ.get("CHANNEL_LAYER", "memory")
if CHANNEL_LAYER == "redis":
    CHANNEL_LAYERS = {"default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {"hosts": [os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")]},
    }}
elif CHANNEL_LAYER == "memory":
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
else:
    from django.core.exceptions import ImproperlyConfigured

    raise ImproperlyConfigured(f"CHANNEL_LAYER must be memory or redis, got {CHANNEL_LAYER!r}")
# `make docs` writes the annotated source here; the site serves it at /docs/ when present.
DOCS_ROOT = Path(os.environ.get("SAMPLE_SITE_DOCS", REPO_DIR / "var" / "docs"))

# Nothing is printed per request; errors (a 500 and its traceback) still reach stderr.
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"stderr": {"class": "logging.StreamHandler"}},
    "loggers": {"django": {"handlers": ["stderr"], "level": "ERROR", "propagate": False}},
}
