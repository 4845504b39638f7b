"""Logit scale: clamped on the parameter after each optimiser step; SigLIP initialisation."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import lightning as L
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

import core
from core.model import ContrastiveModel, ModelConfig
from core.training import ContrastiveTask

LOG_100 = math.log(100.0)


@dataclass
class MirrorTowerConfig:
    """A linear tower whose weights depend only on ``seed``; ``sign`` flips its output."""

    in_dim: int = 8
    embed_dim: int = 8
    seed: int = 0
    sign: float = 1.0


class MirrorTower(nn.Module):
    """(B, in_dim) -> sign * W x: two towers with one seed embed alike (sign +1) or opposite."""

    def __init__(self, config: MirrorTowerConfig) -> None:
        super().__init__()
        self.config = config
        self.linear = nn.Linear(config.in_dim, config.embed_dim, bias=False)
        generator = torch.Generator().manual_seed(config.seed)
        with torch.no_grad():
            self.linear.weight.copy_(torch.randn(config.embed_dim, config.in_dim,
                                                 generator=generator))

    @property
    def output_dim(self) -> int:
        """Width of the embedding."""
        return self.config.embed_dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Embed (B, in_dim) -> (B, embed_dim)."""
        return self.config.sign * self.linear(x)


core.register_tower("logit-scale-test-mirror", MirrorTowerConfig, MirrorTower)


class Vectors(Dataset):
    """Random vectors, fed to both towers."""

    def __init__(self, n: int = 64) -> None:
        self.x = torch.randn(n, 8, generator=torch.Generator().manual_seed(1))  # (n, 8)

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {"x": self.x[i]}


def _model(sign: float, init_scale: float, loss: str = "clip") -> ContrastiveModel:
    """Two mirror towers: ``sign=+1`` aligns the pairs (loss prefers a higher scale),
    ``sign=-1`` anti-aligns them (loss prefers a lower scale)."""
    tower = {"type": "logit-scale-test-mirror", "seed": 3}
    config = ModelConfig(name="mirror", towers={"a": tower, "b": {**tower, "sign": sign}},
                         pairs=[["a", "b"]], init_temperature=1.0 / init_scale,
                         loss={"type": loss})
    return ContrastiveModel(config)


def _fit(model: ContrastiveModel, tmp_path: Path, lr: float, steps: int,
         accumulate: int = 1) -> L.Trainer:
    task = ContrastiveTask(model, optimizer={"lr": lr, "warmup_steps": 1, "weight_decay": 0.0},
                           input_map={"batch": {"a": "x", "b": "x"}})
    trainer = L.Trainer(max_steps=steps, accumulate_grad_batches=accumulate,
                        accelerator="cpu", logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False,
                        default_root_dir=tmp_path)
    trainer.fit(task, DataLoader(Vectors(), batch_size=16, shuffle=False))
    return trainer


def _scale_gradient(model: ContrastiveModel) -> float:
    features = model({"a": Vectors().x[:16], "b": Vectors().x[:16]})
    loss = core.clip_loss(features["a"], features["b"], model.scale())
    (grad,) = torch.autograd.grad(loss, model.logit_scale)
    return float(grad)


def test_scale_is_exp_with_gradient_at_and_above_the_bound() -> None:
    model = _model(sign=-1.0, init_scale=100.0)
    for value in (LOG_100, LOG_100 + 1.0):
        with torch.no_grad():
            model.logit_scale.fill_(value)
        assert model.scale().item() == pytest.approx(math.exp(value), rel=1e-6)
        # Anti-aligned pairs: the loss grows with the scale, so dL/ds > 0, even above 100.
        assert _scale_gradient(model) > 1.0
    model = _model(sign=1.0, init_scale=20.0)
    assert _scale_gradient(model) < -1e-3  # aligned pairs: the loss prefers a higher scale


@pytest.mark.parametrize("accumulate", [1, 2])
def test_large_step_past_the_bound_is_clamped_to_log_100(tmp_path: Path,
                                                         accumulate: int) -> None:
    model = _model(sign=1.0, init_scale=20.0)  # s = log 20 ~ 3.0, below the bound
    assert _scale_gradient(model) < -1e-3
    trainer = _fit(model, tmp_path, lr=2.0, steps=2, accumulate=accumulate)
    assert trainer.global_step == 2
    # Adam's first step moves s by ~lr = 2, past log(100) ~ 4.605; the clamp brings it back.
    assert model.logit_scale.item() == pytest.approx(LOG_100, abs=1e-6)
    assert model.scale().item() == pytest.approx(100.0, rel=1e-5)


def test_step_at_the_bound_moves_the_scale_down_when_the_loss_prefers_it(
    tmp_path: Path,
) -> None:
    model = _model(sign=-1.0, init_scale=100.0)
    assert model.logit_scale.item() == pytest.approx(LOG_100, abs=1e-6)
    assert _scale_gradient(model) > 1.0
    _fit(model, tmp_path, lr=0.05, steps=1)
    assert LOG_100 - 0.06 < model.logit_scale.item() < LOG_100 - 0.04  # Adam: ~lr per step


def test_scale_never_drops_below_one(tmp_path: Path) -> None:
    model = _model(sign=-1.0, init_scale=1.5)  # s = 0.405; a unit step would take it < 0
    _fit(model, tmp_path, lr=1.0, steps=1)
    assert model.logit_scale.item() == 0.0
    assert model.scale().item() == 1.0


def test_custom_max_logit_scale_is_the_bound(tmp_path: Path) -> None:
    model = _model(sign=1.0, init_scale=20.0)
    model.config.max_logit_scale = 50.0
    _fit(model, tmp_path, lr=2.0, steps=1)  # s: 3.0 -> ~5.0 > log(50) ~ 3.91
    assert model.logit_scale.item() == pytest.approx(math.log(50.0), abs=1e-6)
    with pytest.raises(ValueError, match="max_logit_scale must be >= 1"):
        ModelConfig(name="x", towers={}, pairs=[], max_logit_scale=0.5)


def test_siglip_config_gets_siglip_initialisation() -> None:
    config = core.get_model_config("closp-tiny", loss={"type": "siglip"})
    assert config.init_temperature == 0.1
    assert config.init_logit_bias == -10.0
    model = core.create_model("closp-tiny", loss={"type": "siglip"})
    assert model.scale().item() == pytest.approx(10.0, rel=1e-6)
    assert model.logit_bias is not None and model.logit_bias.item() == -10.0
    # Other losses keep the config's own temperature and no bias.
    config = core.get_model_config("closp-tiny")
    assert (config.init_temperature, config.init_logit_bias) == (0.07, None)
    # An explicit bias is the user's choice: both values are kept.
    config = core.get_model_config("closp-tiny", loss={"type": "siglip"}, init_logit_bias=-5.0,
                                   init_temperature=0.2)
    assert (config.init_temperature, config.init_logit_bias) == (0.2, -5.0)
    # A saved siglip config round-trips unchanged.
    again = ModelConfig.from_dict(core.get_model_config("closp-tiny",
                                                        loss={"type": "siglip"}).to_dict())
    assert (again.init_temperature, again.init_logit_bias) == (0.1, -10.0)


def test_siglip_loss_trains_a_step_of_closp_tiny(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = core.create_model("closp-tiny", loss={"type": "siglip"})
    trainable = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
    task = ContrastiveTask(model, optimizer={"lr": 1e-3, "warmup_steps": 1})
    assert task.loss_fn.kind == "siglip"
    captions = ["water", "trees", "crops", "built area"] * 2
    batch = {"s2": torch.randn(8, 13, 64, 64), "text": captions}
    with torch.no_grad():
        features = model(batch)
        expected = core.siglip_loss(features["s2"], features["text"], torch.tensor(10.0),
                                    torch.tensor(-10.0))
    trainer = L.Trainer(fast_dev_run=True, accelerator="cpu", logger=False,
                        enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, default_root_dir=tmp_path)
    trainer.fit(task, DataLoader([batch], batch_size=None))
    loss = trainer.callback_metrics["train/loss"]
    torch.testing.assert_close(loss, expected, rtol=1e-4, atol=1e-5)
    # At initialisation (scale 10, bias -10) every logit is in [-20, 0]: the positive pair
    # costs ~log(1 + e^10) and the 7 negatives ~e^-10 each, so the loss starts near 10.
    assert 8.0 < loss.item() < 20.0
    changed = {n for n, p in model.named_parameters()
               if n in trainable and not torch.equal(p.detach(), trainable[n])}
    assert {"logit_scale", "logit_bias"} <= changed
    assert any(n.startswith("towers.s2.") for n in changed)
    assert model.logit_bias.item() > -10.0  # the first step raises the bias (positives)


def test_task_refuses_siglip_on_a_model_without_bias() -> None:
    model = _model(sign=1.0, init_scale=10.0, loss="clip")
    with pytest.raises(ValueError, match="siglip loss needs a model with a logit bias"):
        ContrastiveTask(model, loss={"type": "siglip"})
