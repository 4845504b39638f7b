"""ContrastiveTask: named mini-batches per step, logging, and loss going down."""

from __future__ import annotations

from pathlib import Path

import lightning as L
import torch
from torch.utils.data import DataLoader, Dataset

from core import create_model
from core.training import ContrastiveTask

CAPTIONS = ["water", "trees", "crops", "snow and ice", "built area", "bare ground"]


class ColourCaptions(Dataset):
    """Images whose mean colour encodes one of six captions, with a one-hot label."""

    def __init__(self, channels: int, n: int = 48, seed: int = 0) -> None:
        generator = torch.Generator().manual_seed(seed)
        self.classes = torch.arange(n) % len(CAPTIONS)
        codes = torch.randn(len(CAPTIONS), channels, 1, 1, generator=generator)
        self.images = codes[self.classes] + 0.1 * torch.randn(n, channels, 32, 32,
                                                               generator=generator)

    def __len__(self) -> int:
        return len(self.classes)

    def __getitem__(self, i: int) -> dict:
        c = int(self.classes[i])
        return {"image": self.images[i], "caption": CAPTIONS[c],
                "label": torch.nn.functional.one_hot(torch.tensor(c), len(CAPTIONS)).float()}


def _loaders(batch_size: int = 12) -> dict[str, DataLoader]:
    return {"a": DataLoader(ColourCaptions(3, seed=0), batch_size=batch_size, shuffle=True),
            "b": DataLoader(ColourCaptions(3, seed=1), batch_size=batch_size, shuffle=True)}


def _task() -> ContrastiveTask:
    torch.manual_seed(0)
    model = create_model("test-tiny")
    return ContrastiveTask(model, loss={"type": "soft_target"},
                           optimizer={"lr": 3e-3, "warmup_steps": 2},
                           input_map={"a": {"image": "image", "text": "caption"},
                                      "b": {"image": "image", "text": "caption"}})


def test_fast_dev_run_with_two_named_minibatches(tmp_path: Path) -> None:
    from lightning.pytorch.utilities import CombinedLoader

    task = _task()
    trainer = L.Trainer(fast_dev_run=2, accelerator="cpu", logger=False,
                        enable_checkpointing=False, enable_progress_bar=False,
                        default_root_dir=tmp_path)
    trainer.fit(task, CombinedLoader(_loaders(), mode="max_size_cycle"))
    logged = trainer.callback_metrics
    assert {"train/loss", "train/temperature", "train/loss/a/image-text",
            "train/loss/b/image-text"} <= set(logged)
    assert torch.isfinite(logged["train/loss"])


def test_training_lowers_the_loss(tmp_path: Path) -> None:
    from lightning.pytorch.utilities import CombinedLoader

    task = _task()
    batch = next(iter(CombinedLoader(_loaders(batch_size=48), mode="max_size_cycle")))[0]
    with torch.no_grad():
        before = task.compute_loss(batch)[0].item()
    trainer = L.Trainer(max_epochs=15, accelerator="cpu", logger=False,
                        enable_checkpointing=False, enable_progress_bar=False,
                        default_root_dir=tmp_path)
    trainer.fit(task, CombinedLoader(_loaders(), mode="max_size_cycle"))
    with torch.no_grad():
        after = task.compute_loss(batch)[0].item()
    assert after < 0.7 * before
