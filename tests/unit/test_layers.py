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
        "loaded = {'shopify_app', 'httpx', 'shopify_sessions.tokens'} & set(sys.modules)\n"
        "assert not loaded, loaded\n"
    )
    assert done.returncode == 0, done.stderr


def test_the_lifecycle_names_its_extra_when_shopifyapp_is_missing() -> None:
    done = _run("import sys; sys.modules['shopify_app'] = None\nimport shopify_sessions.tokens\n")
    assert done.returncode != 0
    assert "pip install 'shopify-sessions[shopifyapp]'" in done.stderr


def test_a_backend_never_loads_another() -> None:
    """Nor a layer above: the Redis storage loads no SQLAlchemy and no lifecycle, webhook,
    telemetry or framework module of this package (redis-py 8 itself imports OpenTelemetry
    when it is installed, so only this package's modules are looked at)."""
    done = _run(
        "import sys\n"
        "import shopify_sessions.redis\n"
        "assert 'sqlalchemy' not in sys.modules and 'shopify_sessions.sqlalchemy' not in"
        " sys.modules, sorted(m for m in sys.modules if 'sqlalchemy' in m)\n"
        "upper = [m for m in sys.modules if m.startswith('shopify_sessions.')\n"
        "         and m.split('.')[1] not in ('redis', '_encryption', '_errors', '_locks',\n"
        "         '_session', '_scopes', '_shop', '_storage', '_time', '_memory',\n"
        "         '_walks', '_wrappers')]\n"
        "assert not upper, upper\n"
    )
    assert done.returncode == 0, done.stderr
    done = _run(
        "import sys\n"
        "import shopify_sessions.sqlalchemy\n"
        "assert 'shopify_sessions.redis' not in sys.modules and 'redis' not in sys.modules\n"
    )
    assert done.returncode == 0, done.stderr
    done = _run(
        "import sys\n"
        "import shopify_sessions.dynamodb\n"
        "loaded = {'sqlalchemy', 'redis', 'shopify_sessions.sqlalchemy',\n"
        "          'shopify_sessions.redis', 'shopify_sessions.tokens',\n"
        "          'shopify_sessions.webhooks'} & set(sys.modules)\n"
        "assert not loaded, loaded\n"
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
            upward = any(
                layer in target for layer in ("tokens", "shopify_app", "sqlalchemy", "cli")
            )
            if inside:
                assert not upward, (module, target)
            else:
                assert "testing" not in target, (module, target)
    done = _run(
        "import sys\n"
        "import shopify_sessions.testing\n"
        "loaded = {'shopify_app', 'httpx', 'jwt', 'shopify_sessions.tokens',\n"
        "          'shopify_sessions.sqlalchemy'} & set(sys.modules)\n"
        "assert not loaded, loaded\n"
    )
    assert done.returncode == 0, done.stderr


# --- the layers above the lifecycle: webhooks, telemetry, framework integrations ----------

import ast  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

PACKAGE = Path(__file__).resolve().parents[2] / "src" / "shopify_sessions"
#: Each module of the package, by layer, bottom to top; a module imports its own layer's
#: and lower layers' only. Backends never import each other.
LAYERS = [
    (
        "model and storage",
        [
            "__init__",
            "_batch",
            "_encryption",
            "_errors",
            "_locks",
            "_memory",
            "_scopes",
            "_session",
            "_shop",
            "_storage",
            "_time",
            "_walks",
            "_wrappers",
        ],
    ),
    ("backends", ["sqlalchemy", "redis", "dynamodb"]),
    ("lifecycle", ["telemetry", "tokens", "shopify_app", "webhooks"]),
    (
        "frameworks, command and testing",
        ["_app_storage", "_web", "fastapi", "flask", "django", "cli", "testing"],
    ),
]
FRAMEWORKS = {"fastapi": "fastapi", "flask": "flask", "django": "django"}
UPPER = [
    "shopify_sessions.tokens",
    "shopify_sessions.webhooks",
    "shopify_sessions.telemetry",
    "shopify_sessions._web",
    "shopify_sessions.fastapi",
    "shopify_sessions.flask",
    "shopify_sessions.django",
    "opentelemetry",
    "fastapi",
    "starlette",
    "flask",
    "django",
]


def _layer(module: str) -> int:
    """The layer of ``shopify_sessions.<module>`` (its first component)."""
    top = module.split(".")[0] or "__init__"
    for index, (_, members) in enumerate(LAYERS):
        if top in members:
            return index
    raise AssertionError(f"shopify_sessions.{module} is in no layer: add it to LAYERS")


def _imports(path: Path) -> list[str]:
    """The package modules a source file imports (relative imports resolved)."""
    package = list(path.relative_to(PACKAGE).parts[:-1])
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                target = [*base, *(node.module.split(".") if node.module else [])]
                if not node.module:
                    found += [_module_or_package(base, alias.name) for alias in node.names]
                    continue
                found.append(".".join(target))
            elif node.module and node.module.startswith("shopify_sessions."):
                found.append(node.module.removeprefix("shopify_sessions."))
        elif isinstance(node, ast.Import):
            found += [
                alias.name.removeprefix("shopify_sessions.")
                for alias in node.names
                if alias.name.startswith("shopify_sessions.")
            ]
    return [module for module in found if module]


def _module_or_package(package: list[str], name: str) -> str:
    """``from <package> import <name>``: the submodule ``name``, or the package itself."""
    folder = PACKAGE.joinpath(*package)
    if (folder / f"{name}.py").exists() or (folder / name).is_dir():
        return ".".join([*package, name])
    return ".".join(package) or "__init__"


def test_no_module_imports_a_layer_above_its_own() -> None:
    upward = []
    for path in sorted(PACKAGE.rglob("*.py")):
        source = ".".join(path.relative_to(PACKAGE).with_suffix("").parts)
        for target in _imports(path):
            if _layer(target) > _layer(source):
                upward.append(f"{source} imports {target}")
            elif _layer(source) == 1 and _layer(target) == 1:
                assert source.split(".")[0] == target.split(".")[0], f"{source} -> {target}"
    assert not upward


def test_the_storages_load_no_lifecycle_webhook_telemetry_or_framework() -> None:
    done = _run(
        "import sys\n"
        "import shopify_sessions, shopify_sessions.sqlalchemy\n"
        "shopify_sessions.sqlalchemy.AsyncSQLAlchemySessionStorage\n"
        f"upper = {UPPER!r}\n"
        "loaded = [m for m in sys.modules if any(m == u or m.startswith(u + '.') for u in upper)]\n"
        "assert not loaded, loaded\n"
    )
    assert done.returncode == 0, done.stderr


def test_the_lifecycle_and_the_webhooks_load_no_framework() -> None:
    done = _run(
        "import sys\n"
        "import shopify_sessions.tokens, shopify_sessions.webhooks\n"
        "frameworks = ['fastapi', 'starlette', 'flask', 'django', 'shopify_sessions._web']\n"
        "loaded = [m for m in sys.modules if m.split('.')[0] in frameworks or m in frameworks]\n"
        "assert not loaded, loaded\n"
    )
    assert done.returncode == 0, done.stderr


def test_the_webhooks_need_no_shopifyapp() -> None:
    done = _run(
        "import sys; sys.modules['shopify_app'] = None\n"
        "from shopify_sessions import MemorySessionStorage\n"
        "from shopify_sessions.webhooks import apply_webhook\n"
        "result = apply_webhook(MemorySessionStorage(), topic='app/uninstalled', shop='a', "
        "payload={})\n"
        "assert result.effect == 'unchanged', result\n"
    )
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize("module", sorted(FRAMEWORKS))
def test_each_integration_names_its_extra_and_loads_no_other_framework(module: str) -> None:
    missing = _run(
        f"import sys; sys.modules[{FRAMEWORKS[module]!r}] = None\n"
        f"import shopify_sessions.{module}\n"
    )
    assert missing.returncode != 0
    assert f"pip install 'shopify-sessions[{module}]'" in missing.stderr
    others = sorted(set(FRAMEWORKS.values()) - {FRAMEWORKS[module]})
    done = _run(
        f"import sys\nimport shopify_sessions.{module}\n"
        f"loaded = [m for m in sys.modules if m.split('.')[0] in {others!r}]\n"
        "assert not loaded, loaded\n"
    )
    assert done.returncode == 0, done.stderr
