"""Shared test set-up: a private cache folder, quiet libraries, few threads."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
torch.set_num_threads(min(2, os.cpu_count() or 1))


@pytest.fixture(scope="session", autouse=True)
def private_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Point ``$MOSAIC_VLM_CACHE`` at a folder of this test session, never the user's."""
    folder = tmp_path_factory.mktemp("mosaic-vlm-cache")
    previous = os.environ.get("MOSAIC_VLM_CACHE")
    os.environ["MOSAIC_VLM_CACHE"] = str(folder)
    yield folder
    if previous is None:
        os.environ.pop("MOSAIC_VLM_CACHE", None)
    else:
        os.environ["MOSAIC_VLM_CACHE"] = previous


@pytest.fixture()
def cache_dir(tmp_path: Path) -> Path:
    """A fresh text-embedding cache folder for one test."""
    folder = tmp_path / "cache"
    folder.mkdir()
    return folder
