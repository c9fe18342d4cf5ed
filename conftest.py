"""Root pytest configuration: lets nbval run the notebooks against the sample engagement.

Notebooks run with their default parameters (the sample engagement, RUN_DIR empty). Their
artifacts go to a temporary run folder (ROX_RUN_DIR), and pseudonymisation keys to a temporary
key folder, so tests never write into the engagement or the user's home.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent
SAMPLE_DATA = REPO / "engagements" / "sample" / "data"


def pytest_configure(config):
    scratch = Path(tempfile.mkdtemp(prefix="rox-test-"))
    os.environ["ROX_RUN_DIR"] = str(scratch / "run")
    # one key folder for the whole session (module-scoped fixtures load data before any
    # function-scoped fixture could set it); never the user's own keys or key variable
    os.environ["ROX_KEY_DIR"] = str(scratch / "keys")
    os.environ.pop("ROX_PSEUDONYM_KEY", None)


def pytest_collection_modifyitems(config, items):
    if (SAMPLE_DATA / "interactions.parquet").is_file():
        return
    skip = pytest.mark.skip(
        reason="sample data not generated: run `make sample` (make test does it first)"
    )
    for item in items:
        if str(item.fspath).endswith(".ipynb"):
            item.add_marker(skip)
