"""The text bridge of the text tower: MLP projection, top-N unfrozen layers, sentence pooling.

Its defaults must keep today's behaviour exactly (remote sensing builds on them).
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

import core
from core.checkpoint import load_run, save_run
from core.towers.text import TextTower, TextTowerConfig, split_sentences


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> str:
    return str(tmp_path_factory.mktemp("text-cache"))


def test_defaults_are_unchanged(cache_dir: str) -> None:
    config = TextTowerConfig(cache_dir=cache_dir)
    assert (config.proj_hidden, config.unfreeze_top, config.split_sentences) == (None, 0, False)
    tower = TextTower(config)
    assert isinstance(tower.proj, nn.Identity)
    assert tower.cache is not None
    assert not any(p.requires_grad for p in tower.parameters())
    texts = ["Moderate left pleural effusion. No pneumothorax.", "water"]
    torch.testing.assert_close(tower(texts), tower.encode_text_features(texts))
    linear = TextTower(TextTowerConfig(cache_dir=cache_dir, embed_dim=32))
    assert isinstance(linear.proj, nn.Linear)
    # closp-tiny's text tower is built exactly as before: no projection, frozen, cached.
    closp = core.registry.get_model_config("closp-tiny").towers["text"]
    assert not {"proj_hidden", "unfreeze_top", "split_sentences"} & set(closp)


def test_mlp_projection(cache_dir: str) -> None:
    tower = TextTower(TextTowerConfig(cache_dir=cache_dir, embed_dim=16, proj_hidden=24))
    assert isinstance(tower.proj, nn.Sequential)
    assert [m.out_features for m in tower.proj if isinstance(m, nn.Linear)] == [24, 16]
    assert tower(["a", "b", "c"]).shape == (3, 16)
    trainable = {n for n, p in tower.named_parameters() if p.requires_grad}
    assert trainable and all(n.startswith("proj.") for n in trainable)
    with pytest.raises(ValueError, match="needs embed_dim"):
        TextTower(TextTowerConfig(cache_dir=cache_dir, proj_hidden=24))


def test_unfreeze_top_layers(cache_dir: str) -> None:
    tower = TextTower(TextTowerConfig(cache_dir=cache_dir, embed_dim=8, unfreeze_top=2))
    assert tower.cache is None  # trained layers change the features: nothing is cached
    layers = tower.encoder.encoder.layer
    assert all(p.requires_grad for layer in layers[-2:] for p in layer.parameters())
    assert not any(p.requires_grad for layer in layers[:-2] for p in layer.parameters())
    assert not any(p.requires_grad for p in tower.encoder.embeddings.parameters())
    tower(["small right pneumothorax", "no pneumothorax"]).pow(2).sum().backward()
    assert layers[-1].output.dense.weight.grad is not None
    assert layers[-1].output.dense.weight.grad.abs().sum() > 0
    assert layers[0].output.dense.weight.grad is None
    with pytest.raises(ValueError, match=">= 0"):
        TextTower(TextTowerConfig(cache_dir=cache_dir, unfreeze_top=-1))


def test_sentence_pooling(cache_dir: str) -> None:
    assert split_sentences("FINDINGS: Heart normal.  No effusion.\n1. Small nodule.") == \
        ["FINDINGS: Heart normal.", "No effusion.", "Small nodule."]
    assert split_sentences("1. 2.") == ["1. 2."]
    tower = TextTower(TextTowerConfig(cache_dir=cache_dir, embed_dim=12, proj_hidden=20,
                                      split_sentences=True))
    together = tower(["No pneumothorax. Large left effusion.", "No pneumothorax."])
    alone = tower(["No pneumothorax.", "Large left effusion."])
    torch.testing.assert_close(together[0], alone.mean(0))
    torch.testing.assert_close(together[1], alone[0])


def test_bridge_round_trip(tmp_path, cache_dir: str) -> None:
    config = core.registry.get_model_config(
        "cxr-micro", **{"towers.text.cache_dir": cache_dir, "towers.text.unfreeze_top": 1})
    model = core.model.ContrastiveModel(config).eval()
    with torch.no_grad():
        model.towers["text"].encoder.encoder.layer[-1].output.dense.weight.add_(0.01)
    save_run(model, tmp_path / "run")
    loaded = load_run(tmp_path / "run")
    texts = ["Moderate cardiomegaly. No effusion.", "Normal chest radiograph."]
    with torch.no_grad():
        torch.testing.assert_close(loaded.encode("text", texts), model.encode("text", texts))
