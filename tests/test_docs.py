"""The documentation's code runs: README.md and every page under docs/.

The convention, stated in docs/development.md:

- A fenced block with a file name as its title is a complete program, and runs here as it
  is, in a temporary directory (SQLite files land there); one named ``test_*.py`` is a
  test file, and runs under pytest, with the plugins the package installs:

      ```python title="store_and_load.py"

- A titled block whose only line is a snippet include (``--8<-- "examples/x.py"``) shows a
  file of the repository: the file must exist and be run by a test (here for the
  quickstart; by tests/test_examples.py for the examples that need Shopify's stand-in).
- A titled block listed in ``PROJECT_FILES`` is a file of a project that another test
  builds and runs as a whole (the Django project of "Testing your app"): that test writes
  it as it is, at the path its title names, and runs the project's own commands.
- Any other ```python block is a fragment: it must compile (top-level ``await`` allowed),
  and nothing runs it.

The README's relative links must point at files that exist, as they do on the repository
page; mkdocs build --strict checks the links of the pages themselves.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from mkdocs.exceptions import PluginError

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
FENCE = re.compile(r"^(?P<indent> *)(?P<ticks>```+)(?P<info>.*)$")
TITLE = re.compile(r'title="(?P<title>[^"]+)"')
SNIPPET = re.compile(r'^--8<-- "(?P<path>[^"]+)"$')
# Included files and the test that runs each one.
INCLUDED = {
    "examples/quickstart.py": "tests/test_docs.py::test_included_quickstart_runs",
    "examples/fastapi_app.py": "tests/test_examples.py",
    "examples/keep_warm.py": "tests/test_examples.py",
    "examples/flask_app.py": "tests/frameworks/test_flask.py",
    "examples/django_app/shopapp/settings.py": "tests/frameworks/test_django.py",
    "examples/django_app/shopapp/urls.py": "tests/frameworks/test_django.py",
    "examples/django_app/shopapp/views.py": "tests/frameworks/test_django.py",
}

# Titled blocks that are files of a project, by page, and the test that builds and runs it.
PROJECT_FILES = {
    "docs/testing.md": (
        "tests/frameworks/test_django_project.py",
        {
            "mysite/settings.py (at its end)",
            "mysite/views.py",
            "mysite/urls.py",
            "mysite/tests.py",
            "pytest.ini",
            "test_app_home.py",
        },
    ),
}


class Block:
    def __init__(self, page: Path, line: int, info: str, code: str) -> None:
        self.page, self.line, self.info, self.code = page, line, info, code
        match = TITLE.search(info)
        self.title = match["title"] if match else None
        lines = code.strip().splitlines()
        include = SNIPPET.match(lines[0]) if len(lines) == 1 else None
        self.include = include["path"] if include else None

    @property
    def language(self) -> str:
        return self.info.strip().split(" ", 1)[0].lstrip("{.").rstrip("}")

    @property
    def where(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"


def blocks() -> list[Block]:
    found = []
    for page in PAGES:
        lines = page.read_text(encoding="utf-8").splitlines()
        index = 0
        while index < len(lines):
            opening = FENCE.match(lines[index])
            if opening is None:
                index += 1
                continue
            indent, ticks = len(opening["indent"]), opening["ticks"]
            body = []
            index += 1
            while index < len(lines) and lines[index].strip() != ticks:
                body.append(lines[index][indent:])
                index += 1
            start = index - len(body)
            found.append(Block(page, start, opening["info"], "\n".join(body) + "\n"))
            index += 1
    return found


def project_file(block: Block) -> bool:
    """Whether ``block`` is a file of a project that another test runs (``PROJECT_FILES``)."""
    _, titles = PROJECT_FILES.get(str(block.page.relative_to(ROOT)), ("", set()))
    return block.title in titles


ALL = [block for block in blocks() if block.language == "python"]
PROGRAMS = [block for block in ALL if block.title and not block.include and not project_file(block)]
INCLUDES = [block for block in ALL if block.include]
FRAGMENTS = [block for block in ALL if not block.title]


def test_the_pages_have_programs_fragments_and_includes() -> None:
    assert len(PROGRAMS) >= 10, [block.where for block in PROGRAMS]
    assert FRAGMENTS and INCLUDES


@pytest.mark.parametrize("block", PROGRAMS, ids=lambda block: f"{block.where}:{block.title}")
def test_program_runs(block: Block, tmp_path: Path) -> None:
    assert block.title is not None and block.title.endswith(".py"), block.where
    program = tmp_path / Path(block.title).name
    program.write_text(block.code, encoding="utf-8")
    is_test = program.name.startswith("test_")
    pytest = ["-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:asyncio", "-W", "error"]
    runner = pytest if is_test else []
    # A reader's shell: no Django settings that the suite's own Django tests set, and not
    # CI's pytest options for this run (workers, the serial phase's selection).
    environment = {
        k: v for k, v in os.environ.items() if k not in ("DJANGO_SETTINGS_MODULE", "PYTEST_ADDOPTS")
    }
    result = subprocess.run(
        [sys.executable, "-W", "error", *runner, program.name],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env=environment,
        timeout=120,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"{block.where} ({block.title}):\n{output}"
    if is_test:
        assert " passed" in result.stdout and "skipped" not in result.stdout, output


def test_project_files_are_on_their_page_and_run_by_their_test() -> None:
    for page, (test, titles) in PROJECT_FILES.items():
        found = {block.title for block in blocks() if block.page == ROOT / page}
        assert titles <= found, f"{page} lacks {titles - found}"
        assert page in (ROOT / test).read_text(encoding="utf-8"), f"{test} does not read {page}"


@pytest.mark.parametrize("block", INCLUDES, ids=lambda block: f"{block.where}:{block.include}")
def test_included_file_exists_and_is_tested(block: Block) -> None:
    assert block.include is not None and (ROOT / block.include).is_file(), block.where
    assert block.include in INCLUDED, f"{block.where}: which test runs {block.include}?"


def test_included_quickstart_runs(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-W", "error", str(ROOT / "examples" / "quickstart.py")],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "deleted:  True" in result.stdout


@pytest.mark.parametrize("block", FRAGMENTS, ids=lambda block: block.where)
def test_fragment_compiles(block: Block) -> None:
    compile(block.code, block.where, "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)


def test_readme_links_resolve() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    links = re.findall(r"\]\((?!https?://|#|mailto:)([^)\s]+)\)", readme)
    assert links, "the README links into docs/"
    for link in links:
        path, _, anchor = link.partition("#")
        target = ROOT / path
        assert target.exists(), f"README.md links to {link}, which doesn't exist"
        if anchor and target.suffix == ".md":
            assert anchor in _anchors(target), f"README.md links to {link}: no such heading"


def _anchors(page: Path) -> set[str]:
    """The ids MkDocs (and GitHub) give the page's headings."""
    anchors = set()
    for line in page.read_text(encoding="utf-8").splitlines():
        if line.startswith("#"):
            text = line.lstrip("#").strip().lower()
            text = re.sub(r"[^\w\- ]", "", text)
            anchors.add(re.sub(r"\s+", "-", text.strip()))
    return anchors


def _hooks() -> Any:
    spec = importlib.util.spec_from_file_location("docs_hooks", ROOT / "docs/_ext/hooks.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_reference_check_reads_every_public_module() -> None:
    hooks = _hooks()
    for module_name, (source, _page) in hooks.PUBLIC_MODULES.items():
        module = importlib.import_module(module_name)
        assert hooks.exported_names(ROOT / source) == list(module.__all__)


def test_the_build_fails_on_an_export_missing_from_the_reference(tmp_path: Path) -> None:
    hooks = _hooks()
    for module_name, (source, page) in hooks.PUBLIC_MODULES.items():
        names = hooks.exported_names(ROOT / source)
        ids = "".join(f'<h2 id="{module_name}.{name}"></h2>' for name in names)
        (tmp_path / page).mkdir(parents=True)
        (tmp_path / page / "index.html").write_text(ids, encoding="utf-8")
    hooks.on_post_build({"site_dir": str(tmp_path)})  # everything there: no error

    page = tmp_path / "reference/tokens/index.html"
    page.write_text(page.read_text().replace("OfflineTokens", "Gone"), encoding="utf-8")
    with pytest.raises(PluginError, match=r"shopify_sessions\.tokens\.OfflineTokens"):
        hooks.on_post_build({"site_dir": str(tmp_path)})


# --- the API reference: what the pages and the signatures name ---------------------------

LINKED_CALL = re.compile(r"\[`(?P<call>[\w.]+\([^`]*\))`\]\[(?P<target>shopify_sessions[\w.]+)\]")


def _object(path: str) -> Any:
    module_path, _, rest = path.partition(".")
    parts = rest.split(".") if rest else []
    obj: Any = importlib.import_module(module_path)
    for part in parts:
        try:
            obj = getattr(obj, part)
        except AttributeError:
            obj = importlib.import_module(f"{obj.__name__}.{part}")
    return obj


def test_a_call_written_in_the_guide_shows_only_real_defaults() -> None:
    """``resolve_url(url, is_async=False)`` read as a default that does not exist."""
    import inspect

    calls = [
        (page, match)
        for page in PAGES
        for match in LINKED_CALL.finditer(page.read_text(encoding="utf-8"))
    ]
    assert len(calls) >= 5
    for page, match in calls:
        name = match["call"].split("(", 1)[0].rsplit(".", 1)[-1]
        written = ast.parse(f"def {name}{match['call'][match['call'].index('(') :]}: pass")
        function = written.body[0]
        assert isinstance(function, ast.FunctionDef)
        real = inspect.signature(_object(match["target"])).parameters
        arguments = function.args
        positional = [*arguments.posonlyargs, *arguments.args]
        with_default = positional[len(positional) - len(arguments.defaults) :]
        shown = list(zip(with_default, arguments.defaults, strict=True))
        shown += [
            (a, d) for a, d in zip(arguments.kwonlyargs, arguments.kw_defaults, strict=True) if d
        ]
        for argument, default in shown:
            where = f"{page.relative_to(ROOT)}: {match['call']}"
            parameter = real.get(argument.arg)
            assert parameter is not None, f"{where}: no parameter {argument.arg}"
            assert parameter.default is not inspect.Parameter.empty, f"{where}: required"
            assert parameter.default == ast.literal_eval(default), where


def test_the_build_fails_on_a_signature_naming_what_the_reference_does_not_define() -> None:
    hooks = _hooks()

    def entry(signature: str, bases: str = "") -> str:
        return (
            '<h2 id="shopify_sessions.X"></h2><div class="doc-signature highlight"><pre><code>'
            f"{signature}</code></pre></div>"
            + (f'<p class="doc doc-class-bases">Bases: <code>{bases}</code></p>' if bases else "")
        )

    linked = '<a class="autorefs autorefs-internal" href="#x">TokenCipher</a>'
    external = '<span title="sqlalchemy.Engine">Engine</span>'
    assert hooks.unlinked_names(entry(linked + external, external)) == []
    for unlinked in (
        '<span title="shopify_sessions.sqlalchemy._base.TableArgument">TableArgument</span>',
        '<span title="shopify_sessions._locks.DEFAULT_LOCK_TIMEOUT">DEFAULT_LOCK_TIMEOUT</span>',
        '<span title="shopify_sessions.Undocumented">Undocumented</span>',
        '<span title="sqlalchemy.engine._private">_private</span>',
    ):
        path = re.search(r'title="([^"]+)"', unlinked)
        assert path is not None
        assert hooks.unlinked_names(entry(linked + unlinked)) == [f"shopify_sessions.X: {path[1]}"]
        assert hooks.unlinked_names(entry(linked, unlinked)) == [f"shopify_sessions.X: {path[1]}"]


def test_the_reference_shows_what_a_reader_can_use(tmp_path: Path) -> None:
    """The site builds (strict, with the hook's checks), and the reference shows a context
    manager as one, no private base, every default's value, and what each method does."""
    site = tmp_path / "site"
    built = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        timeout=300,
    )
    assert built.returncode == 0, built.stderr
    pages = {
        name: re.sub(r"<[^>]+>", "", (site / "reference" / name / "index.html").read_text())
        for name in ("shopify_sessions", "sqlalchemy", "tokens", "testing")
    }
    sql = pages["sqlalchemy"]
    assert "-&gt; AbstractContextManager[None]" in sql
    assert "-&gt; AbstractAsyncContextManager[None]" in sql
    assert "Iterator[None]" not in sql
    for name in ("TableArgument", "DateTimeFormatArgument", "StorageBase", "TokensBase"):
        assert all(name not in page for page in pages.values()), name
    assert "DEFAULT_LOCK_TIMEOUT = 15.0" in pages["shopify_sessions"]
    # delete_sessions says what docs/storage.md says: one commit per call, on every engine.
    assert "share one transaction" in sql and "each statement commits by itself" not in sql
