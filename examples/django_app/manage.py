"""The example Django project's manage.py: ``python examples/django_app/manage.py runserver``,
or ``python examples/django_app/manage.py shopify_sessions check`` (any subcommand of the
``shopify-sessions`` command, on the table of the settings)."""

import os
import sys

if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "shopapp.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)
