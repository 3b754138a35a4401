"""The progress display in a real terminal: a pseudo-terminal, as a person at a shell has."""

from __future__ import annotations

import os
import pty
import subprocess
import sys
from pathlib import Path

import pytest

from command import COMMAND
from shopify_sessions import Session
from shopify_sessions.sqlalchemy import SQLAlchemySessionStorage

ROWS = 3000

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="needs a POSIX pty")


def test_progress_appears_in_a_terminal_and_ends_cleanly(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'sessions.sqlite3'}"
    storage = SQLAlchemySessionStorage(url)
    storage.create_table()
    for index in range(ROWS):
        shop = f"shop{index}.myshopify.com"
        storage.store_session(Session(f"offline_{shop}", shop, "", False, access_token="tok"))
    storage.close()

    leader, follower = pty.openpty()
    environment = {**os.environ, "TERM": "xterm-256color", "COLUMNS": "100", "LINES": "30"}
    environment.pop("NO_COLOR", None)
    process = subprocess.Popen(
        [COMMAND, "check", "--url", url, "--batch-size", "100"],
        stdin=follower,
        stdout=follower,
        stderr=follower,
        env=environment,
    )
    os.close(follower)
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # EIO: the terminal's other end is closed
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(leader)
    assert process.wait(timeout=60) == 0
    screen = b"".join(chunks).decode("utf-8", "replace")

    # The live display: the cursor hidden, the bar drawn, the count reaching the total ...
    hidden, shown = screen.find("\x1b[?25l"), screen.rfind("\x1b[?25h")
    assert hidden != -1, screen
    assert "counting sessions" in screen
    assert "━" in screen
    assert f"{ROWS}/{ROWS}" in screen
    # ... and ending cleanly: the cursor shown again after the last frame, then the summary.
    assert shown > screen.rfind(f"{ROWS}/{ROWS}") > hidden
    assert screen.rfind("ok: the storage can use this default table") > shown
    assert "tok" not in screen.replace("token", "")
