"""Tower registry: built-ins register themselves; a domain adds its own type, core untouched."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import lightning as L
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

import core
from core.model import ContrastiveModel, ModelConfig
from core.towers import build_tower, get_tower_type
from core.training import ContrastiveTask


@dataclass
class VectorTowerConfig:
    """A tiny MLP over plain feature vectors (what a domain might register)."""

    in_dim: int = 6
    hidden_dim: int = 16
    embed_dim: int = 8


class VectorTower(nn.Module):
    """(B, in_dim) -> (B, embed_dim) through one hidden layer."""

    def __init__(self, config: VectorTowerConfig) -> None:
        super().__init__()
        self.config = config
        self.mlp = nn.Sequential(nn.Linear(config.in_dim, config.hidden_dim), nn.GELU(),
                                 nn.Linear(config.hidden_dim, config.embed_dim))

    @property
    def output_dim(self) -> int:
        """Width of the embedding."""
        return self.config.embed_dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Embed (B, in_dim) vectors: (B, embed_dim)."""
        return self.mlp(x)


core.register_tower("registry-test-vector", VectorTowerConfig, VectorTower)


class VectorsAndPlaces(Dataset):
    """Random vectors with random (lon, lat) coordinates."""

    def __init__(self, n: int = 32) -> None:
        generator = torch.Generator().manual_seed(0)
        self.vectors = torch.randn(n, 6, generator=generator)  # (n, 6)
        lon = torch.rand(n, generator=generator) * 360 - 180  # (n,)
        lat = torch.rand(n, generator=generator) * 180 - 90  # (n,)
        self.coords = torch.stack([lon, lat], dim=1)  # (n, 2)

    def __len__(self) -> int:
        return len(self.vectors)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {"vector": self.vectors[i], "location": self.coords[i]}


def test_builtin_towers_are_registered_and_listed() -> None:
    assert {"image", "text", "location", "registry-test-vector"} <= set(core.list_towers())
    assert core.list_towers() == sorted(core.list_towers())
    assert get_tower_type("image") == (core.ImageTowerConfig, core.ImageTower)
    assert get_tower_type("text") == (core.TextTowerConfig, core.TextTower)
    assert get_tower_type("location") == (core.LocationTowerConfig, core.LocationTower)


def test_registering_again_is_a_no_op_but_other_classes_are_refused() -> None:
    core.register_tower("registry-test-vector", VectorTowerConfig, VectorTower)  # same: fine
    assert get_tower_type("registry-test-vector") == (VectorTowerConfig, VectorTower)

    class OtherTower(VectorTower):
        pass

    with pytest.raises(ValueError, match="'registry-test-vector' is already registered"):
        core.register_tower("registry-test-vector", VectorTowerConfig, OtherTower)
    with pytest.raises(ValueError, match="'image' is already registered"):
        core.register_tower("image", VectorTowerConfig, VectorTower)
    assert get_tower_type("image") == (core.ImageTowerConfig, core.ImageTower)
    with pytest.raises(TypeError, match="dataclass"):
        core.register_tower("registry-test-bad", dict, VectorTower)
    with pytest.raises(TypeError, match="nn.Module"):
        core.register_tower("registry-test-bad", VectorTowerConfig, object)
    assert "registry-test-bad" not in core.list_towers()


def test_unknown_tower_type_lists_the_known_ones_without_substring_match() -> None:
    for wrong in ("vector", "imag", "Image", "image "):
        with pytest.raises(ValueError, match="unknown tower type") as info:
            build_tower("x", {"type": wrong})
        message = str(info.value)
        assert f"tower 'x': unknown tower type {wrong!r}; known tower types: " in message
        known = message.split("known tower types: ")[1].split(", ")
        assert known == core.list_towers()
        assert {"image", "location", "text", "registry-test-vector"} <= set(known)
    with pytest.raises(ValueError, match="tower 'x' has no 'type'"):
        build_tower("x", {"in_dim": 3})
    with pytest.raises(ValueError, match=r"unknown keys \['depth'\]; known: \['embed_dim', "
                                         r"'hidden_dim', 'in_dim'\]"):
        build_tower("x", {"type": "registry-test-vector", "depth": 3})
    config = ModelConfig(name="bad", towers={"a": {"type": "vectr"}}, pairs=[])
    with pytest.raises(ValueError, match="tower 'a': unknown tower type 'vectr'"):
        ContrastiveModel(config)


def test_model_with_a_registered_tower_trains_with_lightning(tmp_path: Path) -> None:
    torch.manual_seed(0)
    config = ModelConfig(
        name="vector-geo",
        towers={"vector": {"type": "registry-test-vector", "in_dim": 6, "embed_dim": 8},
                "location": {"type": "location", "embed_dim": 8, "degree": 3, "hidden_dim": 8}},
        pairs=[["vector", "location"]],
    )
    model = ContrastiveModel(config)
    assert isinstance(model.towers["vector"], VectorTower)
    assert model.embed_dim == 8
    before = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
    task = ContrastiveTask(model, optimizer={"lr": 1e-2, "warmup_steps": 1})
    trainer = L.Trainer(fast_dev_run=True, accelerator="cpu", logger=False,
                        enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, default_root_dir=tmp_path)
    trainer.fit(task, DataLoader(VectorsAndPlaces(), batch_size=16, shuffle=True))
    assert trainer.global_step == 1
    assert torch.isfinite(trainer.callback_metrics["train/loss"])
    unchanged = [n for n, p in model.named_parameters()
                 if n in before and torch.equal(p.detach(), before[n])]
    assert not unchanged, f"parameters not updated: {unchanged}"
    assert any(n.startswith("towers.vector.") for n in before)
