"""Settings of the example Django project: what a Shopify app needs, from the environment.

Run it (``pip install 'shopify-sessions[django]'``)::

    python examples/django_app/manage.py migrate     # creates the sessions table
    SHOPIFY_API_KEY=... SHOPIFY_API_SECRET=... python examples/django_app/manage.py runserver
"""

import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "an-example-key-to-replace")
DEBUG = False
ALLOWED_HOSTS = os.environ.get("ALLOWED_HOSTS", "localhost,127.0.0.1,testserver").split(",")
ROOT_URLCONF = "shopapp.urls"
# The sessions table's migration, the checks of SHOPIFY_SESSIONS, manage.py shopify_sessions.
INSTALLED_APPS = ["shopify_sessions.django"]
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
]
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("SQLITE_PATH", BASE_DIR / "db.sqlite3"),
    }
}
USE_TZ = True
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,  # keep the loggers of the libraries imported before
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {"shopify_sessions": {"handlers": ["console"], "level": "INFO"}},
}

SHOPIFY_API_KEY = os.environ.get("SHOPIFY_API_KEY", "")
SHOPIFY_API_SECRET = os.environ.get("SHOPIFY_API_SECRET", "")
SHOPIFY_SESSIONS = {
    # The sessions table lives in this database, and `manage.py migrate` creates it there
    # ("URL": "postgresql://..." for another database; `LAYOUT`: "prisma" or "drizzle" for a
    # table shared with a Node app using that adapter).
    "DATABASE": "default",
}
