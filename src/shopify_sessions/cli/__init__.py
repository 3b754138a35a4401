"""The ``shopify-sessions`` command: check, create, upgrade, clean up and move a sessions table.

Installed with ``pip install 'shopify-sessions[cli]'`` (Typer, Rich and Alembic). Each
subcommand lives in a module of its own and is registered in ``_app.py``.
"""

from __future__ import annotations


def main() -> None:
    """Run the command (the ``shopify-sessions`` console script)."""
    try:
        from ._app import run
    except ImportError as error:  # pragma: no cover - depends on the install
        import sys

        print(
            f"shopify-sessions: the command needs its extra ({error.name} is missing): "
            "pip install 'shopify-sessions[cli]'",
            file=sys.stderr,
        )
        raise SystemExit(2) from error
    run()


__all__ = ["main"]
