"""Every supported Python, and the package as users get it (https://nox.thea.codes).

    nox -s tests-3.12                 # the tests that CI runs on 3.12 (see SUBSET below)
    nox -s tests-3.13 -- tests/unit   # other pytest arguments instead of the subset
    nox -s build wheel                # sdist and wheel into dist/, checked; installed on
                                      # each Python and run from there
    nox -l                            # every session

The full suite runs on the default Python (3.11) through the README's command; .ci/run
runs these sessions beside it. An interpreter that cannot be found fails its session with
the places looked at, never a skip. nox finds ``python3.X`` on PATH; on machines with
pyenv's builds (``~/.pyenv/versions/3.X.Y``) but without them on PATH, this file points
nox at them.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import nox

ROOT = Path(__file__).resolve().parent
PYTHONS = ["3.10", "3.11", "3.12", "3.13"]
#: The interpreter the README's command (and so the full suite) runs on.
DEFAULT_PYTHON = "3.11"
OTHER_PYTHONS = [version for version in PYTHONS if version != DEFAULT_PYTHON]
#: What runs on every other Python: the tests that need no PostgreSQL, MariaDB or DynamoDB
#: (memory, SQLite and Redis backends; unit, webhooks, frameworks, testing, telemetry,
#: docs and examples), never the serial ones (the hammer, the outage tests). The full
#: suite, every backend and the Node interop tests run on the default Python. (dynalite,
#: DynamoDB's stand-in, comes with the README's npm ci, which CI runs beside these.)
SUBSET = [
    "tests/unit",
    "tests/storage",
    "tests/lifecycle",
    "tests/webhooks",
    "tests/frameworks",
    "tests/testing",
    "tests/telemetry",
    "tests/test_docs.py",
    "tests/test_examples.py",
    "-m",
    "not serial",
    "-k",
    "not outages and not (psycopg or asyncpg or pymysql or aiomysql or galera or pgbouncer"
    " or postgresql or mysql or mariadb or dynamodb)"
    # The site is built on the default Python (CI's mkdocs build --strict): on 3.10 pip picks
    # a docs toolchain that does not build it (mkdocstrings 1.0.6, pymdown-extensions 12.3).
    " and not test_the_reference_shows_what_a_reader_can_use",
]

VERSION = "import shopify_sessions; print(shopify_sessions.__version__)"
LOCATION = "import shopify_sessions; print(shopify_sessions.__file__)"
#: PyPI refuses an upload with a classifier it does not know; twine check does not look.
CLASSIFIERS_KNOWN = """
import sys, tomllib, trove_classifiers
declared = tomllib.load(open(sys.argv[1], "rb"))["project"]["classifiers"]
unknown = [name for name in declared if name not in trove_classifiers.classifiers]
sys.exit(f"unknown classifiers: {unknown}" if unknown else None)
"""

nox.options.error_on_missing_interpreters = True  # a missing Python fails, never skips
nox.options.download_python = "never"  # the machines have theirs; nothing else is reachable
nox.options.default_venv_backend = "venv"
nox.options.sessions = [f"tests-{version}" for version in OTHER_PYTHONS]


def _pyenv_builds() -> dict[str, Path]:
    """``{"3.12": .../versions/3.12.1/bin/python3.12}``: pyenv's newest build of each."""
    root = Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv") / "versions"
    found: dict[str, Path] = {}
    for version in PYTHONS:
        builds = sorted(
            root.glob(f"{version}.*/bin/python{version}"),
            key=lambda path: [int(part) for part in path.parts[-3].split(".") if part.isdigit()],
        )
        if builds:
            found[version] = builds[-1]
    return found


def _runs(command: str) -> bool:
    """Whether ``command`` on PATH is a working interpreter (a pyenv shim of a version
    that is not selected is on PATH, and fails)."""
    path = shutil.which(command)
    if path is None:
        return False
    done = subprocess.run([path, "-c", "pass"], capture_output=True, check=False)
    return done.returncode == 0


def _point_nox_at_pyenv() -> None:
    """Put pyenv's builds first on PATH under their versioned names only (``python3.12``,
    never ``python3``), for the versions that PATH does not already run."""
    links = ROOT / ".nox" / "pythons"
    for version, interpreter in _pyenv_builds().items():
        if _runs(f"python{version}"):
            continue
        links.mkdir(parents=True, exist_ok=True)
        # Made beside, then renamed over: two nox processes may start at once.
        staged = links / f".python{version}.{os.getpid()}"
        staged.unlink(missing_ok=True)
        staged.symlink_to(interpreter)
        os.replace(staged, links / f"python{version}")
    if links.is_dir():
        os.environ["PATH"] = f"{links}{os.pathsep}{os.environ['PATH']}"


_point_nox_at_pyenv()


def _require_interpreter(session: nox.Session) -> None:
    """Fail, saying where it looked, when the session's Python is not there (nox would
    say only "not found")."""
    version = str(session.python)
    if _runs(f"python{version}"):
        return
    root = os.environ.get("PYENV_ROOT") or str(Path.home() / ".pyenv")
    session.error(
        f"Python {version} is not installed: no working python{version} on PATH, and no "
        f"pyenv build under {root}/versions/{version}.*; install it (pyenv install "
        f"{version}) or put python{version} on PATH"
    )


@nox.session(python=PYTHONS)
def tests(session: nox.Session) -> None:
    """The tests of SUBSET (or the pytest arguments given) on one Python, against an
    editable install of the checkout with the ``test`` extra."""
    _require_interpreter(session)
    session.install("-e", ".[test]")
    session.run("python", "-m", "pytest", "-p", "no:cacheprovider", *(session.posargs or SUBSET))


@nox.session(python=DEFAULT_PYTHON)
def build(session: nox.Session) -> None:
    """The sdist and the wheel into dist/, as ``python -m build`` makes them (the wheel from
    the sdist), checked by ``twine check``; the wheel made straight from the checkout must
    hold the same files; the wheel holds ``py.typed`` and no tests or benchmarks."""
    _require_interpreter(session)
    session.install("build", "twine", "trove-classifiers")
    session.run("python", "-c", CLASSIFIERS_KNOWN, str(ROOT / "pyproject.toml"))
    dist = ROOT / "dist"
    shutil.rmtree(dist, ignore_errors=True)
    session.run("python", "-m", "build", "--outdir", str(dist), str(ROOT))
    session.run("python", "-m", "twine", "check", "--strict", *map(str, sorted(dist.iterdir())))
    [wheel] = dist.glob("*.whl")
    with tempfile.TemporaryDirectory() as direct:
        session.run("python", "-m", "build", "--wheel", "--outdir", direct, str(ROOT))
        [direct_wheel] = Path(direct).glob("*.whl")
        differences = _compare_wheels(wheel, direct_wheel)
    if differences:
        session.error(
            "the wheel built from the sdist differs from the one built from the checkout "
            "(the sdist lacks or adds files):\n  " + "\n  ".join(differences)
        )
    problems = _wheel_problems(wheel)
    if problems:
        session.error(f"{wheel.name}:\n  " + "\n  ".join(problems))
    session.log(f"{wheel.name}: {len(_wheel_files(wheel))} files, the same from the sdist")


@nox.session(python=PYTHONS)
def wheel(session: nox.Session) -> None:
    """The wheel of dist/ (``nox -s build`` first) installed, not the checkout, into a
    fresh virtual environment: the quickstart runs from it with no extra, and the command
    (``[cli]`` extra) answers ``--version`` with the installed version."""
    _require_interpreter(session)
    wheels = sorted((ROOT / "dist").glob("shopify_sessions-*.whl"))
    if len(wheels) != 1:
        session.error(f"dist/ must hold one wheel (run nox -s build first), not {wheels}")
    [built] = wheels
    session.install(str(built))
    with tempfile.TemporaryDirectory() as work:  # away from the checkout's src/
        session.chdir(work)
        where = session.run("python", "-c", LOCATION, silent=True)
        if where is None or str(ROOT / "src") in where or "site-packages" not in where:
            session.error(f"shopify_sessions was imported from {where!r}, not the wheel")
        session.run(
            "python", str(ROOT / "examples" / "quickstart.py"), "sqlite:///quickstart.sqlite3"
        )
        session.install(f"{built}[cli]")
        version = session.run("python", "-c", VERSION, silent=True)
        answered = session.run("shopify-sessions", "--version", silent=True)
        expected = f"shopify-sessions {str(version).strip()}"
        if answered is None or answered.strip() != expected:
            session.error(f"shopify-sessions --version answered {answered!r}, not {expected!r}")
        session.log(answered.strip())
        session.chdir(ROOT)


def _wheel_files(wheel: Path) -> dict[str, str]:
    """``{name: sha256}`` of the files of a wheel."""
    with zipfile.ZipFile(wheel) as archive:
        return {
            info.filename: hashlib.sha256(archive.read(info)).hexdigest()
            for info in archive.infolist()
            if not info.is_dir()
        }


def _compare_wheels(first: Path, second: Path) -> list[str]:
    one, other = _wheel_files(first), _wheel_files(second)
    differences = []
    for name in sorted(one.keys() | other.keys()):
        if name not in other:
            differences.append(f"{name}: only in the wheel built from the sdist")
        elif name not in one:
            differences.append(f"{name}: only in the wheel built from the checkout")
        elif one[name] != other[name]:
            differences.append(f"{name}: differs")
    return differences


def _wheel_problems(wheel: Path) -> list[str]:
    files = _wheel_files(wheel)
    problems = []
    if "shopify_sessions/py.typed" not in files:
        problems.append("no shopify_sessions/py.typed: type checkers would ignore the hints")
    for name in files:
        top = name.split("/")[0]
        if top in ("tests", "benchmarks", "examples", "docs", "scripts") or "/tests/" in name:
            problems.append(f"{name}: not part of the package")
    if not any(name.endswith(".dist-info/licenses/LICENSE") for name in files):
        problems.append("no LICENSE in the wheel's .dist-info/licenses/")
    return problems


if __name__ == "__main__":  # pragma: no cover - nox imports this file
    sys.exit("run this file with nox: nox -l")
