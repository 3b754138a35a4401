"""MkDocs hooks (mkdocs.yml ``hooks:``).

After the build, every name in the ``__all__`` of the four public modules must have its own
entry in the API reference. ``__all__`` is read from the source with ``ast``, not through
griffe, so a name that griffe could not resolve (a re-export it cannot follow, a renamed
object) fails the build instead of silently missing from the reference.
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

from mkdocs.exceptions import PluginError

ROOT = Path(__file__).resolve().parents[2]
PUBLIC_MODULES = {
    "shopify_sessions": ("src/shopify_sessions/__init__.py", "reference/shopify_sessions/"),
    "shopify_sessions.sqlalchemy": (
        "src/shopify_sessions/sqlalchemy/__init__.py",
        "reference/sqlalchemy/",
    ),
    "shopify_sessions.redis": ("src/shopify_sessions/redis/__init__.py", "reference/redis/"),
    "shopify_sessions.shopify_app": (
        "src/shopify_sessions/shopify_app/__init__.py",
        "reference/shopify_app/",
    ),
}


def exported_names(source: Path) -> list[str]:
    """The literal ``__all__`` of a module's source."""
    for node in ast.parse(source.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Assign) and any(
            isinstance(target, ast.Name) and target.id == "__all__" for target in node.targets
        ):
            return list(ast.literal_eval(node.value))
    raise PluginError(f"{source}: no literal __all__")


def on_post_build(config: Any, **kwargs: Any) -> None:
    site = Path(config["site_dir"])
    missing = []
    for module, (source, page) in PUBLIC_MODULES.items():
        html_file = site / page / "index.html"
        if not html_file.exists():
            html_file = site / (page.rstrip("/") + ".html")
        html = html_file.read_text(encoding="utf-8") if html_file.exists() else ""
        for name in exported_names(ROOT / source):
            if f'id="{module}.{name}"' not in html:
                missing.append(f"{module}.{name}")
    if missing:
        raise PluginError(
            "not in the API reference (griffe did not resolve them, or a page lost them): "
            + ", ".join(missing)
        )
