from __future__ import annotations

from pathlib import Path

import pytest

from tests.tiny_run import tiny_run


@pytest.fixture(scope="session")
def run_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_run(tmp_path_factory)
