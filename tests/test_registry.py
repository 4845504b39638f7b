"""Registry: names, errors, overrides, inheritance; every model trains end to end."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from core import PairwiseLoss, create_model, get_model_config, list_models
from core.model import ContrastiveModel


def test_list_models_has_test_and_closp_shaped_configs() -> None:
    names = list_models()
    assert "test-tiny" in names
    for name in ("closp-tiny", "geoclosp-tiny"):
        config = get_model_config(name)
        assert config.towers["s2"]["in_chans"] == 13
        assert config.towers["s1"]["in_chans"] == 2
        assert config.towers["text"]["model"] == "minilm"
    assert "location" in get_model_config("geoclosp-tiny").towers
    assert "location" not in get_model_config("closp-tiny").towers


def test_unknown_name_lists_known_ones_and_no_substring_match() -> None:
    with pytest.raises(KeyError, match="known models: .*closp-tiny"):
        create_model("closp")


def test_overrides_merge_nested_and_dotted() -> None:
    config = get_model_config("closp-tiny", **{"towers.text.freeze": False},
                              init_temperature=0.05)
    assert config.towers["text"]["freeze"] is False
    assert config.towers["text"]["pooling"] == "mean"
    assert config.init_temperature == 0.05
    config = get_model_config("geoclosp-tiny", towers={"location": {"degree": 4}})
    assert config.towers["location"]["degree"] == 4
    assert config.towers["s2"]["backbone"] == "vit_tiny_patch16_224"  # inherited
    with pytest.raises(ValueError, match="unknown keys"):
        get_model_config("test-tiny", towers={"image": {"nonsense": 1}})
        create_model("test-tiny", towers={"image": {"nonsense": 1}})


def _example_inputs(model: ContrastiveModel, batch: int) -> dict[str, Any]:
    inputs: dict[str, Any] = {}
    for name, spec in model.config.towers.items():
        if spec["type"] == "image":
            size = spec.get("img_size") or 64
            inputs[name] = torch.randn(batch, spec["in_chans"], size, size)
        elif spec["type"] == "text":
            inputs[name] = [f"caption number {i}" for i in range(batch)]
        else:
            inputs[name] = torch.tensor([[10.0 * i - 50, 5.0 * i - 20] for i in range(batch)])
    return inputs


@pytest.mark.parametrize("name", list_models())
def test_every_model_forward_backward_reaches_every_trainable_parameter(name: str) -> None:
    torch.manual_seed(0)
    model = create_model(name)
    features = model(_example_inputs(model, batch=2))
    for value in features.values():
        assert value.shape == (2, model.embed_dim)
        torch.testing.assert_close(value.norm(dim=1), torch.ones(2))
    labels = torch.tensor([[1.0, 0.0, 1.0], [0.0, 1.0, 0.0]])
    loss_fn = PairwiseLoss.from_spec(model.config.loss)
    total, parts = loss_fn(features, model.pairs, model.scale(), model.logit_bias, labels)
    assert len(parts) == len(model.pairs)
    total.backward()
    missing = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
    assert not missing, f"{name}: parameters without gradient: {missing[:5]}"
    bad = [n for n, p in model.named_parameters() if p.grad is not None
           and not torch.isfinite(p.grad).all()]
    assert not bad
