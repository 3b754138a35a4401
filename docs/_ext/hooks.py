"""MkDocs hooks (mkdocs.yml ``hooks:``).

After the build, two checks of the API reference fail the build:

- every name in the ``__all__`` of the public modules must have its own entry.
  ``__all__`` is read from the source with ``ast``, not through griffe, so a name that
  griffe could not resolve (a re-export it cannot follow, a renamed object) fails the
  build instead of silently missing from the reference;
- a signature or a list of bases must name nothing the reader cannot look up: a name of
  this package that the reference does not define (a private alias, a private base class,
  a private constant as a default), or any private name. mkdocstrings renders a name it
  could link as a link, and one it could not as ``<span title="its.path">``: those spans
  are what is checked.
"""

from __future__ import annotations

import ast
import re
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
    "shopify_sessions.dynamodb": (
        "src/shopify_sessions/dynamodb/__init__.py",
        "reference/dynamodb/",
    ),
    "shopify_sessions.tokens": (
        "src/shopify_sessions/tokens/__init__.py",
        "reference/tokens/",
    ),
    "shopify_sessions.webhooks": (
        "src/shopify_sessions/webhooks/__init__.py",
        "reference/webhooks/",
    ),
    "shopify_sessions.telemetry": ("src/shopify_sessions/telemetry.py", "reference/telemetry/"),
    "shopify_sessions.fastapi": ("src/shopify_sessions/fastapi.py", "reference/fastapi/"),
    "shopify_sessions.flask": ("src/shopify_sessions/flask.py", "reference/flask/"),
    "shopify_sessions.django": ("src/shopify_sessions/django/__init__.py", "reference/django/"),
    "shopify_sessions.testing": (
        "src/shopify_sessions/testing/__init__.py",
        "reference/testing/",
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


#: The parts of an object's entry that show names in code: its signature, its bases.
RENDERED_CODE = re.compile(
    r'<div class="doc-signature[^"]*">(?P<signature>.*?)</div>'
    r'|<p class="doc doc-class-bases">(?P<bases>.*?)</p>',
    re.DOTALL,
)
#: A name mkdocstrings could not link: its path in ``title``.
UNLINKED = re.compile(r'<span title="(?P<path>[^"]+)">')
HEADING = re.compile(r'<h\d id="(?P<id>[\w.]+)"')


def unlinked_names(html: str) -> list[str]:
    """``object: path`` of every name a signature or a list of bases renders that the
    reader cannot look up: this package's names without an entry, and private names."""
    found = []
    headings = [(match.start(), match["id"]) for match in HEADING.finditer(html)]
    for block in RENDERED_CODE.finditer(html):
        owner = next((id for start, id in reversed(headings) if start < block.start()), "?")
        for name in UNLINKED.finditer(block.group()):
            parts = name["path"].split(".")
            if parts[0] == "shopify_sessions" or any(part.startswith("_") for part in parts):
                found.append(f"{owner}: {name['path']}")
    return found


def on_post_build(config: Any, **kwargs: Any) -> None:
    site = Path(config["site_dir"])
    missing, unlinked = [], []
    for module, (source, page) in PUBLIC_MODULES.items():
        html_file = site / page / "index.html"
        if not html_file.exists():
            html_file = site / (page.rstrip("/") + ".html")
        html = html_file.read_text(encoding="utf-8") if html_file.exists() else ""
        for name in exported_names(ROOT / source):
            if f'id="{module}.{name}"' not in html:
                missing.append(f"{module}.{name}")
        unlinked += unlinked_names(html)
    if missing:
        raise PluginError(
            "not in the API reference (griffe did not resolve them, or a page lost them): "
            + ", ".join(missing)
        )
    if unlinked:
        raise PluginError(
            "signatures or bases in the API reference name what the reference does not "
            "define, or a private name:\n  " + "\n  ".join(unlinked)
        )
