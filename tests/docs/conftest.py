"""Fixtures for the tests of the built lesson site (run by ``nox -s docs`` after it builds both editions)."""

from __future__ import annotations

from pathlib import Path

import pytest
from docs_site import EDITIONS, built


@pytest.fixture(scope="session")
def instructor_site() -> Path:
    return built("instructor")


@pytest.fixture(scope="session")
def student_site() -> Path:
    return built("student")


@pytest.fixture(scope="session", params=EDITIONS)
def site(request: pytest.FixtureRequest) -> Path:
    return built(request.param)
