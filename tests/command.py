"""Running the shopify-sessions command as a user does: its console script, in a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: The console script pip installed next to this Python.
COMMAND = str(Path(sys.executable).parent / "shopify-sessions")


@dataclass
class Run:
    code: int
    stdout: str
    stderr: str

    @property
    def json(self) -> dict[str, Any]:
        document: dict[str, Any] = json.loads(self.stdout)
        return document


def run(*args: str, env: dict[str, str] | None = None, url: str | None = None) -> Run:
    """``shopify-sessions ARGS`` with DATABASE_URL set to ``url``."""
    environment = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    environment.update(env or {})
    if url is not None:
        environment["DATABASE_URL"] = url
    done = subprocess.run(
        [COMMAND, *args], capture_output=True, text=True, env=environment, timeout=300
    )
    return Run(done.returncode, done.stdout, done.stderr)
