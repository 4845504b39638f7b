"""Shared test set-up: a private cache folder, quiet libraries, few threads."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
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


def _train_tiny_run(archive: Path, out: Path, model: str, epochs: int) -> Path:
    """Train one CLOSP-family model (no companions, no evaluation) into a run folder."""
    import json

    from domains.remote_sensing import train
    from domains.remote_sensing.run_config import build_parser, resolve_run_config
    from domains.remote_sensing.variants import build_variants

    args = build_parser().parse_args(["--data", str(archive), "--layout", "synthetic",
                                      "--out", str(out), "--model", model, "--batch-size", "32",
                                      "--max-epochs", str(epochs), "--no-companions"])
    config = resolve_run_config(args)
    out.mkdir(parents=True, exist_ok=True)
    (out / "run.yaml").write_text(json.dumps(config))
    train.quiet_lightning()
    variant = build_variants(config["model"], [], overrides={"loss": config["loss"]})[0]
    train.train_variant(variant, config, archive, out)
    return out


@pytest.fixture(scope="session")
def rs_small_archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small generated Sentinel-1/2 archive for training-run tests: 96 + 12 paired, 64 px."""
    from domains.remote_sensing.synthetic import generate_archive

    return generate_archive(tmp_path_factory.mktemp("rs-small") / "archive", n_s2=96,
                            n_s1=96, n_paired=12, seed=1, size=64, workers=2, progress=False)


@pytest.fixture(scope="session")
def rs_train_args() -> Callable[..., list[str]]:
    """``rs_train_args(archive, out, *extra)``: arguments of a short training run (batch 16)."""

    def arguments(archive: Path, out: Path, *extra: str) -> list[str]:
        return ["--data", str(archive), "--layout", "synthetic", "--out", str(out),
                "--batch-size", "16", "--set", "trainer.log_every_n_steps=1", *extra]

    return arguments


@pytest.fixture(scope="session")
def rs_archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A generated Sentinel-1/2 archive shared by the session.

    864 scenes per sensor (768 + 96 paired), 64 px.
    """
    from domains.remote_sensing.synthetic import generate_archive

    return generate_archive(tmp_path_factory.mktemp("rs-inference") / "archive", n_s2=768,
                            n_s1=768, n_paired=96, seed=1, size=64, workers=2, progress=False)


@pytest.fixture(scope="session")
def rs_run(rs_archive: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """CLOSP-tiny trained for 8 epochs on :func:`rs_archive` (about a minute on 2 cores)."""
    return _train_tiny_run(rs_archive, tmp_path_factory.mktemp("rs-run") / "closp", "closp", 8)


@pytest.fixture(scope="session")
def rs_geo_run(rs_archive: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """GeoCLOSP-tiny trained for 3 epochs on :func:`rs_archive`."""
    return _train_tiny_run(rs_archive, tmp_path_factory.mktemp("rs-run") / "geoclosp",
                           "geoclosp", 3)
