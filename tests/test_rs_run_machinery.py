"""Training runs beyond one process: DDP on two CPU processes, bad samples in workers, siglip."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from torch.utils.data import DataLoader

from core.data import BadSampleLog, SampleDataset, SampleError, collect_bad_samples
from domains.remote_sensing import train

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture()
def archive(rs_small_archive: Path) -> Path:
    return rs_small_archive


@pytest.fixture()
def args(rs_train_args: Callable[..., list[str]]) -> Callable[..., list[str]]:
    """Arguments of a one-epoch run of the main model only."""
    return lambda archive, out, *extra: rs_train_args(archive, out, "--no-companions",
                                                      "--max-epochs", "1", *extra)


class _Numbers(SampleDataset):
    """Samples 0..n-1; the listed ones are unreadable."""

    def __init__(self, n: int, broken: set[int], log: BadSampleLog | None) -> None:
        super().__init__(bad_sample_log=log)
        self.metadata = pd.DataFrame({"path": [f"n{i}.bin" for i in range(n)],
                                      "id": [str(i) for i in range(n)]})
        self.broken = broken

    def _read(self, index: int) -> int:
        if index in self.broken:
            raise SampleError(f"{self._path(index)}: truncated")
        return index

    def _sample(self, index: int, read: int) -> dict:
        return {"value": read, "id": str(read)}


def test_samples_skipped_in_workers_reach_the_shared_log(tmp_path: Path) -> None:
    log = BadSampleLog(tmp_path / "bad.jsonl")
    dataset = _Numbers(12, {3, 7}, log)
    loader = DataLoader(dataset, batch_size=4, num_workers=2)
    values = [v for batch in loader for v in batch["value"].tolist()]
    assert 3 not in values and 7 not in values and len(values) == 12  # substituted
    assert dataset.bad_samples == []  # the workers' copies counted them, not this one
    assert collect_bad_samples([dataset], log) == [("n3.bin", "n3.bin: truncated"),
                                                   ("n7.bin", "n7.bin: truncated")]


def test_bad_scene_skipped_in_a_worker_is_in_metrics_json(archive: Path,
                                                         tmp_path: Path,
        args: Callable[..., list[str]]) -> None:
    table = pd.read_parquet(archive / "metadata.parquet")
    row = table[(table["sensor"] == "s2") & (table["split"] == "train")].iloc[0]
    broken = tmp_path / "archive"
    subprocess.run(["cp", "-r", str(archive), str(broken)], check=True)
    path = broken / row["path"]
    path.write_bytes(path.read_bytes()[:300])  # truncated GeoTIFF
    out = train.main(args(broken, tmp_path / "run", "--set", "data.num_workers=1",
                           "--set", "data.preload=false"))
    metrics = json.loads((out / "metrics.json").read_text())
    paths = [p for p, _ in metrics["bad_samples"]]
    assert paths.count(str(path)) == 1, metrics["bad_samples"]
    assert "not a readable GeoTIFF" in dict(metrics["bad_samples"])[str(path)] \
        or str(path) in dict(metrics["bad_samples"])[str(path)]


def test_siglip_loss_trains_closp(archive: Path, tmp_path: Path,
        args: Callable[..., list[str]]) -> None:
    out = train.main(args(archive, tmp_path / "siglip", "--loss", "siglip"))
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["variants"]["main"]["zero_shot"]["s2"]["n"] > 0
    curve = pd.read_csv(out / "logs" / "main" / "metrics.csv")
    losses = curve["train/loss"].dropna()
    assert len(losses) > 2 and np.isfinite(losses).all()


def test_ddp_on_two_cpu_processes_writes_a_run_folder(archive: Path, tmp_path: Path,
        args: Callable[..., list[str]]) -> None:
    out = tmp_path / "ddp"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "domains.remote_sensing.train",
         *args(archive, out, "--devices", "2", "--strategy", "ddp", "--accelerator", "cpu")],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    for name in ("model.safetensors", "config.json", "metrics.json", "report.md"):
        assert (out / name).is_file(), name
    trained = yaml.safe_load((out / "trained.json").read_text())
    table = pd.read_parquet(archive / "metadata.parquet")
    longest = int((table["split"] == "train").groupby(table["sensor"]).sum().max())
    # Each rank sees half of every epoch (DistributedSampler), so half the steps of one
    # process: the longer sensor's train scenes / 2 ranks / batch 16 (drop_last).
    assert trained["steps"] == math.ceil(longest / 2) // 16 < longest // 16, trained
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["variants"]["main"]["zero_shot"]["s1"]["n"] > 0
