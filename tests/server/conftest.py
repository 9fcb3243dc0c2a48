from __future__ import annotations

import pytest

from tests.server.util import quiet_sdk_env


@pytest.fixture(autouse=True, scope="session")
def _quiet_sdk():
    quiet_sdk_env()
