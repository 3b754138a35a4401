"""Imports go one way: the model and the storages never load the token lifecycle, and the
lifecycle says which extra it needs when shopifyapp is missing."""

from __future__ import annotations

import subprocess
import sys


def _run(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)


def test_the_storages_load_neither_shopifyapp_nor_httpx() -> None:
    done = _run(
        "import sys\n"
        "import shopify_sessions, shopify_sessions.sqlalchemy\n"
        "shopify_sessions.sqlalchemy.AsyncSQLAlchemySessionStorage\n"
        "loaded = {'shopify_app', 'httpx', 'shopify_sessions.shopify_app'} & set(sys.modules)\n"
        "assert not loaded, loaded\n"
    )
    assert done.returncode == 0, done.stderr


def test_the_lifecycle_names_its_extra_when_shopifyapp_is_missing() -> None:
    done = _run(
        "import sys; sys.modules['shopify_app'] = None\nimport shopify_sessions.shopify_app\n"
    )
    assert done.returncode != 0
    assert "pip install 'shopify-sessions[shopifyapp]'" in done.stderr


def test_a_backend_never_loads_another() -> None:
    done = _run(
        "import sys\n"
        "import shopify_sessions.redis\n"
        "assert 'sqlalchemy' not in sys.modules and 'shopify_sessions.sqlalchemy' not in"
        " sys.modules, sorted(m for m in sys.modules if 'sqlalchemy' in m)\n"
    )
    assert done.returncode == 0, done.stderr
    done = _run(
        "import sys\n"
        "import shopify_sessions.sqlalchemy\n"
        "assert 'shopify_sessions.redis' not in sys.modules and 'redis' not in sys.modules\n"
    )
    assert done.returncode == 0, done.stderr


def test_the_testing_layer_sits_on_top_and_nothing_imports_it() -> None:
    """shopify_sessions.testing takes the model and nothing above it; nothing takes it."""
    import ast
    from pathlib import Path

    import shopify_sessions

    package = Path(shopify_sessions.__file__).parent
    for module in package.rglob("*.py"):
        inside = module.relative_to(package).parts[0] == "testing"
        for node in ast.walk(ast.parse(module.read_text())):
            if not isinstance(node, ast.ImportFrom):
                continue
            target = "." * node.level + (node.module or "")
            upward = any(layer in target for layer in ("shopify_app", "sqlalchemy", "cli"))
            if inside:
                assert not upward, (module, target)
            else:
                assert "testing" not in target, (module, target)
    done = _run(
        "import sys\n"
        "import shopify_sessions.testing\n"
        "loaded = {'shopify_app', 'httpx', 'jwt', 'shopify_sessions.shopify_app',\n"
        "          'shopify_sessions.sqlalchemy'} & set(sys.modules)\n"
        "assert not loaded, loaded\n"
    )
    assert done.returncode == 0, done.stderr
