"""Shared test fixtures: where ../shared lives, and single-threaded torch for stable CPU tests."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def shared_dir() -> Path | None:
    """The shared facts folder (env D2ST_SHARED, else ../shared next to the clone), or None."""
    env = os.environ.get("D2ST_SHARED")
    candidates = [Path(env)] if env else []
    candidates.append(REPO.parent / "shared")
    for c in candidates:
        if (c / "splits" / "CHECKSUMS.tsv").is_file():
            return c
    return None


@pytest.fixture(scope="session")
def shared() -> Path:
    """Path to ../shared; skips the test with a reason when it is absent (a user's clone)."""
    d = shared_dir()
    if d is None:
        pytest.skip("../shared (split lists, real videos) is not present next to this clone")
    return d


@pytest.fixture(autouse=True, scope="session")
def _torch_threads():
    try:
        import torch

        torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
    except ImportError:  # pragma: no cover
        pass
    yield
