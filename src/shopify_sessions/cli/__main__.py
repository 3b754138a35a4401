"""``python -m shopify_sessions.cli``: the same as the ``shopify-sessions`` command."""

from . import main

main()
