"""Loaded by the command's subprocess in the tests that put this folder on PYTHONPATH; the
command itself is unchanged.

- ``HIDE_MODULES`` (comma-separated): those modules look uninstalled, as on a machine
  without the extra that brings them (to test the install hints).

The command reaches FakeShopify with its own ``--shopify-url``, nothing here.
"""

import os
import sys

for _module in filter(None, os.environ.get("HIDE_MODULES", "").split(",")):
    sys.modules[_module] = None  # type: ignore[assignment]
