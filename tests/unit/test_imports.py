"""A sync application needs neither greenlet nor SQLAlchemy's asyncio support."""

from __future__ import annotations

import subprocess
import sys

import pytest


def test_the_sync_storage_imports_without_asyncio_support() -> None:
    # Make `import greenlet` fail, as on an install without the async extras.
    code = (
        "import sys; sys.modules['greenlet'] = None\n"
        "from shopify_sessions.sqlalchemy import SQLAlchemySessionStorage\n"
        "storage = SQLAlchemySessionStorage('sqlite://')\n"
        "storage.create_table()\n"
        "assert storage.load_session('absent') is None\n"
        "assert 'sqlalchemy.ext.asyncio' not in sys.modules\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_the_async_storage_is_there_on_first_use() -> None:
    import shopify_sessions.sqlalchemy as package

    storage_type = package.AsyncSQLAlchemySessionStorage
    assert storage_type.__module__ == "shopify_sessions.sqlalchemy"
    assert "AsyncSQLAlchemySessionStorage" in package.__all__


def test_the_library_needs_no_cli_extra_and_the_command_names_it() -> None:
    hide = "import sys\nfor name in ('typer', 'rich', 'alembic'): sys.modules[name] = None\n"
    library = hide + (
        "import shopify_sessions, shopify_sessions.sqlalchemy\n"
        "storage = shopify_sessions.sqlalchemy.SQLAlchemySessionStorage('sqlite://')\n"
        "storage.create_table()\n"
    )
    done = subprocess.run([sys.executable, "-c", library], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    command = hide + "from shopify_sessions.cli import main\nmain()\n"
    done = subprocess.run([sys.executable, "-c", command], capture_output=True, text=True)
    assert done.returncode == 2
    assert "pip install 'shopify-sessions[cli]'" in done.stderr


def test_nothing_below_the_command_imports_it() -> None:
    import ast
    from pathlib import Path

    import shopify_sessions

    package = Path(shopify_sessions.__file__).parent
    for module in package.rglob("*.py"):
        if "cli" in module.relative_to(package).parts:
            continue
        for node in ast.walk(ast.parse(module.read_text())):
            if isinstance(node, ast.ImportFrom):
                names = [node.module or "", *(alias.name for alias in node.names)]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            else:
                continue
            assert not any("cli" in name.split(".") for name in names), (module, names)


def test_the_old_lifecycle_module_still_imports_with_a_deprecation_warning() -> None:
    # A subprocess: the warning is raised once, when the module is first imported, and
    # it must name the importing line (default filters show it only there, in __main__).
    code = (
        "import warnings\n"
        "with warnings.catch_warnings(record=True) as caught:\n"
        "    warnings.simplefilter('always')\n"
        "    from shopify_sessions.shopify_app import OfflineTokens\n"
        "import shopify_sessions.tokens as tokens\n"
        "assert OfflineTokens is tokens.OfflineTokens\n"
        "[warning] = caught\n"
        "assert warning.category is DeprecationWarning, warning\n"
        "assert 'shopify_sessions.tokens' in str(warning.message)\n"
        "assert warning.filename == '<string>', warning.filename\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    shown = subprocess.run(
        [sys.executable, "-c", "import shopify_sessions.shopify_app"],
        capture_output=True,
        text=True,
    )
    assert "DeprecationWarning" in shown.stderr


def test_the_old_name_of_column_kind_still_imports_with_a_deprecation_warning() -> None:
    import shopify_sessions.sqlalchemy as package

    with pytest.warns(DeprecationWarning, match=r"Kind is deprecated.*ColumnKind"):
        old = package.Kind
    assert old is package.ColumnKind
    assert "Kind" not in package.__all__


# The package's install hint comes before any third-party import error, with the module
# hidden as tests/cli/test_newcomer_command.py hides it (a None in sys.modules).


def _hidden(modules: str, code: str) -> subprocess.CompletedProcess[str]:
    hide = f"import sys\nfor name in {modules.split(',')!r}: sys.modules[name] = None\n"
    return subprocess.run([sys.executable, "-c", hide + code], capture_output=True, text=True)


def test_the_async_storage_without_greenlet_names_the_extra_to_install() -> None:
    done = _hidden(
        "greenlet",
        "from shopify_sessions.sqlalchemy import AsyncSQLAlchemySessionStorage\n",
    )
    assert done.returncode != 0
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("ImportError: AsyncSQLAlchemySessionStorage needs greenlet"), last
    assert "pip install 'shopify-sessions[asyncpg]'" in last
    assert "sqlalchemy[asyncio]" not in last


def test_fake_shopify_session_tokens_without_pyjwt_name_the_extra_to_install() -> None:
    done = _hidden(
        "jwt",
        "from shopify_sessions.testing import FakeShopify\n"
        "with FakeShopify() as shopify:\n"
        "    shopify.session_token('my-shop')\n",
    )
    assert done.returncode != 0
    last = done.stderr.strip().splitlines()[-1]
    assert last == (
        "ImportError: FakeShopify's session tokens need PyJWT: "
        "pip install 'shopify-sessions[testing]'"
    ), done.stderr


def test_fake_shopify_without_pyjwt_answers_a_session_token_exchange_with_the_hint() -> None:
    done = _hidden(
        "jwt",
        "from shopify_sessions.testing import FakeShopify\n"
        "with FakeShopify() as shopify, shopify.http_client() as http:\n"
        "    answer = http.post('https://my-shop.myshopify.com/admin/oauth/access_token', json={\n"
        "        'client_id': shopify.client_id, 'client_secret': shopify.client_secret,\n"
        "        'grant_type': 'urn:ietf:params:oauth:grant-type:token-exchange',\n"
        "        'subject_token': 'x',\n"
        "        'subject_token_type': 'urn:ietf:params:oauth:token-type:id_token'})\n"
        "    print(answer.status_code, answer.json()['errors'])\n",
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == (
        "500 FakeShopify's session tokens need PyJWT: pip install 'shopify-sessions[testing]'"
    )
