"""Shared pytest wiring: device parametrization and the `cuda` marker policy.

Tests marked `cuda` skip without a GPU, and fail instead when VIDLOADER_REQUIRE_CUDA=1 so a GPU run cannot
pass by skipping everything.
"""

from __future__ import annotations

import os

import pytest
import torch

REQUIRE_CUDA = os.environ.get("VIDLOADER_REQUIRE_CUDA") == "1"
HAS_CUDA = torch.cuda.is_available()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if HAS_CUDA or REQUIRE_CUDA:
        # Under VIDLOADER_REQUIRE_CUDA=1 a cuda test runs, and fails on its own for want of a GPU.
        return
    for item in items:
        if "cuda" in item.keywords:
            item.add_marker(pytest.mark.skip(reason="needs a CUDA GPU"))


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if REQUIRE_CUDA and not HAS_CUDA:
        # VIDLOADER_REQUIRE_CUDA=1 on a machine without CUDA is itself a failure.
        session.exitstatus = 1


DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.cuda)]


@pytest.fixture(params=DEVICES)
def device(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture(autouse=True)
def seeded_torch() -> None:
    """Loaders left at ``seed=None`` draw torch's initial seed: seeded per test, a run repeats the last."""
    torch.manual_seed(0)
