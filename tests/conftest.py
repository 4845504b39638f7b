"""Shared test set-up: a private cache folder, quiet libraries, few threads."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest
import torch

os.environ.setdefault("MOSAIC_VLM_CACHE", tempfile.mkdtemp(prefix="mosaic-vlm-test-cache-"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
torch.set_num_threads(min(2, os.cpu_count() or 1))


@pytest.fixture()
def cache_dir(tmp_path: Path) -> Path:
    """A fresh text-embedding cache folder for one test."""
    folder = tmp_path / "cache"
    folder.mkdir()
    return folder
