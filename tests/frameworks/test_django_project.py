"""A Django project as a user makes one: ``django-admin startproject``, the files of "Testing
your app" (docs/testing.md) written as they are printed, ``migrate``, then the project's
test suites with Django's test runner and with pytest-django, each in a process of its own.
The development database must be exactly as it was before the suites ran."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from shopify_sessions import Session
from shopify_sessions.sqlalchemy import SQLAlchemySessionStorage
from test_docs import PROJECT_FILES, ROOT, blocks

PAGE = "docs/testing.md"
PYTHON = [sys.executable, "-W", "error"]


def _files() -> dict[str, str]:
    """The project's files on the page, by title (a path in the project)."""
    _, titles = PROJECT_FILES[PAGE]
    files = {
        str(block.title): block.code
        for block in blocks()
        if block.page == ROOT / PAGE and block.title in titles
    }
    assert set(files) == titles
    return files


def _run(project: Path, *command: str) -> subprocess.CompletedProcess[str]:
    environment = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DJANGO_", "SHOPIFY_"))  # the project's own settings only
    }
    return subprocess.run(
        command, cwd=project, capture_output=True, text=True, env=environment, timeout=300
    )


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """The project of the page: made by startproject, the page's files added."""
    made = _run(tmp_path, sys.executable, "-m", "django", "startproject", "mysite", ".")
    assert made.returncode == 0, made.stderr
    files = _files()
    settings = tmp_path / "mysite" / "settings.py"
    settings.write_text(settings.read_text() + "\n" + files.pop("mysite/settings.py (at its end)"))
    for title, code in files.items():
        (tmp_path / title).write_text(code)
    return tmp_path


def _dump(database: Path) -> list[str]:
    # closing(): sqlite3's own context manager ends the transaction, not the connection.
    with contextlib.closing(sqlite3.connect(database)) as connection:
        return list(connection.iterdump())


def test_startproject_migrate_and_both_test_suites_leave_the_development_database_alone(
    project: Path,
) -> None:
    migrated = _run(project, *PYTHON, "manage.py", "migrate")
    assert migrated.returncode == 0, migrated.stdout + migrated.stderr
    assert "Applying shopify_sessions.0001_initial... OK" in migrated.stdout

    # The development database: the table migrate made, holding a shop's session.
    database = project / "db.sqlite3"
    with SQLAlchemySessionStorage(f"sqlite:///{database}") as storage:
        storage.store_session(
            Session(
                id="offline_my-shop.myshopify.com",
                shop="my-shop.myshopify.com",
                state="",
                is_online=False,
                access_token="the development token",
            )
        )
    before = _dump(database)
    assert any("the development token" in line for line in before)

    django_runner = _run(project, *PYTHON, "manage.py", "test", "-v", "2")
    output = django_runner.stdout + django_runner.stderr
    assert django_runner.returncode == 0, output
    assert "Ran 4 tests" in output and "\nOK" in output, output

    pytest_run = _run(
        project, *PYTHON, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:asyncio"
    )
    output = pytest_run.stdout + pytest_run.stderr
    assert pytest_run.returncode == 0, output
    assert "5 passed" in pytest_run.stdout, output

    assert _dump(database) == before
