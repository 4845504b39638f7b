"""Training checkpoints without pickle: round trip and resume through Lightning."""

from __future__ import annotations

from pathlib import Path

import lightning as L
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from core.lightning_io import SafetensorsCheckpointIO, load_checkpoint_file, save_checkpoint_file


def test_nested_checkpoint_round_trip(tmp_path: Path) -> None:
    state = {"epoch": 3, "name": "x", "none": None, "flag": True, "ratio": 0.5,
             "state": {0: {"exp_avg": torch.arange(4.0)}, "tuple": (1, torch.ones(2))},
             "groups": [{"lr": 1e-3, "params": [0, 1]}]}
    path = save_checkpoint_file(state, tmp_path / "c.ckpt")
    back = load_checkpoint_file(path)
    assert back["epoch"] == 3 and back["none"] is None and back["flag"] is True
    assert torch.equal(back["state"][0]["exp_avg"], torch.arange(4.0))
    assert isinstance(back["state"]["tuple"], tuple)
    assert back["groups"] == [{"lr": 1e-3, "params": [0, 1]}]
    with pytest.raises(TypeError, match="without pickle"):
        save_checkpoint_file({"bad": object()}, tmp_path / "bad.ckpt")
    (tmp_path / "junk.ckpt").write_bytes(b"junk")
    with pytest.raises(ValueError, match="junk.ckpt"):
        load_checkpoint_file(tmp_path / "junk.ckpt")


class Regressor(L.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.layer = torch.nn.Linear(4, 1)

    def training_step(self, batch: list[torch.Tensor], batch_idx: int) -> torch.Tensor:
        x, y = batch
        return torch.nn.functional.mse_loss(self.layer(x), y)

    def configure_optimizers(self) -> dict:
        optimizer = torch.optim.AdamW(self.parameters(), lr=0.01)
        scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=3)
        return {"optimizer": optimizer, "lr_scheduler": scheduler}


def _trainer(root: Path, epochs: int) -> L.Trainer:
    return L.Trainer(max_epochs=epochs, accelerator="cpu", logger=False,
                     enable_progress_bar=False, default_root_dir=root,
                     plugins=[SafetensorsCheckpointIO()], enable_model_summary=False)


def test_lightning_resume_matches_uninterrupted_training(tmp_path: Path) -> None:
    generator = torch.Generator().manual_seed(0)
    data = TensorDataset(torch.randn(32, 4, generator=generator),
                         torch.randn(32, 1, generator=generator))
    loader = DataLoader(data, batch_size=8)
    torch.manual_seed(0)
    straight = Regressor()
    _trainer(tmp_path / "a", 4).fit(straight, loader)
    torch.manual_seed(0)
    first = Regressor()
    trainer = _trainer(tmp_path / "b", 2)
    trainer.fit(first, loader)
    trainer.save_checkpoint(tmp_path / "b" / "last.ckpt")
    resumed = Regressor()
    _trainer(tmp_path / "b", 4).fit(resumed, loader, ckpt_path=tmp_path / "b" / "last.ckpt")
    torch.testing.assert_close(resumed.layer.weight, straight.layer.weight)
