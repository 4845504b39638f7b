"""Towers: shapes and errors, spherical harmonics, the offline MiniLM text tower and its cache."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from core.towers import (
    ImageTower,
    ImageTowerConfig,
    LocationTower,
    LocationTowerConfig,
    TextTower,
    TextTowerConfig,
    spherical_harmonics,
)


def test_image_tower_any_band_count_and_readable_shape_errors() -> None:
    tower = ImageTower(ImageTowerConfig(backbone="vit_tiny_patch16_224", in_chans=13, img_size=32,
                                        patch_size=8, embed_dim=48,
                                        backbone_kwargs={"embed_dim": 32, "depth": 1,
                                                         "num_heads": 2}))
    x = torch.randn(3, 13, 32, 32)
    tokens = tower.forward_features(x)  # (B, 1 + L, W)
    assert tokens.shape == (3, 1 + 16, 32)
    assert tower.pool(tokens).shape == (3, 32)
    assert tower(x).shape == (3, 48)
    with pytest.raises(ValueError, match=r"expects \(B, 13, H, W\)"):
        tower(torch.randn(3, 4, 32, 32))
    with pytest.raises(ValueError, match="32x32"):
        tower(torch.randn(3, 13, 48, 48))


def test_image_tower_cnn_backbone() -> None:
    tower = ImageTower(ImageTowerConfig(backbone="resnet18", in_chans=2, img_size=None,
                                        embed_dim=16))
    assert tower(torch.randn(2, 2, 40, 40)).shape == (2, 16)


def test_spherical_harmonics_are_orthonormal_on_the_sphere() -> None:
    # Midpoint quadrature over (lon, lat) with the cos(lat) area element.
    n_lon, n_lat = 180, 90
    lons = (torch.arange(n_lon) + 0.5) * 360 / n_lon - 180
    lats = (torch.arange(n_lat) + 0.5) * 180 / n_lat - 90
    grid = torch.cartesian_prod(lons, lats)  # (N, 2)
    weights = torch.cos(torch.deg2rad(grid[:, 1])) * (2 * math.pi / n_lon) * (math.pi / n_lat)
    y = spherical_harmonics(grid, degree=5).double()  # (N, 25)
    gram = (y * weights.double()[:, None]).T @ y  # (25, 25)
    torch.testing.assert_close(gram, torch.eye(25, dtype=torch.float64), atol=2e-3, rtol=0)
    assert spherical_harmonics(grid[:1], degree=10).shape == (1, 100)


@pytest.mark.parametrize("encoding", ["sh", "rff"])
def test_location_tower_shapes_and_smoothness(encoding: str) -> None:
    tower = LocationTower(LocationTowerConfig(embed_dim=24, encoding=encoding, degree=6,
                                              hidden_dim=32))
    coords = torch.tensor([[10.0, 45.0], [10.01, 45.01], [-120.0, -30.0]])
    out = F.normalize(tower(coords), dim=1)
    assert out.shape == (3, 24)
    assert out[0] @ out[1] > out[0] @ out[2]  # nearby places embed closer
    with pytest.raises(ValueError, match=r"\(N, 2\)"):
        tower(torch.zeros(3, 3))


def test_default_text_tower_loads_offline_and_ranks_paraphrases(cache_dir: Path) -> None:
    tower = TextTower(TextTowerConfig(cache_dir=str(cache_dir)))
    texts = ["A river flooded the farmland after heavy rain.",
             "Heavy rainfall caused the river to inundate the fields.",
             "The stock market closed higher on Tuesday."]
    emb = F.normalize(tower(texts), dim=1)
    assert emb.shape == (3, 384)
    paraphrase, unrelated = float(emb[0] @ emb[1]), float(emb[0] @ emb[2])
    assert paraphrase > unrelated + 0.3


def test_frozen_text_tower_cache_is_hit_and_persisted(cache_dir: Path) -> None:
    config = TextTowerConfig(cache_dir=str(cache_dir), max_length=16)
    tower = TextTower(config)
    calls = 0
    original = tower._run_encoder

    def counting(texts: list[str]) -> torch.Tensor:
        nonlocal calls
        calls += len(texts)
        return original(texts)

    tower._run_encoder = counting  # type: ignore[method-assign]
    first = tower(["water. trees", "crops", "water. trees"])
    assert calls == 2  # duplicates within a call are encoded once
    second = tower(["crops", "water. trees"])
    assert calls == 2 and tower.cache is not None and tower.cache.hits >= 2
    torch.testing.assert_close(second[0], first[1])
    # Once flushed (close() / exit), a new tower over the same folder reads the cache from
    # disk: no encoder run at all.
    tower.close()
    assert any(cache_dir.rglob("seg-*.safetensors"))
    reloaded = TextTower(config)
    reloaded._run_encoder = None  # type: ignore[assignment,method-assign]
    torch.testing.assert_close(reloaded(["water. trees"])[0], first[0])


def test_text_tower_cls_pooling_and_trainable_projection(cache_dir: Path) -> None:
    tower = TextTower(TextTowerConfig(pooling="cls", embed_dim=8, freeze=False,
                                      cache_dir=str(cache_dir)))
    out = tower(["a satellite image of forest", "sea ice"])
    assert out.shape == (2, 8)
    out.sum().backward()
    assert tower.proj.weight.grad is not None
    assert any(p.grad is not None for p in tower.encoder.parameters())
    with pytest.raises(TypeError, match="list of strings"):
        tower("one string")
